using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Layer constructors that work around TorchSharp 0.107.0 defects.</summary>
public static class Layers
{
    /// <summary>
    /// <c>nn.GroupNorm</c> with PyTorch's initialisation (weight 1, bias 0). TorchSharp 0.107.0 allocates the affine
    /// parameters with <c>torch.empty</c> and never initialises them, so a plain <c>nn.GroupNorm</c> starts from
    /// whatever memory it got (zeros, huge values or NaN).
    /// </summary>
    public static GroupNorm GroupNorm(long groups, long channels, double eps = 1e-5)
    {
        var norm = nn.GroupNorm(groups, channels, eps);
        using (no_grad())
        {
            norm.weight!.fill_(1);
            norm.bias!.zero_();
        }
        return norm;
    }
}
