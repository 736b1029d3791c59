using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>
/// The deterministic DDIM sampler (<see cref="GuidanceOptions.SamplingSteps"/>) on the analytic Gaussian base N(a, s^2), whose
/// exact x0 estimate is known in closed form: the chain, with and without guidance, against a float64 hand computation.
/// </summary>
public class DdimSamplingTests : IDisposable
{
    private static readonly double[] A = { -0.5, 0.3 };
    private static readonly double[] B = { 0.5, -0.3 };
    private const double Std = 0.5;
    private const int Steps = 10;
    private static readonly SampleShape Shape = SampleShape.Trajectory(4, 2);
    private readonly NoiseSchedule _schedule = NoiseSchedule.Cosine(Steps);
    private readonly DiffusionModel _base;
    private readonly RelativeRewardModel _reward;

    public DdimSamplingTests()
    {
        Analytic.UseOneThread();
        _base = Analytic.Model(Shape, _schedule, A, Std);
        _reward = new RelativeRewardModel(new AnalyticLinearReward(Shape, _schedule, A, B, Std), _schedule);
    }

    public void Dispose()
    {
        _base.Dispose();
        _reward.Dispose();
    }

    private Tensor Sample(GuidanceOptions options, RelativeRewardModel? reward, int count = 64, long seed = 5, InpaintingCondition? condition = null)
    {
        using var generator = TorchRandom.Generator(seed);
        return new GuidedSampler(options).Sample(_base, reward, count, generator, condition);
    }

    [Fact]
    public void TheVisitedSteps_AreEvenlySpacedFromTheLastToZero()
    {
        Assert.Equal([9, 8, 7, 6, 5, 4, 3, 2, 1, 0], GaussianDiffusion.StridedSteps(10, 10));
        Assert.Equal([9, 6, 3, 0], GaussianDiffusion.StridedSteps(10, 4));
        Assert.Equal([9, 5, 0], GaussianDiffusion.StridedSteps(10, 3));
        Assert.Equal([19, 13, 6, 0], GaussianDiffusion.StridedSteps(20, 4));
        Assert.Equal([9], GaussianDiffusion.StridedSteps(10, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianDiffusion.StridedSteps(10, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianDiffusion.StridedSteps(10, 11));
    }

    /// <summary>
    /// The chain by hand in float64 from the sampler's own x_T: optional guidance x += (t - t') scale g(x, t) for a step from
    /// t to t' (t + 1 for the last), the exact x0 estimate
    /// x0 = m + sqrt(abar) s^2 / (abar s^2 + 1 - abar) (x - sqrt(abar) m), then x = sqrt(abar') x0 + sqrt(1 - abar') eps with
    /// eps = (x - sqrt(abar) x0) / sqrt(1 - abar) (x0 itself after the last step).
    /// </summary>
    private Tensor ByHand(int samplingSteps, double scale, int count, long seed)
    {
        using var generator = TorchRandom.Generator(seed);
        var x = randn(Shape.BatchShape(count), ScalarType.Float32, generator: generator).to(ScalarType.Float64);
        var mean = Analytic.Broadcast(Shape, A).to(ScalarType.Float64).unsqueeze(0);
        var visited = GaussianDiffusion.StridedSteps(Steps, samplingSteps);
        for (int i = 0; i < visited.Length; i++)
        {
            int t = visited[i];
            if (scale != 0)
            {
                using var steps = full(count, t, ScalarType.Int64);
                int stride = i + 1 < visited.Length ? t - visited[i + 1] : t + 1;
                x = x + _reward.Gradient(x.to(ScalarType.Float32), steps).to(ScalarType.Float64) * (scale * stride);
            }
            double abar = _schedule.AlphasCumprod[t];
            var start = mean + (x - mean * Math.Sqrt(abar)) * (Math.Sqrt(abar) * Std * Std / (abar * Std * Std + 1 - abar));
            if (i + 1 == visited.Length)
                return start;
            double previous = _schedule.AlphasCumprod[visited[i + 1]];
            var eps = (x - start * Math.Sqrt(abar)) / Math.Sqrt(1 - abar);
            x = start * Math.Sqrt(previous) + eps * Math.Sqrt(1 - previous);
        }
        throw new InvalidOperationException("unreachable");
    }

    [Theory]
    [InlineData(10, 0.0)]
    [InlineData(4, 0.0)]
    [InlineData(1, 0.0)]
    [InlineData(4, 0.3)]
    [InlineData(10, 0.3)]
    public void TheSampler_IsTheDdimChainComputedByHand(int samplingSteps, double scale)
    {
        using var scope = NewDisposeScope();
        var sampled = Sample(new GuidanceOptions { SamplingSteps = samplingSteps, Scale = scale }, scale == 0 ? null : _reward, count: 16, seed: 7);
        var expected = ByHand(samplingSteps, scale, 16, 7);
        double error = (sampled.to(ScalarType.Float64) - expected).abs().max().ToDouble();
        Assert.True(error < 1e-5, $"max |sampler - hand| = {error}");
    }

    [Fact]
    public void DdimIsDeterministicGivenXT_AndGuidanceMovesItTowardTheExpert()
    {
        using var scope = NewDisposeScope();
        var options = new GuidanceOptions { SamplingSteps = 5 };
        Assert.True(Sample(options, null).eq(Sample(options, null)).all().ToBoolean());
        Assert.False(Sample(options, null).eq(Sample(new GuidanceOptions { SamplingSteps = 6 }, null)).all().ToBoolean());
        // Scale 0 with a reward is the unguided DDIM chain, bit for bit.
        Assert.True(Sample(options, null).eq(Sample(new GuidanceOptions { SamplingSteps = 5, Scale = 0 }, _reward)).all().ToBoolean());
        // Guidance toward N(b, s^2): the mean moves from a toward b in every feature.
        var unguided = Sample(options, null, count: 512).mean(new long[] { 0, 1 });
        var guided = Sample(new GuidanceOptions { SamplingSteps = 5, Scale = 0.3 }, _reward, count: 512).mean(new long[] { 0, 1 });
        for (int f = 0; f < 2; f++)
            Assert.True(Math.Sign(guided[f].ToDouble() - unguided[f].ToDouble()) == Math.Sign(B[f] - A[f]), $"feature {f}: {unguided[f].ToDouble()} -> {guided[f].ToDouble()}");
    }

    [Fact]
    public void DdimKeepsTheCondition_AndRejectsMoreStepsThanT()
    {
        using var scope = NewDisposeScope();
        var values = zeros(1, 4, 2);
        values[0, 0, 1] = tensor(0.75f);
        var known = zeros(1, 4, 2, dtype: ScalarType.Bool);
        known[0, 0, 1] = tensor(true);
        var condition = new InpaintingCondition(values, known);
        var sampled = Sample(new GuidanceOptions { SamplingSteps = 3, Scale = 0.3 }, _reward, count: 8, condition: condition);
        Assert.True(sampled[.., 0, 1].eq(0.75f).all().ToBoolean());

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Sample(new GuidanceOptions { SamplingSteps = Steps + 1 }, null));
        Assert.Contains("SamplingSteps must lie in 0..10", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Sample(new GuidanceOptions { SamplingSteps = -1 }, null));
    }
}
