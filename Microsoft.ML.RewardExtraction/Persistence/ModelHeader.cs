using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The header every MLReward model stream starts with: the magic bytes "MLRW", the component's format version
/// (int32) and the component kind (int32 length + ASCII, e.g. "DiffusionModel"). Reading checks all three and
/// throws <see cref="InvalidDataException"/> naming what was expected and what was found.
/// <para>
/// Sealed streams (<see cref="WriteSealed"/>, the formats a component writes today) follow the header with the body's length
/// and a SHA-256 of header, length and body, checked before any of the body is parsed: a damaged byte anywhere, including
/// in weights that would still parse, fails the load instead of changing the model.
/// </para>
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

    // *** Binary format of a sealed stream *** (integers little-endian)
    // byte[4]:  "MLRW"
    // int:      format version
    // int:      length of the component kind, then its ASCII bytes
    // long:     body length in bytes
    // byte[32]: SHA-256 of everything above (magic through body length) followed by the body
    // byte[]:   body (what the component writes after its header)

    /// <summary>Writes a sealed stream: the header, then the body written by <paramref name="writeBody"/> with its length and
    /// hash (see the format above). The body is buffered to hash it before anything reaches <paramref name="stream"/>.</summary>
    public static void WriteSealed(Stream stream, string kind, int version, Action<BinaryWriter> writeBody)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(writeBody);
        using var body = new MemoryStream();
        using (var bodyWriter = new BinaryWriter(body, Encoding.UTF8, leaveOpen: true))
        {
            writeBody(bodyWriter);
            bodyWriter.Flush();
        }
        var prefix = SealedPrefix(kind, version, body.Length);
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(prefix);
        writer.Write(Hash(prefix, body.GetBuffer().AsSpan(0, (int)body.Length)));
        writer.Write(body.GetBuffer(), 0, (int)body.Length);
        writer.Flush();
    }

    /// <summary>
    /// Reads a header and, for versions from <paramref name="sealedFrom"/> on, the sealed body, whose hash is checked before it
    /// is returned. Older versions carry no hash: their body is read from <paramref name="reader"/> itself and
    /// <see cref="SealedBody.Verified"/> is false.
    /// </summary>
    /// <param name="reader">Positioned at the header.</param>
    /// <param name="expectedKind">The component kind expected.</param>
    /// <param name="maxVersion">The newest format version this library reads.</param>
    /// <param name="sealedFrom">The first format version written sealed.</param>
    /// <exception cref="InvalidDataException">A header error (see <see cref="Read"/>), a truncated body, or a hash that does
    /// not match: the message names the component and both hashes.</exception>
    public static SealedBody ReadSealed(BinaryReader reader, string expectedKind, int maxVersion, int sealedFrom)
    {
        int version = Read(reader, expectedKind, maxVersion);
        if (version < sealedFrom)
            return new SealedBody(version, reader, verified: false);
        long length = BitConverter.ToInt64(ReadExactly(reader, 8, $"the body length of a {expectedKind}"));
        if (length is < 0 or > int.MaxValue)
            throw new InvalidDataException($"Corrupted {expectedKind} data: the body claims a length of {length} bytes.");
        var recorded = ReadExactly(reader, 32, $"the SHA-256 of a {expectedKind}");
        var body = ReadExactly(reader, (int)length, $"the body of a {expectedKind}");
        var actual = Hash(SealedPrefix(expectedKind, version, length), body);
        if (!actual.AsSpan().SequenceEqual(recorded))
            throw new InvalidDataException($"Corrupted {expectedKind} data: the SHA-256 of its header and {length}-byte body is " +
                $"{Convert.ToHexString(actual)[..16]}..., the one recorded when it was saved is {Convert.ToHexString(recorded)[..16]}.... " +
                "The bytes were damaged after they were written.");
        return new SealedBody(version, new BinaryReader(new MemoryStream(body, writable: false), Encoding.UTF8), verified: true);
    }

    /// <summary>The warning given when a file without a hash is loaded: through <paramref name="warning"/>, or
    /// <see cref="Trace.TraceWarning(string)"/> when none is given.</summary>
    internal static void WarnUnverified(string what, string path, Action<string>? warning)
    {
        string message = $"{what} '{path}' was written before MLReward recorded a hash of each file, so damage to its bytes cannot be " +
            "detected. It loads; save it again to add one.";
        if (warning is null)
            Trace.TraceWarning(message);
        else
            warning(message);
    }

    private static byte[] SealedPrefix(string kind, int version, long bodyLength)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            Write(writer, kind, version);
            writer.Write(bodyLength);
        }
        return buffer.ToArray();
    }

    private static byte[] Hash(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> body)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(prefix);
        sha.AppendData(body);
        return sha.GetHashAndReset();
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

/// <summary>The body of a stream read by <see cref="ModelHeader.ReadSealed"/>: the format version, a reader positioned at the
/// body, and whether the body's hash was checked. Disposing it releases a verified body's buffer (never the caller's reader).</summary>
public sealed class SealedBody : IDisposable
{
    internal SealedBody(int version, BinaryReader reader, bool verified)
    {
        Version = version;
        Reader = reader;
        Verified = verified;
    }

    /// <summary>The format version found.</summary>
    public int Version { get; }

    /// <summary>Reads the body.</summary>
    public BinaryReader Reader { get; }

    /// <summary>Whether a hash covered the body (false for versions written before streams were sealed).</summary>
    public bool Verified { get; }

    /// <summary>Throws <see cref="InvalidDataException"/> when a verified body holds bytes its component did not read.</summary>
    public void CheckFullyRead(string kind)
    {
        if (Verified && Reader.BaseStream.Position != Reader.BaseStream.Length)
            throw new InvalidDataException($"The {kind} body holds {Reader.BaseStream.Length - Reader.BaseStream.Position} bytes more than this library reads.");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Verified)
            Reader.Dispose();
    }
}
