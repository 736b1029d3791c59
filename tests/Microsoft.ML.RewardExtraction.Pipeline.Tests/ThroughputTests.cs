using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>Measures (prints, asserts nothing about speed): reward scoring through Transform versus a PredictionEngine.</summary>
[Collection(TrainedCollection.Name)]
public class ThroughputTests(TrainedModels models, ITestOutputHelper output)
{
    [Fact]
    public void RewardScoring_Transform_VersusPredictionEngine_On10kRows()
    {
        const int count = 10_000;
        var ml = models.Ml;
        var rows = Synthetic.Mixed(count, seed: 50);
        var data = ml.Data.LoadFromEnumerable(rows);
        var results = new List<string>();

        double TransformRate(RelativeRewardTransformer reward, out float[] values)
        {
            var scored = reward.Transform(data);
            var column = scored.Schema["Reward"];
            values = new float[count];
            var clock = Stopwatch.StartNew();
            using (var cursor = scored.GetRowCursor(new[] { column }))
            {
                var getter = cursor.GetGetter<float>(column);
                int i = 0;
                while (cursor.MoveNext())
                    getter(ref values[i++]);
                Assert.Equal(count, i);
            }
            return count / clock.Elapsed.TotalSeconds;
        }

        TransformRate(models.Reward, out _);   // warm-up
        foreach (int batch in new[] { 64, 1024 })
        {
            // Same weights, another scoring batch size (not disposed: the model belongs to the shared fixture).
            var reward = batch == models.Reward.BatchSize ? models.Reward
                : new RelativeRewardTransformer(ml, models.Reward.Model, models.Reward.Normalizer, "Trajectory", "Reward", batch, InvalidRowHandling.Error, 0);
            double rate = TransformRate(reward, out var values);
            Assert.All(values, v => Assert.True(float.IsFinite(v)));
            results.Add($"Transform, batch {batch,5}: {rate,10:N0} rows/s");
        }

        using var engine = ml.BorrowingEngine<TrajectoryRow, RewardPrediction>(models.Reward);
        engine.Predict(rows[0]);
        var prediction = new RewardPrediction();
        var clock = Stopwatch.StartNew();
        foreach (var row in rows)
            engine.Predict(row, ref prediction);
        results.Add($"PredictionEngine:        {count / clock.Elapsed.TotalSeconds,10:N0} rows/s");

        output.WriteLine($"Reward scoring of {count:N0} rows of {Synthetic.Shape} (StateReward 32x32, torch threads {TorchSharp.torch.get_num_threads()}):");
        foreach (var line in results)
            output.WriteLine("  " + line);
    }
}
