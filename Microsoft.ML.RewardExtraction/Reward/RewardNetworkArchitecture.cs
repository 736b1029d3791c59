using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Writes and reads a reward network's architecture descriptor (name, type, sample shape, the network's own
/// hyperparameters, dtype), so that an untrained network of the same architecture can be rebuilt through
/// <see cref="RewardNetworkRegistry"/> before its weights are loaded, and makes fresh copies for EMA shadows.
/// </summary>
internal static class RewardNetworkArchitecture
{
    /// <summary>The descriptor format written today (version 2 of <see cref="RelativeRewardModel"/>).</summary>
    public const int DescriptorVersion = 2;

    private const int MaxArchitectureBytes = 1 << 20;

    /// <summary>
    /// Binary format (descriptor version 2): string name; string assembly-qualified type name; shape
    /// (<see cref="SampleShape.Save"/>); int32 n; n bytes written by <see cref="RewardNetwork.SaveArchitecture"/>; int32 dtype.
    /// </summary>
    public static void Write(BinaryWriter writer, RewardNetwork network)
    {
        string name = network.ArchitectureName;
        if (string.IsNullOrWhiteSpace(name))
            throw new InvalidOperationException($"{network.GetType().Name}.{nameof(RewardNetwork.ArchitectureName)} is empty; a saved reward network needs a name.");
        using var buffer = new MemoryStream();
        using (var inner = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
            network.SaveArchitecture(inner);
        if (buffer.Length > MaxArchitectureBytes)
            throw new InvalidOperationException($"{network.GetType().Name}.{nameof(RewardNetwork.SaveArchitecture)} wrote {buffer.Length} bytes; an architecture descriptor holds at most {MaxArchitectureBytes} (weights are saved separately).");
        writer.Write(name);
        writer.Write(network.GetType().AssemblyQualifiedName ?? "");
        network.Shape.Save(writer);
        writer.Write((int)buffer.Length);
        writer.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
        writer.Write((int)ParameterType(network));
    }

    /// <summary>Rebuilds an (untrained) network from a descriptor of <paramref name="version"/> (1: built-in networks only,
    /// their hyperparameters inline; 2: <see cref="Write"/>'s format); the caller loads its weights.</summary>
    public static RewardNetwork Read(BinaryReader reader, Device device, int version = DescriptorVersion)
    {
        string name = reader.ReadString();
        string? typeName = version >= 2 ? reader.ReadString() : null;
        var shape = SampleShape.Load(reader);
        RewardNetwork network;
        try
        {
            if (version >= 2)
            {
                int length = reader.ReadInt32();
                if (length is < 0 or > MaxArchitectureBytes)
                    throw new InvalidDataException($"Invalid architecture length {length} for reward network '{name}' in model data.");
                using var architecture = new BinaryReader(new MemoryStream(ModelHeader.ReadExactly(reader, length, $"the architecture of reward network '{name}'")));
                network = Construct(() => RewardNetworkRegistry.Create(name, typeName, shape, architecture));
                if (architecture.BaseStream.Position != length)
                {
                    network.Dispose();
                    throw new InvalidDataException($"Reward network '{name}' read {architecture.BaseStream.Position} of its {length} architecture bytes; its loader does not match what it saved.");
                }
            }
            else
            {
                if (name is not (nameof(StateReward) or nameof(TrajectoryReward) or nameof(ImageReward)))
                    throw new InvalidDataException($"Unknown reward network kind '{name}' in model data.");
                network = Construct(() => RewardNetworkRegistry.Create(name, null, shape, reader));
            }
        }
        catch (Exception e) when (e is ArgumentException or EndOfStreamException)
        {
            throw new InvalidDataException($"Invalid {name} hyperparameters in model data: {e.Message}", e);
        }
        if (!network.Shape.Equals(shape))
        {
            network.Dispose();
            throw new InvalidDataException($"The loader of reward network '{name}' built a network for {network.Shape}, but the model data are for {shape}.");
        }
        var dtype = (ScalarType)reader.ReadInt32();
        if (dtype is not (ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16))
        {
            network.Dispose();
            throw new InvalidDataException($"Invalid reward network dtype {(int)dtype} in model data.");
        }
        network.to(dtype).to(device);
        return network;
    }

    /// <summary>
    /// Builds a network under <see cref="TorchRandom"/>'s lock: construction draws its initial weights from torch's global
    /// generator, and a construction on another thread between a seeded initialisation's seed and its draws would change
    /// that initialisation. The weights drawn here are overwritten (by a load or an EMA copy), so the seed is arbitrary.
    /// </summary>
    private static RewardNetwork Construct(Func<RewardNetwork> create) => TorchRandom.Initialize(0, create);

    /// <summary>A new network of the same architecture, dtype and device (weights as initialised; copy them if needed).</summary>
    /// <exception cref="NotSupportedException">The network's architecture cannot be rebuilt (no loader, no loading constructor).</exception>
    public static RewardNetwork CreateLike(RewardNetwork network)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            Write(writer, network);
        stream.Position = 0;
        using var reader = new BinaryReader(stream);
        try
        {
            return Read(reader, DeviceOf(network));
        }
        catch (InvalidDataException e)
        {
            throw new NotSupportedException($"A copy of the reward network {network.GetType().Name} cannot be built: {e.Message}", e);
        }
    }

    /// <summary>A readable one-line description of the architecture (name, shape, hyperparameters, dtype).</summary>
    public static string Describe(RewardNetwork network)
        => $"{network.ArchitectureName} {network.Shape} ({network.ArchitectureDescription}) {ParameterType(network)}";

    /// <summary>"[1,2,4]": a list of widths or multipliers in an architecture description.</summary>
    public static string List(IEnumerable<int> values) => "[" + string.Join(",", values) + "]";

    public static ScalarType ParameterType(nn.Module module)
    {
        foreach (var p in module.parameters())
            return p.dtype;
        return ScalarType.Float32;
    }

    public static Device DeviceOf(nn.Module module)
    {
        foreach (var p in module.parameters())
            return p.device;
        return CPU;
    }
}
