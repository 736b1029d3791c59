using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>Reward guidance on the analytic Gaussian base N(a, s^2) with the exact relative reward toward N(b, s^2).</summary>
public class GuidanceTests : IDisposable
{
    private static readonly double[] A = { -0.5, 0.3 };
    private static readonly double[] B = { 0.5, -0.3 };
    private const double Std = 0.5;
    private const int Steps = 10;
    private static readonly SampleShape Shape = SampleShape.Trajectory(4, 2);
    private readonly ITestOutputHelper _output;
    private readonly NoiseSchedule _schedule = NoiseSchedule.Cosine(Steps);
    private readonly DiffusionModel _base;
    private readonly RelativeRewardModel _exact;

    public GuidanceTests(ITestOutputHelper output)
    {
        _output = output;
        Analytic.UseOneThread();
        _base = Analytic.Model(Shape, _schedule, A, Std);
        _exact = new RelativeRewardModel(new AnalyticLinearReward(Shape, _schedule, A, B, Std), _schedule);
    }

    public void Dispose()
    {
        _base.Dispose();
        _exact.Dispose();
    }

    private Tensor Sample(GuidanceOptions options, RelativeRewardModel? reward, int count = 256, long seed = 3, InpaintingCondition? condition = null)
    {
        using var gen = TorchRandom.Generator(seed);
        return new GuidedSampler(options).Sample(_base, reward, count, gen, condition);
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().ToBoolean();

    [Fact]
    public void ScaleZeroIsTheUnguidedSamplerBitForBit()
    {
        using var scope = NewDisposeScope();
        var unguided = Sample(new GuidanceOptions(), null);
        using (var gen = TorchRandom.Generator(3))
            Assert.True(Same(unguided, _base.Sample(256, gen)));
        var zero = Sample(new GuidanceOptions { Scale = 0, GuideSteps = 3, ScaleByVariance = true }, _exact);
        var stopped = Sample(new GuidanceOptions { Scale = 5, StopGradientBelow = Steps }, _exact);
        Assert.True(Same(unguided, zero));
        Assert.True(Same(unguided, stopped));
        // The guided loop itself, with a reward whose gradient is exactly 0 (a = b), reproduces the base sampler.
        using var flat = new RelativeRewardModel(new AnalyticLinearReward(Shape, _schedule, A, A, Std), _schedule);
        Assert.True(Same(unguided, Sample(new GuidanceOptions { Scale = 1, GuideSteps = 2 }, flat)));
        // A trained (non-linear) network at scale 0 too.
        using var network = TorchRandom.Initialize(2, () => new StateReward(Shape, new StateRewardOptions { HiddenSizes = new[] { 8 } }));
        using var trained = new RelativeRewardModel(network, _schedule);
        Assert.True(Same(unguided, Sample(new GuidanceOptions { Scale = 0 }, trained)));
        Assert.False(Same(unguided, Sample(new GuidanceOptions { Scale = 0.5 }, trained)));
    }

    /// <summary>
    /// The sampler is linear-Gaussian here, so its output law is known exactly: per coordinate with base mean a_i and
    /// direction d_i = b_i - a_i, from m = 0, v = 1, for t = T-1..0: m += scale k_t d_i (the exact reward's gradient);
    /// mu = c1 x0hat + c2 x with x0hat = a + g_t (x - sqrt(abar_t) a) gives m = c1 a (1 - g_t sqrt(abar_t)) + (c1 g_t + c2) m,
    /// v = (c1 g_t + c2)^2 v + sigma_t^2 (sigma_0 = 0).
    /// </summary>
    private (double[] Mean, double Std) PredictedMoments(double scale)
    {
        var k = Analytic.Slopes(_schedule, Std);
        var mean = new double[2];
        double variance = 0;
        for (int i = 0; i < 2; i++)
        {
            double m = 0, v = 1;
            for (int t = Steps - 1; t >= 0; t--)
            {
                m += scale * k[t] * (B[i] - A[i]);
                double abar = _schedule.AlphasCumprod[t], root = Math.Sqrt(abar);
                double gain = root * Std * Std / (abar * Std * Std + 1 - abar);
                double c1 = _schedule.PosteriorMeanCoefficientStart[t], c2 = _schedule.PosteriorMeanCoefficientCurrent[t];
                m = c1 * A[i] * (1 - gain * root) + (c1 * gain + c2) * m;
                v = (c1 * gain + c2) * (c1 * gain + c2) * v + (t > 0 ? Math.Exp(_schedule.PosteriorLogVarianceClipped[t]) : 0);
            }
            mean[i] = m;
            variance = v;
        }
        return (mean, Math.Sqrt(variance));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.8)]
    public void SampleMomentsMatchTheExactLawOfTheSampler(double scale)
    {
        using var scope = NewDisposeScope();
        var samples = Sample(new GuidanceOptions { Scale = scale }, _exact, count: 2000);
        var mean = samples.mean(new long[] { 0, 1 }).data<float>().ToArray();
        var std = samples.std(new long[] { 0, 1 }).data<float>().ToArray();
        var (expectedMean, expectedStd) = PredictedMoments(scale);
        _output.WriteLine($"scale {scale}: mean ({mean[0]:F4}, {mean[1]:F4}) vs exact ({expectedMean[0]:F4}, {expectedMean[1]:F4}); " +
                          $"std ({std[0]:F4}, {std[1]:F4}) vs exact {expectedStd:F4} (data std {Std}: DDPM's posterior-variance sampler with T = {Steps} under-disperses)");
        for (int d = 0; d < 2; d++)
        {
            Assert.Equal(expectedMean[d], mean[d], 0.02);    // standard error ~ 0.004
            Assert.Equal(expectedStd, std[d], 0.015);        // standard error ~ 0.003
        }
    }

