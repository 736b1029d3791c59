using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>How per-window rewards are combined into one reward per trajectory.</summary>
public enum RewardAggregation
{
    /// <summary>The mean over windows (docs/METHOD.md section 6: independent of the horizon).</summary>
    Mean = 0,
    /// <summary>The sum over windows (the benchmark reference's state reward).</summary>
    Sum = 1,
}

/// <summary>Hyperparameters of a <see cref="StateReward"/>.</summary>
public sealed class StateRewardOptions
{
    /// <summary>Number m of consecutive trajectory rows in one window (1 = per state). Default 1.</summary>
    public int Window { get; init; } = 1;

    /// <summary>Widths of the hidden layers. Default (128, 128): a small MLP that trains quickly on a CPU;
    /// the benchmark uses (256, 256).</summary>
    public IReadOnlyList<int> HiddenSizes { get; init; } = new[] { 128, 128 };

    /// <summary>Nonlinearity of the hidden layers. Default <see cref="RewardActivation.Mish"/> (smooth input gradients).</summary>
    public RewardActivation Activation { get; init; } = RewardActivation.Mish;

    /// <summary>How t is embedded. Default <see cref="RewardTimeEmbeddingKind.Learned"/>: sinusoidal(d) -> Linear(128) -> LeakyReLU -> Linear(d) (docs/METHOD.md section 6).</summary>
    public RewardTimeEmbeddingKind TimeEmbedding { get; init; } = RewardTimeEmbeddingKind.Learned;

    /// <summary>Width d of the sinusoidal features (and of the learned embedding's output). Default 32.</summary>
    public int TimeEmbeddingDimension { get; init; } = 32;

    /// <summary>Hidden width of the learned time embedding (ignored for raw sinusoidal). Default 128.</summary>
    public int TimeEmbeddingHiddenSize { get; init; } = 128;

    /// <summary>How window rewards are combined. Default <see cref="RewardAggregation.Mean"/> (docs/METHOD.md section 6).</summary>
    public RewardAggregation Aggregation { get; init; } = RewardAggregation.Mean;

    /// <summary>The benchmark's state reward (the PyTorch reference's; docs/ARCHITECTURE.md section 7): per state (window 1), hidden (256, 256),
    /// Mish, raw sinusoidal embedding of width 32 concatenated to the state, summed over the horizon.
    /// For transition dimension 6 it has 76,033 parameters.</summary>
    public static StateRewardOptions Benchmark => new()
    {
        Window = 1,
        HiddenSizes = new[] { 256, 256 },
        Activation = RewardActivation.Mish,
        TimeEmbedding = RewardTimeEmbeddingKind.Sinusoidal,
        TimeEmbeddingDimension = 32,
        Aggregation = RewardAggregation.Sum,
    };

    internal StateRewardOptions Validated(SampleShape shape)
    {
        if (shape.Kind != SampleShapeKind.Trajectory)
            throw new ArgumentException($"A state reward needs trajectory samples; got {shape}.", nameof(shape));
        if (Window < 1 || Window > shape.Horizon)
            throw new ArgumentOutOfRangeException(nameof(Window), Window, $"The window must lie in 1..{shape.Horizon} (the horizon of {shape}).");
        if (HiddenSizes is null || HiddenSizes.Count == 0 || HiddenSizes.Any(h => h < 1))
            throw new ArgumentException("A state reward needs at least one hidden layer, each of positive width.", nameof(HiddenSizes));
        if (TimeEmbeddingDimension < 4 || TimeEmbeddingDimension % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(TimeEmbeddingDimension), TimeEmbeddingDimension, "The time embedding width must be even and at least 4.");
        if (TimeEmbedding == RewardTimeEmbeddingKind.Learned && TimeEmbeddingHiddenSize < 1)
            throw new ArgumentOutOfRangeException(nameof(TimeEmbeddingHiddenSize), TimeEmbeddingHiddenSize, "The time embedding's hidden width must be positive.");
        if (!Enum.IsDefined(Activation) || !Enum.IsDefined(TimeEmbedding) || !Enum.IsDefined(Aggregation))
            throw new ArgumentException("Unknown activation, time embedding or aggregation.");
        return new StateRewardOptions
        {
            Window = Window,
            HiddenSizes = HiddenSizes.ToArray(),
            Activation = Activation,
            TimeEmbedding = TimeEmbedding,
            TimeEmbeddingDimension = TimeEmbeddingDimension,
            TimeEmbeddingHiddenSize = TimeEmbeddingHiddenSize,
            Aggregation = Aggregation,
        };
    }

    internal void Write(BinaryWriter writer)
    {
        writer.Write(Window);
        writer.Write(HiddenSizes.Count);
        foreach (var h in HiddenSizes)
            writer.Write(h);
        writer.Write((int)Activation);
        writer.Write((int)TimeEmbedding);
        writer.Write(TimeEmbeddingDimension);
        writer.Write(TimeEmbeddingHiddenSize);
        writer.Write((int)Aggregation);
    }

    internal static StateRewardOptions Read(BinaryReader reader)
    {
        int window = reader.ReadInt32();
        int count = reader.ReadInt32();
        if (count is < 1 or > 64)
            throw new InvalidDataException($"Invalid hidden layer count {count} in state reward data.");
        var hidden = new int[count];
        for (int i = 0; i < count; i++)
            hidden[i] = reader.ReadInt32();
        return new StateRewardOptions
        {
            Window = window,
            HiddenSizes = hidden,
            Activation = (RewardActivation)reader.ReadInt32(),
            TimeEmbedding = (RewardTimeEmbeddingKind)reader.ReadInt32(),
            TimeEmbeddingDimension = reader.ReadInt32(),
            TimeEmbeddingHiddenSize = reader.ReadInt32(),
            Aggregation = (RewardAggregation)reader.ReadInt32(),
        };
    }
}

