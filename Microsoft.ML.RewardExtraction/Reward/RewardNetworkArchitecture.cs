using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Writes and reads the architecture of the built-in reward networks (kind, sample shape, hyperparameters, dtype) so
/// that an untrained network of the same architecture can be rebuilt before its weights are loaded, and makes fresh
/// copies for EMA shadows.
/// </summary>
internal static class RewardNetworkArchitecture
{
    public const string StateKind = "StateReward";
    public const string TrajectoryKind = "TrajectoryReward";
    public const string ImageKind = "ImageReward";

    /// <summary>Throws <see cref="NotSupportedException"/> for reward networks other than the built-in ones.</summary>
    public static string KindOf(RewardNetwork network) => network switch
    {
        StateReward => StateKind,
        TrajectoryReward => TrajectoryKind,
        ImageReward => ImageKind,
        _ => throw new NotSupportedException(
            $"Reward networks of type {network.GetType().Name} cannot be copied or saved; use {nameof(StateReward)}, {nameof(TrajectoryReward)} or {nameof(ImageReward)}."),
    };

    public static void Write(BinaryWriter writer, RewardNetwork network)
    {
        writer.Write(KindOf(network));
        network.Shape.Save(writer);
        switch (network)
        {
            case StateReward s: s.Options.Write(writer); break;
            case TrajectoryReward r: r.Options.Write(writer); break;
            case ImageReward i: i.Options.Write(writer); break;
        }
        writer.Write((int)ParameterType(network));
    }

    /// <summary>Rebuilds an (untrained) network from what <see cref="Write"/> wrote; the caller loads its weights.</summary>
    public static RewardNetwork Read(BinaryReader reader, Device device)
    {
        string kind = reader.ReadString();
        var shape = SampleShape.Load(reader);
        RewardNetwork network;
        try
        {
            network = kind switch
            {
                StateKind => new StateReward(shape, StateRewardOptions.Read(reader)),
                TrajectoryKind => new TrajectoryReward(shape, TrajectoryRewardOptions.Read(reader)),
                ImageKind => new ImageReward(shape, ImageRewardOptions.Read(reader)),
                _ => throw new InvalidDataException($"Unknown reward network kind '{kind}' in model data."),
            };
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"Invalid {kind} hyperparameters in model data: {e.Message}", e);
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

    /// <summary>A new network of the same architecture, dtype and device (weights as initialised; copy them if needed).</summary>
    public static RewardNetwork CreateLike(RewardNetwork network)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            Write(writer, network);
        stream.Position = 0;
        using var reader = new BinaryReader(stream);
        return Read(reader, DeviceOf(network));
    }

    /// <summary>A readable one-line description of the architecture (kind, shape, hyperparameters, dtype).</summary>
    public static string Describe(RewardNetwork network)
    {
        static string List(IEnumerable<int> values) => "[" + string.Join(",", values) + "]";
        string options = network switch
        {
            StateReward s => $"window {s.Options.Window}, hidden {List(s.Options.HiddenSizes)}, {s.Options.Activation}, time {s.Options.TimeEmbedding}({s.Options.TimeEmbeddingDimension}, {s.Options.TimeEmbeddingHiddenSize}), {s.Options.Aggregation}",
            TrajectoryReward r => $"dim {r.Options.Dimension}, mults {List(r.Options.DimensionMultipliers)}, kernel {r.Options.KernelSize}",
            ImageReward i => $"channels {i.Options.BaseChannels}, mults {List(i.Options.ChannelMultipliers)}, time {i.Options.TimeEmbeddingDimension}",
            _ => "",
        };
        return $"{KindOf(network)} {network.Shape} ({options}) {ParameterType(network)}";
    }

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
