using TorchSharp;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Long-lived <see cref="Scalar"/>s for hot paths. TorchSharp 0.107.0's one-argument <c>add_(Tensor)</c> passes an
/// implicitly created alpha Scalar to native code and never keeps it alive: a garbage
/// collection during the call can let the finalizer free it mid-call ("Expected false to be true" from
/// <c>Scalar::toFloat</c>, seen once in ~10^6 calls of a 25-minute training run). Passing one of these instead closes
/// that window.
/// </summary>
internal static class Scalars
{
    /// <summary>1, for <c>add_(t, Scalars.One)</c>.</summary>
    public static readonly Scalar One = 1.ToScalar();
}
