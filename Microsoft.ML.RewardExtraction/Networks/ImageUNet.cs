using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// A small 2-D U-Net for images [B, C, H, W]: a 3x3 input conv to <c>dim * m_1</c> channels; per level a residual
/// block (GroupNorm(8) -> SiLU -> Conv3x3, plus the projected step embedding, GroupNorm -> SiLU -> Conv3x3, residual
/// 1x1 conv when the width changes) and a stride-2 3x3 conv downsampling except at the last level; a middle block;
/// on the way up the level's skip is concatenated, a residual block, and nearest x2 upsampling + 3x3 conv except at
/// the first level; output GroupNorm -> SiLU -> Conv3x3 back to C channels. The step embedding is
/// sinusoidal(dim) -> Linear(dim, 4 dim) -> SiLU -> Linear(4 dim, 4 dim).
/// </summary>
public sealed class ImageUNet : Denoiser, IDescribedDenoiser
{
    private const int Groups = 8;

    private readonly Sequential time_mlp;
    private readonly Conv2d input_conv;
    private readonly ModuleList<ResidualBlock2d> down_blocks;
    private readonly ModuleList<Conv2d> downsamples;
    private readonly ResidualBlock2d mid;
    private readonly ModuleList<ResidualBlock2d> up_blocks;
    private readonly ModuleList<Conv2d> upsamples;
    private readonly GroupNorm output_norm;
    private readonly Conv2d output_conv;
    private readonly int _levels;

    /// <summary>Creates the network for images of <paramref name="shape"/>.</summary>
    /// <param name="shape">An image shape; height and width must be divisible by 2^(levels - 1).</param>
    /// <param name="dimension">Width of the first level (a multiple of 8 after multiplying by each multiplier).</param>
    /// <param name="multipliers">Width multipliers per level (default 1, 2).</param>
    public ImageUNet(SampleShape shape, int dimension = 32, params int[] multipliers)
        : base(nameof(ImageUNet), shape ?? throw new ArgumentNullException(nameof(shape)))
    {
        if (shape.Kind != SampleShapeKind.Image)
            throw new ArgumentException($"{nameof(ImageUNet)} denoises images; got {shape}.", nameof(shape));
        if (multipliers is null || multipliers.Length == 0)
            multipliers = [1, 2];
        Validate(shape, dimension, multipliers);
        Options = new DenoiserOptions { Kind = DenoiserKind.ImageUNet, Dimension = dimension, Multipliers = (int[])multipliers.Clone() };
        _levels = multipliers.Length;
        var widths = multipliers.Select(m => dimension * m).ToArray();
        int channels = shape.Dimensions[0], embedding = dimension * 4;

        time_mlp = nn.Sequential(
            ("embedding", new SinusoidalPositionEmbedding(dimension)),
            ("linear1", nn.Linear(dimension, embedding)),
            ("silu", nn.SiLU()),
            ("linear2", nn.Linear(embedding, embedding)));
        input_conv = nn.Conv2d(channels, widths[0], 3, padding: 1);

        var downBlocks = new List<ResidualBlock2d>();
        var downs = new List<Conv2d>();
        int previous = widths[0];
        for (int i = 0; i < _levels; i++)
        {
            downBlocks.Add(new ResidualBlock2d(previous, widths[i], embedding));
            previous = widths[i];
            if (i < _levels - 1)
                downs.Add(nn.Conv2d(widths[i], widths[i], 3, stride: 2, padding: 1));
        }
        down_blocks = nn.ModuleList(downBlocks.ToArray());
        downsamples = nn.ModuleList(downs.ToArray());
        mid = new ResidualBlock2d(widths[^1], widths[^1], embedding);

        var upBlocks = new List<ResidualBlock2d>();
        var ups = new List<Conv2d>();
        previous = widths[^1];
        for (int i = _levels - 1; i >= 0; i--)
        {
            upBlocks.Add(new ResidualBlock2d(previous + widths[i], widths[i], embedding));
            previous = widths[i];
            if (i > 0)
                ups.Add(nn.Conv2d(widths[i], widths[i], 3, padding: 1));
        }
        up_blocks = nn.ModuleList(upBlocks.ToArray());
        upsamples = nn.ModuleList(ups.ToArray());
        output_norm = Layers.GroupNorm(Groups, widths[0]);
        output_conv = nn.Conv2d(widths[0], channels, 3, padding: 1);
        RegisterComponents();
    }

    /// <summary>The hyperparameters this network was built with.</summary>
    public DenoiserOptions Options { get; }

