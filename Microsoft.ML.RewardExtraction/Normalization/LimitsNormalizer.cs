using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Diffuser's limits normaliser: per feature, <c>n = 2 (x - min) / (max - min) - 1</c>, so the fitted minimum maps
/// to -1 and the maximum to 1. A constant feature (max = min) maps to 0 and back to its value, never to NaN.
/// </summary>
public sealed class LimitsNormalizer : AffineNormalizer
{
    private readonly float[] _minimums;
    private readonly float[] _maximums;

    /// <summary>Creates the normaliser from per-feature limits (each of length <see cref="SampleShape.FeatureCount"/>).</summary>
    public LimitsNormalizer(SampleShape shape, float[] minimums, float[] maximums)
        : this(shape, Check(shape, minimums, maximums), maximums, true)
    {
    }

    private LimitsNormalizer(SampleShape shape, float[] minimums, float[] maximums, bool _)
        : base(shape, (float[])minimums.Clone(), Factors(minimums, maximums), Offsets(minimums, maximums), Inverses(minimums, maximums))
    {
        _minimums = (float[])minimums.Clone();
        _maximums = (float[])maximums.Clone();
    }

    /// <summary>Fits the limits on raw samples held row-major in <paramref name="data"/> (N * shape.Length floats).</summary>
    /// <exception cref="ArgumentException">No data, a partial sample, or a non-finite value (the message names the sample).</exception>
    public static LimitsNormalizer Fit(SampleShape shape, ReadOnlySpan<float> data) => From(shape, Statistics(shape, data));

    /// <summary>Fits the limits in one pass over raw samples (each <see cref="SampleShape.Length"/> floats, row-major) that
    /// need not fit in memory together; equal to <see cref="Fit(SampleShape, ReadOnlySpan{float})"/> on the same rows.</summary>
    /// <exception cref="ArgumentException">No data, a partial sample, or a non-finite value (the message names the sample).</exception>
    public static LimitsNormalizer Fit(SampleShape shape, IEnumerable<ReadOnlyMemory<float>> samples) => From(shape, Statistics(shape, samples));

    private static LimitsNormalizer From(SampleShape shape, FeatureStatistics statistics)
        => new(shape, statistics.Minimums, statistics.Maximums);

    /// <summary>Fits the limits on a raw batch [N, ...shape].</summary>
    public static LimitsNormalizer Fit(SampleShape shape, Tensor data) => Fit(shape, TensorData(shape, data));

    /// <inheritdoc/>
    public override NormalizerKind Kind => NormalizerKind.Limits;

    /// <summary>The fitted per-feature minimum.</summary>
    public IReadOnlyList<float> Minimums => _minimums;

    /// <summary>The fitted per-feature maximum.</summary>
    public IReadOnlyList<float> Maximums => _maximums;

    /// <inheritdoc/>
    protected override void SaveStatistics(BinaryWriter writer)
    {
        WriteArray(writer, _minimums);
        WriteArray(writer, _maximums);
    }

    internal static LimitsNormalizer LoadStatistics(SampleShape shape, BinaryReader reader)
    {
        var min = ReadArray(reader, shape.FeatureCount, "minimums");
        var max = ReadArray(reader, shape.FeatureCount, "maximums");
        for (int f = 0; f < min.Length; f++)
        {
            if (max[f] < min[f])
                throw new InvalidDataException($"The normaliser's limits are inverted at feature {f} (min {min[f]} > max {max[f]}).");
        }
        return new LimitsNormalizer(shape, min, max);
    }

    private static float[] Check(SampleShape shape, float[] minimums, float[] maximums)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(minimums);
        ArgumentNullException.ThrowIfNull(maximums);
        if (minimums.Length != shape.FeatureCount || maximums.Length != shape.FeatureCount)
            throw new ArgumentException($"A normaliser for {shape} needs {shape.FeatureCount} limits per side; got {minimums.Length} minimums and {maximums.Length} maximums.");
        for (int f = 0; f < minimums.Length; f++)
        {
            if (!float.IsFinite(minimums[f]) || !float.IsFinite(maximums[f]) || maximums[f] < minimums[f])
                throw new ArgumentException($"Feature {f} has invalid limits [{minimums[f]}, {maximums[f]}].");
        }
        return minimums;
    }

    private static bool Constant(float min, float max) => max == min;

    // n = (x - min) * (2 / (max - min)) - 1; a constant feature gets factor 0 and offset 0 (n = 0).
    private static float[] Factors(float[] min, float[] max)
        => min.Select((lo, f) => Constant(lo, max[f]) ? 0f : (float)(2.0 / ((double)max[f] - lo))).ToArray();

    private static float[] Offsets(float[] min, float[] max)
        => min.Select((lo, f) => Constant(lo, max[f]) ? 0f : -1f).ToArray();

    // x = (n + 1) * ((max - min) / 2) + min; a constant feature gets back min whatever n is.
    private static float[] Inverses(float[] min, float[] max)
        => min.Select((lo, f) => (float)(((double)max[f] - lo) / 2)).ToArray();
}
