using TorchSharp;
using TorchSharp.Modules;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Length-prefixed blocks inside a model stream: a TorchSharp module's weights (<c>module.save</c> format), an
/// optimiser's state, or raw bytes. A block that is truncated or does not fit the module it is loaded into gives an
/// <see cref="InvalidDataException"/> naming what was being read.
/// </summary>
public static class ModuleSerializer
{
    /// <summary>Writes <paramref name="module"/>'s parameters and buffers as one block.</summary>
    public static void WriteModule(BinaryWriter writer, torch.nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(module);
        using var buffer = new MemoryStream();
        using (var inner = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
            module.save(inner);
        WriteBlock(writer, buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
    }

    /// <summary>Loads a block written by <see cref="WriteModule"/> into <paramref name="module"/> (same architecture).</summary>
    public static void ReadModule(BinaryReader reader, torch.nn.Module module, string what)
    {
        ArgumentNullException.ThrowIfNull(module);
        var bytes = ReadBlock(reader, what);
        try
        {
            using var buffer = new MemoryStream(bytes, writable: false);
            using var inner = new BinaryReader(buffer);
            module.load(inner, strict: true);
            if (buffer.Position != buffer.Length)
                throw new InvalidDataException($"The {what} block holds {buffer.Length - buffer.Position} bytes more than the network reads.");
            CheckFinite(module, what);
        }
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"The {what} do not fit the network described by the model header: {e.Message}", e);
        }
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming the first parameter or buffer that holds NaN or infinity:
    /// such weights load without complaint and score every row as NaN.</summary>
    private static void CheckFinite(torch.nn.Module module, string what)
    {
        foreach (var (name, tensor) in module.named_parameters().Select(p => (p.name, (torch.Tensor)p.parameter)).Concat(module.named_buffers()))
        {
            if (!tensor.is_floating_point())
                continue;
            using var finite = tensor.isfinite().all();
            if (!finite.ToBoolean())
                throw new InvalidDataException($"The {what} hold NaN or infinite values (in '{name}'); a model with them would score every row as NaN.");
        }
    }

    /// <summary>Writes an optimiser's state (TorchSharp format) as one block.</summary>
    public static void WriteOptimizer(BinaryWriter writer, OptimizerHelper optimizer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(optimizer);
        using var buffer = new MemoryStream();
        using (var inner = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
            optimizer.save_state_dict(inner);
        WriteBlock(writer, buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
    }

    /// <summary>Loads a block written by <see cref="WriteOptimizer"/> into <paramref name="optimizer"/> (same parameters).</summary>
    public static void ReadOptimizer(BinaryReader reader, OptimizerHelper optimizer, string what)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        var bytes = ReadBlock(reader, what);
        try
        {
            using var buffer = new MemoryStream(bytes, writable: false);
            using var inner = new BinaryReader(buffer);
            optimizer.load_state_dict(inner);
        }
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"The {what} do not fit the optimiser: {e.Message}", e);
        }
    }

    /// <summary>Writes a length (int64) followed by <paramref name="bytes"/>.</summary>
    public static void WriteBlock(BinaryWriter writer, ReadOnlySpan<byte> bytes)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.Write((long)bytes.Length);
        writer.Write(bytes);
    }

    /// <summary>Reads a block written by <see cref="WriteBlock"/>, or throws <see cref="InvalidDataException"/> naming <paramref name="what"/>.</summary>
    public static byte[] ReadBlock(BinaryReader reader, string what)
    {
        ArgumentNullException.ThrowIfNull(reader);
        long length;
        try
        {
            length = reader.ReadInt64();
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"Truncated model data: expected the length of the {what}, found the end of the stream.", e);
        }
        if (length is < 0 or > int.MaxValue)
            throw new InvalidDataException($"Corrupted model data: the {what} claim a length of {length} bytes.");
        if (reader.BaseStream.CanSeek && reader.BaseStream.Length - reader.BaseStream.Position < length)
            throw new InvalidDataException($"Truncated model data: expected {length} bytes of {what}, found {reader.BaseStream.Length - reader.BaseStream.Position}.");
        return ModelHeader.ReadExactly(reader, (int)length, what);
    }
}
