using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Diffuser's temporal U-Net for trajectories [B, H, D] (docs/METHOD.md section 2; benchmark shape: docs/ARCHITECTURE.md section 7): widths
/// <c>D -> dim*m_1 -> ... -> dim*m_L</c>; per level two residual temporal blocks (Conv1d k5 + GroupNorm(8) + Mish,
/// the step embedding added after the first conv block through Mish -> Linear, a 1x1 conv on the residual path when
/// the width changes) and a stride-2 Conv1d(3, 2, 1) downsampling except at the last level; two middle blocks;
/// on the way up the skip is concatenated, two blocks, ConvTranspose1d(4, 2, 1); finally a Conv1d block and a 1x1
/// conv back to D. The step embedding is sinusoidal(dim) -> Linear(dim, 4 dim) -> Mish -> Linear(4 dim, dim).
/// </summary>
public sealed class TemporalUNet : Denoiser, IDescribedDenoiser
{
    private const int KernelSize = 5;
    private const int Groups = 8;

    private readonly Sequential time_mlp;
    private readonly ModuleList<ResidualTemporalBlock> down_blocks;
    private readonly ModuleList<Conv1d> downsamples;
    private readonly ResidualTemporalBlock mid1;
    private readonly ResidualTemporalBlock mid2;
    private readonly ModuleList<ResidualTemporalBlock> up_blocks;
    private readonly ModuleList<ConvTranspose1d> upsamples;
    private readonly Conv1dBlock final_block;
    private readonly Conv1d final_conv;
    private readonly int _levels;
    private readonly int _transition;
    private readonly int _finalWidth;

    /// <summary>Creates the network for trajectories of <paramref name="shape"/>.</summary>
    /// <param name="shape">A trajectory shape; its horizon must be divisible by 2^(levels - 1).</param>
    /// <param name="dimension">Width of the first level and of the step embedding (Diffuser: 32).</param>
    /// <param name="multipliers">Width multipliers per level (Diffuser: 1, 2, 4, 8; the benchmark uses 1, 4, 8).</param>
    public TemporalUNet(SampleShape shape, int dimension = 32, params int[] multipliers)
        : base(nameof(TemporalUNet), shape ?? throw new ArgumentNullException(nameof(shape)))
    {
        if (shape.Kind != SampleShapeKind.Trajectory)
            throw new ArgumentException($"{nameof(TemporalUNet)} denoises trajectories; got {shape}.", nameof(shape));
        if (multipliers is null || multipliers.Length == 0)
            multipliers = [1, 2, 4];
        Validate(shape, dimension, multipliers);
        Options = new DenoiserOptions { Kind = DenoiserKind.TemporalUNet, Dimension = dimension, Multipliers = (int[])multipliers.Clone() };
        _levels = multipliers.Length;
        _transition = shape.TransitionDimension;

        var widths = new int[_levels + 1];
        widths[0] = _transition;
        for (int i = 0; i < _levels; i++)
            widths[i + 1] = dimension * multipliers[i];

        time_mlp = nn.Sequential(
            ("embedding", new SinusoidalPositionEmbedding(dimension)),
            ("linear1", nn.Linear(dimension, dimension * 4)),
            ("mish", nn.Mish()),
            ("linear2", nn.Linear(dimension * 4, dimension)));

        var downBlocks = new List<ResidualTemporalBlock>();
        var downs = new List<Conv1d>();
        for (int i = 0; i < _levels; i++)
        {
            downBlocks.Add(new ResidualTemporalBlock(widths[i], widths[i + 1], dimension));
            downBlocks.Add(new ResidualTemporalBlock(widths[i + 1], widths[i + 1], dimension));
            if (i < _levels - 1)
                downs.Add(nn.Conv1d(widths[i + 1], widths[i + 1], 3, stride: 2, padding: 1));
        }
        down_blocks = nn.ModuleList(downBlocks.ToArray());
        downsamples = nn.ModuleList(downs.ToArray());

        int mid = widths[_levels];
        mid1 = new ResidualTemporalBlock(mid, mid, dimension);
        mid2 = new ResidualTemporalBlock(mid, mid, dimension);

        var upBlocks = new List<ResidualTemporalBlock>();
        var ups = new List<ConvTranspose1d>();
        for (int i = _levels; i >= 2; i--)
        {
            int wide = widths[i], narrow = widths[i - 1];
            upBlocks.Add(new ResidualTemporalBlock(wide * 2, narrow, dimension));
            upBlocks.Add(new ResidualTemporalBlock(narrow, narrow, dimension));
            ups.Add(nn.ConvTranspose1d(narrow, narrow, 4, stride: 2, padding: 1));
        }
        up_blocks = nn.ModuleList(upBlocks.ToArray());
        upsamples = nn.ModuleList(ups.ToArray());

        _finalWidth = widths[1];
        final_block = new Conv1dBlock(_finalWidth, _finalWidth, KernelSize);
        final_conv = nn.Conv1d(_finalWidth, _transition, 1);
        RegisterComponents();
    }

