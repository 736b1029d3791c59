using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// A normaliser that is a per-feature affine map: <c>n = (x - shift_f) * factor_f + offset_f</c> and back
/// <c>x = (n - offset_f) * inverse_f + shift_f</c>. The tensor and span paths perform the same float32 operations
/// in the same order, so they agree bit for bit.
/// </summary>
public abstract class AffineNormalizer : Normalizer
{
    private readonly float[] _shift;
    private readonly float[] _factor;
    private readonly float[] _offset;
    private readonly float[] _inverse;
    private readonly object _cacheLock = new();
    private ParameterTensors? _cache;

    private sealed record ParameterTensors(DeviceType DeviceType, int DeviceIndex, Tensor Shift, Tensor Factor, Tensor Offset, Tensor Inverse);

    /// <summary>Creates the map from its per-feature coefficients (each of length <see cref="SampleShape.FeatureCount"/>).</summary>
    private protected AffineNormalizer(SampleShape shape, float[] shift, float[] factor, float[] offset, float[] inverse)
        : base(shape)
    {
        int f = shape.FeatureCount;
        if (shift.Length != f || factor.Length != f || offset.Length != f || inverse.Length != f)
            throw new ArgumentException($"A normaliser for {shape} needs {f} coefficients per feature.");
        _shift = shift;
        _factor = factor;
        _offset = offset;
        _inverse = inverse;
    }

    /// <inheritdoc/>
    public override Tensor Normalize(Tensor raw)
    {
        Shape.CheckBatch(raw, "Normalize");
        var p = Parameters(raw.device);
        return raw.to(ScalarType.Float32).sub(p.Shift).mul_(p.Factor).add_(p.Offset, Scalars.One);
    }

    /// <inheritdoc/>
    public override Tensor Denormalize(Tensor normalized)
    {
        Shape.CheckBatch(normalized, "Denormalize");
        var p = Parameters(normalized.device);
        return normalized.to(ScalarType.Float32).sub(p.Offset).mul_(p.Inverse).add_(p.Shift, Scalars.One);
    }

    /// <inheritdoc/>
    public override void Normalize(ReadOnlySpan<float> raw, Span<float> destination)
    {
        CheckSpans(raw.Length, destination.Length);
        Apply(raw, destination, _shift, _factor, _offset, inverse: false);
    }

    /// <inheritdoc/>
    public override void Denormalize(ReadOnlySpan<float> normalized, Span<float> destination)
    {
        CheckSpans(normalized.Length, destination.Length);
        Apply(normalized, destination, _shift, _inverse, _offset, inverse: true);
    }

    private void CheckSpans(int source, int destination)
    {
        if (source % Shape.Length != 0)
            throw new ArgumentException($"Expected a whole number of {Shape} samples ({Shape.Length} floats each); got {source} floats.");
        if (destination != source)
            throw new ArgumentException($"The destination holds {destination} floats but the source holds {source}.");
    }

    private void Apply(ReadOnlySpan<float> source, Span<float> destination, float[] shift, float[] factor, float[] offset, bool inverse)
    {
        int features = Shape.FeatureCount;
        // Trajectories: the feature is the last axis (stride 1). Images: the channel, one block of H*W per channel.
        int block = Shape.Kind == SampleShapeKind.Trajectory ? 1 : Shape.Length / features;
        int i = 0;
        while (i < source.Length)
        {
            for (int f = 0; f < features; f++)
            {
                float s = shift[f], a = factor[f], o = offset[f];
                var src = source.Slice(i, block);
                var dst = destination.Slice(i, block);
                if (inverse)
                {
                    for (int k = 0; k < block; k++)
                        dst[k] = (src[k] - o) * a + s;
                }
                else
                {
                    for (int k = 0; k < block; k++)
                        dst[k] = (src[k] - s) * a + o;
                }
                i += block;
            }
        }
    }

    private ParameterTensors Parameters(Device device)
    {
        lock (_cacheLock)
        {
            var cache = _cache;
            if (cache is not null && cache.DeviceType == device.type && cache.DeviceIndex == device.index)
                return cache;
            var shape = Shape.Kind == SampleShapeKind.Trajectory
                ? new long[] { Shape.FeatureCount }
                : new long[] { Shape.FeatureCount, 1, 1 };
            // The cached tensors outlive any dispose scope the caller has open.
            Tensor Make(float[] values) => tensor(values).reshape(shape).to(device).DetachFromDisposeScope();
            cache = new ParameterTensors(device.type, device.index, Make(_shift), Make(_factor), Make(_offset), Make(_inverse));
            _cache = cache;
            return cache;
        }
    }

    /// <summary>Writes a float array (length + values).</summary>
    private protected static void WriteArray(BinaryWriter writer, float[] values)
    {
        writer.Write(values.Length);
        foreach (var v in values)
            writer.Write(v);
    }

    /// <summary>Reads a float array written by <see cref="WriteArray"/>, checking its length.</summary>
    private protected static float[] ReadArray(BinaryReader reader, int expectedLength, string what)
    {
        int n = reader.ReadInt32();
        if (n != expectedLength)
            throw new InvalidDataException($"The normaliser's {what} hold {n} values; its shape needs {expectedLength}.");
        var values = new float[n];
        for (int i = 0; i < n; i++)
        {
            values[i] = reader.ReadSingle();
            if (!float.IsFinite(values[i]))
                throw new InvalidDataException($"The normaliser's {what} contain a non-finite value at feature {i}.");
        }
        return values;
    }

    /// <summary>The statistics of raw samples held row-major in <paramref name="data"/>.</summary>
    /// <exception cref="ArgumentException">No data, a partial sample, or a non-finite value (the message names the sample).</exception>
    private protected static FeatureStatistics Statistics(SampleShape shape, ReadOnlySpan<float> data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (data.Length == 0)
            throw new ArgumentException("A normaliser cannot be fitted on no data.", nameof(data));
        var statistics = new FeatureStatistics(shape);
        statistics.Add(data);
        return statistics;
    }

    /// <summary>The statistics of raw samples read one at a time from <paramref name="samples"/> (one pass).</summary>
    /// <exception cref="ArgumentException">No data, a partial sample, or a non-finite value (the message names the sample).</exception>
    private protected static FeatureStatistics Statistics(SampleShape shape, IEnumerable<ReadOnlyMemory<float>> samples)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(samples);
        var statistics = new FeatureStatistics(shape);
        foreach (var sample in samples)
            statistics.Add(sample.Span);
        if (statistics.Samples == 0)
            throw new ArgumentException("A normaliser cannot be fitted on no data.", nameof(samples));
        return statistics;
    }

    /// <summary>Copies a [N, ...shape] tensor to a float array after checking its shape.</summary>
    private protected static float[] TensorData(SampleShape shape, Tensor data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        shape.CheckBatch(data, "Normalizer fit");
        using var cpu = data.detach().to(ScalarType.Float32).cpu().contiguous();
        return cpu.data<float>().ToArray();
    }
}
