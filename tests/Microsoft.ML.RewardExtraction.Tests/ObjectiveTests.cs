using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>The relative reward objective: exact value on the analytic Gaussians, double backward against finite differences, validation.</summary>
public class ObjectiveTests
{
    private readonly ITestOutputHelper output;

    public ObjectiveTests(ITestOutputHelper output)
    {
        this.output = output;
        Analytic.UseOneThread();
    }

    private static readonly double[] A = { -0.5, 0.3 };
    private static readonly double[] B = { 0.5, -0.3 };
    private const double Std = 0.5;

    [Fact]
    public void ExactRelativeRewardHasZeroLossAndOthersDoNot()
    {
        using var scope = NewDisposeScope();
        var shape = SampleShape.Trajectory(4, 2);
        var schedule = NoiseSchedule.Cosine(12);
        using var baseModel = Analytic.Model(shape, schedule, A, Std);
        using var expertModel = Analytic.Model(shape, schedule, B, Std);
        using var exact = new AnalyticLinearReward(shape, schedule, A, B, Std);
        var gen = TorchRandom.Generator(1);
        var x0 = Analytic.Samples(shape, A, Std, 64, gen);
        var t = randint(0, 12, new long[] { 64 }, dtype: ScalarType.Int64, generator: gen);
        var eps = randn(x0.shape, generator: gen);

        foreach (var location in new[] { GradientLocation.BaseMean, GradientLocation.Current })
        {
            var objective = new RelativeRewardObjective(baseModel, expertModel, exact, location);
            var loss = objective.Loss(x0, t, eps).ToDouble();
            // Scale: the mean squared target.
            var xt = baseModel.Diffusion.QSample(x0, t, eps);
            var targetPower = (expertModel.ReverseMean(xt, t) - baseModel.ReverseMean(xt, t)).square().mean().ToDouble();
            output.WriteLine($"{location}: exact-reward loss {loss:E3}, mean squared target {targetPower:E3}");
            Assert.True(loss < 1e-9 * Math.Max(targetPower, 1e-12) + 1e-14, $"loss {loss}");
            Assert.True(targetPower > 1e-4);

            // The zero reward's loss is exactly the mean squared target.
            using var zero = new ScaledReward(shape, exact, 0.0);
            var zeroLoss = new RelativeRewardObjective(baseModel, expertModel, zero, location).Loss(x0, t, eps).ToDouble();
            Assert.Equal(targetPower, zeroLoss, 1e-7);
            // Twice the exact reward: g - target = target, same loss again.
            using var twice = new ScaledReward(shape, exact, 2.0);
            var twiceLoss = new RelativeRewardObjective(baseModel, expertModel, twice, location).Loss(x0, t, eps).ToDouble();
            Assert.Equal(targetPower, twiceLoss, 1e-7);
            // The magnitude penalty adds lambda * mean(r^2).
            var r = exact.call(location == GradientLocation.BaseMean ? baseModel.ReverseMean(xt, t) : xt, t);
            var penalised = new RelativeRewardObjective(baseModel, expertModel, exact, location, magnitudePenalty: 0.25).Loss(x0, t, eps).ToDouble();
            Assert.Equal(0.25 * r.square().mean().ToDouble(), penalised, 1e-7);
        }
    }

    [Fact]
    public void LossMatchesTheFormulaForAGeneralNetwork()
    {
        using var scope = NewDisposeScope();
        var shape = SampleShape.Trajectory(4, 2);
        var schedule = NoiseSchedule.Cosine(10);
        using var baseModel = Analytic.Model(shape, schedule, A, Std);
        using var expertModel = Analytic.Model(shape, schedule, B, Std);
        using var net = TorchRandom.Initialize(2, () => new StateReward(shape, new StateRewardOptions { HiddenSizes = new[] { 8, 8 }, TimeEmbeddingDimension = 8, TimeEmbeddingHiddenSize = 8 }));
        var gen = TorchRandom.Generator(2);
        var x0 = Analytic.Samples(shape, B, Std, 16, gen);
        var t = randint(0, 10, new long[] { 16 }, dtype: ScalarType.Int64, generator: gen);
        var eps = randn(x0.shape, generator: gen);
        var loss = new RelativeRewardObjective(baseModel, expertModel, net).Loss(x0, t, eps).ToDouble();

        // By hand, with the closed-form target k_t (b - a).
        var xt = sqrt(tensor(schedule.AlphasCumprod).to_type(ScalarType.Float32)[t]).view(-1, 1, 1) * x0
               + sqrt(1 - tensor(schedule.AlphasCumprod).to_type(ScalarType.Float32)[t]).view(-1, 1, 1) * eps;
        var muB = baseModel.ReverseMean(xt, t).detach().requires_grad_(true);
        var g = torch.autograd.grad(new[] { net.call(muB, t).sum() }, new[] { muB })[0];
        var k = tensor(Analytic.Slopes(schedule, Std)).to_type(ScalarType.Float32)[t].view(-1, 1, 1);
        var target = k * (Analytic.Broadcast(shape, B) - Analytic.Broadcast(shape, A)).to_type(ScalarType.Float32).unsqueeze(0);
        var expected = (g - target).square().mean().ToDouble();
        output.WriteLine($"loss {loss:E6} by hand {expected:E6}");
        Assert.Equal(expected, loss, expected * 1e-4);
    }