    /// <summary>Checks that an ImageUNet can be built for <paramref name="shape"/>; throws a clear exception if not.</summary>
    public static void Validate(SampleShape shape, int dimension, IReadOnlyList<int> multipliers)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(multipliers);
        if (dimension < 4 || dimension % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "The ImageUNet width must be even and at least 4 (it is also the step-embedding width).");
        if (multipliers.Count == 0)
            throw new ArgumentException("The ImageUNet needs at least one level (one multiplier).", nameof(multipliers));
        for (int i = 0; i < multipliers.Count; i++)
        {
            if (multipliers[i] < 1)
                throw new ArgumentOutOfRangeException(nameof(multipliers), $"Level {i} has multiplier {multipliers[i]}; multipliers must be positive.");
            if (dimension * multipliers[i] % Groups != 0)
                throw new ArgumentException($"Level {i} would have {dimension * multipliers[i]} channels (dimension {dimension} x multiplier {multipliers[i]}), which GroupNorm({Groups}) cannot split: use a multiple of {Groups}.", nameof(multipliers));
        }
        int factor = 1 << (multipliers.Count - 1);
        if (shape.Kind == SampleShapeKind.Image && (shape.Dimensions[1] % factor != 0 || shape.Dimensions[2] % factor != 0))
            throw new ArgumentException($"An ImageUNet with {multipliers.Count} levels halves the image {multipliers.Count - 1} times, so height and width must be divisible by {factor}; got {shape}.", nameof(shape));
    }

    /// <summary>x_t [B, C, H, W] and steps t [B] -> prediction [B, C, H, W].</summary>
    public override Tensor forward(Tensor x, Tensor t)
    {
        bool inplace = !is_grad_enabled();
        using var scope = NewDisposeScope();
        var temb = time_mlp.call(t);
        var act = F.silu(temb);
        var h = input_conv.call(x);
        var skips = new Tensor[_levels];
        for (int i = 0; i < _levels; i++)
        {
            h = down_blocks[i].Forward(h, act, inplace);
            skips[i] = h;
            if (i < _levels - 1)
                h = downsamples[i].call(h);
        }
        h = mid.Forward(h, act, inplace);
        for (int j = 0; j < _levels; j++)
        {
            int level = _levels - 1 - j;
            h = up_blocks[j].Forward(cat(new[] { h, skips[level] }, 1), act, inplace);
            if (level > 0)
                h = upsamples[j].call(F.interpolate(h, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest));
        }
        h = F.silu(output_norm.call(h), inplace);
        return output_conv.call(h).MoveToOuterDisposeScope();
    }
}

/// <summary>GroupNorm -> SiLU -> Conv3x3, + Linear(step embedding), GroupNorm -> SiLU -> Conv3x3, + residual.</summary>
internal sealed class ResidualBlock2d : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly GroupNorm norm0;
    private readonly Conv2d conv0;
    private readonly Linear time;
    private readonly GroupNorm norm1;
    private readonly Conv2d conv1;
    private readonly Conv2d? residual;

    public ResidualBlock2d(int inputChannels, int outputChannels, int embeddingDimension, int groups = 8) : base(nameof(ResidualBlock2d))
    {
        norm0 = Layers.GroupNorm(groups, inputChannels);
        conv0 = nn.Conv2d(inputChannels, outputChannels, 3, padding: 1);
        time = nn.Linear(embeddingDimension, outputChannels);
        norm1 = Layers.GroupNorm(groups, outputChannels);
        conv1 = nn.Conv2d(outputChannels, outputChannels, 3, padding: 1);
        residual = inputChannels != outputChannels ? nn.Conv2d(inputChannels, outputChannels, 1) : null;
        RegisterComponents();
    }

    /// <summary>x [B, C, H, W] and the raw step embedding [B, E].</summary>
    public override Tensor forward(Tensor x, Tensor embedding)
    {
        using var activated = F.silu(embedding);
        return Forward(x, activated, !is_grad_enabled());
    }

    /// <summary>x [B, C, H, W] and the step embedding after SiLU [B, E].</summary>
    public Tensor Forward(Tensor x, Tensor activatedEmbedding, bool inplace)
    {
        using var n0 = norm0.call(x);
        using var a0 = F.silu(n0, inplace);
        var h = conv0.call(a0);
        using (var projected = time.call(activatedEmbedding))
            h.add_(projected.unsqueeze(-1).unsqueeze(-1), Scalars.One);
        using var n1 = norm1.call(h);
        h.Dispose();
        using var a1 = F.silu(n1, inplace);
        var output = conv1.call(a1);
        if (residual is null)
            return output.add_(x, Scalars.One);
        using var skip = residual.call(x);
        return output.add_(skip, Scalars.One);
    }
}