    [Fact]
    public void GuidanceMovesTheSampleMeanTowardTheExpertMonotonically()
    {
        using var scope = NewDisposeScope();
        var direction = Analytic.Broadcast(Shape, B) - Analytic.Broadcast(Shape, A);
        var expertMean = Analytic.Broadcast(Shape, B);
        double previousProjection = double.NegativeInfinity, previousDistance = double.PositiveInfinity;
        foreach (var scale in new[] { 0.0, 0.25, 0.5, 0.75, 1.0, 2.0, 4.0 })
        {
            var mean = Sample(new GuidanceOptions { Scale = scale }, _exact).to_type(ScalarType.Float64).mean(new long[] { 0 });
            double projection = ((mean - Analytic.Broadcast(Shape, A)) * direction).sum().ToDouble() / direction.square().sum().ToDouble();
            double distance = (mean - expertMean).norm().ToDouble();
            _output.WriteLine($"scale {scale}: fraction of the way from a to b {projection:F4}, |mean - b| {distance:F4}");
            Assert.True(projection > previousProjection);
            previousProjection = projection;
            if (scale <= 1.0)   // beyond ~1.2 the exact reward's push overshoots b
            {
                Assert.True(distance < previousDistance);
                previousDistance = distance;
            }
        }
    }

    [Fact]
    public void GuideStepsVarianceScalingAndStopGradientBehaveAsSpecified()
    {
        using var scope = NewDisposeScope();
        // Constant gradient: two guide steps at scale s equal one at scale 2s.
        var twice = Sample(new GuidanceOptions { Scale = 1, GuideSteps = 2 }, _exact);
        var doubled = Sample(new GuidanceOptions { Scale = 2 }, _exact);
        Assert.True(allclose(twice, doubled, rtol: 1e-5, atol: 1e-5));
        // Variance scaling shrinks the push (posterior variances are < 1), so the mean moves less.
        var plain = Sample(new GuidanceOptions { Scale = 4 }, _exact).mean().ToDouble();
        var scaled = Sample(new GuidanceOptions { Scale = 4, ScaleByVariance = true }, _exact).mean().ToDouble();
        var none = Sample(new GuidanceOptions { Scale = 0 }, _exact).mean().ToDouble();
        Assert.NotEqual(none, scaled);
        Assert.True(Math.Abs(scaled - none) < Math.Abs(plain - none));
        // Stopping below t_stopgrad leaves only the steps t >= t_stopgrad.
        var partial = Sample(new GuidanceOptions { Scale = 4, StopGradientBelow = 5 }, _exact).mean().ToDouble();
        Assert.True(Math.Abs(partial - none) < Math.Abs(plain - none));
        Assert.NotEqual(none, partial);
    }