    /// <summary>The hyperparameters this network was built with.</summary>
    public DenoiserOptions Options { get; }

    private ResidualTemporalBlock[]? _blocks;

    /// <summary>All residual blocks in the order the forward pass meets them.</summary>
    private ResidualTemporalBlock[] Blocks()
        => _blocks ??= down_blocks.Concat(new[] { mid1, mid2 }).Concat(up_blocks).ToArray();

    /// <summary>Checks that a TemporalUNet can be built for <paramref name="shape"/>; throws a clear exception if not.</summary>
    public static void Validate(SampleShape shape, int dimension, IReadOnlyList<int> multipliers)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(multipliers);
        if (dimension < 4 || dimension % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "The TemporalUNet width must be even and at least 4 (it is also the step-embedding width).");
        if (multipliers.Count == 0)
            throw new ArgumentException("The TemporalUNet needs at least one level (one multiplier).", nameof(multipliers));
        for (int i = 0; i < multipliers.Count; i++)
        {
            if (multipliers[i] < 1)
                throw new ArgumentOutOfRangeException(nameof(multipliers), $"Level {i} has multiplier {multipliers[i]}; multipliers must be positive.");
            if (dimension * multipliers[i] % Groups != 0)
                throw new ArgumentException($"Level {i} would have {dimension * multipliers[i]} channels (dimension {dimension} x multiplier {multipliers[i]}), which GroupNorm({Groups}) cannot split: use a multiple of {Groups}.", nameof(multipliers));
        }
        int factor = 1 << (multipliers.Count - 1);
        if (shape.Kind == SampleShapeKind.Trajectory && shape.Horizon % factor != 0)
            throw new ArgumentException($"A TemporalUNet with {multipliers.Count} levels halves the horizon {multipliers.Count - 1} times, so the horizon must be divisible by {factor}; got horizon {shape.Horizon}. Use a horizon that is a multiple of {factor} or fewer levels.", nameof(shape));
    }

    /// <summary>x_t [B, H, D] and steps t [B] -> prediction [B, H, D].</summary>
    public override Tensor forward(Tensor x, Tensor t)
    {
        bool inplace = !is_grad_enabled();
        using var scope = NewDisposeScope();
        var temb = time_mlp.call(t);
        // Every block feeds the embedding through Mish and its own Linear: compute that Mish once, and all the blocks'
        // projections as one GEMM against their stacked weights (block k reads columns [offset_k, offset_k + C_k)).
        var act = F.mish(temb);
        var blocks = Blocks();
        var projections = F.linear(act, cat(blocks.Select(b => b.TimeWeight).ToArray(), 0), cat(blocks.Select(b => b.TimeBias).ToArray(), 0));
        long offset = 0;
        Tensor Next(ResidualTemporalBlock block)
        {
            var slice = projections.narrow(1, offset, block.OutputChannels);
            offset += block.OutputChannels;
            return slice;
        }

        var h = x.transpose(1, 2);   // [B, D, H]
        var skips = new Tensor[_levels];
        for (int i = 0; i < _levels; i++)
        {
            h = down_blocks[2 * i].Forward(h, Next(down_blocks[2 * i]), inplace);
            h = down_blocks[2 * i + 1].Forward(h, Next(down_blocks[2 * i + 1]), inplace);
            skips[i] = h;
            if (i < _levels - 1)
                h = TemporalConvolution.Apply(h, downsamples[i].weight!, downsamples[i].bias, stride: 2, padding: 1);
        }
        h = mid1.Forward(h, Next(mid1), inplace);
        h = mid2.Forward(h, Next(mid2), inplace);
        for (int j = 0; j < _levels - 1; j++)
        {
            // Skips are consumed deepest first; the first level's activation is never concatenated (as in Diffuser).
            h = cat(new[] { h, skips[_levels - 1 - j] }, 1);
            h = up_blocks[2 * j].Forward(h, Next(up_blocks[2 * j]), inplace);
            h = up_blocks[2 * j + 1].Forward(h, Next(up_blocks[2 * j + 1]), inplace);
            h = upsamples[j].call(h);
        }
        h = final_block.Forward(h, inplace);
        // The 1x1 conv as a linear map over channels on [B, H, C] gives a contiguous [B, H, D] result directly.
        var output = F.linear(h.transpose(1, 2), final_conv.weight!.view(_transition, _finalWidth), final_conv.bias);
        return output.MoveToOuterDisposeScope();
    }
}

