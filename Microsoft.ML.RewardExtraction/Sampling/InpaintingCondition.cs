using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Known entries of a batch (e.g. the first observation, the goal) that are written over the sample after every
/// reverse step and over the noisy inputs in training: Diffuser's conditioning by inpainting.
/// </summary>
public sealed class InpaintingCondition
{
    /// <summary>Creates a condition from values and a mask of the batch's shape (mask true = known).</summary>
    /// <param name="values">Known values, shape [B, ...sample shape]; entries where the mask is false are ignored.</param>
    /// <param name="mask">Boolean (or 0/1 float) tensor of the same shape.</param>
    public InpaintingCondition(Tensor values, Tensor mask)
    {
        if (!values.shape.SequenceEqual(mask.shape))
            throw new ArgumentException($"Condition values have shape [{string.Join(", ", values.shape)}] but the mask has [{string.Join(", ", mask.shape)}].");
        Values = values;
        Mask = mask.dtype == ScalarType.Bool ? mask : mask.ne(0);
    }

    /// <summary>Known values.</summary>
    public Tensor Values { get; }

    /// <summary>Boolean mask, true where the value is known.</summary>
    public Tensor Mask { get; }

    /// <summary>Returns <paramref name="sample"/> with the known entries overwritten.</summary>
    public Tensor Apply(Tensor sample) => where(Mask, Values, sample);
}
