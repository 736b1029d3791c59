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

    /// <summary>Raw batch [B, ...shape] -> normalised batch.</summary>
    public abstract Tensor Normalize(Tensor raw);

    /// <summary>Normalised batch [B, ...shape] -> raw batch.</summary>
    public abstract Tensor Denormalize(Tensor normalized);
}
