namespace MLReward.Experiments.Locomotion;

/// <summary>The result of Welch's unequal-variance t-test of mean(a) - mean(b).</summary>
/// <param name="T">The t statistic.</param>
/// <param name="DegreesOfFreedom">Welch-Satterthwaite degrees of freedom.</param>
/// <param name="PTwoSided">P(|T| &gt;= |t|) under the null hypothesis of equal means.</param>
/// <param name="PGreater">One-sided P(T &gt;= t): the p-value of "mean(a) &gt; mean(b)".</param>
public sealed record WelchResult(double T, double DegreesOfFreedom, double PTwoSided, double PGreater);

/// <summary>Sample statistics, Welch's t-test and the Student t distribution (written here: no statistics package is referenced).</summary>
public static class Statistics
{
    /// <summary>Sample mean (NaN when empty).</summary>
    public static double Mean(IReadOnlyList<double> x) => x.Count == 0 ? double.NaN : x.Average();

    /// <summary>Sample variance with n - 1 (0 for fewer than 2 values).</summary>
    public static double Variance(IReadOnlyList<double> x)
    {
        if (x.Count < 2)
            return 0;
        double m = x.Average();
        return x.Sum(v => (v - m) * (v - m)) / (x.Count - 1);
    }

    /// <summary>Standard error of the mean (NaN when empty).</summary>
    public static double StandardError(IReadOnlyList<double> x) => x.Count == 0 ? double.NaN : Math.Sqrt(Variance(x) / x.Count);

