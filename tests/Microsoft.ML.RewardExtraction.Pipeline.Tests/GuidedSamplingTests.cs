using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>A row without any input the sampler reads (each row just asks for one sample).</summary>
public sealed class EmptyRow
{
    public float Unused { get; set; }
}

[Collection(TrainedCollection.Name)]
public class GuidedSamplingTests(TrainedModels models, ITestOutputHelper output)
{
    private GuidedSamplingTransformer Sampler(IDataView rows, string? seedColumn = null, string? condition = null, double scale = 0.3, int batchSize = 4)
        => models.Ml.RewardExtraction().GuidedSampling(models.Base, models.Reward, new GuidedSamplingEstimator.Options
        {
            GuidanceScale = scale,
            Seed = 7,
            BatchSize = batchSize,
            SeedColumnName = seedColumn,
            ConditionColumnName = condition,
            ConditionMaskColumnName = condition is null ? null : condition + "Mask",
        }).Fit(rows);

    [Fact]
    public void DdimSteps_AreAnOptionOfTheSamplingTransform_SavedWithIt_AndWithSamplingStepsMatchesABuiltOne()
    {
        var ml = models.Ml;
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6).Select(i => new SeededRow { Seed = 70 + i }));
        float[][] Samples(GuidedSamplingTransformer sampler) => sampler.Transform(data).GetColumn<float[]>("Sample").ToArray();
        GuidedSamplingTransformer Built(int steps) => ml.RewardExtraction().GuidedSampling(models.Base, models.Reward, new GuidedSamplingEstimator.Options
        {
            GuidanceScale = 0.3, Seed = 7, BatchSize = 4, SeedColumnName = "Seed", SamplingSteps = steps,
        }).Fit(data);
        using var ancestral = Built(0);
        using var ddim = Built(3);
        Assert.Equal(3, ddim.Guidance.SamplingSteps);
        Assert.NotEqual(Samples(ancestral), Samples(ddim));
        using (var copy = ancestral.WithSamplingSteps(3))
            Assert.Equal(Samples(ddim), Samples(copy));
        using (var back = ddim.WithSamplingSteps(0))
            Assert.Equal(Samples(ancestral), Samples(back));

        // Saved and loaded, it samples the same DDIM chain.
        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "ddim.zip");
        ml.Model.Save(ddim, data.Schema, path);
        using var loaded = Assert.IsType<GuidedSamplingTransformer>(new MLContext(seed: 5).Model.Load(path, out _));
        Assert.Equal(3, loaded.Guidance.SamplingSteps);
        Assert.Equal(Samples(ddim), Samples(loaded));

        int steps = models.Base.Model.Diffusion.Steps;
        Assert.Throws<ArgumentOutOfRangeException>(() => ddim.WithSamplingSteps(steps + 1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Built(steps + 1));
        Assert.Contains("SamplingSteps", e.Message);
    }

    [Fact]
    public void WithGuidanceScale_SamplesExactlyLikeASamplerBuiltAtThatScale()
    {
        var ml = models.Ml;
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6).Select(i => new SeededRow { Seed = 50 + i }));
        float[][] Samples(GuidedSamplingTransformer sampler) => sampler.Transform(data).GetColumn<float[]>("Sample").ToArray();
        using var saved = Sampler(data, seedColumn: "Seed", scale: 0.3);
        using var stronger = saved.WithGuidanceScale(0.9);
        using var builtStronger = Sampler(data, seedColumn: "Seed", scale: 0.9);
        Assert.Equal(Samples(builtStronger), Samples(stronger));
        Assert.Equal(0.9, stronger.Guidance.Scale);
        Assert.Equal(saved.Guidance.StopGradientBelow, stronger.Guidance.StopGradientBelow);

        using var unguided = saved.WithGuidanceScale(0);
        using var builtUnguided = ml.RewardExtraction().GuidedSampling(models.Base, null, new GuidedSamplingEstimator.Options
        {
            GuidanceScale = 0, Seed = 7, BatchSize = 4, SeedColumnName = "Seed",
        }).Fit(data);
        Assert.Equal(Samples(builtUnguided), Samples(unguided));
        Assert.NotEqual(Samples(unguided), Samples(stronger));

        Assert.Throws<ArgumentOutOfRangeException>(() => saved.WithGuidanceScale(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => saved.WithGuidanceScale(double.NaN));
        Assert.Throws<InvalidOperationException>(() => builtUnguided.WithGuidanceScale(1));   // no reward to guide with

        // The copy borrows the saved sampler's models: once that one is disposed, the copy says so instead of crashing.
        var parent = Sampler(data, seedColumn: "Seed", scale: 0.3);
        using var child = parent.WithGuidanceScale(0.5);
        parent.Dispose();
        Assert.ThrowsAny<Exception>(() => Samples(child));
        Assert.Throws<ObjectDisposedException>(() => parent.WithGuidanceScale(1));
    }

    [Fact]
    public void EachRow_BecomesOneSample_OfTheModelsShape()
    {
        var ml = models.Ml;
        var rows = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 5).Select(_ => new EmptyRow()));
        using var sampler = models.Ml.RewardExtraction().GuidedSampling(models.Base, models.Reward, guidanceScale: 0.3, seed: 7).Fit(rows);
        var scored = sampler.Transform(rows);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, Synthetic.Length), scored.Schema["Sample"].Type);
        var samples = scored.GetColumn<float[]>("Sample").ToArray();
        Assert.Equal(5, samples.Length);
        Assert.All(samples, s => Assert.True(s.Length == Synthetic.Length && s.All(float.IsFinite)));
        Assert.Equal(5, samples.Select(s => string.Join(",", s)).Distinct().Count());
    }

    [Fact]
    public void ARowsSample_IsIdentical_InAnyBatch_AndFromAPredictionEngine()
    {
        var ml = models.Ml;
        var seeded = Enumerable.Range(0, 10).Select(i => new SeededRow { Seed = 1000 + i }).ToList();
        var data = ml.Data.LoadFromEnumerable(seeded);
        using var sampler = Sampler(data, seedColumn: "Seed");   // batches of 4: 4 + 4 + 2 (padded)
        var batched = sampler.Transform(data).GetColumn<float[]>("Sample").ToArray();

        // With a seed column a row's sample depends on its seed only: any order, alone, in another batch.
        using var engine = ml.BorrowingEngine<SeededRow, SamplePrediction>(sampler);
        for (int i = seeded.Count - 1; i >= 0; i--)
            Assert.Equal(batched[i], engine.Predict(seeded[i]).Sample);
        var subset = ml.Data.LoadFromEnumerable(seeded.Skip(3).Take(5));
        Assert.Equal(batched.Skip(3).Take(5), sampler.Transform(subset).GetColumn<float[]>("Sample"));

        // Without one, rows are seeded by position; a PredictionEngine numbers its calls 0, 1, 2, ... the same way.
        var empty = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6).Select(_ => new EmptyRow()));
        using var positional = Sampler(empty);
        var byPosition = positional.Transform(empty).GetColumn<float[]>("Sample").ToArray();
        using var positionalEngine = ml.BorrowingEngine<EmptyRow, SamplePrediction>(positional);
        for (int i = 0; i < 6; i++)
            Assert.Equal(byPosition[i], positionalEngine.Predict(new EmptyRow()).Sample);
        Assert.NotEqual(byPosition[0], byPosition[1]);
    }

    [Fact]
    public void Inpainting_KeepsTheKnownEntries()
    {
        var ml = models.Ml;
        var rows = Enumerable.Range(0, 6).Select(i =>
        {
            var row = new ConditionRow { Seed = i };
            // Known: the first point (-0.5, 0.25 i) and the x of the last point.
            row.Condition[0] = -0.5f; row.ConditionMask[0] = 1;
            row.Condition[1] = 0.25f * i - 0.5f; row.ConditionMask[1] = 1;
            row.Condition[Synthetic.Length - 2] = 0.9f; row.ConditionMask[Synthetic.Length - 2] = 1;
            return row;
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        using var sampler = Sampler(data, seedColumn: "Seed", condition: "Condition");
        var samples = sampler.Transform(data).GetColumn<float[]>("Sample").ToArray();
        for (int i = 0; i < rows.Count; i++)
        {
            for (int j = 0; j < Synthetic.Length; j++)
            {
                if (rows[i].ConditionMask[j] != 0)
                    Assert.Equal(rows[i].Condition[j], samples[i][j], 4);   // normalised and back: float rounding
            }
        }
        output.WriteLine(string.Join(" ", samples[5].Select(v => v.ToString("F3"))));

        using var engine = ml.BorrowingEngine<ConditionRow, SamplePrediction>(sampler);
        Assert.Equal(samples[4], engine.Predict(rows[4]).Sample);
    }

    [Fact]
    public void Guidance_RaisesTheRewardOfTheSamples()
    {
        var ml = models.Ml;
        var rows = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 32).Select(i => new SeededRow { Seed = i }));
        float MeanReward(double scale)
        {
            using var sampler = Sampler(rows, seedColumn: "Seed", scale: scale, batchSize: 32);
            var samples = sampler.Transform(rows).GetColumn<float[]>("Sample").Select(s => new TrajectoryRow { Trajectory = s });
            return models.Reward.Transform(ml.Data.LoadFromEnumerable(samples)).GetColumn<float>("Reward").Average();
        }
        float unguided = MeanReward(0), guided = MeanReward(1.0);
        output.WriteLine($"mean reward of samples: unguided {unguided:G4}, guided {guided:G4}");
        Assert.True(guided > unguided);
    }

    [Fact]
    public void ARewardTrainedForAnotherShape_IsRejected_NamingBothShapes()
    {
        var ml = new MLContext(seed: 1);
        var rx = ml.RewardExtraction();
        var shape = SampleShape.Trajectory(4, 2);
        var data = ml.Data.LoadFromEnumerable(Synthetic.Mixed(20, seed: 1).Select(r => new ShortRow { Trajectory = r.Trajectory[..8] }));
        var options = Synthetic.DiffusionOptions(steps: 2);
        options.Shape = shape;
        using var shortBase = rx.DiffusionModel(options).Fit(data);
        using var shortReward = rx.RelativeReward(shortBase, shortBase, Synthetic.RewardOptions(steps: 2)).Fit(data);

        var ex = Assert.ThrowsAny<ArgumentException>(() => models.Ml.RewardExtraction().GuidedSampling(models.Base, shortReward, 0.1));
        output.WriteLine(ex.Message);
        Assert.Contains("The reward was trained for Trajectory(H=4, D=2) but the base model samples Trajectory(H=8, D=2)", ex.Message);

        // Same shape, but a base model with its own normaliser: the reward's inputs would live in another space.
        using var otherBase = rx.DiffusionModel(Synthetic.DiffusionOptions(steps: 1)).Fit(models.ExpertData);
        var space = Assert.ThrowsAny<ArgumentException>(() => rx.GuidedSampling(otherBase, models.Reward, 0.1));
        output.WriteLine(space.Message);
        Assert.Contains("The reward was trained in another data space", space.Message);
    }

    [Fact]
    public void ConditionColumns_AreChecked()
    {
        var ml = models.Ml;
        var rows = ml.Data.LoadFromEnumerable(new[] { new SeededRow { Seed = 1 } });
        var estimator = ml.RewardExtraction().GuidedSampling(models.Base, models.Reward, new GuidedSamplingEstimator.Options
        {
            ConditionColumnName = "Condition",
            ConditionMaskColumnName = "ConditionMask",
        });
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => estimator.Fit(rows));
        Assert.Contains("Could not find input column 'Condition': expected Vector<Single, 16> (known values of Trajectory(H=8, D=2))", ex.Message);

        var half = Assert.ThrowsAny<ArgumentException>(() => ml.RewardExtraction().GuidedSampling(models.Base, models.Reward,
            new GuidedSamplingEstimator.Options { ConditionColumnName = "Condition" }));
        Assert.Contains("Inpainting needs both", half.Message);
    }
}

public sealed class ShortRow
{
    [VectorType(8)]
    public float[] Trajectory { get; set; } = new float[8];
}
