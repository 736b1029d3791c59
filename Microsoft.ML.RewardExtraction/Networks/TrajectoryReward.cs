using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Hyperparameters of a <see cref="TrajectoryReward"/>.</summary>
public sealed class TrajectoryRewardOptions
{
    /// <summary>Base channel width (and time embedding width). Default 32, as Diffuser's value function.</summary>
    public int Dimension { get; init; } = 32;

    /// <summary>Channel multipliers of the resolution levels. Default (1, 2, 4, 8), as Diffuser's value function.</summary>
    public IReadOnlyList<int> DimensionMultipliers { get; init; } = new[] { 1, 2, 4, 8 };

    /// <summary>Temporal convolution kernel size (odd). Default 5.</summary>
    public int KernelSize { get; init; } = 5;

    internal TrajectoryRewardOptions Validated(SampleShape shape)
    {
        if (shape.Kind != SampleShapeKind.Trajectory)
            throw new ArgumentException($"A trajectory reward needs trajectory samples; got {shape}.", nameof(shape));
        if (Dimension < 4 || Dimension % 4 != 0)
            throw new ArgumentOutOfRangeException(nameof(Dimension), Dimension, "The trajectory reward's base width must be a positive multiple of 4.");
        if (DimensionMultipliers is null || DimensionMultipliers.Count == 0 || DimensionMultipliers.Any(m => m < 1))
            throw new ArgumentException("The trajectory reward needs at least one resolution level, each with a positive multiplier.", nameof(DimensionMultipliers));
        if (KernelSize < 1 || KernelSize % 2 == 0)
            throw new ArgumentOutOfRangeException(nameof(KernelSize), KernelSize, "The kernel size must be odd and positive.");
        return new TrajectoryRewardOptions { Dimension = Dimension, DimensionMultipliers = DimensionMultipliers.ToArray(), KernelSize = KernelSize };
    }

    internal void Write(BinaryWriter writer)
    {
        writer.Write(Dimension);
        writer.Write(DimensionMultipliers.Count);
        foreach (var m in DimensionMultipliers)
            writer.Write(m);
        writer.Write(KernelSize);
    }

    internal static TrajectoryRewardOptions Read(BinaryReader reader)
    {
        int dimension = reader.ReadInt32();
        int count = reader.ReadInt32();
        if (count is < 1 or > 16)
            throw new InvalidDataException($"Invalid level count {count} in trajectory reward data.");
        var mults = new int[count];
        for (int i = 0; i < count; i++)
            mults[i] = reader.ReadInt32();
        return new TrajectoryRewardOptions { Dimension = dimension, DimensionMultipliers = mults, KernelSize = reader.ReadInt32() };
    }
}

/// <summary>
/// The trajectory reward of the locomotion experiments, shaped like Diffuser's value function: per resolution level
/// two residual temporal blocks (Conv1d + GroupNorm + Mish, the time embedding added after the first convolution, a
/// 1x1 convolution on the skip path when the width changes) followed by a stride-2 Conv1d downsampling; then two
/// more residual blocks that halve the width (each followed by downsampling); the result is flattened, concatenated
/// with the time embedding and mapped by Linear -> Mish -> Linear to one scalar per trajectory.
/// The flattened length follows the actual downsampled horizon (ceil(L/2) per downsampling).
/// GroupNorm uses the largest group count of at most 8 that divides the width.
/// The convolutions are <see cref="TemporalConvolution"/>'s batched GEMMs and the Mish is <see cref="FusedMish"/>: the
/// objective differentiates the reward's input gradient, and both keep that double backward off libtorch's per-sample
/// convolution kernels and Mish's composite second derivative.
/// </summary>
public sealed class TrajectoryReward : RewardNetwork
{
    private readonly TrajectoryRewardOptions _options;
    private readonly RewardTimeEmbedding time_embedding;
    private readonly ModuleList<Block> blocks;
    private readonly ModuleList<Conv1d> downs;
    private readonly Block mid1;
    private readonly Conv1d mid_down1;
    private readonly Block mid2;
    private readonly Conv1d mid_down2;
    private readonly Linear head1;
    private readonly Linear head2;

    /// <summary>Rebuilds an untrained network from what <see cref="SaveArchitecture"/> wrote (the registry's loader).</summary>
    internal static TrajectoryReward Load(SampleShape shape, BinaryReader architecture) => new(shape, TrajectoryRewardOptions.Read(architecture));

    /// <inheritdoc/>
    public override string ArchitectureName => nameof(TrajectoryReward);

    /// <inheritdoc/>
    public override string ArchitectureDescription => $"dim {Options.Dimension}, mults {RewardNetworkArchitecture.List(Options.DimensionMultipliers)}, kernel {Options.KernelSize}";

