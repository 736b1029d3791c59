using TorchSharp;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Seeded randomness. torch's default generator is process-wide, so module initialisation (which draws from it)
/// runs under one lock with the seed set first; everything else draws from an explicit <see cref="torch.Generator"/>.
/// </summary>
public static class TorchRandom
{
    private static readonly object InitLock = new();

    /// <summary>Runs <paramref name="create"/> (typically a module constructor) with torch's global seed set to <paramref name="seed"/>.</summary>
    public static T Initialize<T>(long seed, Func<T> create)
    {
        lock (InitLock)
        {
            torch.manual_seed(seed);
            return create();
        }
    }

    /// <summary>A CPU generator seeded with <paramref name="seed"/>.</summary>
    public static torch.Generator Generator(long seed) => new torch.Generator((ulong)seed);
}
