using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// A reward that reads only some features: R(x, t) = inner(x * m, t), where m holds 1 for the features read and 0 for the
/// others, one flag per feature of a transition (trajectories) or per channel (images). Its input gradient is zero in
/// the features it does not read, so the relative reward objective can fit only the components of mu_expert - mu_base
/// that it reads (<see cref="RewardTrainingOptions.FeatureMask"/>). Saved and loaded like any reward network: the mask
/// and the inner network's descriptor are part of its architecture.
/// </summary>
public sealed class FeatureMaskedReward : RewardNetwork
{
    internal const string Name = nameof(FeatureMaskedReward);

    private readonly RewardNetwork inner;
    private readonly Tensor mask;
    private readonly bool[] _features;

    /// <summary>Wraps <paramref name="inner"/> (which the new network owns) so that it reads only the flagged features.</summary>
    /// <param name="inner">The reward network that sees the masked input.</param>
    /// <param name="features">One flag per feature (trajectories: the transition dimension; images: the channels), at least one true.</param>
    public FeatureMaskedReward(RewardNetwork inner, IReadOnlyList<bool> features) : base(Name, (inner ?? throw new ArgumentNullException(nameof(inner))).Shape)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (features.Count != Shape.FeatureCount)
            throw new ArgumentException($"The feature mask has {features.Count} flags but a sample of shape {Shape} has {Shape.FeatureCount} {(Shape.Kind == SampleShapeKind.Image ? "channels" : "features per transition")}.", nameof(features));
        if (!features.Any(f => f))
            throw new ArgumentException("The feature mask selects no feature; the reward must read at least one.", nameof(features));
        _features = features.ToArray();
        this.inner = inner;
        var values = tensor(_features.Select(f => f ? 1f : 0f).ToArray());
        // Broadcast over the other axes: [D] for trajectories [B, H, D]; [C, 1, 1] for images [B, C, H, W].
        // Owned by the module, not by whatever dispose scope the caller has open (the estimators train inside one).
        mask = (Shape.Kind == SampleShapeKind.Image ? values.reshape(Shape.FeatureCount, 1, 1) : values).DetachFromDisposeScope();
        register_buffer(nameof(mask), mask);
        RegisterComponents();
    }

    /// <summary>Rebuilds an untrained network from what <see cref="SaveArchitecture"/> wrote (the registry's loader).</summary>
    internal static FeatureMaskedReward Load(SampleShape shape, BinaryReader architecture)
    {
        int count = architecture.ReadInt32();
        if (count != shape.FeatureCount)
            throw new InvalidDataException($"A feature-masked reward for {shape} must have {shape.FeatureCount} flags, found {count}.");
        var features = new bool[count];
        for (int i = 0; i < count; i++)
            features[i] = architecture.ReadBoolean();
        var inner = RewardNetworkArchitecture.Read(architecture, CPU);
        return new FeatureMaskedReward(inner, features);
    }

    /// <summary>The flags of the features read.</summary>
    public IReadOnlyList<bool> Features => _features;

    /// <summary>The network that sees the masked input.</summary>
    public RewardNetwork Inner => inner;

    /// <summary>The mask as a tensor that broadcasts over a batch (1 = read).</summary>
    public Tensor Mask => mask;

    /// <inheritdoc/>
    public override string ArchitectureName => Name;

    /// <inheritdoc/>
    public override string ArchitectureDescription
        => $"features [{string.Join(",", _features.Select(f => f ? 1 : 0))}] of {RewardNetworkArchitecture.Describe(inner)}";

    /// <summary>Writes the flags, then the inner network's descriptor.</summary>
    public override void SaveArchitecture(BinaryWriter writer)
    {
        writer.Write(_features.Length);
        foreach (var f in _features)
            writer.Write(f);
        RewardNetworkArchitecture.Write(writer, inner);
    }

    /// <summary>x [B, ...shape], t [B] -> rewards [B] of the masked input.</summary>
    public override Tensor forward(Tensor x, Tensor t) => inner.call(x * mask, t);
}
