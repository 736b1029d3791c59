using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>The DDPM tables and process against closed-form values (docs/METHOD.md section 2).</summary>
public class ScheduleTests
{
    public ScheduleTests() => DiffusionModelTests.UseOneThread();

    private const double S = 0.008;

    private static double CosineF(int i, int steps)
    {
        double c = Math.Cos(((double)i / steps + S) / (1 + S) * Math.PI / 2);
        return c * c;
    }

    [Theory]
    [InlineData(4)]
    [InlineData(20)]
    [InlineData(64)]
    public void CosineAlphaBarMatchesTheClosedForm(int steps)
    {
        var schedule = NoiseSchedule.Cosine(steps);
        // Table index t holds abar after t + 1 forward steps: abar(t + 1) / abar(0). Only the last beta is clipped.
        for (int t = 0; t < steps - 1; t++)
        {
            double expected = CosineF(t + 1, steps) / CosineF(0, steps);
            Assert.Equal(expected, schedule.AlphasCumprod[t], 1e-12);
            Assert.Equal(1 - CosineF(t + 1, steps) / CosineF(t, steps), schedule.Betas[t], 1e-12);
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(20)]
    public void TheLastCosineBetaIsClippedAt0999(int steps)
    {
        var schedule = NoiseSchedule.Cosine(steps);
        // cos(pi/2)^2 ~ 0 makes the unclipped last beta ~1.
        Assert.Equal(0.999, schedule.Betas[steps - 1]);
        Assert.Equal(schedule.AlphasCumprod[steps - 2] * 0.001, schedule.AlphasCumprod[steps - 1], 1e-15);
        Assert.All(schedule.Betas, b => Assert.InRange(b, 0, 0.999));
    }

    [Fact]
    public void PosteriorTablesMatchTheirFormulas()
    {
        var s = NoiseSchedule.Cosine(10);
        // t = 0: abar_{-1} = 1, so the variance is exactly 0, its log is clipped at log(1e-20), c1 = 1 and c2 = 0.
        Assert.Equal(0.0, s.PosteriorVariance[0]);
        Assert.Equal(Math.Log(1e-20), s.PosteriorLogVarianceClipped[0]);
        Assert.Equal(1.0, s.PosteriorMeanCoefficientStart[0], 1e-12);
        Assert.Equal(0.0, s.PosteriorMeanCoefficientCurrent[0]);
        for (int t = 1; t < s.Steps; t++)
        {
            double abar = s.AlphasCumprod[t], prev = s.AlphasCumprod[t - 1], beta = s.Betas[t];
            Assert.Equal(prev, s.AlphasCumprodPrevious[t]);
            Assert.Equal(beta * (1 - prev) / (1 - abar), s.PosteriorVariance[t], 1e-15);
            Assert.Equal(Math.Log(s.PosteriorVariance[t]), s.PosteriorLogVarianceClipped[t], 1e-12);
            Assert.Equal(beta * Math.Sqrt(prev) / (1 - abar), s.PosteriorMeanCoefficientStart[t], 1e-15);
            Assert.Equal((1 - prev) * Math.Sqrt(1 - beta) / (1 - abar), s.PosteriorMeanCoefficientCurrent[t], 1e-15);
        }
    }

    [Fact]
    public void LinearScheduleIsRescaledByT()
    {
        var s = NoiseSchedule.Linear(100);
        Assert.Equal(1e-3, s.Betas[0], 1e-15);
        Assert.Equal(0.2, s.Betas[99], 1e-15);
    }

    [Fact]
    public void PosteriorMeanMatchesAHandComputation()
    {
        using var scope = NewDisposeScope();
        var schedule = NoiseSchedule.Cosine(8);
        using var diffusion = new GaussianDiffusion(schedule);
        var x0 = tensor(new float[] { 0.25f, -0.5f, 1.0f, 0.75f }).view(2, 2, 1);
        var xt = tensor(new float[] { -1.5f, 0.3f, 2.0f, -0.1f }).view(2, 2, 1);
        var t = tensor(new long[] { 3, 6 });
        var mean = diffusion.PosteriorMean(x0, xt, t).data<float>().ToArray();
        float[] x0v = { 0.25f, -0.5f, 1.0f, 0.75f }, xtv = { -1.5f, 0.3f, 2.0f, -0.1f };
        int[] steps = { 3, 3, 6, 6 };
        for (int i = 0; i < 4; i++)
        {
            int k = steps[i];
            double beta = schedule.Betas[k], abar = schedule.AlphasCumprod[k], prev = schedule.AlphasCumprod[k - 1];
            double expected = beta * Math.Sqrt(prev) / (1 - abar) * x0v[i] + (1 - prev) * Math.Sqrt(1 - beta) / (1 - abar) * xtv[i];
            Assert.Equal(expected, mean[i], 6);
        }
    }

    [Fact]
    public void ReverseMeanAtStepZeroIsTheClampedEstimate()
    {
        using var scope = NewDisposeScope();
        using var diffusion = new GaussianDiffusion(NoiseSchedule.Cosine(5));
        var estimate = tensor(new float[] { 0.5f, 3f, -2f }).view(3, 1, 1);
        var xt = tensor(new float[] { 0.1f, 0.2f, 0.3f }).view(3, 1, 1);
        var t = zeros(3, ScalarType.Int64);
        var start = diffusion.EstimateStart(estimate, xt, t);
        var mean = diffusion.PosteriorMean(start, xt, t).data<float>().ToArray();
        Assert.Equal(new[] { 0.5f, 1f, -1f }, mean);
    }

    [Fact]
    public void NoisePredictionInvertsQSample()
    {
        using var scope = NewDisposeScope();
        using var diffusion = new GaussianDiffusion(NoiseSchedule.Cosine(10), PredictionTarget.Noise, clipDenoised: false);
        using var g = TorchRandom.Generator(5);
        var x0 = rand(new long[] { 4, 3, 2 }, generator: g);
        var eps = randn(new long[] { 4, 3, 2 }, generator: g);
        var t = tensor(new long[] { 0, 3, 6, 8 });
        var xt = diffusion.QSample(x0, t, eps);
        var back = diffusion.EstimateStart(eps, xt, t);
        float err = (back - x0).abs().max().item<float>();
        Assert.True(err < 1e-4f, $"x0 recovered to {err}");
    }

    [Fact]
    public void QSampleHasTheForwardMoments()
    {
        // x_t = sqrt(abar) x0 + sqrt(1 - abar) eps with x0 = 0.5 everywhere: mean sqrt(abar) * 0.5, variance 1 - abar.
        // With n = 200,000 draws the standard errors are sqrt(v / n) (mean) and v sqrt(2 / n) (variance); allow 5 of them.
        using var scope = NewDisposeScope();
        var schedule = NoiseSchedule.Cosine(10);
        using var diffusion = new GaussianDiffusion(schedule);
        using var g = TorchRandom.Generator(11);
        const int n = 200_000;
        foreach (int step in new[] { 0, 4, 9 })
        {
            var x0 = full(new long[] { n, 1, 1 }, 0.5f);
            var t = full(new long[] { n }, step, ScalarType.Int64);
            var xt = diffusion.QSample(x0, t, randn(new long[] { n, 1, 1 }, generator: g)).to(ScalarType.Float64);
            double abar = schedule.AlphasCumprod[step], v = 1 - abar;
            double mean = xt.mean().item<double>(), variance = xt.var().item<double>();
            Assert.True(Math.Abs(mean - Math.Sqrt(abar) * 0.5) < 5 * Math.Sqrt(v / n), $"t={step}: mean {mean}");
            Assert.True(Math.Abs(variance - v) < 5 * v * Math.Sqrt(2.0 / n), $"t={step}: variance {variance} vs {v}");
        }
    }
}
