using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Hyperparameters of an <see cref="ImageReward"/>.</summary>
public sealed class ImageRewardOptions
{
    /// <summary>Channel width of the stem. Default 32.</summary>
    public int BaseChannels { get; init; } = 32;

    /// <summary>Channel multipliers of the downsampling levels (each halves height and width). Default (1, 2, 2).</summary>
    public IReadOnlyList<int> ChannelMultipliers { get; init; } = new[] { 1, 2, 2 };

    /// <summary>Width d of the time embedding (sinusoidal(d) -> Linear(4d) -> SiLU -> Linear(d)). Default 32.</summary>
    public int TimeEmbeddingDimension { get; init; } = 32;

    internal ImageRewardOptions Validated(SampleShape shape)
    {
        if (shape.Kind != SampleShapeKind.Image)
            throw new ArgumentException($"An image reward needs image samples; got {shape}.", nameof(shape));
        if (BaseChannels < 1)
            throw new ArgumentOutOfRangeException(nameof(BaseChannels), BaseChannels, "The base channel width must be positive.");
        if (ChannelMultipliers is null || ChannelMultipliers.Count == 0 || ChannelMultipliers.Any(m => m < 1))
            throw new ArgumentException("The image reward needs at least one level, each with a positive multiplier.", nameof(ChannelMultipliers));
        if (TimeEmbeddingDimension < 4 || TimeEmbeddingDimension % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(TimeEmbeddingDimension), TimeEmbeddingDimension, "The time embedding width must be even and at least 4.");
        return new ImageRewardOptions { BaseChannels = BaseChannels, ChannelMultipliers = ChannelMultipliers.ToArray(), TimeEmbeddingDimension = TimeEmbeddingDimension };
    }

    internal void Write(BinaryWriter writer)
    {
        writer.Write(BaseChannels);
        writer.Write(ChannelMultipliers.Count);
        foreach (var m in ChannelMultipliers)
            writer.Write(m);
        writer.Write(TimeEmbeddingDimension);
    }

    internal static ImageRewardOptions Read(BinaryReader reader)
    {
        int channels = reader.ReadInt32();
        int count = reader.ReadInt32();
        if (count is < 1 or > 16)
            throw new InvalidDataException($"Invalid level count {count} in image reward data.");
        var mults = new int[count];
        for (int i = 0; i < count; i++)
            mults[i] = reader.ReadInt32();
        return new ImageRewardOptions { BaseChannels = channels, ChannelMultipliers = mults, TimeEmbeddingDimension = reader.ReadInt32() };
    }
}

/// <summary>
/// A small convolutional image reward: a 3x3 stem, then per level GroupNorm -> SiLU -> stride-2 3x3 convolution,
/// the projected time embedding added per channel, GroupNorm -> SiLU -> 3x3 convolution; then GroupNorm -> SiLU,
/// global average pooling, concatenation with the time embedding and Linear -> SiLU -> Linear to one scalar.
/// The time embedding is sinusoidal(d) -> Linear(4d) -> SiLU -> Linear(d). GroupNorm (per sample) uses the largest
/// group count of at most 8 that divides the width; there is no BatchNorm.
/// </summary>
public sealed class ImageReward : RewardNetwork
{
    private readonly ImageRewardOptions _options;
    private readonly RewardTimeEmbedding time_embedding;
    private readonly Conv2d stem;
    private readonly ModuleList<Level> levels;
    private readonly GroupNorm final_norm;
    private readonly Linear head1;
    private readonly Linear head2;

    /// <summary>Rebuilds an untrained network from what <see cref="SaveArchitecture"/> wrote (the registry's loader).</summary>
    internal static ImageReward Load(SampleShape shape, BinaryReader architecture) => new(shape, ImageRewardOptions.Read(architecture));

    /// <inheritdoc/>
    public override string ArchitectureName => nameof(ImageReward);

    /// <inheritdoc/>
    public override string ArchitectureDescription => $"channels {Options.BaseChannels}, mults {RewardNetworkArchitecture.List(Options.ChannelMultipliers)}, time {Options.TimeEmbeddingDimension}";

    /// <inheritdoc/>
    public override void SaveArchitecture(BinaryWriter writer) => Options.Write(writer);

    /// <summary>Creates an image reward for images of <paramref name="shape"/> (parameters from torch's global generator;
    /// wrap in <see cref="TorchRandom.Initialize{T}"/> for a seeded initialisation).</summary>
    public ImageReward(SampleShape shape, ImageRewardOptions? options = null) : base(nameof(ImageReward), shape)
    {
        _options = (options ?? new ImageRewardOptions()).Validated(shape);
        int e = _options.TimeEmbeddingDimension;
        time_embedding = new RewardTimeEmbedding(RewardTimeEmbeddingKind.Learned, e, 4 * e, RewardActivation.SiLU);
        int channels = _options.BaseChannels;
        stem = nn.Conv2d(shape.Dimensions[0], channels, 3, padding: 1);
        levels = new ModuleList<Level>();
        foreach (var m in _options.ChannelMultipliers)
        {
            int width = _options.BaseChannels * m;
            levels.Add(new Level(channels, width, e));
            channels = width;
        }
        final_norm = RewardTimeEmbedding.NewGroupNorm(channels);
        head1 = nn.Linear(channels + e, channels);
        head2 = nn.Linear(channels, 1);
        RegisterComponents();
    }

    /// <summary>A copy of the hyperparameters this network was built with.</summary>
    public ImageRewardOptions Options => _options.Validated(Shape);

    /// <summary>x [B, C, H, W], t [B] (int64) -> rewards [B].</summary>
    public override Tensor forward(Tensor x, Tensor t)
    {
        using var scope = NewDisposeScope();
        var emb = time_embedding.call(t, x.dtype);   // [B, d]
        var h = stem.call(x);
        foreach (var level in levels)
            h = level.call(h, emb);
        h = nn.functional.silu(final_norm.call(h)).mean(new long[] { 2, 3 });
        var features = cat(new[] { h, emb }, 1);
        return head2.call(nn.functional.silu(head1.call(features))).squeeze(-1).MoveToOuterDisposeScope();
    }

    private sealed class Level : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly GroupNorm norm0;
        private readonly Conv2d down;
        private readonly Linear time;
        private readonly GroupNorm norm1;
        private readonly Conv2d conv;

        public Level(int input, int output, int embedding) : base("level")
        {
            norm0 = RewardTimeEmbedding.NewGroupNorm(input);
            down = nn.Conv2d(input, output, 3, stride: 2, padding: 1);
            time = nn.Linear(embedding, output);
            norm1 = RewardTimeEmbedding.NewGroupNorm(output);
            conv = nn.Conv2d(output, output, 3, padding: 1);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x, Tensor emb)
        {
            using var scope = NewDisposeScope();
            var h = down.call(nn.functional.silu(norm0.call(x)));
            h = h + time.call(nn.functional.silu(emb)).unsqueeze(-1).unsqueeze(-1);
            h = conv.call(nn.functional.silu(norm1.call(h)));
            return h.MoveToOuterDisposeScope();
        }
    }
}