/// <summary>
/// The state reward of the navigation experiments: an MLP r(w, t) applied to every window w of m
/// <b>contiguous</b> trajectory rows (rows i..i+m-1 for i = 0..H-m, stride 1; the paper's reference code built
/// strided windows by accident), aggregated to one scalar per trajectory (mean by default, or sum).
/// A trajectory row is the whole transition [action, observation] (D values), so a window holds m*D values, rows in
/// time order; with m = 1 the reward is per state.
/// The time embedding enters the first layer: h1 = act(W_x w + W_t emb(t) + b), which is the same function as a
/// Linear layer on the concatenation [w, emb(t)] with weight [W_x | W_t] (and the same parameter count), but the
/// time term is computed once per trajectory rather than once per window.
/// </summary>
public sealed class StateReward : RewardNetwork
{
    private readonly StateRewardOptions _options;
    private readonly RewardTimeEmbedding time_embedding;
    private readonly Linear input;
    private readonly Linear input_time;
    private readonly ModuleList<Linear> hidden;
    private readonly Linear output;

    /// <summary>Rebuilds an untrained network from what <see cref="SaveArchitecture"/> wrote (the registry's loader).</summary>
    internal static StateReward Load(SampleShape shape, BinaryReader architecture) => new(shape, StateRewardOptions.Read(architecture));

    /// <inheritdoc/>
    public override string ArchitectureName => nameof(StateReward);

    /// <inheritdoc/>
    public override string ArchitectureDescription => $"window {Options.Window}, hidden {RewardNetworkArchitecture.List(Options.HiddenSizes)}, {Options.Activation}, time {Options.TimeEmbedding}({Options.TimeEmbeddingDimension}, {Options.TimeEmbeddingHiddenSize}), {Options.Aggregation}";

    /// <inheritdoc/>
    public override void SaveArchitecture(BinaryWriter writer) => Options.Write(writer);

    /// <summary>Creates a state reward for trajectories of <paramref name="shape"/> (parameters from torch's global generator;
    /// wrap in <see cref="TorchRandom.Initialize{T}"/> for a seeded initialisation).</summary>
    public StateReward(SampleShape shape, StateRewardOptions? options = null) : base(nameof(StateReward), shape)
    {
        _options = (options ?? new StateRewardOptions()).Validated(shape);
        int inputWidth = _options.Window * shape.TransitionDimension;
        var widths = _options.HiddenSizes;
        time_embedding = new RewardTimeEmbedding(_options.TimeEmbedding, _options.TimeEmbeddingDimension, _options.TimeEmbeddingHiddenSize, RewardActivation.LeakyReLU);
        input = nn.Linear(inputWidth, widths[0]);
        input_time = nn.Linear(_options.TimeEmbeddingDimension, widths[0], hasBias: false);
        hidden = new ModuleList<Linear>();
        for (int i = 1; i < widths.Count; i++)
            hidden.Add(nn.Linear(widths[i - 1], widths[i]));
        output = nn.Linear(widths[^1], 1);
        RegisterComponents();
    }

    /// <summary>A copy of the hyperparameters this network was built with.</summary>
    public StateRewardOptions Options => _options.Validated(Shape);

    /// <summary>Number of windows per trajectory, H - m + 1.</summary>
    public int WindowCount => Shape.Horizon - _options.Window + 1;

    /// <summary>x [B, H, D], t [B] (int64) -> rewards [B].</summary>
    public override Tensor forward(Tensor x, Tensor t)
    {
        using var scope = NewDisposeScope();
        var perWindow = WindowRewards(x, t);
        var total = _options.Aggregation == RewardAggregation.Sum ? perWindow.sum(1) : perWindow.mean(new long[] { 1 });
        return total.MoveToOuterDisposeScope();
    }

    /// <summary>The reward of every window: x [B, H, D], t [B] -> [B, H - m + 1], window i covering rows i..i+m-1.</summary>
    public Tensor WindowRewards(Tensor x, Tensor t)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0];
        var windows = _options.Window == 1
            ? x
            : x.unfold(1, _options.Window, 1)          // [B, W, D, m]
                .transpose(2, 3)                         // [B, W, m, D]: rows in time order
                .reshape(batch, WindowCount, _options.Window * Shape.TransitionDimension);
        var timeTerm = input_time.call(time_embedding.call(t, x.dtype)).unsqueeze(1);   // [B, 1, h0]
        // Without autograd the activations are applied in place by a fused kernel (Mish) on the layers' own outputs.
        bool fused = !is_grad_enabled() && _options.Activation == RewardActivation.Mish;
        var h = Activate(input.call(windows).add_(timeTerm, Scalars.One), fused);
        foreach (var layer in hidden)
            h = Activate(layer.call(h), fused);
        return output.call(h).squeeze(-1).MoveToOuterDisposeScope();
    }

    private Tensor Activate(Tensor x, bool fused)
    {
        if (fused && FusedKernels.Supports(x))
            return FusedKernels.MishInPlace(x);
        return _options.Activation == RewardActivation.Mish ? FusedMish.Apply(x) : RewardTimeEmbedding.Activate(x, _options.Activation);
    }
}
