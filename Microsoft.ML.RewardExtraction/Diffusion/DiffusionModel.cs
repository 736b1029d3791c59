using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// A trained diffusion model: its sample shape, its forward/reverse process, the denoiser weights used for
/// sampling and evaluation (the EMA weights after training), and the normaliser of its training data.
/// </summary>
public sealed partial class DiffusionModel : IDisposable
{
    /// <summary>Assembles a model from its parts (the denoiser's shape must equal <paramref name="shape"/>).</summary>
    public DiffusionModel(SampleShape shape, GaussianDiffusion diffusion, Denoiser denoiser, Normalizer normalizer)
    {
        if (!denoiser.Shape.Equals(shape))
            throw new ArgumentException($"The denoiser is built for {denoiser.Shape} but the model's shape is {shape}.", nameof(denoiser));
        if (!normalizer.Shape.Equals(shape))
            throw new ArgumentException($"The normaliser is fitted for {normalizer.Shape} but the model's shape is {shape}.", nameof(normalizer));
        Shape = shape;
        Diffusion = diffusion;
        Denoiser = denoiser;
        Normalizer = normalizer;
    }

    /// <summary>The shape of one sample.</summary>
    public SampleShape Shape { get; }

    /// <summary>The schedule and process (T, prediction target, clamp).</summary>
    public GaussianDiffusion Diffusion { get; }

    /// <summary>The denoiser used for sampling and evaluation (EMA weights).</summary>
    public Denoiser Denoiser { get; }

    /// <summary>The normaliser fitted on this model's training data.</summary>
    public Normalizer Normalizer { get; }

    /// <summary>mu(x_t, t): the reverse-process mean for a normalised batch x_t at steps t.</summary>
    public Tensor ReverseMean(Tensor current, Tensor t) => Diffusion.ReverseMean(Denoiser, current, t);

    /// <summary>The model's estimate of x0 from a normalised batch x_t at steps t (clamped when the model clamps).</summary>
    public Tensor EstimateStart(Tensor current, Tensor t) => Diffusion.EstimateStart(Denoiser.call(current, t), current, t);

    /// <inheritdoc/>
    public void Dispose()
    {
        Denoiser.Dispose();
        Diffusion.Dispose();
    }
}
