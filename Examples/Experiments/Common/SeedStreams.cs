using System.Security.Cryptography;
using System.Text;

namespace MLReward.Experiments;

/// <summary>
/// The seeds of one run, each derived from the run's seed and the name of what it seeds (and an index, such as a goal's), so
/// that no two stages share a random stream by accident and adding a stage never shifts another stage's draws.
/// </summary>
public readonly record struct SeedStreams(int Root)
{
    /// <summary>The seed of stream <paramref name="name"/> (number <paramref name="index"/>): the first 30 bits of
    /// SHA-256("root/name/index"), leaving room for per-episode offsets (seed + i) below int.MaxValue.</summary>
    public int For(string name, int index = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(FormattableString.Invariant($"{Root}/{name}/{index}")));
        return BitConverter.ToInt32(hash, 0) & 0x3FFFFFFF;
    }
}