    /// <inheritdoc/>
    public override void SaveArchitecture(BinaryWriter writer) => Options.Write(writer);

    /// <summary>Creates a trajectory reward for trajectories of <paramref name="shape"/> (parameters from torch's global generator;
    /// wrap in <see cref="TorchRandom.Initialize{T}"/> for a seeded initialisation).</summary>
    public TrajectoryReward(SampleShape shape, TrajectoryRewardOptions? options = null) : base(nameof(TrajectoryReward), shape)
    {
        _options = (options ?? new TrajectoryRewardOptions()).Validated(shape);
        int dim = _options.Dimension, k = _options.KernelSize;
        time_embedding = new RewardTimeEmbedding(RewardTimeEmbeddingKind.Learned, dim, 4 * dim, RewardActivation.Mish);
        blocks = new ModuleList<Block>();
        downs = new ModuleList<Conv1d>();
        int channels = shape.TransitionDimension;
        long length = shape.Horizon;
        foreach (var m in _options.DimensionMultipliers)
        {
            int width = dim * m;
            blocks.Add(new Block(channels, width, dim, k));
            blocks.Add(new Block(width, width, dim, k));
            downs.Add(nn.Conv1d(width, width, 3, stride: 2, padding: 1));
            channels = width;
            length = (length + 1) / 2;
        }
        int mid = channels, half = Math.Max(1, mid / 2), quarter = Math.Max(1, mid / 4);
        mid1 = new Block(mid, half, dim, k);
        mid_down1 = nn.Conv1d(half, half, 3, stride: 2, padding: 1);
        mid2 = new Block(half, quarter, dim, k);
        mid_down2 = nn.Conv1d(quarter, quarter, 3, stride: 2, padding: 1);
        length = (length + 1) / 2;
        length = (length + 1) / 2;
        long flat = quarter * length;
        long headWidth = Math.Max(1, flat / 2);
        head1 = nn.Linear(flat + dim, headWidth);
        head2 = nn.Linear(headWidth, 1);
        RegisterComponents();
    }

    /// <summary>A copy of the hyperparameters this network was built with.</summary>
    public TrajectoryRewardOptions Options => _options.Validated(Shape);

    /// <summary>x [B, H, D], t [B] (int64) -> rewards [B].</summary>
    public override Tensor forward(Tensor x, Tensor t)
    {
        using var scope = NewDisposeScope();
        var emb = time_embedding.call(t, x.dtype);
        var h = x.transpose(1, 2);   // [B, D, H]
        for (int level = 0; level < downs.Count; level++)
        {
            h = blocks[2 * level].call(h, emb);
            h = blocks[2 * level + 1].call(h, emb);
            h = Downsample(downs[level], h);
        }
        h = Downsample(mid_down1, mid1.call(h, emb));
        h = Downsample(mid_down2, mid2.call(h, emb));
        var features = cat(new[] { h.flatten(1), emb }, 1);
        return head2.call(FusedMish.Apply(head1.call(features))).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>The stride-2, kernel-3 downsampling convolution.</summary>
    private static Tensor Downsample(Conv1d conv, Tensor x) => TemporalConvolution.Apply(x, conv.weight!, conv.bias, stride: 2, padding: 1);

    /// <summary>Diffuser's residual temporal block.</summary>
    private sealed class Block : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly Conv1d conv0;
        private readonly GroupNorm norm0;
        private readonly Conv1d conv1;
        private readonly GroupNorm norm1;
        private readonly Linear time;
        private readonly Conv1d? residual;
        private readonly long _padding;

        public Block(int input, int output, int embedding, int kernel) : base("block")
        {
            conv0 = nn.Conv1d(input, output, kernel, padding: kernel / 2);
            norm0 = RewardTimeEmbedding.NewGroupNorm(output);
            conv1 = nn.Conv1d(output, output, kernel, padding: kernel / 2);
            norm1 = RewardTimeEmbedding.NewGroupNorm(output);
            time = nn.Linear(embedding, output);
            residual = input != output ? nn.Conv1d(input, output, 1) : null;
            _padding = kernel / 2;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x, Tensor emb)
        {
            using var scope = NewDisposeScope();
            var h = FusedMish.Apply(norm0.call(TemporalConvolution.Apply(x, conv0.weight!, conv0.bias, padding: _padding)));
            h = h + time.call(FusedMish.Apply(emb)).unsqueeze(-1);
            h = FusedMish.Apply(norm1.call(TemporalConvolution.Apply(h, conv1.weight!, conv1.bias, padding: _padding)));
            var skip = residual is null ? x : TemporalConvolution.Apply(x, residual.weight!, residual.bias);
            return (h + skip).MoveToOuterDisposeScope();
        }
    }
}
