using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>The identity map, for data that already lie in the model's space (e.g. images scaled to [-1, 1]) and for tests.</summary>
public sealed class IdentityNormalizer : Normalizer
{
    /// <summary>Creates the identity normaliser for samples of <paramref name="shape"/>.</summary>
    public IdentityNormalizer(SampleShape shape) : base(shape ?? throw new ArgumentNullException(nameof(shape)))
    {
    }

    /// <inheritdoc/>
    public override NormalizerKind Kind => NormalizerKind.Identity;

    /// <summary>Returns a float32 copy of <paramref name="raw"/> (never the same tensor, so callers may dispose either).</summary>
    public override Tensor Normalize(Tensor raw)
    {
        Shape.CheckBatch(raw, "Normalize");
        return raw.to(ScalarType.Float32, copy: true);
    }

    /// <summary>Returns a float32 copy of <paramref name="normalized"/>.</summary>
    public override Tensor Denormalize(Tensor normalized)
    {
        Shape.CheckBatch(normalized, "Denormalize");
        return normalized.to(ScalarType.Float32, copy: true);
    }

    /// <inheritdoc/>
    public override void Normalize(ReadOnlySpan<float> raw, Span<float> destination) => Copy(raw, destination);

    /// <inheritdoc/>
    public override void Denormalize(ReadOnlySpan<float> normalized, Span<float> destination) => Copy(normalized, destination);

    private void Copy(ReadOnlySpan<float> source, Span<float> destination)
    {
        if (source.Length % Shape.Length != 0)
            throw new ArgumentException($"Expected a whole number of {Shape} samples ({Shape.Length} floats each); got {source.Length} floats.");
        if (destination.Length != source.Length)
            throw new ArgumentException($"The destination holds {destination.Length} floats but the source holds {source.Length}.");
        source.CopyTo(destination);
    }

    /// <inheritdoc/>
    protected override void SaveStatistics(BinaryWriter writer)
    {
    }
}