    [Fact]
    public void PerRowGeneratorsMakeRowsIndependentOfTheBatch()
    {
        using var scope = NewDisposeScope();
        var sampler = new GuidedSampler(new GuidanceOptions { Scale = 0.7 });
        Tensor Rows(params long[] seeds)
        {
            var generators = seeds.Select(TorchRandom.Generator).ToArray();
            try { return sampler.Sample(_base, _exact, generators); }
            finally { foreach (var g in generators) g.Dispose(); }
        }
        var batch = Rows(11, 12, 13);
        Assert.Equal(new long[] { 3, 4, 2 }, batch.shape);
        for (int i = 0; i < 3; i++)
            Assert.True(allclose(batch[i].unsqueeze(0), Rows(11 + i), rtol: 1e-6, atol: 1e-6));
        Assert.False(allclose(batch[0], batch[1]));
        // One generator, one row: the single-generator overload's batch of one (guided and unguided).
        using (var gen = TorchRandom.Generator(12))
            Assert.True(Same(Rows(12), sampler.Sample(_base, _exact, 1, gen)));
        var unguided = new GuidedSampler(new GuidanceOptions { Scale = 0 });
        using (var a = TorchRandom.Generator(5))
        using (var b = TorchRandom.Generator(5))
            Assert.True(Same(unguided.Sample(_base, null, new[] { a }), _base.Sample(1, b)));
    }

    [Fact]
    public void ConditionedEntriesKeepTheirValues()
    {
        using var scope = NewDisposeScope();
        var values = zeros(Shape.BatchShape(1));
        values[0, 0, 0] = tensor(0.75f);
        values[0, 3, 1] = tensor(-0.25f);
        var mask = zeros_like(values, dtype: ScalarType.Bool);
        mask[0, 0, 0] = tensor(true);
        mask[0, 3, 1] = tensor(true);
        var samples = Sample(new GuidanceOptions { Scale = 2 }, _exact, count: 8, condition: new InpaintingCondition(values, mask));
        Assert.True(samples[TensorIndex.Colon, 0, 0].eq(0.75f).all().ToBoolean());
        Assert.True(samples[TensorIndex.Colon, 3, 1].eq(-0.25f).all().ToBoolean());
        Assert.True(samples.isfinite().all().ToBoolean());
    }

    [Fact]
    public void MismatchedRewardsAndConditionsAreRejected()
    {
        using var scope = NewDisposeScope();
        using var otherShape = new RelativeRewardModel(new StateReward(SampleShape.Trajectory(4, 3), new StateRewardOptions { HiddenSizes = new[] { 4 } }), _schedule);
        using var gen = TorchRandom.Generator(1);
        var e = Assert.Throws<ArgumentException>(() => new GuidedSampler().Sample(_base, otherShape, 4, gen));
        Assert.Contains("Trajectory(H=4, D=3)", e.Message);
        using var otherSteps = new RelativeRewardModel(new StateReward(Shape, new StateRewardOptions { HiddenSizes = new[] { 4 } }), NoiseSchedule.Cosine(20));
        e = Assert.Throws<ArgumentException>(() => new GuidedSampler().Sample(_base, otherSteps, 4, gen));
        Assert.Contains("T = 20", e.Message);
        var badCondition = new InpaintingCondition(zeros(4, 5, 2), zeros(4, 5, 2, dtype: ScalarType.Bool));
        Assert.Throws<ArgumentException>(() => new GuidedSampler().Sample(_base, null, 4, gen, badCondition));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GuidedSampler(new GuidanceOptions { GuideSteps = 0 }).Sample(_base, _exact, 4, gen));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GuidedSampler().Sample(_base, _exact, 0, gen));
    }
}
