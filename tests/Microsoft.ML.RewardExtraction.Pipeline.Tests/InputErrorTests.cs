using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

public sealed class WrongNameRow
{
    [VectorType(Synthetic.Length)]
    public float[] Path { get; set; } = new float[Synthetic.Length];
}

public sealed class DoubleRow
{
    [VectorType(Synthetic.Length)]
    public double[] Trajectory { get; set; } = new double[Synthetic.Length];
}

public sealed class TooShortRow
{
    [VectorType(12)]
    public float[] Trajectory { get; set; } = new float[12];
}

/// <summary>No VectorType attribute: a vector of unknown size.</summary>
public sealed class UnsizedRow
{
    public float[] Trajectory { get; set; } = new float[Synthetic.Length];
}

[Collection(TrainedCollection.Name)]
public class InputErrorTests(TrainedModels models, ITestOutputHelper output)
{
    private const string Expected = "expected Vector<Single, 16> (Trajectory(H=8, D=2))";

    /// <summary>Fit of a diffusion model, Fit of a reward, Transform of a reward (lazily: at GetOutputSchema), and
    /// a pipeline's schema propagation all fail with <paramref name="message"/>.</summary>
    private void AllStagesFail(IDataView data, string message)
    {
        var rx = models.Ml.RewardExtraction();
        var errors = new List<Exception>
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => rx.DiffusionModel(Synthetic.DiffusionOptions(steps: 1)).Fit(data)),
            Assert.Throws<ArgumentOutOfRangeException>(() => rx.RelativeReward(models.Base, models.Expert, Synthetic.RewardOptions(steps: 1)).Fit(data)),
            Assert.Throws<ArgumentOutOfRangeException>(() => models.Reward.Transform(data)),
            Assert.Throws<ArgumentOutOfRangeException>(() => models.Base.GetOutputSchema(data.Schema)),
        };
        foreach (var e in errors)
        {
            output.WriteLine(e.Message);
            Assert.Contains(message, e.Message);
        }
    }

    [Fact]
    public void MissingColumn_IsNamed_WithWhatWasExpected_AndWhatTheInputHas()
    {
        var data = models.Ml.Data.LoadFromEnumerable(new[] { new WrongNameRow() });
        AllStagesFail(data, $"Could not find input column 'Trajectory': {Expected}. The input has columns 'Path' (Vector<Single, 16>).");
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => models.Ml.BorrowingEngine<WrongNameRow, RewardPrediction>(models.Reward));
        Assert.Contains("Could not find input column 'Trajectory'", ex.Message);
        var pipeline = models.Ml.RewardExtraction().DiffusionModel(Synthetic.DiffusionOptions());
        var schema = Assert.Throws<ArgumentOutOfRangeException>(() => pipeline.GetOutputSchema(SchemaShape.Create(data.Schema)));
        Assert.Contains($"Could not find input column 'Trajectory': {Expected}. The input has columns 'Path'", schema.Message);
    }

    [Fact]
    public void WrongItemType_IsNamed()
    {
        var data = models.Ml.Data.LoadFromEnumerable(new[] { new DoubleRow() });
        AllStagesFail(data, $"Schema mismatch for input column 'Trajectory': {Expected}, got Vector<Double, 16>.");
    }

    [Fact]
    public void WrongOrUnknownVectorSize_IsNamed()
    {
        AllStagesFail(models.Ml.Data.LoadFromEnumerable(new[] { new TooShortRow() }),
            $"Schema mismatch for input column 'Trajectory': {Expected}, got Vector<Single, 12>.");
        AllStagesFail(models.Ml.Data.LoadFromEnumerable(new[] { new UnsizedRow() }),
            $"Schema mismatch for input column 'Trajectory': {Expected}, got a vector of unknown size (Vector<Single>).");
        var schema = Assert.Throws<ArgumentOutOfRangeException>(() => models.Ml.RewardExtraction().DiffusionModel(Synthetic.DiffusionOptions())
            .GetOutputSchema(SchemaShape.Create(models.Ml.Data.LoadFromEnumerable(new[] { new UnsizedRow() }).Schema)));
        Assert.Contains("got a vector of unknown size (Vector<Single>)", schema.Message);
    }

    private static List<TrajectoryRow> WithBadRows(int count)
    {
        var rows = Synthetic.Mixed(count, seed: 30);
        rows[3].Trajectory[5] = float.NaN;
        rows[7].Trajectory[0] = float.PositiveInfinity;
        return rows;
    }

    [Fact]
    public void NaNOrInfinity_InFit_IsAnError_OrSkipped_ByOption()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        var data = ml.Data.LoadFromEnumerable(WithBadRows(40));
        var rx = ml.RewardExtraction();

        var ex = Assert.Throws<InvalidOperationException>(() => rx.DiffusionModel(Synthetic.DiffusionOptions(steps: 2)).Fit(data));
        output.WriteLine(ex.Message);
        Assert.Contains("Column 'Trajectory' holds NaN at row 3 (slot 5); expected finite values.", ex.Message);
        Assert.Contains("InvalidValues = Skip", ex.Message);
        var rewardError = Assert.Throws<InvalidOperationException>(() => rx.RelativeReward(models.Base, models.Expert, Synthetic.RewardOptions(steps: 2)).Fit(data));
        Assert.Contains("Column 'Trajectory' holds NaN at row 3 (slot 5)", rewardError.Message);

        var options = Synthetic.DiffusionOptions(steps: 2);
        options.InvalidValues = InvalidRowHandling.Skip;
        using var model = rx.DiffusionModel(options).Fit(data);
        Assert.Contains(log, l => l.Contains("Left 2 rows holding NaN or infinity in column 'Trajectory' out of training."));
        Assert.Contains(log, l => l.Contains("Training a diffusion model on 38 samples"));
        var rewardOptions = Synthetic.RewardOptions(steps: 2);
        rewardOptions.InvalidValues = InvalidRowHandling.Skip;
        using var reward = rx.RelativeReward(models.Base, models.Expert, rewardOptions).Fit(data);
        Assert.Contains(log, l => l.Contains("from 38 samples"));
    }

    [Fact]
    public void NaNOrInfinity_InTransform_IsAnError_OrANaNScore_ByOption()
    {
        var ml = models.Ml;
        var rows = WithBadRows(12);
        var data = ml.Data.LoadFromEnumerable(rows);

        // Lazy: the error comes when the row is read.
        var scored = models.Reward.Transform(data);
        var ex = Assert.Throws<InvalidOperationException>(() => scored.GetColumn<float>("Reward").ToArray());
        output.WriteLine(ex.Message);
        Assert.Contains("Column 'Trajectory' holds NaN at row 3 (slot 5); expected finite values.", ex.Message);
        Assert.Contains("InvalidValues = Skip to give them a NaN Reward", ex.Message);
        using var engine = ml.BorrowingEngine<TrajectoryRow, RewardPrediction>(models.Reward);
        var inf = Assert.Throws<InvalidOperationException>(() => engine.Predict(rows[7]));
        Assert.Contains("holds Infinity", inf.Message);
        Assert.Throws<InvalidOperationException>(() => models.Base.Transform(data).GetColumn<float>("DenoisingError").ToArray());

        // Skip: such rows score NaN, the others as usual.
        var options = Synthetic.RewardOptions(steps: 2);
        options.InvalidValues = InvalidRowHandling.Skip;
        using var tolerant = ml.RewardExtraction().RelativeReward(models.Base, models.Expert, options).Fit(models.MixedData);
        var rewards = tolerant.Transform(data).GetColumn<float>("Reward").ToArray();
        Assert.True(float.IsNaN(rewards[3]) && float.IsNaN(rewards[7]));
        Assert.Equal(10, rewards.Count(float.IsFinite));
        using var tolerantEngine = ml.BorrowingEngine<TrajectoryRow, RewardPrediction>(tolerant);
        Assert.True(float.IsNaN(tolerantEngine.Predict(rows[3]).Reward));
        Assert.Equal(rewards[4], tolerantEngine.Predict(rows[4]).Reward, 5);
    }

    [Fact]
    public void BaseAndExpert_WithDifferentShapesOrSpaces_AreRejected()
    {
        var ml = new MLContext(seed: 1);
        var rx = ml.RewardExtraction();
        var data = ml.Data.LoadFromEnumerable(Synthetic.Mixed(20, seed: 1).Select(r => new ShortRow { Trajectory = r.Trajectory[..8] }));
        var options = Synthetic.DiffusionOptions(steps: 1);
        options.Shape = SampleShape.Trajectory(4, 2);
        using var shortModel = rx.DiffusionModel(options).Fit(data);

        var ex = Assert.ThrowsAny<ArgumentException>(() => rx.RelativeReward(models.Base, shortModel, Synthetic.RewardOptions()));
        output.WriteLine(ex.Message);
        Assert.Contains("The base and expert models must have the same sample shape: base is Trajectory(H=8, D=2), expert is Trajectory(H=4, D=2).", ex.Message);

        // Same shape, but the expert fitted its own normaliser.
        using var ownSpace = rx.DiffusionModel(Synthetic.DiffusionOptions(steps: 1)).Fit(models.ExpertData);
        var space = Assert.ThrowsAny<ArgumentException>(() => rx.RelativeReward(models.Base, ownSpace, Synthetic.RewardOptions()));
        Assert.Contains("NormalizeLike", space.Message);
    }
}
