using System.Text;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The header every MLReward model stream starts with: the magic bytes "MLRW", the component's format version
/// (int32) and the component kind (int32 length + ASCII, e.g. "DiffusionModel"). Reading checks all three and
/// throws <see cref="InvalidDataException"/> naming what was expected and what was found.
/// </summary>
public static class ModelHeader
{
    /// <summary>The four magic bytes, "MLRW".</summary>
    public static ReadOnlySpan<byte> Magic => "MLRW"u8;

    private const int MaxKindLength = 64;

    /// <summary>Writes the header for a component of <paramref name="kind"/> in format <paramref name="version"/>.</summary>
    public static void Write(BinaryWriter writer, string kind, int version)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentException.ThrowIfNullOrEmpty(kind);
        if (kind.Length > MaxKindLength || kind.Any(c => c is < ' ' or > '~'))
            throw new ArgumentException($"A component kind is 1 to {MaxKindLength} printable ASCII characters; got \"{kind}\".", nameof(kind));
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);
        writer.Write(Magic);
        writer.Write(version);
        writer.Write(kind.Length);
        writer.Write(Encoding.ASCII.GetBytes(kind));
    }

    /// <summary>Reads and checks a header; returns the format version found (1 to <paramref name="maxVersion"/>).</summary>
    /// <exception cref="InvalidDataException">Not an MLReward stream, another component kind, an unsupported version,
    /// or truncated data.</exception>
    public static int Read(BinaryReader reader, string expectedKind, int maxVersion)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentException.ThrowIfNullOrEmpty(expectedKind);
        var magic = ReadExactly(reader, 4, $"the MLReward header of a {expectedKind}");
        if (!magic.AsSpan().SequenceEqual(Magic))
            throw new InvalidDataException($"Not an MLReward model stream: expected the magic bytes \"MLRW\" of a {expectedKind}, found {Describe(magic)}.");
        int version = ReadInt32(reader, $"the format version of a {expectedKind}");
        int length = ReadInt32(reader, $"the component kind of a {expectedKind}");
        if (length is < 1 or > MaxKindLength)
            throw new InvalidDataException($"Corrupted MLReward header: expected a component kind of 1 to {MaxKindLength} characters (\"{expectedKind}\"), found a length of {length}.");
        var kindBytes = ReadExactly(reader, length, $"the component kind of a {expectedKind}");
        if (kindBytes.Any(b => b is < (byte)' ' or > (byte)'~'))
            throw new InvalidDataException($"Corrupted MLReward header: expected the component kind \"{expectedKind}\", found non-text bytes {Describe(kindBytes)}.");
        string kind = Encoding.ASCII.GetString(kindBytes);
        if (kind != expectedKind)
            throw new InvalidDataException($"Wrong model kind: expected a \"{expectedKind}\", found a \"{kind}\".");
        if (version < 1 || version > maxVersion)
            throw new InvalidDataException($"Unsupported {expectedKind} format version: this library reads versions 1 to {maxVersion}, found version {version}{(version > maxVersion ? " (written by a newer library)" : "")}.");
        return version;
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes or throws <see cref="InvalidDataException"/> naming <paramref name="what"/>.</summary>
    public static byte[] ReadExactly(BinaryReader reader, int count, string what)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var bytes = reader.ReadBytes(count);
        if (bytes.Length != count)
            throw new InvalidDataException($"Truncated model data: expected {count} bytes of {what}, found {bytes.Length}.");
        return bytes;
    }

    private static int ReadInt32(BinaryReader reader, string what) => BitConverter.ToInt32(ReadExactly(reader, 4, what));

    private static string Describe(byte[] bytes)
    {
        bool printable = bytes.All(b => b is >= (byte)' ' and <= (byte)'~');
        return printable ? $"\"{Encoding.ASCII.GetString(bytes)}\"" : "0x" + Convert.ToHexString(bytes);
    }
}
