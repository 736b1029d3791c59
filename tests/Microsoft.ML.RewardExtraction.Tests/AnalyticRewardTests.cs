using System.Diagnostics;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>
/// The real trainer on the analytic Gaussian pair base = N(a, s^2 I), expert = N(b, s^2 I) (trajectories H = 4, D = 2,
/// cosine T = 10, no clamp), whose relative reward is known in closed form: grad R = k_t (b - a).
/// </summary>
public class AnalyticRewardTests
{
    private readonly ITestOutputHelper output;

    public AnalyticRewardTests(ITestOutputHelper output)
    {
        this.output = output;
        Analytic.UseOneThread();
    }

    private static readonly double[] A = { -0.5, 0.3 };
    private static readonly double[] B = { 0.5, -0.3 };
    private const double Std = 0.5;
    private const int Steps = 10;
    private const int TrainingSteps = 800;
    private static readonly SampleShape Shape = SampleShape.Trajectory(4, 2);

    internal static StateRewardOptions SmallStateReward => new() { HiddenSizes = new[] { 32, 32 }, TimeEmbeddingDimension = 16, TimeEmbeddingHiddenSize = 32 };

    internal static RewardTrainingOptions Training(int steps, long seed = 1) => new()
    {
        TrainingSteps = steps, BatchSize = 64, LearningRate = 2e-3, Seed = seed,
    };

    /// <summary>Half base, half expert samples, float32 [n, 4, 2].</summary>
    internal static Tensor Data(int n, long seed)
    {
        using var scope = NewDisposeScope();
        var gen = TorchRandom.Generator(seed);
        return cat(new[] { Analytic.Samples(Shape, A, Std, n / 2, gen), Analytic.Samples(Shape, B, Std, n - n / 2, gen) }, 0).MoveToOuterDisposeScope();
    }

    [Fact]
    public void LearnedRewardGradientMatchesTheClosedFormAndRanksExpertSamplesHigher()
    {
        using var scope = NewDisposeScope();
        var schedule = NoiseSchedule.Cosine(Steps);
        using var baseModel = Analytic.Model(Shape, schedule, A, Std);
        using var expertModel = Analytic.Model(Shape, schedule, B, Std);
        var data = Data(512, 11);
        var network = TorchRandom.Initialize(5, () => new StateReward(Shape, SmallStateReward));
        var clock = Stopwatch.StartNew();
        var losses = new List<TrainingProgress>();
        using var model = new RewardTrainer(Training(TrainingSteps)).Train(baseModel, expertModel, network, data, new Progress(losses));
        var trainTime = clock.Elapsed;
        network.Dispose();

        // (a) grad R at the base posterior mean vs mu_E - mu_B = k_t (b - a), on fresh samples and every t.
        var gen = TorchRandom.Generator(99);
        var x0 = cat(new[] { Analytic.Samples(Shape, A, Std, 200, gen), Analytic.Samples(Shape, B, Std, 200, gen) }, 0);
        var t = arange(400, dtype: ScalarType.Int64) % Steps;
        var xt = baseModel.Diffusion.QSample(x0, t, randn(x0.shape, generator: gen));
        var muB = baseModel.ReverseMean(xt, t);
        var target = expertModel.ReverseMean(xt, t) - muB;
        var g = model.Gradient(muB, t);
        double relative = ((g - target).norm() / target.norm()).ToDouble();
        var perStep = Enumerable.Range(0, Steps).Select(s =>
        {
            var m = t.eq(s);
            return ((g[m] - target[m]).norm() / target[m].norm()).ToDouble();
        }).ToArray();
        double cosine = (g * target).sum().ToDouble() / (g.norm().ToDouble() * target.norm().ToDouble());

        // (b) R(., 0) ranks N(b) samples above N(a) samples.
        var expertSamples = Analytic.Samples(Shape, B, Std, 300, gen);
        var baseSamples = Analytic.Samples(Shape, A, Std, 300, gen);
        var re = model.Score(expertSamples).data<float>().ToArray();
        var rb = model.Score(baseSamples).data<float>().ToArray();
        double pairwise = re.Sum(x => rb.Count(y => x > y)) / (double)(re.Length * rb.Length);
        // The best any reward can do here: the exact (linear) reward's ranking of the same samples.
        using var exact = new RelativeRewardModel(new AnalyticLinearReward(Shape, schedule, A, B, Std), schedule);
        var ee = exact.Score(expertSamples).data<float>().ToArray();
        var eb = exact.Score(baseSamples).data<float>().ToArray();
        double optimal = ee.Sum(x => eb.Count(y => x > y)) / (double)(ee.Length * eb.Length);

        output.WriteLine($"training: {TrainingSteps} steps in {trainTime.TotalSeconds:F2} s; first loss {losses[0].Loss:E3}, final average loss {losses[^1].AverageLoss:E3}");
        output.WriteLine($"(a) relative L2 error of grad R vs closed form over all t: {relative:F4}; cosine {cosine:F5}");
        output.WriteLine($"    per t: {string.Join(" ", perStep.Select(e => e.ToString("F3")))}");
        output.WriteLine($"(b) pairwise ranking accuracy at t=0: {pairwise:F4} (exact reward: {optimal:F4})");
        Assert.True(relative < 0.05, $"relative error {relative}");
        Assert.All(perStep, e => Assert.True(e < 0.15, $"per-step relative error {e}"));
        Assert.True(cosine > 0.99, $"cosine {cosine}");
        Assert.True(pairwise > 0.95, $"pairwise {pairwise}");
        Assert.True(losses[^1].AverageLoss < 0.05 * losses[0].Loss);
    }

    [Fact]
    public void GradientAtTheNoisySampleAlsoRecoversTheClosedForm()
    {
        // The image variant: the gradient is taken at x_t; the target is still mu_E - mu_B (here independent of x).
        using var scope = NewDisposeScope();
        var schedule = NoiseSchedule.Cosine(Steps);
        using var baseModel = Analytic.Model(Shape, schedule, A, Std);
        using var expertModel = Analytic.Model(Shape, schedule, B, Std);
        using var network = TorchRandom.Initialize(6, () => new StateReward(Shape, SmallStateReward));
        var options = Training(400);
        options.GradientAt = GradientLocation.Current;
        using var model = new RewardTrainer(options).Train(baseModel, expertModel, network, Data(512, 12));

        var gen = TorchRandom.Generator(98);
        var x0 = Data(400, 13);
        var t = arange(400, dtype: ScalarType.Int64) % Steps;
        var xt = baseModel.Diffusion.QSample(x0, t, randn(x0.shape, generator: gen));
        var target = expertModel.ReverseMean(xt, t) - baseModel.ReverseMean(xt, t);
        double relative = ((model.Gradient(xt, t) - target).norm() / target.norm()).ToDouble();
        output.WriteLine($"gradient at x_t, 400 steps: relative L2 error {relative:F4}");
        Assert.True(relative < 0.10, $"relative error {relative}");
    }

    private sealed class Progress(List<TrainingProgress> sink) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => sink.Add(value);
    }
}