/// <summary>Conv1d(k, padding k/2) -> GroupNorm(8) -> Mish.</summary>
internal sealed class Conv1dBlock : nn.Module<Tensor, Tensor>
{
    private const double Epsilon = 1e-5;
    private readonly Conv1d conv;
    private readonly GroupNorm norm;
    private readonly int _groups;
    private readonly int _padding;

    public Conv1dBlock(int inputChannels, int outputChannels, int kernelSize, int groups = 8) : base(nameof(Conv1dBlock))
    {
        conv = nn.Conv1d(inputChannels, outputChannels, kernelSize, padding: kernelSize / 2);
        norm = Layers.GroupNorm(groups, outputChannels, Epsilon);
        _groups = groups;
        _padding = kernelSize / 2;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, !is_grad_enabled());

    /// <summary>The block; with <paramref name="inplace"/> (no autograd) GroupNorm and Mish run as one fused pass over the
    /// convolution's own output, and <paramref name="perChannel"/> ([B, C]) and <paramref name="elementwise"/> ([B, C, H]),
    /// when given, are added to the result in the same pass.</summary>
    public Tensor Forward(Tensor x, bool inplace, Tensor? perChannel = null, Tensor? elementwise = null)
    {
        var convolved = TemporalConvolution.Apply(x, conv.weight!, conv.bias, padding: _padding);
        if (FusedGroupNormMish.Supports(convolved, norm.weight!, norm.bias!, perChannel, elementwise))
        {
            // One kernel with and without autograd (identical numbers); without autograd it overwrites the convolution.
            var fused = FusedGroupNormMish.Apply(convolved, _groups, norm.weight!, norm.bias!, Epsilon, perChannel, elementwise, overwrite: inplace);
            if (!ReferenceEquals(fused, convolved))
                convolved.Dispose();
            return fused;
        }
        var normalised = norm.call(convolved);
        convolved.Dispose();
        var activated = F.mish(normalised, inplace);
        if (!inplace)
            normalised.Dispose();   // the graph keeps what it needs
        if (perChannel is not null)
            activated.add_(perChannel.unsqueeze(-1), Scalars.One);
        if (elementwise is not null)
            activated.add_(elementwise, Scalars.One);
        return activated;
    }
}

/// <summary>Diffuser's residual temporal block: two Conv1d blocks with the projected step embedding added after the
/// first, plus the input (through a 1x1 conv when the width changes).</summary>
internal sealed class ResidualTemporalBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Conv1dBlock block0;
    private readonly Conv1dBlock block1;
    private readonly Linear time;
    private readonly Conv1d? residual;

    public ResidualTemporalBlock(int inputChannels, int outputChannels, int embeddingDimension, int kernelSize = 5) : base(nameof(ResidualTemporalBlock))
    {
        block0 = new Conv1dBlock(inputChannels, outputChannels, kernelSize);
        block1 = new Conv1dBlock(outputChannels, outputChannels, kernelSize);
        time = nn.Linear(embeddingDimension, outputChannels);
        residual = inputChannels != outputChannels ? nn.Conv1d(inputChannels, outputChannels, 1) : null;
        RegisterComponents();
    }

    /// <summary>Output channels (the width of this block's time projection).</summary>
    public long OutputChannels => time.weight!.shape[0];

    /// <summary>The time projection's weight [C, E].</summary>
    public Tensor TimeWeight => time.weight!;

    /// <summary>The time projection's bias [C].</summary>
    public Tensor TimeBias => time.bias!;

    /// <summary>x [B, C, H] and the step embedding [B, E] (raw: Mish is applied here).</summary>
    public override Tensor forward(Tensor x, Tensor embedding)
    {
        using var activated = F.mish(embedding);
        using var projected = time.call(activated);
        return Forward(x, projected, !is_grad_enabled());
    }

    /// <summary>x [B, C_in, H] and this block's projected step embedding [B, C] (any row stride): block0, plus the
    /// projection, block1, plus the residual. Without autograd both additions happen inside the fused GroupNorm-Mish passes.</summary>
    public Tensor Forward(Tensor x, Tensor projected, bool inplace)
    {
        var h = block0.Forward(x, inplace, perChannel: projected);   // adds to block0's own output (safe with autograd too)
        var skip = residual is null ? x : TemporalConvolution.Apply(x, residual.weight!, residual.bias);
        var output = block1.Forward(h, inplace, elementwise: skip);
        h.Dispose();
        if (residual is not null)
            skip.Dispose();
        return output;
    }
}
