// Persistence of torch-holding components inside ML.NET model files.

using System.Security.Cryptography;
using System.Text;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction
{
    /// <summary>
    /// Writes and reads one component's opaque payload (typically a TorchSharp module's <c>save(Stream)</c> output)
    /// as its own binary entry of an ML.NET model file, behind a small versioned header. A model file written by
    /// another library, by a newer format, or cut short then fails with an <see cref="InvalidDataException"/> that
    /// names the entry and says what was expected and what was found, instead of garbage weights or a torch error.
    /// </summary>
    /// <remarks>
    /// Use from a transformer's <c>ICanSaveModel.Save</c> and its <c>Create(IHostEnvironment, ModelLoadContext)</c>:
    /// <code>
    /// ComponentStream.Save(ctx, "TorchModel", "DiffusionDenoiser", 1, stream => module.save(stream));
    /// var module = ComponentStream.Load(ctx, "TorchModel", "DiffusionDenoiser", 1, 1, (stream, version) => ...);
    /// </code>
    /// </remarks>
    internal static class ComponentStream
    {
        /// <summary>The eight bytes every component entry starts with.</summary>
        internal static readonly byte[] Magic = Encoding.ASCII.GetBytes("MLRWCOMP");

        /// <summary>Layout of the header itself (not of the payload). Version 3 hashes the header with the payload, version 2
        /// the payload only, version 1 nothing; readers accept all three.</summary>
        internal const int HeaderVersion = 3;

        // *** Binary format *** (the whole zip entry; integers little-endian)
        // byte[8]:  magic "MLRWCOMP"
        // int:      header version (3; version 2 hashes only the payload, version 1 has no hash)
        // string:   component kind (BinaryWriter.Write(string): 7-bit encoded UTF-8 byte count, then the bytes)
        // int:      component format version, owned by the component
        // long:     payload length in bytes
        // byte[32]: SHA-256 of all the bytes above followed by the payload, checked before the payload is read: .NET's zip
        //           reader does not check an entry's CRC-32, and neither a damaged payload nor a damaged kind, version or
        //           length may load
        // byte[]:   payload (what the component wrote), exactly that many bytes, nothing after it

        /// <summary>
        /// Saves a component payload as the entry <paramref name="entryName"/> in the directory of
        /// <paramref name="ctx"/> (next to the component's main model stream).
        /// </summary>
        /// <param name="ctx">The save context of the component that owns the payload (repository mode).</param>
        /// <param name="entryName">Entry name, unique within the component's directory, e.g. "TorchModel".</param>
        /// <param name="componentKind">What the payload is, checked on load, e.g. "DiffusionDenoiser".</param>
        /// <param name="formatVersion">Version of the payload layout, checked on load.</param>
        /// <param name="writePayload">Writes the payload; the stream must not be closed by it.</param>
        internal static void Save(ModelSaveContext ctx, string entryName, string componentKind, int formatVersion, Action<Stream> writePayload)
        {
            Contracts.CheckValue(ctx, nameof(ctx));
            Contracts.CheckNonEmpty(entryName, nameof(entryName));
            ctx.SaveBinaryStream(entryName, writer => Write(writer.BaseStream, componentKind, formatVersion, writePayload));
        }

        /// <summary>
        /// Loads the payload saved by <see cref="Save"/> from the entry <paramref name="entryName"/> in the directory
        /// of <paramref name="ctx"/>, after checking the header.
        /// </summary>
        /// <typeparam name="T">What <paramref name="readPayload"/> builds.</typeparam>
        /// <param name="ctx">The load context of the component that owns the payload (repository mode).</param>
        /// <param name="entryName">The entry name given to <see cref="Save"/>.</param>
        /// <param name="componentKind">The component kind expected in the header.</param>
        /// <param name="oldestFormatVersion">Oldest payload format version this code reads.</param>
        /// <param name="newestFormatVersion">Newest payload format version this code reads.</param>
        /// <param name="readPayload">Reads the payload from a stream that ends where the payload ends; gets the
        /// payload's format version. It must consume the whole payload.</param>
        /// <exception cref="InvalidDataException">The entry is missing, foreign, of another kind or version,
        /// truncated, or has bytes the reader did not consume.</exception>
        /// <param name="warn">Receives a warning for an entry written without a hash (header version 1).</param>
        internal static T Load<T>(ModelLoadContext ctx, string entryName, string componentKind,
            int oldestFormatVersion, int newestFormatVersion, Func<Stream, int, T> readPayload, IHost? warn = null)
        {
            Contracts.CheckValue(ctx, nameof(ctx));
            Contracts.CheckNonEmpty(entryName, nameof(entryName));
            string where = string.IsNullOrEmpty(ctx.Directory) ? entryName : ctx.Directory.Replace('\\', '/') + "/" + entryName;
            T result = default!;
            bool found = ctx.TryLoadBinaryStream(entryName, reader =>
                result = Read(reader.BaseStream, where, componentKind, oldestFormatVersion, newestFormatVersion, readPayload,
                    warn is null ? null : message => { using var ch = warn.Start(nameof(ComponentStream)); ch.Warning(message); }));
            if (!found)
            {
                throw new InvalidDataException(
                    $"Model entry '{where}' is missing: expected the data of component '{componentKind}' there. " +
                    "The model file is incomplete or was not written by MLReward.");
            }
            return result;
        }

        /// <summary>Writes header and payload to <paramref name="destination"/> (the entry's stream).</summary>
        internal static void Write(Stream destination, string componentKind, int formatVersion, Action<Stream> writePayload)
        {
            Contracts.CheckValue(destination, nameof(destination));
            Contracts.CheckNonEmpty(componentKind, nameof(componentKind));
            Contracts.CheckParam(formatVersion >= 0, nameof(formatVersion), "must not be negative");
            Contracts.CheckValue(writePayload, nameof(writePayload));

            // The length precedes the payload and zip entry streams cannot seek back: buffer the payload.
            // ToArray works even if the writer closed the stream (TorchSharp's module.save(Stream) does).
            byte[] payload;
            using (var buffer = new MemoryStream())
            {
                writePayload(buffer);
                payload = buffer.ToArray();
            }

            var header = Header(HeaderVersion, componentKind, formatVersion, payload.Length);
            using var writer = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
            writer.Write(header);
            writer.Write(HashOf(header, payload));
            writer.Write(payload);
            writer.Flush();
        }

        /// <summary>The header's bytes up to the hash, as <see cref="Write"/> lays them out.</summary>
        private static byte[] Header(int headerVersion, string componentKind, int formatVersion, long length)
        {
            using var buffer = new MemoryStream();
            using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Magic);
                writer.Write(headerVersion);
                writer.Write(componentKind);
                writer.Write(formatVersion);
                writer.Write(length);
            }
            return buffer.ToArray();
        }

        private static byte[] HashOf(byte[] header, byte[] payload)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            sha.AppendData(header);
            sha.AppendData(payload);
            return sha.GetHashAndReset();
        }

        /// <summary>
        /// Reads what <see cref="Write"/> wrote from <paramref name="source"/>; <paramref name="where"/> names the
        /// entry in error messages.
        /// </summary>
        internal static T Read<T>(Stream source, string where, string componentKind,
            int oldestFormatVersion, int newestFormatVersion, Func<Stream, int, T> readPayload, Action<string>? warn = null)
        {
            Contracts.CheckValue(source, nameof(source));
            Contracts.CheckValue(readPayload, nameof(readPayload));

            var magic = new byte[Magic.Length];
            int got = ReadAtMost(source, magic);
            if (got < magic.Length || !magic.AsSpan().SequenceEqual(Magic))
            {
                throw new InvalidDataException(
                    $"Model entry '{where}' is not an MLReward component: expected it to start with '{Printable(Magic, Magic.Length)}', " +
                    $"found '{Printable(magic, got)}'{(got < magic.Length ? $" ({got} bytes in all)" : "")}. " +
                    $"The model file was written by another library or is corrupted.");
            }

            using var reader = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
            int headerVersion;
            string kind;
            int formatVersion;
            long length;
            byte[]? hash = null;
            try
            {
                headerVersion = reader.ReadInt32();
                if (headerVersion is < 1 or > HeaderVersion)
                {
                    throw new InvalidDataException(
                        $"Model entry '{where}' has component header version {headerVersion}; this version of MLReward reads " +
                        $"header versions 1 to {HeaderVersion}. The file was written by {(headerVersion > HeaderVersion ? "a newer" : "an unknown")} version.");
                }
                kind = reader.ReadString();
                formatVersion = reader.ReadInt32();
                length = reader.ReadInt64();
                if (headerVersion >= 2)
                {
                    hash = reader.ReadBytes(32);
                    if (hash.Length != 32)
                        throw new EndOfStreamException();
                }
            }
            catch (EndOfStreamException ex)
            {
                throw new InvalidDataException($"Model entry '{where}' is truncated: its component header is incomplete.", ex);
            }

            if (kind != componentKind)
            {
                throw new InvalidDataException(
                    $"Model entry '{where}' holds component '{kind}', expected '{componentKind}'.");
            }
            if (formatVersion < oldestFormatVersion || formatVersion > newestFormatVersion)
            {
                string range = oldestFormatVersion == newestFormatVersion
                    ? $"version {newestFormatVersion}" : $"versions {oldestFormatVersion} to {newestFormatVersion}";
                string who = formatVersion > newestFormatVersion ? "a newer" : "an older, no longer supported";
                throw new InvalidDataException(
                    $"Model entry '{where}' holds component '{kind}' in format version {formatVersion}; this version of " +
                    $"MLReward reads {range}. The file was written by {who} version of MLReward.");
            }
            if (length < 0)
                throw new InvalidDataException($"Model entry '{where}' is corrupted: negative payload length {length}.");

            BoundedReadStream payload;
            if (hash is null)
            {
                warn?.Invoke($"Model entry '{where}' ({kind}) was written before MLReward recorded a hash of each component, so damage " +
                    "to its bytes cannot be detected. It loads; save the model again to add one.");
                payload = new BoundedReadStream(source, length, where);
            }
            else
            {
                if (length > int.MaxValue)
                    throw new InvalidDataException($"Model entry '{where}' is corrupted: a payload of {length} bytes is larger than any component.");
                var bytes = new byte[length];
                new BoundedReadStream(source, length, where).ReadExactly(bytes);
                var actual = headerVersion >= 3 ? HashOf(Header(headerVersion, kind, formatVersion, length), bytes) : SHA256.HashData(bytes);
                if (!actual.AsSpan().SequenceEqual(hash))
                {
                    throw new InvalidDataException(
                        $"Model entry '{where}' is corrupted: the SHA-256 of its {(headerVersion >= 3 ? "header and " : "")}{length}-byte '{kind}' payload is " +
                        $"{Convert.ToHexString(actual)[..16]}..., the one recorded when it was saved is {Convert.ToHexString(hash)[..16]}.... " +
                        "The file was damaged after it was written.");
                }
                payload = new BoundedReadStream(new MemoryStream(bytes, writable: false), length, where);
            }
            T result = readPayload(payload, formatVersion);
            if (payload.Remaining > 0)
            {
                throw new InvalidDataException(
                    $"Model entry '{where}': component '{kind}' (format version {formatVersion}) read {length - payload.Remaining} of " +
                    $"its {length} payload bytes. The entry does not match what this version of MLReward expects.");
            }
            if (source.ReadByte() >= 0)
                throw new InvalidDataException($"Model entry '{where}' is corrupted: it has bytes after the {length}-byte payload.");
            return result;
        }

        private static int ReadAtMost(Stream source, byte[] buffer)
        {
            int total = 0;
            while (total < buffer.Length)
            {
                int n = source.Read(buffer, total, buffer.Length - total);
                if (n == 0)
                    break;
                total += n;
            }
            return total;
        }

        private static string Printable(byte[] bytes, int count)
        {
            var sb = new StringBuilder();
            for (int i = 0; i < count; i++)
                sb.Append(bytes[i] >= 0x20 && bytes[i] < 0x7F ? ((char)bytes[i]).ToString() : $"\\x{bytes[i]:X2}");
            return sb.ToString();
        }

        /// <summary>
        /// A read-only view of the next <c>length</c> bytes of a stream: the payload reader cannot run past its
        /// payload, and a payload cut short surfaces as <see cref="InvalidDataException"/>.
        /// </summary>
        private sealed class BoundedReadStream : Stream
        {
            private readonly Stream _inner;
            private readonly long _length;
            private readonly string _where;

            public BoundedReadStream(Stream inner, long length, string where)
            {
                _inner = inner;
                _length = length;
                _where = where;
                Remaining = length;
            }

            public long Remaining { get; private set; }

            public override bool CanRead => true;
            public override bool CanSeek => false;
            public override bool CanWrite => false;
            public override long Length => _length;
            public override long Position
            {
                get => _length - Remaining;
                set => throw new NotSupportedException("The payload stream cannot seek.");
            }

            public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

            public override int Read(Span<byte> buffer)
            {
                if (Remaining == 0 || buffer.Length == 0)
                    return 0;
                int n = _inner.Read(buffer[..(int)Math.Min(buffer.Length, Remaining)]);
                if (n == 0)
                {
                    throw new InvalidDataException(
                        $"Model entry '{_where}' is truncated: its header announces {_length} payload bytes, " +
                        $"the entry ends after {_length - Remaining}.");
                }
                Remaining -= n;
                return n;
            }

            public override void Flush() { }
            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("The payload stream cannot seek.");
            public override void SetLength(long value) => throw new NotSupportedException();
            public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        }
    }
}
