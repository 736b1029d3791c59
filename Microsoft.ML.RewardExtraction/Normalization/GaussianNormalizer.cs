using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Per feature standardisation: <c>n = (x - mean) / std</c> with the population standard deviation. A constant
/// feature (std = 0) maps to 0 and back to its mean, never to NaN.
/// </summary>
public sealed class GaussianNormalizer : AffineNormalizer
{
    private readonly float[] _means;
    private readonly float[] _standardDeviations;

    /// <summary>Creates the normaliser from per-feature means and standard deviations (each of length <see cref="SampleShape.FeatureCount"/>).</summary>
    public GaussianNormalizer(SampleShape shape, float[] means, float[] standardDeviations)
        : this(shape, Check(shape, means, standardDeviations), standardDeviations, true)
    {
    }

    private GaussianNormalizer(SampleShape shape, float[] means, float[] standardDeviations, bool _)
        : base(shape, (float[])means.Clone(),
               standardDeviations.Select(s => s == 0 ? 0f : (float)(1.0 / s)).ToArray(),
               new float[means.Length],
               (float[])standardDeviations.Clone())
    {
        _means = (float[])means.Clone();
        _standardDeviations = (float[])standardDeviations.Clone();
    }

    /// <summary>Fits means and standard deviations on raw samples held row-major in <paramref name="data"/> (N * shape.Length floats).</summary>
    /// <exception cref="ArgumentException">No data, a partial sample, or a non-finite value (the message names the sample).</exception>
    public static GaussianNormalizer Fit(SampleShape shape, ReadOnlySpan<float> data) => From(shape, Statistics(shape, data));

    /// <summary>Fits means and standard deviations in one pass over raw samples (each <see cref="SampleShape.Length"/> floats,
    /// row-major) that need not fit in memory together; equal to <see cref="Fit(SampleShape, ReadOnlySpan{float})"/> on the same rows.</summary>
    /// <exception cref="ArgumentException">No data, a partial sample, or a non-finite value (the message names the sample).</exception>
    public static GaussianNormalizer Fit(SampleShape shape, IEnumerable<ReadOnlyMemory<float>> samples) => From(shape, Statistics(shape, samples));

    private static GaussianNormalizer From(SampleShape shape, FeatureStatistics statistics)
        => new(shape, statistics.Means, statistics.StandardDeviations);

    /// <summary>Fits means and standard deviations on a raw batch [N, ...shape].</summary>
    public static GaussianNormalizer Fit(SampleShape shape, Tensor data) => Fit(shape, TensorData(shape, data));

    /// <inheritdoc/>
    public override NormalizerKind Kind => NormalizerKind.Gaussian;

    /// <summary>The fitted per-feature mean.</summary>
    public IReadOnlyList<float> Means => _means;

    /// <summary>The fitted per-feature population standard deviation.</summary>
    public IReadOnlyList<float> StandardDeviations => _standardDeviations;

    /// <inheritdoc/>
    protected override void SaveStatistics(BinaryWriter writer)
    {
        WriteArray(writer, _means);
        WriteArray(writer, _standardDeviations);
    }

    internal static GaussianNormalizer LoadStatistics(SampleShape shape, BinaryReader reader)
    {
        var mean = ReadArray(reader, shape.FeatureCount, "means");
        var std = ReadArray(reader, shape.FeatureCount, "standard deviations");
        for (int f = 0; f < std.Length; f++)
        {
            if (std[f] < 0)
                throw new InvalidDataException($"The normaliser's standard deviation is negative at feature {f} ({std[f]}).");
        }
        return new GaussianNormalizer(shape, mean, std);
    }

    private static float[] Check(SampleShape shape, float[] means, float[] standardDeviations)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(means);
        ArgumentNullException.ThrowIfNull(standardDeviations);
        if (means.Length != shape.FeatureCount || standardDeviations.Length != shape.FeatureCount)
            throw new ArgumentException($"A normaliser for {shape} needs {shape.FeatureCount} means and standard deviations; got {means.Length} and {standardDeviations.Length}.");
        for (int f = 0; f < means.Length; f++)
        {
            if (!float.IsFinite(means[f]) || !float.IsFinite(standardDeviations[f]) || standardDeviations[f] < 0)
                throw new ArgumentException($"Feature {f} has an invalid mean {means[f]} or standard deviation {standardDeviations[f]}.");
        }
        return means;
    }
}