    [Theory]
    [InlineData(GradientLocation.BaseMean, 0.0)]
    [InlineData(GradientLocation.Current, 0.3)]
    public void ParameterGradientMatchesCentralFiniteDifferences(GradientLocation location, double penalty)
    {
        using var scope = NewDisposeScope();
        var shape = SampleShape.Trajectory(3, 2);
        var schedule = NoiseSchedule.Cosine(8);
        using var baseModel = Analytic.Model(shape, schedule, A, Std);
        using var expertModel = Analytic.Model(shape, schedule, B, Std);
        using var net = TorchRandom.Initialize(3, () => new StateReward(shape, new StateRewardOptions
        {
            Window = 2, HiddenSizes = new[] { 5, 4 }, TimeEmbeddingDimension = 4, TimeEmbeddingHiddenSize = 3,
        }));
        net.to(ScalarType.Float64);
        var gen = TorchRandom.Generator(3);
        var x0 = Analytic.Samples(shape, B, Std, 6, gen).to_type(ScalarType.Float64);
        var t = tensor(new long[] { 0, 1, 3, 5, 6, 7 });
        var eps = randn(x0.shape, dtype: ScalarType.Float64, generator: gen);
        var objective = new RelativeRewardObjective(baseModel, expertModel, net, location, penalty);

        var parameters = net.parameters().ToArray();
        foreach (var p in parameters)
            p.grad?.zero_();
        objective.Loss(x0, t, eps).backward();
        var analytic = parameters.Select(p => p.grad is null ? new double[p.numel()] : p.grad.data<double>().ToArray()).ToArray();

        const double h = 1e-6;
        double worst = 0, largest = 0;
        int count = 0, nullGradients = parameters.Count(p => p.grad is null);
        for (int i = 0; i < parameters.Length; i++)
        {
            var p = parameters[i];
            var values = p.data<double>().ToArray();
            for (int j = 0; j < values.Length; j++)
            {
                double original = values[j];
                double Evaluate(double v)
                {
                    values[j] = v;
                    using (no_grad())
                        p.copy_(tensor(values).view(p.shape));
                    using var inner = NewDisposeScope();
                    return objective.Loss(x0, t, eps).ToDouble();
                }
                double fd = (Evaluate(original + h) - Evaluate(original - h)) / (2 * h);
                Evaluate(original);
                worst = Math.Max(worst, Math.Abs(fd - analytic[i][j]));
                largest = Math.Max(largest, Math.Abs(fd));
                count++;
            }
        }
        output.WriteLine($"{location}, lambda {penalty}: {count} parameters ({nullGradients} null-grad tensors), max |analytic - FD| = {worst:E2}, max |FD| = {largest:E2}");
        Assert.True(largest > 1e-4);
        Assert.True(worst < 1e-7 + 1e-6 * largest, $"max abs error {worst}");
    }

