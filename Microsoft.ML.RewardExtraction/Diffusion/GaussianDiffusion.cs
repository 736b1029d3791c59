using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The DDPM forward and reverse processes for one <see cref="NoiseSchedule"/> (docs/METHOD.md section 2): q_sample, the x0
/// estimate from a network output, the posterior mean and variance. Holds the tables as float32 tensors on
/// one device; holds no network.
/// </summary>
public sealed class GaussianDiffusion : IDisposable
{
    private readonly Tensor _sqrtAlphasCumprod;
    private readonly Tensor _sqrtOneMinusAlphasCumprod;
    private readonly Tensor _sqrtRecipAlphasCumprod;
    private readonly Tensor _sqrtRecipMinusOneAlphasCumprod;
    private readonly Tensor _posteriorCoefficientStart;
    private readonly Tensor _posteriorCoefficientCurrent;
    private readonly Tensor _posteriorVariance;
    private readonly Tensor _posteriorLogVariance;

    /// <summary>Creates the process for <paramref name="schedule"/>.</summary>
    /// <param name="schedule">The noise schedule.</param>
    /// <param name="target">What the denoiser predicts.</param>
    /// <param name="clipDenoised">Whether x0 estimates are clamped to [-1, 1] (data are normalised to that range).</param>
    /// <param name="device">Where the tables live; CPU when null.</param>
    public GaussianDiffusion(NoiseSchedule schedule, PredictionTarget target = PredictionTarget.Start, bool clipDenoised = true, Device? device = null)
    {
        Schedule = schedule;
        Target = target;
        ClipDenoised = clipDenoised;
        Device = device ?? CPU;
        Tensor Table(Func<int, double> value)
        {
            var data = new float[schedule.Steps];
            for (int t = 0; t < data.Length; t++)
                data[t] = (float)value(t);
            // Tables outlive any dispose scope the caller may have open.
            return tensor(data).to(Device).DetachFromDisposeScope();
        }
        var abar = schedule.AlphasCumprod;
        _sqrtAlphasCumprod = Table(t => Math.Sqrt(abar[t]));
        _sqrtOneMinusAlphasCumprod = Table(t => Math.Sqrt(1 - abar[t]));
        _sqrtRecipAlphasCumprod = Table(t => Math.Sqrt(1 / abar[t]));
        _sqrtRecipMinusOneAlphasCumprod = Table(t => Math.Sqrt(1 / abar[t] - 1));
        _posteriorCoefficientStart = Table(t => schedule.PosteriorMeanCoefficientStart[t]);
        _posteriorCoefficientCurrent = Table(t => schedule.PosteriorMeanCoefficientCurrent[t]);
        _posteriorVariance = Table(t => schedule.PosteriorVariance[t]);
        _posteriorLogVariance = Table(t => schedule.PosteriorLogVarianceClipped[t]);
    }

    /// <summary>The noise schedule.</summary>
    public NoiseSchedule Schedule { get; }
    /// <summary>T.</summary>
    public int Steps => Schedule.Steps;
    /// <summary>What the denoiser predicts.</summary>
    public PredictionTarget Target { get; }
    /// <summary>Whether x0 estimates are clamped to [-1, 1].</summary>
    public bool ClipDenoised { get; }
    /// <summary>Where the tables live.</summary>
    public Device Device { get; }

    /// <summary>x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps.</summary>
    public Tensor QSample(Tensor start, Tensor t, Tensor noise)
        => Extract(_sqrtAlphasCumprod, t, start) * start + Extract(_sqrtOneMinusAlphasCumprod, t, start) * noise;

    /// <summary>x0 from x_t and a noise prediction: sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps.</summary>
    public Tensor StartFromNoise(Tensor current, Tensor t, Tensor noise)
        => Extract(_sqrtRecipAlphasCumprod, t, current) * current - Extract(_sqrtRecipMinusOneAlphasCumprod, t, current) * noise;

    /// <summary>The x0 estimate from a network output (clamped to [-1, 1] when <see cref="ClipDenoised"/>).</summary>
    public Tensor EstimateStart(Tensor networkOutput, Tensor current, Tensor t)
    {
        var start = Target == PredictionTarget.Start ? networkOutput : StartFromNoise(current, t, networkOutput);
        return ClipDenoised ? start.clamp(-1, 1) : start;
    }

