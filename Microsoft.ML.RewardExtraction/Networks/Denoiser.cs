using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// A network that maps a noisy batch x_t (shape [B, ...sample shape]) and its integer steps t ([B], int64) to a
/// prediction of the same shape as x_t: the clean sample x0 or the noise, as the owning model's
/// <see cref="PredictionTarget"/> says.
/// </summary>
public abstract class Denoiser : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Creates a denoiser for samples of <paramref name="shape"/>.</summary>
    protected Denoiser(string name, SampleShape shape) : base(name)
    {
        OneDnnWorkaround.EnsureSafeConvolutions();
        Shape = shape;
    }

    /// <summary>The shape of one sample.</summary>
    public SampleShape Shape { get; }
}

/// <summary>
/// A reward network R(x, t): maps a batch (shape [B, ...sample shape]) and its steps t ([B], int64) to one
/// scalar per sample ([B]). It must treat samples independently (no BatchNorm), so that the gradient of the
/// summed rewards is the per-sample gradient.
/// </summary>
public abstract class RewardNetwork : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Creates a reward network for samples of <paramref name="shape"/>.</summary>
    protected RewardNetwork(string name, SampleShape shape) : base(name)
    {
        OneDnnWorkaround.EnsureSafeConvolutions();
        Shape = shape;
    }

    /// <summary>The shape of one sample.</summary>
    public SampleShape Shape { get; }
}

/// <summary>What a denoiser predicts.</summary>
public enum PredictionTarget
{
    /// <summary>The clean sample x0 (Diffuser's default for trajectories).</summary>
    Start = 0,
    /// <summary>The noise epsilon added to x0.</summary>
    Noise = 1,
}