    [Fact]
    public void SkippingParameterGradientsInTheInputGradientPass_LeavesTheParameterGradientsAsTheyWere()
    {
        using var scope = NewDisposeScope();
        // The trajectory reward's convolutions are TemporalConvolution's custom functions, which skip their weight and bias
        // gradients inside LossAt's d r / d u pass. The final parameter gradients must be those of the same computation with
        // every gradient computed (float64, so a real difference cannot hide in rounding).
        var shape = SampleShape.Trajectory(8, 3);
        var schedule = NoiseSchedule.Cosine(6);
        using var baseModel = Analytic.Model(SampleShape.Trajectory(8, 3), schedule, new[] { -0.5, 0.3, 0.1 }, Std);
        using var expertModel = Analytic.Model(SampleShape.Trajectory(8, 3), schedule, new[] { 0.5, -0.3, 0.2 }, Std);
        using var net = TorchRandom.Initialize(4, () => new TrajectoryReward(shape, new TrajectoryRewardOptions { Dimension = 8, DimensionMultipliers = new[] { 1, 2 } }));
        net.to(ScalarType.Float64);
        var gen = TorchRandom.Generator(4);
        var at = randn(new long[] { 5, 8, 3 }, dtype: ScalarType.Float64, generator: gen);
        var target = randn(new long[] { 5, 8, 3 }, dtype: ScalarType.Float64, generator: gen).mul_(0.1);
        var t = tensor(new long[] { 0, 1, 2, 4, 5 });
        var parameters = net.parameters().ToArray();

        double[][] Gradients(Func<Tensor> loss)
        {
            foreach (var p in parameters)
                p.grad?.zero_();
            loss().backward();
            return parameters.Select(p => p.grad is null ? new double[p.numel()] : p.grad.data<double>().ToArray()).ToArray();
        }
        var skipped = Gradients(() => new RelativeRewardObjective(baseModel, expertModel, net).LossAt(at.clone(), t, target));
        var full = Gradients(() =>
        {
            var u = at.clone().requires_grad_(true);
            var g = torch.autograd.grad(new[] { net.call(u, t).sum() }, new[] { u }, retain_graph: true, create_graph: true)[0];
            return nn.functional.mse_loss(g, target);
        });
        double worst = skipped.Zip(full).SelectMany(p => p.First.Zip(p.Second, (a, b) => Math.Abs(a - b))).Max();
        double largest = full.SelectMany(g => g).Max(Math.Abs);
        output.WriteLine($"{parameters.Length} parameter tensors, max |skipped - full| = {worst:E2}, max |gradient| = {largest:E2}");
        Assert.True(largest > 1e-6);
        Assert.True(worst <= 1e-12 * Math.Max(1, largest), $"max abs difference {worst}");
    }

    [Fact]
    public void IncompatibleModelsAndRewardsAreRejected()
    {
        var shape = SampleShape.Trajectory(4, 2);
        using var baseModel = Analytic.Model(shape, NoiseSchedule.Cosine(10), A, Std);
        using var otherShape = Analytic.Model(SampleShape.Trajectory(5, 2), NoiseSchedule.Cosine(10), new[] { 0.0, 0.0 }, Std);
        using var otherSteps = Analytic.Model(shape, NoiseSchedule.Cosine(12), B, Std);
        using var otherKind = Analytic.Model(shape, NoiseSchedule.Linear(10), B, Std);
        using var reward = new StateReward(shape, new StateRewardOptions { HiddenSizes = new[] { 4 } });
        using var wrongReward = new StateReward(SampleShape.Trajectory(4, 3), new StateRewardOptions { HiddenSizes = new[] { 4 } });

        var e = Assert.Throws<ArgumentException>(() => new RelativeRewardObjective(baseModel, otherShape, reward));
        Assert.Contains("same sample shape", e.Message);
        Assert.Contains("H=5", e.Message);
        e = Assert.Throws<ArgumentException>(() => new RelativeRewardObjective(baseModel, otherSteps, reward));
        Assert.Contains("noise schedule", e.Message);
        Assert.Contains("T=12", e.Message);
        e = Assert.Throws<ArgumentException>(() => new RelativeRewardObjective(baseModel, otherKind, reward));
        Assert.Contains("Linear", e.Message);
        e = Assert.Throws<ArgumentException>(() => new RelativeRewardObjective(baseModel, baseModel, wrongReward));
        Assert.Contains("reward network is built for Trajectory(H=4, D=3)", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new RelativeRewardObjective(baseModel, baseModel, reward, magnitudePenalty: -1));

        var trainer = new RewardTrainer(new RewardTrainingOptions { TrainingSteps = 1 });
        using var data = zeros(8, 4, 2);
        Assert.Throws<ArgumentException>(() => trainer.Train(baseModel, otherShape, reward, data));
        Assert.Throws<ArgumentException>(() => trainer.Train(baseModel, otherSteps, reward, data));
        Assert.Throws<ArgumentException>(() => trainer.Train(baseModel, baseModel, wrongReward, data));
    }

    /// <summary>c * R(x, t) of another reward.</summary>
    private sealed class ScaledReward : RewardNetwork
    {
        private readonly RewardNetwork _inner;
        private readonly double _scale;

        public ScaledReward(SampleShape shape, RewardNetwork inner, double scale) : base(nameof(ScaledReward), shape)
        {
            _inner = inner;
            _scale = scale;
        }

        public override Tensor forward(Tensor x, Tensor t) => _inner.call(x, t) * _scale;
    }
}