    /// <summary>The posterior mean of q(x_{t-1} | x_t, x0): c1_t x0 + c2_t x_t.</summary>
    public Tensor PosteriorMean(Tensor start, Tensor current, Tensor t)
        => Extract(_posteriorCoefficientStart, t, current) * start + Extract(_posteriorCoefficientCurrent, t, current) * current;

    /// <summary>The reverse-process mean mu(x_t, t) of <paramref name="denoiser"/>.</summary>
    public Tensor ReverseMean(Denoiser denoiser, Tensor current, Tensor t)
        => PosteriorMean(EstimateStart(denoiser.call(current, t), current, t), current, t);

    /// <summary>The posterior variance per sample, broadcastable against <paramref name="like"/>.</summary>
    public Tensor PosteriorVariance(Tensor t, Tensor like) => Extract(_posteriorVariance, t, like);

    /// <summary>The posterior standard deviation exp(0.5 log var_t) per sample, broadcastable against <paramref name="like"/>.</summary>
    public Tensor PosteriorStandardDeviation(Tensor t, Tensor like) => Extract(_posteriorLogVariance, t, like).mul(0.5).exp();

    /// <summary>
    /// One deterministic DDIM step (eta = 0, docs/METHOD.md section 7) from step <paramref name="t"/> to step
    /// <paramref name="previous"/> &lt; t: with eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t), the noise that x0 implies,
    /// x_previous = sqrt(abar_previous) x0 + sqrt(1 - abar_previous) eps; <paramref name="previous"/> = -1 returns x0 itself.
    /// </summary>
    /// <param name="start">The x0 estimate at x_t.</param>
    /// <param name="current">x_t.</param>
    /// <param name="t">The step of x_t.</param>
    /// <param name="previous">The step reached, in -1..t-1.</param>
    public Tensor DdimStep(Tensor start, Tensor current, int t, int previous)
    {
        if (t < 0 || t >= Steps)
            throw new ArgumentOutOfRangeException(nameof(t), t, $"The step must lie in 0..{Steps - 1}.");
        if (previous < -1 || previous >= t)
            throw new ArgumentOutOfRangeException(nameof(previous), previous, $"The step reached must lie in -1..{t - 1}.");
        if (previous < 0)
            return start.clone();
        double abar = Schedule.AlphasCumprod[t], abarPrevious = Schedule.AlphasCumprod[previous];
        double noiseScale = Math.Sqrt(1 - abarPrevious) / Math.Sqrt(1 - abar);
        // x_prev = sqrt(abar_prev) x0 + noiseScale (x_t - sqrt(abar_t) x0) = noiseScale x_t + (sqrt(abar_prev) - noiseScale sqrt(abar_t)) x0
        return current.mul(noiseScale).add_(start, alpha: Math.Sqrt(abarPrevious) - noiseScale * Math.Sqrt(abar));
    }

    /// <summary>The steps a sampler of <paramref name="count"/> reverse steps visits, from T-1 down to 0, evenly spaced
    /// (rounded); <paramref name="count"/> = T visits every step, 1 only T-1.</summary>
    public static int[] StridedSteps(int steps, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        if (count < 1 || count > steps)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"The number of sampling steps must lie in 1..{steps} (T).");
        if (count == 1)
            return [steps - 1];
        return Enumerable.Range(0, count).Select(i => (int)Math.Round((double)(count - 1 - i) * (steps - 1) / (count - 1), MidpointRounding.AwayFromZero)).ToArray();
    }

    /// <summary>The denoising training target for x0 and the noise that made x_t.</summary>
    public Tensor TrainingTarget(Tensor start, Tensor noise) => Target == PredictionTarget.Start ? start : noise;

    private static Tensor Extract(Tensor table, Tensor t, Tensor like)
    {
        var shape = new long[like.dim()];
        shape[0] = t.shape[0];
        for (int i = 1; i < shape.Length; i++)
            shape[i] = 1;
        return table.index_select(0, t).view(shape);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _sqrtAlphasCumprod.Dispose();
        _sqrtOneMinusAlphasCumprod.Dispose();
        _sqrtRecipAlphasCumprod.Dispose();
        _sqrtRecipMinusOneAlphasCumprod.Dispose();
        _posteriorCoefficientStart.Dispose();
        _posteriorCoefficientCurrent.Dispose();
        _posteriorVariance.Dispose();
        _posteriorLogVariance.Dispose();
    }
}
