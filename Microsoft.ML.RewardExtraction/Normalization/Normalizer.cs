using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Maps raw samples to the space the diffusion model works in (and back), per feature: per transition dimension
/// for trajectories, per channel for images. Fitted on the base data; the expert data and everything scored
/// later go through the base model's normaliser, so both models and the reward share one space.
/// </summary>
public abstract class Normalizer
{
    /// <summary>Creates a normaliser for samples of <paramref name="shape"/>.</summary>
    protected Normalizer(SampleShape shape)
    {
        Shape = shape;
    }

    /// <summary>The shape of one sample.</summary>
    public SampleShape Shape { get; }

    /// <summary>Which kind of normaliser this is (the tag written by <see cref="Save"/>).</summary>
    public virtual NormalizerKind Kind => throw new NotSupportedException($"{GetType().Name} does not declare a normaliser kind.");

    /// <summary>Raw batch [B, ...shape] -> normalised batch.</summary>
    public abstract Tensor Normalize(Tensor raw);

    /// <summary>Normalised batch [B, ...shape] -> raw batch.</summary>
    public abstract Tensor Denormalize(Tensor normalized);

    /// <summary>Normalises raw samples held row-major in <paramref name="raw"/> (a whole number of samples) into
    /// <paramref name="destination"/> (same length; may be the same memory).</summary>
    public virtual void Normalize(ReadOnlySpan<float> raw, Span<float> destination)
        => throw new NotSupportedException($"{GetType().Name} does not support span normalisation.");

    /// <summary>Maps normalised samples held row-major in <paramref name="normalized"/> back to raw values in
    /// <paramref name="destination"/> (same length; may be the same memory).</summary>
    public virtual void Denormalize(ReadOnlySpan<float> normalized, Span<float> destination)
        => throw new NotSupportedException($"{GetType().Name} does not support span denormalisation.");

    /// <summary>Writes the kind tag, the shape and the fitted statistics.</summary>
    public void Save(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.Write((int)Kind);
        Shape.Save(writer);
        SaveStatistics(writer);
    }

    /// <summary>Writes the fitted statistics (everything after the kind tag and the shape).</summary>
    protected virtual void SaveStatistics(BinaryWriter writer)
        => throw new NotSupportedException($"{GetType().Name} cannot be saved.");

    /// <summary>Fits a normaliser of <paramref name="kind"/> on raw samples held row-major in <paramref name="data"/>
    /// (N * shape.Length floats).</summary>
    /// <exception cref="ArgumentException">No data, a partial sample, or a non-finite value (the message names the sample).</exception>
    public static Normalizer Fit(NormalizerKind kind, SampleShape shape, ReadOnlySpan<float> data) => kind switch
    {
        NormalizerKind.Identity => new IdentityNormalizer(shape),
        NormalizerKind.Limits => LimitsNormalizer.Fit(shape, data),
        NormalizerKind.Gaussian => GaussianNormalizer.Fit(shape, data),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown normaliser kind."),
    };

    /// <summary>Fits a normaliser of <paramref name="kind"/> on a raw batch [N, ...shape].</summary>
    public static Normalizer Fit(NormalizerKind kind, SampleShape shape, Tensor data) => kind switch
    {
        NormalizerKind.Identity => new IdentityNormalizer(shape),
        NormalizerKind.Limits => LimitsNormalizer.Fit(shape, data),
        NormalizerKind.Gaussian => GaussianNormalizer.Fit(shape, data),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown normaliser kind."),
    };

    /// <summary>Fits a normaliser of <paramref name="kind"/> in one pass over raw samples (each <see cref="SampleShape.Length"/>
    /// floats, row-major), e.g. rows streamed from a file larger than memory; the result equals the fit on the same rows held in
    /// an array. An identity normaliser reads nothing.</summary>
    /// <exception cref="ArgumentException">No data, a partial sample, or a non-finite value (the message names the sample).</exception>
    public static Normalizer Fit(NormalizerKind kind, SampleShape shape, IEnumerable<ReadOnlyMemory<float>> samples) => kind switch
    {
        NormalizerKind.Identity => new IdentityNormalizer(shape),
        NormalizerKind.Limits => LimitsNormalizer.Fit(shape, samples),
        NormalizerKind.Gaussian => GaussianNormalizer.Fit(shape, samples),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown normaliser kind."),
    };

    /// <summary>Whether two normalisers map raw data to the same space: the same kind, shape and statistics (their saved bytes
    /// are equal).</summary>
    public static bool SameMapping(Normalizer a, Normalizer b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (ReferenceEquals(a, b))
            return true;
        static byte[] Bytes(Normalizer n)
        {
            using var stream = new MemoryStream();
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
                n.Save(writer);
            return stream.ToArray();
        }
        return Bytes(a).AsSpan().SequenceEqual(Bytes(b));
    }

    /// <summary>Reads a normaliser written by <see cref="Save"/>, whatever its kind.</summary>
    /// <exception cref="InvalidDataException">The data are not a normaliser, are of an unknown kind, or are truncated.</exception>
    public static Normalizer Load(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        try
        {
            var kind = (NormalizerKind)reader.ReadInt32();
            if (!Enum.IsDefined(kind))
                throw new InvalidDataException($"Unknown normaliser kind {(int)kind} in model data (expected one of {string.Join(", ", Enum.GetNames<NormalizerKind>())}).");
            var shape = SampleShape.Load(reader);
            return kind switch
            {
                NormalizerKind.Identity => new IdentityNormalizer(shape),
                NormalizerKind.Limits => LimitsNormalizer.LoadStatistics(shape, reader),
                NormalizerKind.Gaussian => GaussianNormalizer.LoadStatistics(shape, reader),
                _ => throw new InvalidDataException($"Unknown normaliser kind {(int)kind} in model data."),
            };
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("The normaliser data are truncated.", e);
        }
    }
}

/// <summary>The normalisers the library can save and load.</summary>
public enum NormalizerKind
{
    /// <summary>No change: data already lie in the model's space (e.g. images scaled to [-1, 1]).</summary>
    Identity = 0,
    /// <summary>Per feature min/max mapped to [-1, 1] (Diffuser's LimitsNormalizer).</summary>
    Limits = 1,
    /// <summary>Per feature (x - mean) / std.</summary>
    Gaussian = 2,
}
