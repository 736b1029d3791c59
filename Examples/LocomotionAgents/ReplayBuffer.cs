using static TorchSharp.torch;

namespace MLReward.LocomotionAgents;

/// <summary>One minibatch of transitions as tensors: observation [B, O], action [B, A], reward [B], next observation [B, O], terminal [B] (1 when the episode terminated, not when it was truncated).</summary>
public sealed record TransitionBatch(Tensor Observation, Tensor Action, Tensor Reward, Tensor NextObservation, Tensor Terminal);

/// <summary>
/// Ring buffer of transitions (s, a, r, s', terminal) held in flat float arrays; storage grows on demand up to
/// <see cref="Capacity"/> so a large capacity costs nothing until it is used.
/// </summary>
public sealed class ReplayBuffer
{
    private const uint Magic = 0x42524C4D; // "MLRB"
    private const int FormatVersion = 1;
    private float[] observations = [];
    private float[] actions = [];
    private float[] rewards = [];
    private float[] nextObservations = [];
    private float[] terminals = [];
    private int next;

    /// <summary>Creates an empty buffer.</summary>
    public ReplayBuffer(int observationSize, int actionSize, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(observationSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(actionSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ObservationSize = observationSize;
        ActionSize = actionSize;
        Capacity = capacity;
    }

    /// <summary>Observation length.</summary>
    public int ObservationSize { get; }

    /// <summary>Action length.</summary>
    public int ActionSize { get; }

    /// <summary>Most transitions kept (oldest overwritten first).</summary>
    public int Capacity { get; }

    /// <summary>Transitions held.</summary>
    public int Count { get; private set; }

    private void Reserve(int size)
    {
        int allocated = rewards.Length;
        if (size <= allocated)
            return;
        int grown = (int)Math.Min(Capacity, Math.Max(size, Math.Max(4096L, 2L * allocated)));
        Array.Resize(ref observations, grown * ObservationSize);
        Array.Resize(ref actions, grown * ActionSize);
        Array.Resize(ref rewards, grown);
        Array.Resize(ref nextObservations, grown * ObservationSize);
        Array.Resize(ref terminals, grown);
    }

    /// <summary>Stores one transition.</summary>
    public void Add(ReadOnlySpan<float> observation, ReadOnlySpan<float> action, float reward, ReadOnlySpan<float> nextObservation, bool terminal)
    {
        if (observation.Length != ObservationSize || nextObservation.Length != ObservationSize || action.Length != ActionSize)
            throw new ArgumentException("Transition sizes do not match the buffer.");
        Reserve(next + 1);
        observation.CopyTo(observations.AsSpan(next * ObservationSize, ObservationSize));
        action.CopyTo(actions.AsSpan(next * ActionSize, ActionSize));
        rewards[next] = reward;
        nextObservation.CopyTo(nextObservations.AsSpan(next * ObservationSize, ObservationSize));
        terminals[next] = terminal ? 1f : 0f;
        next = (next + 1) % Capacity;
        Count = Math.Min(Count + 1, Capacity);
    }

    /// <summary>Draws <paramref name="batchSize"/> transitions uniformly with replacement; the tensors belong to the caller's dispose scope.</summary>
    public TransitionBatch Sample(int batchSize, Random random)
    {
        if (Count == 0)
            throw new InvalidOperationException("The replay buffer is empty.");
        int o = ObservationSize, a = ActionSize;
        var obs = new float[batchSize * o];
        var act = new float[batchSize * a];
        var rew = new float[batchSize];
        var nobs = new float[batchSize * o];
        var term = new float[batchSize];
        for (int b = 0; b < batchSize; b++)
        {
            int i = random.Next(Count);
            Array.Copy(observations, i * o, obs, b * o, o);
            Array.Copy(actions, i * a, act, b * a, a);
            rew[b] = rewards[i];
            Array.Copy(nextObservations, i * o, nobs, b * o, o);
            term[b] = terminals[i];
        }
        return new TransitionBatch(
            tensor(obs, new long[] { batchSize, o }),
            tensor(act, new long[] { batchSize, a }),
            tensor(rew, new long[] { batchSize }),
            tensor(nobs, new long[] { batchSize, o }),
            tensor(term, new long[] { batchSize }));
    }

    /// <summary>Writes the buffer (sizes, position and the used part of the arrays).</summary>
    public void Save(BinaryWriter writer)
    {
        writer.Write(Magic);
        writer.Write(FormatVersion);
        writer.Write(ObservationSize);
        writer.Write(ActionSize);
        writer.Write(Capacity);
        writer.Write(Count);
        writer.Write(next);
        WriteFloats(writer, observations.AsSpan(0, Count * ObservationSize));
        WriteFloats(writer, actions.AsSpan(0, Count * ActionSize));
        WriteFloats(writer, rewards.AsSpan(0, Count));
        WriteFloats(writer, nextObservations.AsSpan(0, Count * ObservationSize));
        WriteFloats(writer, terminals.AsSpan(0, Count));
    }

    /// <summary>Reads a buffer written by <see cref="Save"/>.</summary>
    public static ReplayBuffer Load(BinaryReader reader)
    {
        if (reader.ReadUInt32() != Magic || reader.ReadInt32() != FormatVersion)
            throw new InvalidDataException("Not a replay buffer file of this version.");
        var buffer = new ReplayBuffer(reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32());
        int count = reader.ReadInt32();
        buffer.next = reader.ReadInt32();
        buffer.Count = count;
        buffer.Reserve(count);
        ReadFloats(reader, buffer.observations.AsSpan(0, count * buffer.ObservationSize));
        ReadFloats(reader, buffer.actions.AsSpan(0, count * buffer.ActionSize));
        ReadFloats(reader, buffer.rewards.AsSpan(0, count));
        ReadFloats(reader, buffer.nextObservations.AsSpan(0, count * buffer.ObservationSize));
        ReadFloats(reader, buffer.terminals.AsSpan(0, count));
        return buffer;
    }

    private static void WriteFloats(BinaryWriter writer, ReadOnlySpan<float> values) =>
        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));

    private static void ReadFloats(BinaryReader reader, Span<float> values)
    {
        Span<byte> bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values);
        reader.BaseStream.ReadExactly(bytes);
    }
}
