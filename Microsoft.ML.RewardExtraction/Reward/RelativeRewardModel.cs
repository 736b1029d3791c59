using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// A trained relative reward: the reward network (EMA weights after training), the sample shape and the noise
/// schedule (T) it was trained for, and optionally the normaliser that maps raw samples into its input space (the base
/// model's). Inputs are normalised batches [B, ...shape]; higher reward = more expert-like.
/// </summary>
public sealed class RelativeRewardModel : IDisposable
{
    /// <summary>The persistence kind written in the header.</summary>
    public const string PersistenceKind = "RelativeReward";

    /// <summary>The newest persistence version this code writes and reads. Version 2 records the reward network's architecture
    /// name and type, so that any <see cref="RewardNetwork"/> loads (<see cref="RewardNetworkRegistry"/>); version 1 (built-in
    /// networks only) still loads. Version 3 seals the stream with a SHA-256 (<see cref="ModelHeader.WriteSealed"/>); its body is
    /// version 2's.</summary>
    public const int PersistenceVersion = 3;

    private const int SealedFrom = 3;

    /// <summary>Wraps a (trained) reward network.</summary>
    /// <param name="network">The reward network; the model owns it from now on (disposing the model disposes it).</param>
    /// <param name="schedule">The noise schedule of the diffusion models it was trained against (valid t are 0..T-1).</param>
    /// <param name="normalizer">The base model's normaliser, if known (not persisted by <see cref="Save(Stream)"/>).</param>
    public RelativeRewardModel(RewardNetwork network, NoiseSchedule schedule, Normalizer? normalizer = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(schedule);
        if (normalizer is not null && !normalizer.Shape.Equals(network.Shape))
            throw new ArgumentException($"The normaliser is fitted for {normalizer.Shape} but the reward network is built for {network.Shape}.", nameof(normalizer));
        Network = network;
        Schedule = schedule;
        Normalizer = normalizer;
        Network.eval();
    }

    /// <summary>The reward network R(x, t).</summary>
    public RewardNetwork Network { get; }

    /// <summary>The shape of one sample.</summary>
    public SampleShape Shape => Network.Shape;

    /// <summary>The noise schedule the reward was trained for.</summary>
    public NoiseSchedule Schedule { get; }

    /// <summary>T: valid steps are 0..T-1.</summary>
    public int DiffusionSteps => Schedule.Steps;

    /// <summary>The normaliser of the reward's input space (the base model's), or null if not attached.</summary>
    public Normalizer? Normalizer { get; }

    /// <summary>Rewards [B] of a normalised batch [B, ...shape] at step <paramref name="t"/> (0 = clean samples), without gradients.</summary>
    public Tensor Score(Tensor normalizedBatch, int t = 0)
    {
        CheckStep(t);
        using var scope = NewDisposeScope();
        var steps = full(normalizedBatch.shape[0], t, dtype: ScalarType.Int64, device: RewardNetworkArchitecture.DeviceOf(Network));
        return Score(normalizedBatch, steps).MoveToOuterDisposeScope();
    }

    /// <summary>Rewards [B] of a normalised batch [B, ...shape] at per-sample steps <paramref name="t"/> ([B] int64), without gradients.</summary>
    public Tensor Score(Tensor normalizedBatch, Tensor t)
    {
        using var scope = NewDisposeScope();
        var (x, steps) = Prepare(normalizedBatch, t);
        using var noGrad = no_grad();
        return Network.call(x, steps).MoveToOuterDisposeScope();
    }

    /// <summary>dR/dx [B, ...shape] of a normalised batch at step <paramref name="t"/>.</summary>
    public Tensor Gradient(Tensor x, int t)
    {
        CheckStep(t);
        using var scope = NewDisposeScope();
        var steps = full(x.shape[0], t, dtype: ScalarType.Int64, device: RewardNetworkArchitecture.DeviceOf(Network));
        return Gradient(x, steps).MoveToOuterDisposeScope();
    }

    /// <summary>dR/dx [B, ...shape] of a normalised batch at per-sample steps <paramref name="t"/> ([B] int64). No graph is
    /// kept and the network's parameter gradients are untouched.</summary>
    public Tensor Gradient(Tensor x, Tensor t)
    {
        using var scope = NewDisposeScope();
        var (input, steps) = Prepare(x, t);
        using var enable = enable_grad();
        var leaf = input.detach().requires_grad_(true);
        var reward = Network.call(leaf, steps);
        var gradient = torch.autograd.grad(new[] { reward.sum() }, new[] { leaf })[0];
        return gradient.MoveToOuterDisposeScope();
    }

