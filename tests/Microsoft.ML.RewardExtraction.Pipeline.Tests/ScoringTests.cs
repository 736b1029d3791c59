using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>A trajectory with an id that a PredictionEngine copies through.</summary>
public sealed class IdentifiedRow
{
    public int Id { get; set; }

    [VectorType(Synthetic.Length)]
    public float[] Trajectory { get; set; } = new float[Synthetic.Length];
}

public sealed class IdentifiedReward
{
    public int Id { get; set; }

    public float Reward { get; set; }
}

[Collection(TrainedCollection.Name)]
public class ScoringTests(TrainedModels models, ITestOutputHelper output)
{
    private static IDataView Test(MLContext ml, int perKind = 50)
        => ml.Data.LoadFromEnumerable(Synthetic.Rows(perKind, expert: false, seed: 10).Concat(Synthetic.Rows(perKind, expert: true, seed: 11)));

    [Fact]
    public void DiffusionModel_FitsOnACsvThroughTextLoader_AndScoresDenoisingError()
    {
        using var dir = new TempFolder();
        string csv = Path.Combine(dir.Path, "trajectories.csv");
        File.WriteAllLines(csv, Synthetic.Rows(120, expert: true, seed: 4)
            .Select(r => string.Join(",", r.Trajectory.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))));
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromTextFile(csv, new[] { new TextLoader.Column("Trajectory", DataKind.Single, 0, Synthetic.Length - 1) }, separatorChar: ',');
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, Synthetic.Length), data.Schema["Trajectory"].Type);

        using var model = ml.RewardExtraction().DiffusionModel(Synthetic.DiffusionOptions(steps: 20)).Fit(data);
        Assert.Equal(Synthetic.Shape, model.Shape);
        var scored = model.Transform(data);
        Assert.Equal(NumberDataViewType.Single, scored.Schema["DenoisingError"].Type);
        var errors = scored.GetColumn<float>("DenoisingError").ToArray();
        Assert.Equal(120, errors.Length);
        Assert.All(errors, e => Assert.True(float.IsFinite(e) && e >= 0));
    }

    [Fact]
    public void DenoisingError_IsLowUnderTheModelOfTheRowsOwnBehaviour()
    {
        var test = Test(models.Ml);
        var byBase = models.Base.Transform(test).GetColumn<float>("DenoisingError").ToArray();
        var byExpert = models.Expert.Transform(test).GetColumn<float>("DenoisingError").ToArray();
        output.WriteLine($"base model: {byBase.Take(50).Average():G4} on base rows, {byBase.Skip(50).Average():G4} on expert rows");
        output.WriteLine($"expert model: {byExpert.Take(50).Average():G4} on base rows, {byExpert.Skip(50).Average():G4} on expert rows");
        Assert.True(byExpert.Skip(50).Average() < byExpert.Take(50).Average());
        Assert.True(byExpert.Skip(50).Average() < byBase.Skip(50).Average());
    }

    [Fact]
    public void Reward_RanksExpertTrajectoriesAboveBaseOnes()
    {
        var rewards = models.Reward.Transform(Test(models.Ml)).GetColumn<float>("Reward").ToArray();
        var baseRewards = rewards.Take(50).ToArray();
        var expertRewards = rewards.Skip(50).ToArray();
        double auc = baseRewards.Sum(b => expertRewards.Count(e => e > b)) / (50.0 * 50.0);
        output.WriteLine($"mean reward: base {baseRewards.Average():G4}, expert {expertRewards.Average():G4}; AUC {auc:F3}");
        // A per-state reward sees where the points are, not how they move: a random walk near the goal looks expert-like.
        Assert.True(auc > 0.85, $"AUC {auc}");
    }

    [Fact]
    public void Transform_IsLazy_ReadsOneBatchAhead_AndRunsOneForwardPerBatch()
    {
        var ml = models.Ml;
        var counting = new CountingDataView(ml.Data.LoadFromEnumerable(Synthetic.Rows(150, expert: false, seed: 12)));
        var reward = models.Reward;   // ScoringBatchSize 64
        long passes = reward.ForwardPasses;

        var scored = reward.Transform(counting);
        Assert.Equal(0, counting.CursorsOpened);
        Assert.Equal(150, scored.GetRowCount());

        var column = scored.Schema["Reward"];
        using (var cursor = scored.GetRowCursor(new[] { column }))
        {
            var getter = cursor.GetGetter<float>(column);
            Assert.True(cursor.MoveNext());
            // The pass-through cursor has read row 0, the read-ahead cursor one batch of 64 rows.
            Assert.Equal(1 + 64, counting.RowsRead);
            Assert.Equal(passes + 1, reward.ForwardPasses);
            float value = 0;
            for (int row = 1; row < 64; row++)
            {
                Assert.True(cursor.MoveNext());
                getter(ref value);
            }
            Assert.Equal(passes + 1, reward.ForwardPasses);
            Assert.True(cursor.MoveNext());   // row 64 starts the second batch
            Assert.Equal(passes + 2, reward.ForwardPasses);
            while (cursor.MoveNext())
                getter(ref value);
        }
        Assert.Equal(passes + 3, reward.ForwardPasses);   // 64 + 64 + 22
        Assert.Equal(2 * 150, counting.RowsRead);

        // A cursor that does not ask for the reward scores nothing and reads the input once.
        var trajectory = scored.Schema["Trajectory"];
        using (var cursor = scored.GetRowCursor(new[] { trajectory }))
        {
            Assert.False(cursor.IsColumnActive(column));
            while (cursor.MoveNext()) { }
        }
        Assert.Equal(passes + 3, reward.ForwardPasses);
        Assert.Equal(3 * 150, counting.RowsRead);
    }

    [Fact]
    public void PredictionEngine_ScoresRowByRow_LikeTransform()
    {
        var ml = models.Ml;
        var rows = Synthetic.Mixed(40, seed: 13).Select((r, i) => new IdentifiedRow { Id = 100 + i, Trajectory = r.Trajectory }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var rewards = models.Reward.Transform(data).GetColumn<float>("Reward").ToArray();
        var errors = models.Base.Transform(data).GetColumn<float>("DenoisingError").ToArray();

        // The output class also asks for a pass-through column (Id) next to the score.
        using var rewardEngine = ml.BorrowingEngine<IdentifiedRow, IdentifiedReward>(models.Reward);
        using var errorEngine = ml.BorrowingEngine<IdentifiedRow, DenoisingPrediction>(models.Base);
        var predicted = rows.Select(r => rewardEngine.Predict(r)).ToList();
        Assert.Equal(rows.Select(r => r.Id), predicted.Select(p => p.Id));
        // One row at a time versus 40 in one matrix product: equal up to float rounding.
        Stats.AssertClose(rewards, predicted.Select(p => p.Reward).ToArray());
        Stats.AssertClose(errors, rows.Select(r => errorEngine.Predict(r).DenoisingError).ToArray());

        // The same row twice in a row is scored again (a PredictionEngine reuses its row objects).
        Assert.Equal(rewardEngine.Predict(rows[3]).Reward, rewardEngine.Predict(rows[3]).Reward);
        Assert.NotEqual(rewardEngine.Predict(rows[3]).Reward, rewardEngine.Predict(rows[4]).Reward);
    }

    [Fact]
    public void Preview_ShowsTheInputAndTheScore()
    {
        var preview = models.Reward.Transform(Test(models.Ml)).Preview(maxRows: 5);
        Assert.Equal(new[] { "Trajectory", "Reward" }, preview.Schema.Select(c => c.Name));
        Assert.Equal(5, preview.RowView.Length);
        Assert.All(preview.RowView, row => Assert.True(float.IsFinite((float)row.Values[1].Value)));
        output.WriteLine(string.Join("\n", preview.RowView.Select(r => $"{r.Values[1].Key} = {r.Values[1].Value}")));
    }

    [Fact]
    public void SameSeeds_GiveIdenticalRewardsAndSamples_ThroughTheMLNetLayer()
    {
        (float[] errors, float[] rewards, float[] samples) Run()
        {
            var ml = new MLContext(seed: 5);
            var rx = ml.RewardExtraction();
            var baseData = ml.Data.LoadFromEnumerable(Synthetic.Rows(100, expert: false, seed: 1));
            var expertData = ml.Data.LoadFromEnumerable(Synthetic.Rows(100, expert: true, seed: 2));
            using var baseModel = rx.DiffusionModel(Synthetic.DiffusionOptions(seed: 3, steps: 15)).Fit(baseData);
            var expertOptions = Synthetic.DiffusionOptions(seed: 4, steps: 15);
            expertOptions.NormalizeLike = baseModel;
            using var expert = rx.DiffusionModel(expertOptions).Fit(expertData);
            using var reward = rx.RelativeReward(baseModel, expert, Synthetic.RewardOptions(seed: 5, steps: 15)).Fit(baseData);
            var seeds = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6).Select(i => new SeededRow { Seed = i }));
            using var sampler = rx.GuidedSampling(baseModel, reward, new GuidedSamplingEstimator.Options { GuidanceScale = 0.3, Seed = 9, BatchSize = 4 }).Fit(seeds);
            var test = ml.Data.LoadFromEnumerable(Synthetic.Mixed(30, seed: 6));
            return (baseModel.Transform(test).GetColumn<float>("DenoisingError").ToArray(),
                reward.Transform(test).GetColumn<float>("Reward").ToArray(),
                sampler.Transform(seeds).GetColumn<float[]>("Sample").SelectMany(s => s).ToArray());
        }

        var first = Run();
        var second = Run();
        Assert.Equal(first.errors, second.errors);
        Assert.Equal(first.rewards, second.rewards);
        Assert.Equal(first.samples, second.samples);
        Assert.Equal(6 * Synthetic.Length, first.samples.Length);
    }
}
