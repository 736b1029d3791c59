using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>A trajectory in two pieces: the first point and the remaining seven.</summary>
public sealed class PiecesRow
{
    [VectorType(Synthetic.Dimension)]
    public float[] Start { get; set; } = new float[Synthetic.Dimension];

    [VectorType(Synthetic.Length - Synthetic.Dimension)]
    public float[] Rest { get; set; } = new float[Synthetic.Length - Synthetic.Dimension];

    public static PiecesRow From(TrajectoryRow row) => new() { Start = row.Trajectory[..Synthetic.Dimension], Rest = row.Trajectory[Synthetic.Dimension..] };
}

[Collection(TrainedCollection.Name)]
public class CompositionTests(TrainedModels models, ITestOutputHelper output)
{
    [Fact]
    public void ConcatenateBefore_FastTreeAfter_DistilsTheRewardIntoTrees()
    {
        var ml = new MLContext(seed: 1);
        var rx = ml.RewardExtraction();
        var train = ml.Data.LoadFromEnumerable(Synthetic.Mixed(800, seed: 20).Select(PiecesRow.From));
        var heldOut = ml.Data.LoadFromEnumerable(Synthetic.Mixed(300, seed: 21).Select(PiecesRow.From));

        var pipeline = ml.Transforms.Concatenate("Trajectory", "Start", "Rest")
            .Append(rx.RelativeReward(models.Base, models.Expert, Synthetic.RewardOptions(steps: 60)))
            .Append(ml.Transforms.CopyColumns("Label", "Reward"))
            .Append(ml.Regression.Trainers.FastTree(labelColumnName: "Label", featureColumnName: "Trajectory",
                numberOfLeaves: 16, numberOfTrees: 60, minimumExampleCountPerLeaf: 5, learningRate: 0.3));
        using var model = pipeline.Fit(train);

        var scored = model.Transform(heldOut);
        var rewards = scored.GetColumn<float>("Reward").ToArray();
        var trees = scored.GetColumn<float>("Score").ToArray();
        double spearman = Stats.Spearman(rewards, trees);
        var metrics = ml.Regression.Evaluate(scored, labelColumnName: "Label");
        output.WriteLine($"held-out: Spearman(reward, FastTree) = {spearman:F4}, R^2 = {metrics.RSquared:F4}");
        Assert.True(spearman >= 0.9, $"Spearman {spearman}");

        // The whole chain (concatenate, reward, copy, trees) saves and loads as one model.
        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "distilled.zip");
        ml.Model.Save(model, train.Schema, path);
        var loaded = new MLContext(seed: 2).Model.Load(path, out var schema);
        Assert.Equal(train.Schema.Select(c => c.Name), schema.Select(c => c.Name));
        var again = loaded.Transform(heldOut);
        Assert.Equal(rewards, again.GetColumn<float>("Reward").ToArray());
        Assert.Equal(trees, again.GetColumn<float>("Score").ToArray());
        (loaded as IDisposable)?.Dispose();
    }

    [Fact]
    public void FittedTransformers_AppendInBothDirections()
    {
        var ml = models.Ml;
        var pieces = ml.Data.LoadFromEnumerable(Synthetic.Mixed(30, seed: 22).Select(PiecesRow.From));
        var whole = ml.Data.LoadFromEnumerable(Synthetic.Mixed(30, seed: 22));
        var expected = models.Reward.Transform(whole).GetColumn<float>("Reward").ToArray();

        // An ML.NET transformer first, the reward after it...
        var concat = ml.Transforms.Concatenate("Trajectory", "Start", "Rest").Fit(pieces);
        var chain = concat.Append(models.Reward);
        Assert.Equal(expected, chain.Transform(pieces).GetColumn<float>("Reward").ToArray());

        // ...and the reward first, ML.NET transformers after it (the estimator in front of an estimator chain too).
        var after = models.Reward.Append(ml.Transforms.NormalizeMinMax("ScaledReward", "Reward").Fit(models.Reward.Transform(whole)));
        var scaled = after.Transform(whole).GetColumn<float>("ScaledReward").ToArray();
        Assert.Equal(1f, scaled.Max(), 5);
        Assert.Equal(Array.IndexOf(expected, expected.Max()), Array.IndexOf(scaled, scaled.Max()));

        var estimatorFirst = ml.RewardExtraction().DiffusionModel(Synthetic.DiffusionOptions(steps: 5))
            .Append(ml.Transforms.NormalizeMinMax("ScaledError", "DenoisingError"));
        using var fitted = estimatorFirst.Fit(whole);
        Assert.Equal(30, fitted.Transform(whole).GetColumn<float>("ScaledError").Count());

        // A PredictionEngine over a chain with the reward in the middle.
        using var engine = ml.BorrowingEngine<PiecesRow, RewardPrediction>(chain);
        var rows = Synthetic.Mixed(30, seed: 22).Select(PiecesRow.From).ToList();
        Stats.AssertClose(expected, rows.Select(r => engine.Predict(r).Reward).ToArray());
    }

    [Fact]
    public void DisposingATransformerChain_DisposesTheTorchTransformers()
    {
        var ml = new MLContext(seed: 1);
        var rx = ml.RewardExtraction();
        var data = ml.Data.LoadFromEnumerable(Synthetic.Mixed(40, seed: 23));
        var seeds = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 2).Select(i => new SeededRow { Seed = i }));
        var baseModel = rx.DiffusionModel(Synthetic.DiffusionOptions(seed: 1, steps: 3)).Fit(data);
        var expertOptions = Synthetic.DiffusionOptions(seed: 2, steps: 3);
        expertOptions.NormalizeLike = baseModel;
        var expert = rx.DiffusionModel(expertOptions).Fit(data);
        var reward = rx.RelativeReward(baseModel, expert, Synthetic.RewardOptions(steps: 3)).Fit(data);
        var sampler = rx.GuidedSampling(baseModel, reward, new GuidedSamplingEstimator.Options { BatchSize = 2 }).Fit(seeds);

        var chain = new TransformerChain<ITransformer>(baseModel, reward, sampler);
        Assert.Equal(2, chain.Transform(data).Preview(2).RowView.Length);
        chain.Dispose();
        foreach (var (transformer, column) in new (ITransformer, string)[] { (baseModel, "DenoisingError"), (reward, "Reward"), (sampler, "Sample") })
        {
            var view = transformer.Transform(data);
            Assert.Throws<ObjectDisposedException>(() => view.Preview(1));
        }
        expert.Dispose();
        expert.Dispose();   // idempotent

        // A chain loaded from a zip owns what it loaded; disposing it releases everything.
        using var dir = new TempFolder();
        var fresh = rx.DiffusionModel(Synthetic.DiffusionOptions(steps: 2)).Fit(data);
        string path = Path.Combine(dir.Path, "one.zip");
        ml.Model.Save(new TransformerChain<ITransformer>(fresh), data.Schema, path);
        fresh.Dispose();
        var loaded = (TransformerChain<ITransformer>)ml.Model.Load(path, out _);
        var inner = Assert.IsType<DiffusionModelTransformer>(loaded.Single());
        Assert.Equal(40, inner.Transform(data).GetColumn<float>("DenoisingError").Count());
        loaded.Dispose();
        Assert.Throws<ObjectDisposedException>(() => inner.Transform(data).Preview(1));

        // ML.NET's rule: a PredictionEngine owns its transformer unless told otherwise, and disposes it with itself.
        var owned = rx.DiffusionModel(Synthetic.DiffusionOptions(steps: 1)).Fit(data);
        using (var engine = ml.Model.CreatePredictionEngine<TrajectoryRow, DenoisingPrediction>(owned))
            Assert.True(engine.Predict(Synthetic.Mixed(1, seed: 24)[0]).DenoisingError >= 0);
        Assert.Throws<ObjectDisposedException>(() => owned.Transform(data).Preview(1));
        var kept = rx.DiffusionModel(Synthetic.DiffusionOptions(steps: 1)).Fit(data);
        using (var engine = ml.Model.CreatePredictionEngine<TrajectoryRow, DenoisingPrediction>(kept, new PredictionEngineOptions { OwnsTransformer = false }))
            engine.Predict(Synthetic.Mixed(1, seed: 24)[0]);
        Assert.Equal(40, kept.Transform(data).GetColumn<float>("DenoisingError").Count());
        kept.Dispose();
    }
}
