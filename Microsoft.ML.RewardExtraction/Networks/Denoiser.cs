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
/// <remarks>
/// Any subclass trains, saves and loads like the built-in ones. Saving writes <see cref="ArchitectureName"/>, the type,
/// the shape, what <see cref="SaveArchitecture"/> writes, the dtype and the weights; loading (and the trainer's EMA copy)
/// rebuilds an untrained network through <see cref="RewardNetworkRegistry"/>: the loader registered under the name, or else
/// the type's public constructor <c>(SampleShape shape, BinaryReader architecture)</c>, which reads back what
/// <see cref="SaveArchitecture"/> wrote. Construct parameters in the same order every time so the weights load by name.
/// </remarks>
public abstract class RewardNetwork : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Creates a reward network for samples of <paramref name="shape"/>.</summary>
    protected RewardNetwork(string name, SampleShape shape) : base(name)
    {
        OneDnnWorkaround.EnsureSafeConvolutions();
        Shape = shape ?? throw new ArgumentNullException(nameof(shape));
    }

    /// <summary>The shape of one sample.</summary>
    public SampleShape Shape { get; }

    /// <summary>The architecture's name in model files, the key of <see cref="RewardNetworkRegistry"/>. Default: the type's
    /// full name.</summary>
    public virtual string ArchitectureName => GetType().FullName ?? GetType().Name;

    /// <summary>A one-line description of the hyperparameters, for logs and checkpoint run descriptions. Default: none.</summary>
    public virtual string ArchitectureDescription => "";

    /// <summary>Writes the hyperparameters an untrained copy needs, beyond the shape and dtype (which the library writes).
    /// Default: nothing.</summary>
    public virtual void SaveArchitecture(BinaryWriter writer)
    {
    }
}

/// <summary>What a denoiser predicts.</summary>
public enum PredictionTarget
{
    /// <summary>The clean sample x0 (Diffuser's default for trajectories).</summary>
    Start = 0,
    /// <summary>The noise epsilon added to x0.</summary>
    Noise = 1,
}
