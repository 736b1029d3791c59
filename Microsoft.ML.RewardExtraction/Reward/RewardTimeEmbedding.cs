using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>How a reward network embeds the diffusion step t.</summary>
public enum RewardTimeEmbeddingKind
{
    /// <summary>Sinusoidal features followed by a small learned MLP: sinusoidal(d) -> Linear(hidden) -> activation -> Linear(d) (docs/METHOD.md section 6).</summary>
    Learned = 0,
    /// <summary>The raw sinusoidal features of width d, no parameters (the benchmark reference's state reward).</summary>
    Sinusoidal = 1,
}

/// <summary>The nonlinearity of a reward network's hidden layers.</summary>
public enum RewardActivation
{
    /// <summary>Mish, x tanh(softplus(x)): smooth, so the input gradient that the objective regresses is smooth too.</summary>
    Mish = 0,
    /// <summary>LeakyReLU with slope 0.01: the input gradient is piecewise constant in x.</summary>
    LeakyReLU = 1,
    /// <summary>SiLU (swish), x sigmoid(x).</summary>
    SiLU = 2,
}

/// <summary>
/// The time embedding used by the reward networks: sinusoidal features of an integer step t (half sines, half
/// cosines, frequencies exp(-i ln(10000) / (d/2 - 1)) as in Diffuser), optionally followed by a learned MLP.
/// The frequencies are recomputed per call in the dtype and on the device of the caller, so the module has no
/// buffers and follows <c>to(dtype)</c> without surprises.
/// </summary>
internal sealed class RewardTimeEmbedding : nn.Module<Tensor, ScalarType, Tensor>
{
    private readonly int _dimension;
    private readonly Linear? _hidden;
    private readonly Linear? _output;
    private readonly RewardActivation _activation;

    public RewardTimeEmbedding(RewardTimeEmbeddingKind kind, int dimension, int hiddenWidth, RewardActivation activation)
        : base("time_embedding")
    {
        if (dimension < 4 || dimension % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "The sinusoidal time embedding needs an even width of at least 4.");
        _dimension = dimension;
        _activation = activation;
        if (kind == RewardTimeEmbeddingKind.Learned)
        {
            if (hiddenWidth < 1)
                throw new ArgumentOutOfRangeException(nameof(hiddenWidth), hiddenWidth, "The time embedding's hidden width must be positive.");
            _hidden = nn.Linear(dimension, hiddenWidth);
            _output = nn.Linear(hiddenWidth, dimension);
        }
        RegisterComponents();
    }

    /// <summary>Width of the embedding this module returns.</summary>
    public int OutputDimension => _dimension;

    /// <summary>t [B] (integer) -> [B, d] in <paramref name="dtype"/>.</summary>
    public override Tensor forward(Tensor t, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var features = Sinusoidal(t, _dimension, dtype);
        if (_hidden is not null && _output is not null)
            features = _output.call(Activate(_hidden.call(features), _activation));
        return features.MoveToOuterDisposeScope();
    }

    /// <summary>The raw sinusoidal features [B, d] of integer steps t [B].</summary>
    public static Tensor Sinusoidal(Tensor t, int dimension, ScalarType dtype)
    {
        int half = dimension / 2;
        double scale = Math.Log(10000) / (half - 1);
        using var frequencies = arange(half, dtype: dtype, device: t.device).mul_(-scale).exp_();
        using var args = t.to_type(dtype).unsqueeze(1) * frequencies.unsqueeze(0);
        using var sin = args.sin();
        using var cos = args.cos();
        return cat(new[] { sin, cos }, 1);
    }

    /// <summary>Applies a reward activation.</summary>
    public static Tensor Activate(Tensor x, RewardActivation activation) => activation switch
    {
        RewardActivation.Mish => nn.functional.mish(x),
        RewardActivation.LeakyReLU => nn.functional.leaky_relu(x, 0.01),
        RewardActivation.SiLU => nn.functional.silu(x),
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, "Unknown activation."),
    };

    /// <summary>GroupNorm over <paramref name="channels"/> with <see cref="GroupCount"/> groups, initialised as PyTorch does
    /// (weight 1, bias 0): TorchSharp 0.107.0's nn.GroupNorm leaves its affine parameters uninitialised (torch.empty).</summary>
    public static GroupNorm NewGroupNorm(int channels)
    {
        var norm = nn.GroupNorm(GroupCount(channels), channels);
        using (no_grad())
        {
            norm.weight!.fill_(1);
            norm.bias!.zero_();
        }
        return norm;
    }

    /// <summary>The largest group count of at most 8 that divides <paramref name="channels"/> (GroupNorm needs one).</summary>
    public static int GroupCount(int channels)
    {
        for (int g = Math.Min(8, channels); g > 1; g--)
        {
            if (channels % g == 0)
                return g;
        }
        return 1;
    }
}
