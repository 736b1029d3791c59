namespace Microsoft.ML.RewardExtraction;

/// <summary>Which denoising network a diffusion model uses.</summary>
public enum DenoiserKind
{
    /// <summary>Chosen from the sample shape: <see cref="TemporalUNet"/> for trajectories, <see cref="ImageUNet"/> for images.</summary>
    Auto = 0,
    /// <summary>Diffuser's temporal U-Net over (horizon x transition) trajectories.</summary>
    TemporalUNet = 1,
    /// <summary>A small MLP over the flattened sample (tiny problems and tests).</summary>
    Mlp = 2,
    /// <summary>A small 2-D U-Net over (channels x height x width) images.</summary>
    ImageUNet = 3,
}

/// <summary>
/// The architecture and hyperparameters of a denoiser: enough to rebuild it (its weights are stored separately).
/// Which properties matter depends on <see cref="Kind"/>.
/// </summary>
public sealed class DenoiserOptions
{
    /// <summary>The network; <see cref="DenoiserKind.Auto"/> picks one from the sample shape.</summary>
    public DenoiserKind Kind { get; set; } = DenoiserKind.Auto;

    /// <summary>U-Nets: the channel width of the first level (Diffuser: 32). Must make every level's width a multiple
    /// of 8 (GroupNorm groups). MLP: unused.</summary>
    public int Dimension { get; set; } = 32;

    /// <summary>U-Nets: channel multipliers per level (the widths are <c>Dimension * m</c>). A trajectory horizon
    /// (image height and width) must be divisible by 2^(levels - 1). Null: (1, 2, 4) for trajectories, (1, 2) for images.</summary>
    public int[]? Multipliers { get; set; }

    /// <summary>MLP: width of the hidden layers.</summary>
    public int HiddenWidth { get; set; } = 256;

    /// <summary>MLP: number of hidden layers (at least 1).</summary>
    public int HiddenLayers { get; set; } = 3;

    /// <summary>MLP: width of the sinusoidal step embedding (even, at least 4).</summary>
    public int TimeEmbeddingDimension { get; set; } = 32;

    /// <summary>A deep copy.</summary>
    public DenoiserOptions Clone() => new()
    {
        Kind = Kind,
        Dimension = Dimension,
        Multipliers = Multipliers is null ? null : (int[])Multipliers.Clone(),
        HiddenWidth = HiddenWidth,
        HiddenLayers = HiddenLayers,
        TimeEmbeddingDimension = TimeEmbeddingDimension,
    };

    /// <summary>A copy with <see cref="Kind"/> and <see cref="Multipliers"/> resolved for <paramref name="shape"/>.</summary>
    public DenoiserOptions Resolve(SampleShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var resolved = Clone();
        if (resolved.Kind == DenoiserKind.Auto)
            resolved.Kind = shape.Kind == SampleShapeKind.Trajectory ? DenoiserKind.TemporalUNet : DenoiserKind.ImageUNet;
        resolved.Multipliers ??= resolved.Kind == DenoiserKind.ImageUNet ? [1, 2] : [1, 2, 4];
        return resolved;
    }

    /// <summary>Builds an untrained network for <paramref name="shape"/> (initialised from torch's global generator:
    /// wrap the call in <see cref="TorchRandom.Initialize{T}"/> for a seeded initialisation).</summary>
    public Denoiser Create(SampleShape shape)
    {
        var o = Resolve(shape);
        return o.Kind switch
        {
            DenoiserKind.TemporalUNet => new TemporalUNet(shape, o.Dimension, o.Multipliers!),
            DenoiserKind.Mlp => new MlpDenoiser(shape, o.HiddenWidth, o.HiddenLayers, o.TimeEmbeddingDimension),
            DenoiserKind.ImageUNet => new ImageUNet(shape, o.Dimension, o.Multipliers!),
            _ => throw new ArgumentOutOfRangeException(nameof(Kind), o.Kind, "Unknown denoiser kind."),
        };
    }

    /// <summary>The options a library denoiser was built with.</summary>
    /// <exception cref="NotSupportedException">The denoiser is not one of the library's networks.</exception>
    public static DenoiserOptions From(Denoiser denoiser)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        return denoiser is IDescribedDenoiser described
            ? described.Options.Clone()
            : throw new NotSupportedException($"{denoiser.GetType().Name} is not one of the library's denoisers, so it cannot be rebuilt or saved; use {nameof(TemporalUNet)}, {nameof(MlpDenoiser)} or {nameof(ImageUNet)}.");
    }

    /// <summary>Writes the resolved kind and all hyperparameters.</summary>
    internal void Save(BinaryWriter writer)
    {
        writer.Write((int)Kind);
        writer.Write(Dimension);
        var multipliers = Multipliers ?? [];
        writer.Write(multipliers.Length);
        foreach (var m in multipliers)
            writer.Write(m);
        writer.Write(HiddenWidth);
        writer.Write(HiddenLayers);
        writer.Write(TimeEmbeddingDimension);
    }

    /// <summary>Reads options written by <see cref="Save"/>.</summary>
    internal static DenoiserOptions Load(BinaryReader reader)
    {
        var kind = (DenoiserKind)reader.ReadInt32();
        if (!Enum.IsDefined(kind) || kind == DenoiserKind.Auto)
            throw new InvalidDataException($"Unknown denoiser kind {(int)kind} in model data.");
        int dimension = reader.ReadInt32();
        int count = reader.ReadInt32();
        if (count is < 0 or > 16)
            throw new InvalidDataException($"Invalid number of U-Net levels ({count}) in model data.");
        var multipliers = new int[count];
        for (int i = 0; i < count; i++)
            multipliers[i] = reader.ReadInt32();
        return new DenoiserOptions
        {
            Kind = kind,
            Dimension = dimension,
            Multipliers = multipliers,
            HiddenWidth = reader.ReadInt32(),
            HiddenLayers = reader.ReadInt32(),
            TimeEmbeddingDimension = reader.ReadInt32(),
        };
    }

    /// <summary>"TemporalUNet(dim=32, mults=1,2,4)" and the like.</summary>
    public override string ToString() => Kind switch
    {
        DenoiserKind.Mlp => $"Mlp(hidden={HiddenWidth}x{HiddenLayers}, temb={TimeEmbeddingDimension})",
        _ => $"{Kind}(dim={Dimension}, mults={(Multipliers is null ? "default" : string.Join(",", Multipliers))})",
    };
}

/// <summary>A denoiser that can describe how to rebuild itself.</summary>
internal interface IDescribedDenoiser
{
    DenoiserOptions Options { get; }
}
