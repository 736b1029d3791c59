using System.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// A resumable snapshot of a training loop that uses an online module, an EMA shadow module, an optimiser and one
/// seeded <see cref="torch.Generator"/>: the completed step count, the generator's state, the recent losses (for the
/// progress average), the elapsed time, both modules' weights and the optimiser state. Resuming from it continues
/// bit for bit as if training had not stopped. The file starts with a <see cref="ModelHeader"/> ("TrainingCheckpoint")
/// and records a run description; loading into a run with another description throws, so a checkpoint is never
/// silently applied to different data or settings.
/// </summary>
public static class TrainingCheckpoint
{
    /// <summary>The component kind written in the header.</summary>
    public const string ComponentKind = "TrainingCheckpoint";

    /// <summary>The format version this library writes (and the newest it reads): 2, sealed with a hash; 1 had none.</summary>
    public const int FormatVersion = 2;

    private const int SealedFrom = 2;

    // *** Binary format *** (version 2)
    // ModelHeader sealed stream ("MLRW", 2, "TrainingCheckpoint", body length, SHA-256), whose body is:
    // string run description; int completed steps; long elapsed ticks; int n, double[n] recent losses; generator state
    // (block); online weights, EMA weights (ModuleSerializer blocks); optimiser state (block). Version 1: the same body
    // right after the header.

    /// <summary>Writes a checkpoint atomically (to a temporary file that then replaces <paramref name="path"/>).</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="run">A description of the run (settings, data size): must match on resume.</param>
    /// <param name="state">The loop's counters.</param>
    /// <param name="generator">The loop's random source.</param>
    /// <param name="online">The module being optimised.</param>
    /// <param name="shadow">The EMA module.</param>
    /// <param name="optimizer">The optimiser of <paramref name="online"/>.</param>
    public static void Save(string path, string run, TrainingCheckpointState state, torch.Generator generator, nn.Module online, nn.Module shadow, OptimizerHelper optimizer)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(generator);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
            Directory.CreateDirectory(directory);
        AtomicFile.Write(path, file => ModelHeader.WriteSealed(file, ComponentKind, FormatVersion, writer =>
        {
            writer.Write(run);
            writer.Write(state.CompletedSteps);
            writer.Write(state.Elapsed.Ticks);
            writer.Write(state.RecentLosses.Count);
            foreach (var loss in state.RecentLosses)
                writer.Write(loss);
            using (var generatorState = generator.get_state())
            using (var bytes = generatorState.to(ScalarType.Byte).contiguous())
                ModuleSerializer.WriteBlock(writer, bytes.data<byte>().ToArray());
            ModuleSerializer.WriteModule(writer, online);
            ModuleSerializer.WriteModule(writer, shadow);
            ModuleSerializer.WriteOptimizer(writer, optimizer);
        }));
    }

    /// <summary>Restores a checkpoint written by <see cref="Save"/> into the given generator, modules and optimiser.</summary>
    /// <returns>The loop's counters at the time of the checkpoint.</returns>
    /// <exception cref="InvalidDataException">Not a checkpoint, truncated, damaged (the hash does not match), holding non-finite
    /// weights, or written for another run (the message shows both run descriptions); the message names the file.</exception>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="run">The description of the run resuming: must equal the one saved.</param>
    /// <param name="generator">Receives the saved random state.</param>
    /// <param name="online">Receives the online weights.</param>
    /// <param name="shadow">Receives the EMA weights.</param>
    /// <param name="optimizer">Receives the optimiser state.</param>
    /// <param name="warning">Receives the warning given for a checkpoint written without a hash (version 1); null =
    /// <see cref="System.Diagnostics.Trace.TraceWarning(string)"/>.</param>
    public static TrainingCheckpointState Load(string path, string run, torch.Generator generator, nn.Module online, nn.Module shadow, OptimizerHelper optimizer,
        Action<string>? warning = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(generator);
        using var file = File.OpenRead(path);
        using var outer = new BinaryReader(file, Encoding.UTF8);
        SealedBody body;
        try
        {
            body = ModelHeader.ReadSealed(outer, ComponentKind, FormatVersion, SealedFrom);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Cannot resume from checkpoint '{Path.GetFullPath(path)}': {e.Message}", e);
        }
        using var _ = body;
        if (!body.Verified)
            ModelHeader.WarnUnverified("Training checkpoint", path, warning);
        var reader = body.Reader;
        try
        {
            string saved = reader.ReadString();
            if (saved != run)
                throw new InvalidDataException($"The checkpoint '{path}' was written for another run: expected [{run}], found [{saved}]. Delete it or point the checkpoint path elsewhere.");
            int completed = reader.ReadInt32();
            var elapsed = TimeSpan.FromTicks(reader.ReadInt64());
            int count = reader.ReadInt32();
            if (completed < 0 || count < 0 || count > 1_000_000)
                throw new InvalidDataException($"Corrupted checkpoint '{path}': step {completed}, {count} recent losses.");
            var losses = new double[count];
            for (int i = 0; i < count; i++)
                losses[i] = reader.ReadDouble();
            var generatorBytes = ModuleSerializer.ReadBlock(reader, "generator state");
            ModuleSerializer.ReadModule(reader, online, "online network weights");
            ModuleSerializer.ReadModule(reader, shadow, "EMA network weights");
            ModuleSerializer.ReadOptimizer(reader, optimizer, "optimiser state");
            body.CheckFullyRead(ComponentKind);
            using (var state = tensor(generatorBytes, ScalarType.Byte))
                generator.set_state(state);
            return new TrainingCheckpointState(completed, elapsed, losses);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"Truncated checkpoint '{path}'.", e);
        }
        catch (InvalidDataException e) when (!e.Message.Contains(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"Cannot resume from checkpoint '{Path.GetFullPath(path)}': {e.Message}", e);
        }
    }
}

/// <summary>The counters of a training loop saved in a <see cref="TrainingCheckpoint"/>.</summary>
/// <param name="CompletedSteps">Optimiser steps done.</param>
/// <param name="Elapsed">Training time spent so far.</param>
/// <param name="RecentLosses">The losses of the last steps (oldest first), for the progress average.</param>
public sealed record TrainingCheckpointState(int CompletedSteps, TimeSpan Elapsed, IReadOnlyList<double> RecentLosses);