    /// <summary>Welch's t-test of mean(a) - mean(b). Needs at least 2 values per sample; with both variances 0 the
    /// p-values are 0 (different means) or 1 (equal means).</summary>
    public static WelchResult Welch(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count < 2 || b.Count < 2)
            throw new ArgumentException("Welch's test needs at least two values per sample.");
        double va = Variance(a) / a.Count, vb = Variance(b) / b.Count;
        double diff = Mean(a) - Mean(b);
        double se2 = va + vb;
        if (se2 <= 0)
        {
            double t0 = diff == 0 ? 0 : Math.CopySign(double.PositiveInfinity, diff);
            return new WelchResult(t0, a.Count + b.Count - 2, diff == 0 ? 1 : 0, diff > 0 ? 0 : diff < 0 ? 1 : 0.5);
        }
        double t = diff / Math.Sqrt(se2);
        double df = se2 * se2 / (va * va / (a.Count - 1) + vb * vb / (b.Count - 1));
        double upper = StudentTUpperTail(t, df);
        double two = 2 * Math.Min(upper, 1 - upper);
        return new WelchResult(t, df, Math.Min(1, two), upper);
    }

    /// <summary>The paired t-test of mean(a_i - b_i), for conditions run on the same episodes (same starts and noise);
    /// the degrees of freedom are n - 1. Same conventions as <see cref="Welch"/> when every difference is equal.</summary>
    public static WelchResult Paired(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count != b.Count)
            throw new ArgumentException($"A paired test needs as many values in both samples; got {a.Count} and {b.Count}.");
        if (a.Count < 2)
            throw new ArgumentException("A paired test needs at least two pairs.");
        var d = a.Zip(b, (x, y) => x - y).ToArray();
        double mean = Mean(d), se = StandardError(d), df = d.Length - 1;
        if (se <= 0)
            return new WelchResult(mean == 0 ? 0 : Math.CopySign(double.PositiveInfinity, mean), df, mean == 0 ? 1 : 0, mean > 0 ? 0 : mean < 0 ? 1 : 0.5);
        double t = mean / se;
        double upper = StudentTUpperTail(t, df);
        return new WelchResult(t, df, Math.Min(1, 2 * Math.Min(upper, 1 - upper)), upper);
    }

    /// <summary>P(T &gt;= t) for Student's t with <paramref name="df"/> degrees of freedom (df &gt; 0, not necessarily whole).</summary>
    public static double StudentTUpperTail(double t, double df)
    {
        if (!(df > 0))
            throw new ArgumentOutOfRangeException(nameof(df), df, "Degrees of freedom must be positive.");
        if (double.IsNaN(t))
            return double.NaN;
        if (double.IsPositiveInfinity(t))
            return 0;
        if (double.IsNegativeInfinity(t))
            return 1;
        // P(|T| >= |t|) = I_x(df/2, 1/2) with x = df / (df + t^2).
        double x = df / (df + t * t);
        double tail = 0.5 * RegularizedIncompleteBeta(df / 2, 0.5, x);
        return t >= 0 ? tail : 1 - tail;
    }

    /// <summary>Student t cumulative distribution P(T &lt;= t).</summary>
    public static double StudentTCdf(double t, double df) => 1 - StudentTUpperTail(t, df);

    /// <summary>The regularised incomplete beta function I_x(a, b) for a, b &gt; 0 and x in [0, 1].</summary>
    public static double RegularizedIncompleteBeta(double a, double b, double x)
    {
        if (!(a > 0) || !(b > 0))
            throw new ArgumentOutOfRangeException(nameof(a), "a and b must be positive.");
        if (x <= 0)
            return 0;
        if (x >= 1)
            return 1;
        // x^a (1-x)^b / (a B(a, b)), then the continued fraction where it converges fast (x < (a+1)/(a+b+2)); otherwise
        // the symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
        double logFront = a * Math.Log(x) + b * Math.Log(1 - x) - LogBeta(a, b);
        if (x < (a + 1) / (a + b + 2))
            return Math.Exp(logFront) * BetaContinuedFraction(a, b, x) / a;
        return 1 - Math.Exp(logFront) * BetaContinuedFraction(b, a, 1 - x) / b;
    }

    /// <summary>ln B(a, b) = ln Gamma(a) + ln Gamma(b) - ln Gamma(a + b).</summary>
    public static double LogBeta(double a, double b) => LogGamma(a) + LogGamma(b) - LogGamma(a + b);

    /// <summary>ln Gamma(x) for x &gt; 0: Stirling's series after shifting x above 10 with the recurrence Gamma(x+1) = x Gamma(x).</summary>
    public static double LogGamma(double x)
    {
        if (!(x > 0))
            throw new ArgumentOutOfRangeException(nameof(x), x, "LogGamma needs x > 0.");
        double shift = 0;
        while (x < 10)
        {
            shift -= Math.Log(x);
            x += 1;
        }
        double inv = 1 / x, inv2 = inv * inv;
        // ln Gamma(x) ~ (x - 1/2) ln x - x + ln(2 pi)/2 + 1/(12x) - 1/(360x^3) + 1/(1260x^5) - 1/(1680x^7) + 1/(1188 x^9)
        double series = inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 * (1.0 / 1260 - inv2 * (1.0 / 1680 - inv2 / 1188))));
        return shift + (x - 0.5) * Math.Log(x) - x + 0.5 * Math.Log(2 * Math.PI) + series;
    }

    /// <summary>K = 1 / (1 + d1 / (1 + d2 / (1 + ...))), the continued fraction of the incomplete beta function
    /// (I_x(a, b) = x^a (1-x)^b / (a B(a, b)) K), evaluated with the modified Lentz method, with
    /// d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)) and d_{2m} = m(b-m) x / ((a+2m-1)(a+2m)).</summary>
    private static double BetaContinuedFraction(double a, double b, double x)
    {
        const double Tiny = 1e-300;
        const double Epsilon = 1e-15;
        double f = 1, c = 1, d = 0;   // F = 1 + d1/(1 + d2/(1 + ...)), built term by term
        for (int j = 1; j <= 10_000; j++)
        {
            int m = j / 2;
            double dj = j % 2 == 1
                ? -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
                : m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
            d = 1 + dj * d;
            if (Math.Abs(d) < Tiny)
                d = Tiny;
            d = 1 / d;
            c = 1 + dj / c;
            if (Math.Abs(c) < Tiny)
                c = Tiny;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(1 - delta) < Epsilon)
                break;
        }
        return 1 / f;
    }
}
