using System.Text;
using static TorchSharp.torch;

namespace MLReward.LocomotionAgents;

/// <summary>Action selection shared by <see cref="SacAgent"/> and <see cref="Policy"/>.</summary>
internal static class PolicyMath
{
    /// <summary>tanh(mean) or tanh(mean + std * eps) with eps ~ N(0, I) drawn from <paramref name="random"/> (Box-Muller).</summary>
    public static float[] Act(GaussianActor actor, ReadOnlySpan<float> observation, bool deterministic, Random? random)
    {
        if (observation.Length != actor.ObservationSize)
            throw new ArgumentException($"Expected an observation of length {actor.ObservationSize}, got {observation.Length}.", nameof(observation));
        if (!deterministic)
            ArgumentNullException.ThrowIfNull(random, nameof(random));
        float[] mean, logStd;
        using (NewDisposeScope())
        using (no_grad())
        {
            Tensor input = tensor(observation.ToArray(), new long[] { 1, observation.Length });
            var (m, s) = actor.forward(input);
            mean = m.data<float>().ToArray();
            logStd = s.data<float>().ToArray();
        }
        var action = new float[mean.Length];
        for (int i = 0; i < action.Length; i++)
        {
            double u = mean[i];
            if (!deterministic)
                u += Math.Exp(logStd[i]) * StandardNormal(random!);
            action[i] = (float)Math.Tanh(u);
        }
        return action;
    }

    public static double StandardNormal(Random random)
    {
        double u1 = 1.0 - random.NextDouble();
        double u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}

/// <summary>
/// A trained SAC actor loaded from a small policy file, for acting only.
/// File layout (little-endian): 8 bytes "MLRPOLCY", int32 version (1), string environment name (BinaryWriter
/// length-prefixed UTF-8), int32 observation size, int32 action size, int32 hidden layer count, int32 per hidden
/// size, int64 training environment steps, int64 byte length, then that many bytes of the actor's TorchSharp
/// module stream (<c>module.save</c>).
/// </summary>
public sealed class Policy : IDisposable
{
    private static readonly byte[] MagicBytes = Encoding.ASCII.GetBytes("MLRPOLCY");

    /// <summary>Current file format version.</summary>
    public const int FormatVersion = 1;

    private readonly GaussianActor actor;

    private Policy(string environment, GaussianActor actor, int[] hidden, long trainingSteps)
    {
        Environment = environment;
        this.actor = actor;
        HiddenSizes = hidden;
        TrainingSteps = trainingSteps;
    }

    /// <summary>Name of the task the policy was trained on ("cheetah", "hopper", "walker").</summary>
    public string Environment { get; }

    /// <summary>Observation length.</summary>
    public int ObservationSize => actor.ObservationSize;

    /// <summary>Action length.</summary>
    public int ActionSize => actor.ActionSize;

    /// <summary>Hidden layer widths.</summary>
    public IReadOnlyList<int> HiddenSizes { get; }

    /// <summary>Environment steps of training when the policy was saved.</summary>
    public long TrainingSteps { get; }

    /// <summary>Mean action tanh(mu(s)) when <paramref name="deterministic"/>, else a sample using <paramref name="random"/> for the noise.</summary>
    public float[] Act(ReadOnlySpan<float> observation, bool deterministic = true, Random? random = null) =>
        PolicyMath.Act(actor, observation, deterministic, random);

    /// <summary>Loads a policy file.</summary>
    public static Policy Load(string path)
    {
        using var stream = File.OpenRead(path);
        return Load(stream);
    }

    /// <summary>Loads a policy from a stream positioned at its header.</summary>
    public static Policy Load(Stream stream)
    {
        using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        byte[] magic = reader.ReadBytes(MagicBytes.Length);
        if (!magic.AsSpan().SequenceEqual(MagicBytes))
            throw new InvalidDataException("Not an MLReward policy file (bad magic).");
        int version = reader.ReadInt32();
        if (version != FormatVersion)
            throw new InvalidDataException($"Policy file version {version} is not supported (expected {FormatVersion}).");
        string environment = reader.ReadString();
        int obs = reader.ReadInt32(), act = reader.ReadInt32();
        int count = reader.ReadInt32();
        if (obs < 1 || act < 1 || count < 1 || count > 16)
            throw new InvalidDataException("Corrupt policy header.");
        var hidden = new int[count];
        for (int i = 0; i < count; i++)
            hidden[i] = reader.ReadInt32();
        long steps = reader.ReadInt64();
        var actor = new GaussianActor(obs, act, hidden);
        try
        {
            SacAgent.ReadModule(reader, actor);
        }
        catch
        {
            actor.Dispose();
            throw;
        }
        actor.eval();
        return new Policy(environment, actor, hidden, steps);
    }

    /// <summary>Writes this policy to <paramref name="path"/>.</summary>
    public void Save(string path)
    {
        using var stream = File.Create(path);
        Write(stream, Environment, ObservationSize, ActionSize, HiddenSizes, TrainingSteps, actor);
    }

    internal static void Write(Stream stream, string environment, int obs, int act, IReadOnlyList<int> hidden, long trainingSteps, GaussianActor actor)
    {
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(MagicBytes);
        writer.Write(FormatVersion);
        writer.Write(environment);
        writer.Write(obs);
        writer.Write(act);
        writer.Write(hidden.Count);
        foreach (int h in hidden)
            writer.Write(h);
        writer.Write(trainingSteps);
        SacAgent.WriteModule(writer, actor);
    }

    /// <inheritdoc />
    public void Dispose() => actor.Dispose();
}
