using Microsoft.ML;
using TorchSharp;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>The diffusion estimator's loss weights and training condition: the same model as the core trainer given the same
/// settings, bit for bit, and clear errors for sizes that do not fit the shape.</summary>
public class DiffusionTrainingOptionsTests
{
    private static float[] Parameters(DiffusionModelTransformer model) =>
        model.Model.Denoiser.parameters().SelectMany(p => p.detach().cpu().to(torch.ScalarType.Float32).flatten().data<float>().ToArray()).ToArray();

    [Fact]
    public void LossWeightsAndConditionMask_TrainExactlyWhatTheCoreTrainerTrains()
    {
        Synthetic.UseOneThread();
        var ml = new MLContext(1);
        var rows = Synthetic.Rows(64, expert: false, seed: 3);
        var data = ml.Data.LoadFromEnumerable(rows);
        var weights = DiffusionTrainingOptions.TrajectoryLossWeights(Synthetic.Horizon, Synthetic.Dimension, actionSize: 1, firstActionWeight: 10);
        var known = RewardTrainingOptions.FirstObservationCondition(Synthetic.Horizon, Synthetic.Dimension, actionSize: 1);
        var options = Synthetic.DiffusionOptions(seed: 5, steps: 20);
        options.LossWeights = weights;
        options.ConditionMask = known;
        using var estimated = ml.RewardExtraction().DiffusionModel(options).Fit(data);

        // The same model through the core: its options as the estimator builds them, the condition as a mask tensor.
        var modelOptions = new DiffusionModelOptions
        {
            Shape = Synthetic.Shape,
            DiffusionSteps = options.DiffusionSteps,
            Target = options.Prediction,
            ClipDenoised = options.ClipDenoised,
            Denoiser = new DenoiserOptions { Kind = options.Network, Dimension = options.NetworkDimension, HiddenWidth = options.HiddenWidth, HiddenLayers = options.HiddenLayers, TimeEmbeddingDimension = options.TimeEmbeddingDimension },
            Seed = 5,
        };
        var trainingOptions = options.ToTrainingOptions(5);
        Assert.Same(weights, trainingOptions.LossWeights);
        using var raw = torch.tensor(rows.SelectMany(r => r.Trajectory).ToArray(), Synthetic.Shape.BatchShape(rows.Count));
        var condition = new InpaintingCondition(torch.zeros(Synthetic.Shape.BatchShape(1)), torch.tensor(known).reshape(Synthetic.Shape.BatchShape(1)));
        using var core = new DiffusionTrainer(trainingOptions).Fit(modelOptions, raw, NormalizerKind.Limits, condition: condition);
        var expected = core.Denoiser.parameters().SelectMany(p => p.detach().flatten().data<float>().ToArray()).ToArray();
        Assert.Equal(expected, Parameters(estimated));

        // Uniform weights are the default: all ones trains the same model as none; other weights train another one.
        options.ConditionMask = null;
        options.LossWeights = null;
        using var plain = ml.RewardExtraction().DiffusionModel(options).Fit(data);
        options.LossWeights = Enumerable.Repeat(1f, Synthetic.Length).ToArray();
        using var ones = ml.RewardExtraction().DiffusionModel(options).Fit(data);
        Assert.Equal(Parameters(plain), Parameters(ones));
        Assert.NotEqual(Parameters(plain), Parameters(estimated));
    }

    [Fact]
    public void WeightsOrMasksOfTheWrongSize_AreRejectedWhenTheEstimatorIsBuilt()
    {
        var ml = new MLContext(1);
        var options = Synthetic.DiffusionOptions();
        options.LossWeights = new float[Synthetic.Length - 1];
        var error = Assert.ThrowsAny<ArgumentException>(() => ml.RewardExtraction().DiffusionModel(options));
        Assert.Contains("LossWeights", error.Message);
        Assert.Contains($"has {Synthetic.Length - 1} entries but a sample of {Synthetic.Shape} has {Synthetic.Length}", error.Message);
        options.LossWeights = null;
        options.ConditionMask = new bool[3];
        Assert.Contains("ConditionMask", Assert.ThrowsAny<ArgumentException>(() => ml.RewardExtraction().DiffusionModel(options)).Message);
        options.ConditionMask = null;
        options.LossWeights = Enumerable.Repeat(float.NaN, Synthetic.Length).ToArray();
        Assert.Contains("LossWeights", Assert.ThrowsAny<ArgumentException>(() => ml.RewardExtraction().DiffusionModel(options)).Message);
    }
}