    private (Tensor X, Tensor T) Prepare(Tensor x, Tensor t)
    {
        Shape.CheckBatch(x, "Reward input");
        if (t.dim() != 1 || t.shape[0] != x.shape[0])
            throw new ArgumentException($"Expected one step per sample ([{x.shape[0]}]), got [{string.Join(", ", t.shape)}].", nameof(t));
        var dtype = RewardNetworkArchitecture.ParameterType(Network);
        var device = RewardNetworkArchitecture.DeviceOf(Network);
        if (x.dtype != dtype || x.device != device)
            x = x.to(dtype, device);
        if (t.dtype != ScalarType.Int64 || t.device != device)
            t = t.to(ScalarType.Int64, device);
        return (x, t);
    }

    private void CheckStep(int t)
    {
        if (t < 0 || t >= DiffusionSteps)
            throw new ArgumentOutOfRangeException(nameof(t), t, $"The step must lie in 0..{DiffusionSteps - 1}.");
    }

    // *** Binary format *** (version 3)
    // ModelHeader sealed stream ("MLRW", 3, "RelativeReward", body length, SHA-256), whose body is:
    // schedule, network architecture descriptor (name, type, shape, hyperparameter bytes, dtype), network weights
    // (ModuleSerializer block). Versions 1 and 2: the body right after the header, without a hash.

    /// <summary>Writes the model: <see cref="ModelHeader"/> (kind "RelativeReward", version 3) with the hash of what follows,
    /// schedule, network architecture descriptor (name, type, shape, the network's hyperparameter bytes, dtype), then the
    /// network's weights as one <see cref="ModuleSerializer"/> block. The normaliser is not written.</summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ModelHeader.WriteSealed(stream, PersistenceKind, PersistenceVersion, writer =>
        {
            Schedule.Save(writer);
            RewardNetworkArchitecture.Write(writer, Network);
            ModuleSerializer.WriteModule(writer, Network);
        });
    }

    /// <summary>Writes the model to a file (see <see cref="Save(Stream)"/>). The bytes go to a temporary file beside it
    /// that is then moved over <paramref name="path"/>, so a failed or interrupted save never leaves a truncated model.</summary>
    public void Save(string path) => AtomicFile.Write(path, Save);

    /// <summary>Reads a model written by <see cref="Save(Stream)"/>.</summary>
    /// <param name="stream">The stream, positioned at the model.</param>
    /// <param name="normalizer">The normaliser to attach (e.g. the base model's), or null.</param>
    /// <param name="device">Where to put the network; CPU when null.</param>
    /// <exception cref="InvalidDataException">The stream is truncated, corrupted or holds something else.</exception>
    public static RelativeRewardModel Load(Stream stream, Normalizer? normalizer = null, Device? device = null) => Load(stream, normalizer, device, out _);

    private static RelativeRewardModel Load(Stream stream, Normalizer? normalizer, Device? device, out bool verified)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var outer = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        RewardNetwork? network = null;
        verified = false;
        try
        {
            using var body = ModelHeader.ReadSealed(outer, PersistenceKind, PersistenceVersion, SealedFrom);
            verified = body.Verified;
            var reader = body.Reader;
            var schedule = NoiseSchedule.Load(reader);
            network = RewardNetworkArchitecture.Read(reader, device ?? CPU, Math.Min(body.Version, RewardNetworkArchitecture.DescriptorVersion));
            ModuleSerializer.ReadModule(reader, network, "reward network weights");
            body.CheckFullyRead(PersistenceKind);
            return new RelativeRewardModel(network, schedule, normalizer);
        }
        catch (Exception e) when (e is IOException or FormatException or ArgumentException or OverflowException or System.Runtime.InteropServices.ExternalException)
        {
            network?.Dispose();
            throw new InvalidDataException($"The relative reward model data is truncated or corrupted: {e.Message}", e);
        }
        catch
        {
            network?.Dispose();
            throw;
        }
    }

    /// <summary>Reads a model from a file (see <see cref="Load(Stream, Normalizer?, Device?)"/>); errors name the file.</summary>
    /// <param name="path">The model file.</param>
    /// <param name="normalizer">The normaliser to attach (e.g. the base model's), or null.</param>
    /// <param name="device">Where to put the network; CPU when null.</param>
    /// <param name="warning">Receives the warning given for a file written without a hash (versions 1 and 2); null =
    /// <see cref="System.Diagnostics.Trace.TraceWarning(string)"/>.</param>
    public static RelativeRewardModel Load(string path, Normalizer? normalizer = null, Device? device = null, Action<string>? warning = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = File.OpenRead(path);
        try
        {
            var model = Load(file, normalizer, device, out bool verified);
            if (!verified)
                ModelHeader.WarnUnverified("Relative reward model file", path, warning);
            return model;
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Cannot load relative reward model file '{Path.GetFullPath(path)}': {e.Message}", e);
        }
    }

    /// <summary>Disposes the network.</summary>
    public void Dispose() => Network.Dispose();
}
