using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The transformer-style embedding of a diffusion step: with <c>half = dim / 2</c> and
/// <c>scale = ln(10000) / (half - 1)</c>, frequencies <c>f_i = exp(-i * scale)</c>, the output for step t is
/// <c>[sin(t f_0), ..., sin(t f_{half-1}), cos(t f_0), ..., cos(t f_{half-1})]</c>. Maps [B] steps to [B, dim].
/// Has no parameters.
/// </summary>
public sealed class SinusoidalPositionEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly FrequencyCache _frequencies;

    /// <summary>Creates the embedding of width <paramref name="dimension"/> (even, at least 4).</summary>
    public SinusoidalPositionEmbedding(int dimension) : base(nameof(SinusoidalPositionEmbedding))
    {
        if (dimension < 4 || dimension % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "The sinusoidal embedding width must be even and at least 4.");
        Dimension = dimension;
        _frequencies = new FrequencyCache(dimension / 2);
        RegisterComponents();
    }

    /// <summary>The embedding width.</summary>
    public int Dimension { get; }

    /// <summary>Embeds steps <paramref name="t"/> ([B], any numeric type) as [B, dim] float32.</summary>
    public override Tensor forward(Tensor t)
    {
        var frequencies = _frequencies.On(t.device);
        using var args = t.to(ScalarType.Float32).unsqueeze(1).mul(frequencies.unsqueeze(0));
        using var sin = args.sin();
        using var cos = args.cos();
        return cat(new[] { sin, cos }, 1);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _frequencies.Dispose();
        base.Dispose(disposing);
    }

    // Not a field of type Tensor, so RegisterComponents does not turn it into a saved buffer.
    private sealed class FrequencyCache(int half) : IDisposable
    {
        private readonly object _lock = new();
        private Tensor? _tensor;

        public Tensor On(Device device)
        {
            lock (_lock)
            {
                if (_tensor is not null && _tensor.device_type == device.type && _tensor.device_index == device.index)
                    return _tensor;
                _tensor?.Dispose();
                // exp(-i * ln(10000) / (half - 1)) computed in float32, as the reference implementation does.
                double scale = Math.Log(10000) / (half - 1);
                var frequencies = arange(half, ScalarType.Float32, device);
                frequencies.mul_(-scale).exp_();
                _tensor = frequencies.DetachFromDisposeScope();
                return _tensor;
            }
        }

        public void Dispose()
        {
            lock (_lock)
            {
                _tensor?.Dispose();
                _tensor = null;
            }
        }
    }
}
