using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

public class DiffusionTrainerTests
{
    public DiffusionTrainerTests() => DiffusionModelTests.UseOneThread();

    private static readonly SampleShape Tiny = DiffusionModelTests.Tiny;

    private sealed class Recorder : IProgress<TrainingProgress>
    {
        public List<TrainingProgress> Reports { get; } = new();
        public Action<TrainingProgress>? OnReport { get; set; }
        public void Report(TrainingProgress value)
        {
            Reports.Add(value);
            OnReport?.Invoke(value);
        }
    }

    /// <summary>n samples of the tiny shape whose entries are N(0.3, 0.1^2), in [-1, 1] already.</summary>
    private static Tensor GaussianData(int n, int seed = 1)
    {
        using var g = TorchRandom.Generator(seed);
        return randn(new long[] { n, 4, 2 }, generator: g).mul_(0.1).add_(0.3);
    }

    private static DiffusionTrainingOptions Quick(int steps, int seed = 1) => new()
    {
        TrainingSteps = steps,
        BatchSize = 16,
        LearningRate = 1e-3,
        EmaStartStep = 5,
        EmaUpdateEvery = 3,
        Seed = seed,
    };

    [Fact]
    public void TrainingLowersTheLossAndLearnsTheData()
    {
        using var scope = NewDisposeScope();
        var data = GaussianData(256);
        using var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions());
        var recorder = new Recorder();
        var options = Quick(300);
        options.BatchSize = 64;
        options.EmaStartStep = 2000;   // the run ends in the copy phase: the model gets the final online weights
        var result = new DiffusionTrainer(options).Train(model, data, recorder);
        Assert.Equal(300, result.CompletedSteps);
        Assert.Equal(300, recorder.Reports.Count);
        Assert.Equal(Enumerable.Range(1, 300), recorder.Reports.Select(r => r.Step));
        double first = recorder.Reports.Take(30).Average(r => r.Loss);
        double last = recorder.Reports.TakeLast(30).Average(r => r.Loss);
        Assert.True(last < 0.3 * first, $"loss went from {first} to {last}");
        // Samples of the trained model have roughly the data's mean (0.3) and spread (0.1).
        var samples = model.Sample(512, 3);
        double mean = samples.mean().item<float>(), std = samples.std().item<float>();
        Assert.True(Math.Abs(mean - 0.3) < 0.1, $"sample mean {mean}");
        Assert.True(std < 0.3, $"sample std {std}");
    }

    [Fact]
    public void TrajectoryLossWeightsFollowDiffuser()
    {
        // H = 3 steps of [2 actions, 1 observation], discount 0.5, first action weight 10.
        var weights = DiffusionTrainingOptions.TrajectoryLossWeights(3, 3, 2, 10, 0.5);
        Assert.Equal(new[] { 10f, 10f, 1f, 0.5f, 0.5f, 0.5f, 0.25f, 0.25f, 0.25f }, weights);
        Assert.Throws<ArgumentOutOfRangeException>(() => DiffusionTrainingOptions.TrajectoryLossWeights(3, 3, 4, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DiffusionTrainingOptions { LossWeights = [1f, float.NaN] }.Validate());
    }

    [Fact]
    public void LossWeightsWeighEachSquaredError()
    {
        using var scope = NewDisposeScope();
        var data = GaussianData(32);
        using var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions());
        var weights = DiffusionTrainingOptions.TrajectoryLossWeights(4, 2, 1, 10, 0.5);
        var options = Quick(1);
        options.LossWeights = weights;

        // The first step's loss by hand, with the trainer's draws (indices, steps, noise) and the untrained network.
        using var generator = TorchRandom.Generator(options.Seed);
        var index = randint(0, 32, new long[] { options.BatchSize }, ScalarType.Int64, generator: generator);
        var t = randint(0, model.Diffusion.Steps, new long[] { options.BatchSize }, ScalarType.Int64, generator: generator);
        var noise = randn(new long[] { options.BatchSize, 4, 2 }, generator: generator);
        var start = data.index_select(0, index);
        double expected;
        using (no_grad())
        {
            var error = model.Denoiser.call(model.Diffusion.QSample(start, t, noise), t).sub(start).square().to(ScalarType.Float64);
            expected = error.mul(tensor(weights).reshape(1, 4, 2).to(ScalarType.Float64)).mean().item<double>();
        }

        var recorder = new Recorder();
        new DiffusionTrainer(options).Train(model, data, recorder);
        Assert.Equal(expected, recorder.Reports[0].Loss, 5);

        using var other = DiffusionModel.Create(DiffusionModelTests.TinyOptions());
        options.LossWeights = [1f, 2f];
        var error2 = Assert.Throws<ArgumentException>(() => new DiffusionTrainer(options).Train(other, data));
        Assert.Contains("LossWeights has 2 entries but a sample of shape", error2.Message);
    }

    [Theory]
    [InlineData(DenoiserKind.Mlp)]
    [InlineData(DenoiserKind.TemporalUNet)]
    public void TrainingIsDeterministicForASeed(DenoiserKind kind)
    {
        using var scope = NewDisposeScope();
        var data = GaussianData(64);
        float[] Run(int seed, out float[] samples, out double[] losses)
        {
            using var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions(kind: kind));
            var recorder = new Recorder();
            // 10 steps are enough to pass the EMA start (5) and blend twice (steps 6 and 9).
            new DiffusionTrainer(Quick(kind == DenoiserKind.Mlp ? 20 : 10, seed)).Train(model, data, recorder);
            samples = model.Sample(4, 9).data<float>().ToArray();
            losses = recorder.Reports.Select(r => r.Loss).ToArray();
            return DiffusionModelTests.Weights(model.Denoiser);
        }
        var a = Run(1, out var sa, out var la);
        var b = Run(1, out var sb, out var lb);
        var c = Run(2, out _, out _);
        Assert.Equal(a, b);
        Assert.Equal(sa, sb);
        Assert.Equal(la, lb);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void ResumingFromACheckpointContinuesExactly()
    {
        using var scope = NewDisposeScope();
        var data = GaussianData(64);
        var directory = Directory.CreateTempSubdirectory("mlreward-ckpt-");
        try
        {
            // Straight: 20 steps. EMA starts blending at step 5 and updates every 3 steps, so the split at 10 falls
            // in the blending phase; clipping is on so the resumed Adam state matters too.
            var straight = Quick(20);
            straight.GradientClipNorm = 0.5;
            var recorderStraight = new Recorder();
            using var a = DiffusionModel.Create(DiffusionModelTests.TinyOptions());
            new DiffusionTrainer(straight).Train(a, data, recorderStraight);

            // Split: 10 steps with a checkpoint, then a fresh model resumes to 20.
            string path = Path.Combine(directory.FullName, "run.ckpt");
            var first = Quick(10);
            first.GradientClipNorm = 0.5;
            first.CheckpointPath = path;
            first.CheckpointEvery = 4;   // written at 4, 8 and at the end (10)
            var recorderSplit = new Recorder();
            using (var b0 = DiffusionModel.Create(DiffusionModelTests.TinyOptions()))
                new DiffusionTrainer(first).Train(b0, data, recorderSplit);
            Assert.True(File.Exists(path));
            var second = Quick(20);
            second.GradientClipNorm = 0.5;
            second.CheckpointPath = path;
            second.CheckpointEvery = 4;
            using var b = DiffusionModel.Create(DiffusionModelTests.TinyOptions(seed: 99));   // weights come from the checkpoint
            var result = new DiffusionTrainer(second).Train(b, data, recorderSplit);
            Assert.Equal(10, result.ResumedFromStep);
            Assert.Equal(20, result.CompletedSteps);

            Assert.Equal(DiffusionModelTests.Weights(a.Denoiser), DiffusionModelTests.Weights(b.Denoiser));
            Assert.Equal(recorderStraight.Reports.Select(r => r.Loss), recorderSplit.Reports.Select(r => r.Loss));
            Assert.Equal(recorderStraight.Reports.Select(r => r.AverageLoss), recorderSplit.Reports.Select(r => r.AverageLoss));

            // A checkpoint of another run is refused, naming both runs.
            var other = Quick(20);
            other.CheckpointPath = path;
            other.BatchSize = 8;
            using var c = DiffusionModel.Create(DiffusionModelTests.TinyOptions());
            var e = Assert.Throws<InvalidDataException>(() => new DiffusionTrainer(other).Train(c, data));
            Assert.Contains("batch=8", e.Message);
            Assert.Contains("batch=16", e.Message);
        }
        finally
        {
            directory.Delete(true);
        }
    }

    [Fact]
    public void CancellationStopsAndCheckpoints()
    {
        using var scope = NewDisposeScope();
        var data = GaussianData(32);
        var directory = Directory.CreateTempSubdirectory("mlreward-cancel-");
        try
        {
            string path = Path.Combine(directory.FullName, "run.ckpt");
            using var cts = new CancellationTokenSource();
            var recorder = new Recorder { OnReport = p => { if (p.Step == 5) cts.Cancel(); } };
            var options = Quick(50);
            options.CheckpointPath = path;
            using var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions());
            Assert.ThrowsAny<OperationCanceledException>(() => new DiffusionTrainer(options).Train(model, data, recorder, cts.Token));
            Assert.Equal(5, recorder.Reports.Count);
            // Resuming picks up at step 5.
            using var resumed = DiffusionModel.Create(DiffusionModelTests.TinyOptions());
            var result = new DiffusionTrainer(options).Train(resumed, data);
            Assert.Equal(5, result.ResumedFromStep);
            Assert.Equal(50, result.CompletedSteps);
        }
        finally
        {
            directory.Delete(true);
        }
    }

    [Fact]
    public void BadDataIsRejectedWithTheSampleIndex()
    {
        using var scope = NewDisposeScope();
        using var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions());
        var trainer = new DiffusionTrainer(Quick(2));
        var e = Assert.Throws<ArgumentException>(() => trainer.Train(model, zeros(8, 4, 3)));
        Assert.Contains("[B, 4, 2]", e.Message);
        Assert.Throws<ArgumentException>(() => trainer.Train(model, zeros(0, 4, 2)));
        var data = GaussianData(8);
        data[3, 1, 0] = tensor(float.NaN);
        e = Assert.Throws<ArgumentException>(() => trainer.Train(model, data));
        Assert.Contains("Sample 3", e.Message);
        Assert.Contains("NaN", e.Message);
        data[3, 1, 0] = tensor(0f);
        data[6, 0, 1] = tensor(float.NegativeInfinity);
        e = Assert.Throws<ArgumentException>(() => trainer.Train(model, data));
        Assert.Contains("Sample 6", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DiffusionTrainer(new DiffusionTrainingOptions { BatchSize = 0 }));
    }

    [Fact]
    public void FitNormalisesTrainsAndConditions()
    {
        using var scope = NewDisposeScope();
        var raw = GaussianData(64).mul_(50).add_(3);   // far outside [-1, 1]: the limits normaliser maps it in
        var mask = zeros(new long[] { 4, 2 }, ScalarType.Bool);
        mask[0] = tensor(true);
        var template = new InpaintingCondition(zeros(4, 2), mask);
        using var model = new DiffusionTrainer(Quick(10)).Fit(DiffusionModelTests.TinyOptions(), raw, NormalizerKind.Limits, condition: template);
        Assert.IsType<LimitsNormalizer>(model.Normalizer);
        var normalized = model.Normalizer.Normalize(raw);
        Assert.True(normalized.min().item<float>() >= -1f && normalized.max().item<float>() <= 1f + 1e-6f);
        Assert.Throws<ArgumentException>(() => new DiffusionTrainer(Quick(1)).Train(model, normalized, condition: new InpaintingCondition(zeros(3, 2), zeros(3, 2))));
    }
}
