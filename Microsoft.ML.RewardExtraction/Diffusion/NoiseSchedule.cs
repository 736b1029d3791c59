namespace Microsoft.ML.RewardExtraction;

/// <summary>Which beta schedule a diffusion model uses.</summary>
public enum NoiseScheduleKind
{
    /// <summary>Nichol and Dhariwal's cosine schedule with s = 0.008 (Diffuser's default).</summary>
    Cosine = 0,
    /// <summary>DDPM's linear betas, rescaled by 1000 / T so that short chains still reach pure noise.</summary>
    Linear = 1,
}

/// <summary>
/// The DDPM tables for T discrete steps, computed in float64 (docs/METHOD.md section 2). Index t runs over 0..T-1 and
/// "abar_{t-1}" at t = 0 is 1, so the reverse step at t = 0 returns the clean estimate.
/// </summary>
public sealed class NoiseSchedule : IEquatable<NoiseSchedule>
{
    /// <summary>The offset of the cosine schedule.</summary>
    public const double CosineOffset = 0.008;

    private NoiseSchedule(NoiseScheduleKind kind, double[] betas)
    {
        Kind = kind;
        Steps = betas.Length;
        Betas = betas;
        int n = betas.Length;
        Alphas = new double[n];
        AlphasCumprod = new double[n];
        AlphasCumprodPrevious = new double[n];
        PosteriorVariance = new double[n];
        PosteriorLogVarianceClipped = new double[n];
        PosteriorMeanCoefficientStart = new double[n];
        PosteriorMeanCoefficientCurrent = new double[n];
        double cumulative = 1;
        for (int t = 0; t < n; t++)
        {
            Alphas[t] = 1 - betas[t];
            AlphasCumprodPrevious[t] = cumulative;
            cumulative *= Alphas[t];
            AlphasCumprod[t] = cumulative;
            double oneMinus = 1 - AlphasCumprod[t];
            PosteriorVariance[t] = betas[t] * (1 - AlphasCumprodPrevious[t]) / oneMinus;
            PosteriorLogVarianceClipped[t] = Math.Log(Math.Max(PosteriorVariance[t], 1e-20));
            PosteriorMeanCoefficientStart[t] = betas[t] * Math.Sqrt(AlphasCumprodPrevious[t]) / oneMinus;
            PosteriorMeanCoefficientCurrent[t] = (1 - AlphasCumprodPrevious[t]) * Math.Sqrt(Alphas[t]) / oneMinus;
        }
    }

    /// <summary>The cosine schedule: abar(t) = cos^2(((t/T)+s)/(1+s) * pi/2) / abar(0), beta_t = clip(1 - abar_{t+1}/abar_t, 0, 0.999).</summary>
    public static NoiseSchedule Cosine(int steps)
    {
        CheckSteps(steps);
        var abar = new double[steps + 1];
        for (int i = 0; i <= steps; i++)
        {
            double c = Math.Cos(((double)i / steps + CosineOffset) / (1 + CosineOffset) * Math.PI * 0.5);
            abar[i] = c * c;
        }
        var betas = new double[steps];
        for (int t = 0; t < steps; t++)
            betas[t] = Math.Clamp(1 - abar[t + 1] / abar[t], 0, 0.999);   // the normalisation by abar(0) cancels
        return new NoiseSchedule(NoiseScheduleKind.Cosine, betas);
    }

    /// <summary>Linear betas from 1e-4 to 0.02 at T = 1000, both scaled by 1000 / T.</summary>
    public static NoiseSchedule Linear(int steps)
    {
        CheckSteps(steps);
        double scale = 1000.0 / steps, start = scale * 1e-4, end = Math.Min(scale * 0.02, 0.999);
        var betas = new double[steps];
        for (int t = 0; t < steps; t++)
            betas[t] = steps == 1 ? end : start + (end - start) * t / (steps - 1);
        return new NoiseSchedule(NoiseScheduleKind.Linear, betas);
    }

    /// <summary>The schedule of the given kind with <paramref name="steps"/> steps.</summary>
    public static NoiseSchedule Create(NoiseScheduleKind kind, int steps) => kind switch
    {
        NoiseScheduleKind.Cosine => Cosine(steps),
        NoiseScheduleKind.Linear => Linear(steps),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown noise schedule."),
    };

    private static void CheckSteps(int steps)
    {
        if (steps < 1)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, "A diffusion chain needs at least one step.");
    }

    /// <summary>Cosine or linear.</summary>
    public NoiseScheduleKind Kind { get; }
    /// <summary>T, the number of diffusion steps.</summary>
    public int Steps { get; }
    /// <summary>beta_t.</summary>
    public double[] Betas { get; }
    /// <summary>alpha_t = 1 - beta_t.</summary>
    public double[] Alphas { get; }
    /// <summary>abar_t = prod_{s &lt;= t} alpha_s.</summary>
    public double[] AlphasCumprod { get; }
    /// <summary>abar_{t-1}, with abar_{-1} = 1.</summary>
    public double[] AlphasCumprodPrevious { get; }
    /// <summary>beta_t (1 - abar_{t-1}) / (1 - abar_t); 0 at t = 0.</summary>
    public double[] PosteriorVariance { get; }
    /// <summary>log of the posterior variance, clipped below at 1e-20.</summary>
    public double[] PosteriorLogVarianceClipped { get; }
    /// <summary>c1_t = beta_t sqrt(abar_{t-1}) / (1 - abar_t), the weight of the x0 estimate in the posterior mean.</summary>
    public double[] PosteriorMeanCoefficientStart { get; }
    /// <summary>c2_t = (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t), the weight of x_t in the posterior mean.</summary>
    public double[] PosteriorMeanCoefficientCurrent { get; }

    /// <summary>Writes kind and step count (the tables are recomputed on load).</summary>
    public void Save(BinaryWriter writer)
    {
        writer.Write((int)Kind);
        writer.Write(Steps);
    }

    /// <summary>Reads a schedule written by <see cref="Save"/>.</summary>
    public static NoiseSchedule Load(BinaryReader reader)
    {
        var kind = (NoiseScheduleKind)reader.ReadInt32();
        int steps = reader.ReadInt32();
        if (!Enum.IsDefined(kind))
            throw new InvalidDataException($"Unknown noise schedule kind {(int)kind} in model data.");
        if (steps < 1)
            throw new InvalidDataException($"Invalid diffusion step count {steps} in model data.");
        return Create(kind, steps);
    }

    /// <inheritdoc/>
    public bool Equals(NoiseSchedule? other) => other is not null && other.Kind == Kind && other.Steps == Steps;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as NoiseSchedule);
    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Kind, Steps);
    /// <summary>"Cosine(T=20)".</summary>
    public override string ToString() => $"{Kind}(T={Steps})";
}
