using System.Globalization;
using System.Text;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Every setting of one Maze2D run (docs/EXPERIMENTS.md section 1). The presets are sized for a 2-core CPU;
/// see <see cref="Quick"/>, <see cref="Default"/> and <see cref="PaperLite"/> for what each one is for.
/// </summary>
public sealed record Maze2DSettings
{
    /// <summary>The preset's name (reported).</summary>
    [NotInModelKey]
    public string Name { get; init; } = "custom";

    // ---- data ----
    /// <summary>Transitions of base ("general") data: random start and random goal every episode.</summary>
    public int BaseTransitions { get; init; } = 60_000;

    /// <summary>Transitions of expert data per goal: fixed goal, random start, reset on reaching the goal.</summary>
    public int ExpertTransitions { get; init; } = 30_000;

    /// <summary>H, trajectory steps per diffusion sample (window).</summary>
    public int Horizon { get; init; } = 16;

    /// <summary>Steps between the starts of consecutive training windows of one episode.</summary>
    public int WindowStride { get; init; } = 2;

    /// <summary>
    /// Whether the training windows run past each episode's end, padded with its last state and a zero action (the window
    /// transform's <c>PadEpisodeEnds</c>): every episode ends on arrival, so padded expert windows rest at the goal, as in
    /// the paper's data. The classifiers' windows are never padded.
    /// </summary>
    public bool PadEpisodeEnds { get; init; } = true;

    /// <summary>With <see cref="PadEpisodeEnds"/>, how many steps each episode is taken to rest at its end: training windows
    /// start up to this many steps past its last step (the window transform's <c>ExtraEndSteps</c>).</summary>
    public int EndRestSteps { get; init; } = 0;

    /// <summary>Fraction of episodes (base and expert) held out from all training, for the accuracies.</summary>
    public double HeldOutFraction { get; init; } = 0.2;

    // ---- diffusion models ----
    /// <summary>T, diffusion steps.</summary>
    public int DiffusionSteps { get; init; } = 20;

    /// <summary>Whether the denoisers predict the noise epsilon (true) or the clean sample x0 (false, Diffuser's default).</summary>
    public bool PredictNoise { get; init; } = true;

    /// <summary>Whether x0 estimates are clamped to [-1, 1] (Diffuser's default).</summary>
    public bool ClipDenoised { get; init; } = true;

    /// <summary>Width of the temporal U-Net's first level.</summary>
    public int NetworkDimension { get; init; } = 16;

    /// <summary>Width multipliers of the temporal U-Net's levels (H must be divisible by 2^(levels-1)).</summary>
    public int[] NetworkMultipliers { get; init; } = [1, 2];

    /// <summary>Optimiser steps of the base model.</summary>
    public int BaseTrainingSteps { get; init; } = 3000;

    /// <summary>Batch size of the base model.</summary>
    public int BaseBatchSize { get; init; } = 64;

    /// <summary>Adam learning rate of both diffusion models.</summary>
    public double DiffusionLearningRate { get; init; } = 1e-3;

    /// <summary>EMA start step of both diffusion models (Diffuser: 2000; our runs are shorter).</summary>
    public int DiffusionEmaStartStep { get; init; } = 1000;

    /// <summary>Optimiser steps of each expert model.</summary>
    public int ExpertTrainingSteps { get; init; } = 800;

    /// <summary>Batch size of the expert models.</summary>
    public int ExpertBatchSize { get; init; } = 64;

    /// <summary>Adam learning rate of the expert models.</summary>
    public double ExpertLearningRate { get; init; } = 1e-3;

    /// <summary>EMA start step of the expert models.</summary>
    public int ExpertEmaStartStep { get; init; }

    /// <summary>
    /// When true, the reward is extracted against a <i>reference</i> base model: the base model fine-tuned on base data with
    /// exactly the expert models' schedule (steps, batch, learning rate, EMA, seed), trained once per layout. Expert and reference
    /// then share their whole training history except the data, so the optimisation drift of the fine-tuning cancels in
    /// mu_expert - mu_reference instead of appearing as a spurious reward.
    /// </summary>
    public bool PairedReference { get; init; } = true;

    /// <summary>Whether each expert model starts from the base model's weights (otherwise from a fresh initialisation).</summary>
    public bool ExpertWarmStart { get; init; } = true;

    // ---- relative reward ----
    /// <summary>What the per-state reward reads of each row (see <see cref="Maze2D.RewardFeatures"/>).</summary>
    [ModelKeyOf("reward", "map-reward")]
    public RewardFeatures RewardFeatures { get; init; } = RewardFeatures.Transition;

    /// <summary>
    /// What the heat map's reward reads. When it differs from <see cref="RewardFeatures"/>, a second per-state reward with these
    /// features is fitted to the same targets (the same objective restricted to functions of these features) and only the
    /// heat map uses it; the accuracies always use the <see cref="RewardFeatures"/> reward. Default <see cref="RewardFeatures.Position"/>:
    /// the map is a function of position, and a reward that also reads velocity and action, averaged over the base states of a
    /// bin, subtracts how unlike the expert's the base behaviour in that bin is, which is largest at the goal.
    /// </summary>
    [ModelKeyOf("map-reward")]
    public RewardFeatures MapRewardFeatures { get; init; } = RewardFeatures.Position;

    /// <summary>
    /// The heat map's reward is fitted on the positions of the last this-many steps of each window only (0 = every step). Within
    /// a window the two models' difference pulls the first states back along the path and pushes the last ones on toward where
    /// the expert goes; over every step these cancel and the map became a ramp with a shared peak, while the last steps alone
    /// point to the goal (docs/EXPERIMENTS.md section 1). Used only when <see cref="MapRewardFeatures"/> differs from
    /// <see cref="RewardFeatures"/>.
    /// </summary>
    [ModelKeyOf("map-reward")]
    public int MapRewardFittedSteps { get; init; } = 4;

    /// <summary>Hidden widths of the per-state reward MLP (window 1).</summary>
    [ModelKeyOf("reward", "map-reward")]
    public int[] RewardHiddenSizes { get; init; } = [64, 64];

    /// <summary>Optimiser steps of the reward.</summary>
    [ModelKeyOf("reward", "map-reward")]
    public int RewardTrainingSteps { get; init; } = 1500;

    /// <summary>Batch size (windows) of the reward.</summary>
    [ModelKeyOf("reward", "map-reward")]
    public int RewardBatchSize { get; init; } = 64;

    /// <summary>Adam learning rate of the reward.</summary>
    [ModelKeyOf("reward", "map-reward")]
    public double RewardLearningRate { get; init; } = 1e-3;

    /// <summary>Fraction of expert windows in the reward's training samples (the rest are base windows).</summary>
    [ModelKeyOf("reward", "map-reward")]
    public double RewardExpertFraction { get; init; } = 0.5;

    /// <summary>
    /// Size of the pool of cached regression targets (x0, t, eps -> mu_base, mu_expert - mu_base), computed once in large
    /// batches (the reward trainer's <c>TargetCachePoolSize</c>, never refreshed); 0 draws them afresh at every step.
    /// </summary>
    [ModelKeyOf("reward", "map-reward")]
    public int RewardTargetPool { get; init; } = 16_384;

    /// <summary>Balance the reward's loss over noise levels (the reward trainer's <c>BalanceNoiseLevels</c>); needs a target pool.</summary>
    [ModelKeyOf("reward", "map-reward")]
    public bool RewardBalanceSteps { get; init; }

    // ---- evaluation ----
    /// <summary>At most this many windows per class (expert / base) for the classifiers' training and held-out sets.</summary>
    [NotInModelKey]
    public int EvaluationWindows { get; init; } = 3000;

    /// <summary>Trees of the FastTree baseline.</summary>
    [NotInModelKey]
    public int FastTreeTrees { get; init; } = 50;

    /// <summary>Leaves per tree of the FastTree baseline.</summary>
    [NotInModelKey]
    public int FastTreeLeaves { get; init; } = 20;

    /// <summary>Guidance scale of the sampler each goal saves (sampler-&lt;goal&gt;.zip; <c>mlreward sample --scale</c> overrides it).
    /// On umaze (default preset, goal (3, 3)) the samples' mean distance to the goal was 1.68 unguided, 1.53 at scale 3, 1.09
    /// at 10, 0.59 at 20 and 0.28 at 30 (where they collapse onto the goal).</summary>
    [NotInModelKey]
    public double SamplerGuidanceScale { get; init; } = 20;

    /// <summary>The saved sampler guides no reverse step below this one (the paper's t_stopgrad).</summary>
    [NotInModelKey]
    public int SamplerStopGradientBelow { get; init; }

    /// <summary>Reverse steps of the saved sampler: 0 (default) = ancestral over all T; S in 1..T = deterministic DDIM over S
    /// steps (<c>mlreward sample --steps</c> overrides it).</summary>
    [NotInModelKey]
    public int SamplerSamplingSteps { get; init; }

    /// <summary>Diagnostic: noise steps t at which the map's reward is also read (goal errors in report.json, heat maps
    /// heatmap-&lt;goal&gt;-t&lt;t&gt;.png). Empty by default: the paper's map reads t = 0.</summary>
    [NotInModelKey]
    public int[] DiagnosticMapSteps { get; init; } = [];

    /// <summary>Held-out windows on which the conservativeness diagnostic of each reward is measured (report and
    /// conservativeness-&lt;goal&gt;.png).</summary>
    [NotInModelKey]
    public int DiagnosticRows { get; init; } = 256;

    /// <summary>The diagnostic reads every this-many-th noise level (and the last).</summary>
    [NotInModelKey]
    public int DiagnosticStride { get; init; } = 2;

    /// <summary>Hutchinson probe vectors per window for the diagnostic's asymmetry.</summary>
    [NotInModelKey]
    public int DiagnosticProbes { get; init; } = 2;

    /// <summary>Minimum number of states for a heat-map bin to be shown (docs/METHOD.md section 8: 5).</summary>
    [NotInModelKey]
    public int HeatmapMinCount { get; init; } = 5;

    /// <summary>Fraction winsorised in each tail of the heat map's rewards (docs/METHOD.md section 8: 0.5%).</summary>
    [NotInModelKey]
    public double HeatmapWinsorize { get; init; } = 0.005;

    /// <summary>Seed of everything (data, split, networks, training).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>
    /// CI-sized: a smoke run that exercises every stage in well under a minute per goal on a small maze. Its numbers are not
    /// meant to reach the paper's targets.
    /// </summary>
    public static Maze2DSettings Quick => new()
    {
        Name = "quick",
        BaseTransitions = 12_000,
        ExpertTransitions = 6_000,
        Horizon = 8,
        WindowStride = 2,
        NetworkDimension = 8,
        NetworkMultipliers = [1, 2],
        DiffusionSteps = 10,
        BaseTrainingSteps = 300,
        BaseBatchSize = 32,
        DiffusionEmaStartStep = 2000,
        ExpertTrainingSteps = 120,
        ExpertBatchSize = 32,
        RewardHiddenSizes = [32, 32],
        RewardTrainingSteps = 300,
        RewardBatchSize = 32,
        RewardTargetPool = 2048,
        MapRewardFittedSteps = 2,
        EvaluationWindows = 1000,
        FastTreeTrees = 20,
        FastTreeLeaves = 8,
        DiagnosticRows = 64,
        DiagnosticStride = 5,
    };

    /// <summary>The README's default: umaze and medium, all 8 goals, in about 10 minutes on 2 cores.</summary>
    public static Maze2DSettings Default => new() { Name = "default" };

    /// <summary>Larger data, models and step counts for large and open mazes (tens of minutes on 2 cores).</summary>
    public static Maze2DSettings PaperLite => new()
    {
        Name = "paper-lite",
        BaseTransitions = 200_000,
        ExpertTransitions = 60_000,
        Horizon = 32,
        WindowStride = 4,
        NetworkDimension = 32,
        NetworkMultipliers = [1, 2, 4],
        DiffusionSteps = 32,
        BaseTrainingSteps = 8000,
        DiffusionEmaStartStep = 2000,
        ExpertTrainingSteps = 2000,
        RewardHiddenSizes = [128, 128],
        RewardTrainingSteps = 3000,
        RewardTargetPool = 32_768,
        MapRewardFittedSteps = 8,
        EvaluationWindows = 8000,
    };

    /// <summary>A preset by name: quick, default or paper-lite.</summary>
    public static Maze2DSettings FromPreset(string name) => name.Trim().ToLowerInvariant() switch
    {
        "quick" => Quick,
        "default" => Default,
        "paper-lite" or "paperlite" => PaperLite,
        _ => throw new ArgumentException($"Unknown preset '{name}'. Presets: quick, default, paper-lite.", nameof(name)),
    };

    /// <summary>The preset names.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["quick", "default", "paper-lite"];

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        static void Positive(int value, string name)
        {
            if (value < 1)
                throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least 1.");
        }
        Positive(BaseTransitions, nameof(BaseTransitions));
        Positive(ExpertTransitions, nameof(ExpertTransitions));
        Positive(Horizon, nameof(Horizon));
        Positive(WindowStride, nameof(WindowStride));
        Positive(DiffusionSteps, nameof(DiffusionSteps));
        Positive(NetworkDimension, nameof(NetworkDimension));
        Positive(BaseTrainingSteps, nameof(BaseTrainingSteps));
        Positive(BaseBatchSize, nameof(BaseBatchSize));
        Positive(ExpertBatchSize, nameof(ExpertBatchSize));
        Positive(RewardTrainingSteps, nameof(RewardTrainingSteps));
        Positive(RewardBatchSize, nameof(RewardBatchSize));
        Positive(EvaluationWindows, nameof(EvaluationWindows));
        Positive(FastTreeTrees, nameof(FastTreeTrees));
        Positive(DiagnosticRows, nameof(DiagnosticRows));
        Positive(DiagnosticStride, nameof(DiagnosticStride));
        Positive(DiagnosticProbes, nameof(DiagnosticProbes));
        Positive(ExpertTrainingSteps, nameof(ExpertTrainingSteps));
        if (SamplerGuidanceScale < 0 || !double.IsFinite(SamplerGuidanceScale))
            throw new ArgumentOutOfRangeException(nameof(SamplerGuidanceScale), SamplerGuidanceScale, "SamplerGuidanceScale must be finite and at least 0.");
        if (SamplerStopGradientBelow < 0 || SamplerStopGradientBelow >= DiffusionSteps)
            throw new ArgumentOutOfRangeException(nameof(SamplerStopGradientBelow), SamplerStopGradientBelow, $"SamplerStopGradientBelow must lie in 0..{DiffusionSteps - 1}.");
        if (SamplerSamplingSteps < 0 || SamplerSamplingSteps > DiffusionSteps)
            throw new ArgumentOutOfRangeException(nameof(SamplerSamplingSteps), SamplerSamplingSteps, $"SamplerSamplingSteps must lie in 0..{DiffusionSteps} (0 = every step).");
        if (FastTreeLeaves < 2)
            throw new ArgumentOutOfRangeException(nameof(FastTreeLeaves), FastTreeLeaves, "FastTreeLeaves must be at least 2.");
        if (!(HeldOutFraction is > 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(HeldOutFraction), HeldOutFraction, "HeldOutFraction must lie in (0, 1).");
        if (EndRestSteps < 0 || (EndRestSteps > 0 && !PadEpisodeEnds))
            throw new ArgumentOutOfRangeException(nameof(EndRestSteps), EndRestSteps, "EndRestSteps must be at least 0, and 0 unless PadEpisodeEnds is on.");
        if (!(RewardExpertFraction is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(RewardExpertFraction), RewardExpertFraction, "RewardExpertFraction must lie in [0, 1].");
        if (!(HeatmapWinsorize is >= 0 and < 0.5))
            throw new ArgumentOutOfRangeException(nameof(HeatmapWinsorize), HeatmapWinsorize, "HeatmapWinsorize must lie in [0, 0.5).");
        if (MapRewardFittedSteps < 0 || MapRewardFittedSteps > Horizon)
            throw new ArgumentOutOfRangeException(nameof(MapRewardFittedSteps), MapRewardFittedSteps, $"MapRewardFittedSteps must lie in 0..{Horizon} (the horizon; 0 = every step).");
        if (RewardTargetPool < 0)
            throw new ArgumentOutOfRangeException(nameof(RewardTargetPool), RewardTargetPool, "RewardTargetPool must be 0 (off) or positive.");
        if (NetworkMultipliers is null || NetworkMultipliers.Length == 0 || NetworkMultipliers.Any(m => m < 1))
            throw new ArgumentException("NetworkMultipliers needs at least one positive multiplier.", nameof(NetworkMultipliers));
        int divisor = 1 << (NetworkMultipliers.Length - 1);
        if (Horizon % divisor != 0)
            throw new ArgumentException($"The horizon {Horizon} must be divisible by {divisor} for a U-Net of {NetworkMultipliers.Length} levels.", nameof(Horizon));
        if (NetworkMultipliers.Any(m => NetworkDimension * m % 8 != 0))
            throw new ArgumentException($"Every U-Net level's width (dimension {NetworkDimension} x multiplier) must be a multiple of 8 (GroupNorm groups).", nameof(NetworkDimension));
        if (RewardHiddenSizes is null || RewardHiddenSizes.Length == 0 || RewardHiddenSizes.Any(h => h < 1))
            throw new ArgumentException("RewardHiddenSizes needs at least one positive width.", nameof(RewardHiddenSizes));
    }

    /// <summary>A readable multi-line summary of the settings.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.Append(c, $"data: base {BaseTransitions:N0} transitions, expert {ExpertTransitions:N0} per goal, windows H={Horizon} stride {WindowStride}, {HeldOutFraction:P0} of episodes held out\n");
        sb.Append(c, $"diffusion: TemporalUNet dim {NetworkDimension} mults {string.Join(",", NetworkMultipliers)}, T={DiffusionSteps}, predicts {(PredictNoise ? "epsilon" : "x0")}, lr {DiffusionLearningRate:G}; base {BaseTrainingSteps} x {BaseBatchSize}; expert {ExpertTrainingSteps} x {ExpertBatchSize}, lr {ExpertLearningRate:G}{(ExpertWarmStart ? " (warm start from base)" : "")}\n");
        sb.Append(c, $"reward: per-state MLP {string.Join("x", RewardHiddenSizes)} (window 1) on the {RewardFeatures.ToString().ToLowerInvariant()}{(MapRewardFeatures != RewardFeatures ? $" (heat map: a second one on the {MapRewardFeatures.ToString().ToLowerInvariant()}{(MapRewardFittedSteps > 0 ? $", fitted on the last {MapRewardFittedSteps} steps" : "")})" : "")}, {RewardTrainingSteps} x {RewardBatchSize}, lr {RewardLearningRate:G}, {RewardExpertFraction:P0} expert windows, {(RewardTargetPool > 0 ? $"{RewardTargetPool:N0} cached targets" : "targets per step")}\n");
        sb.Append(c, $"evaluation: windows of {Horizon} steps, <= {EvaluationWindows:N0} per class, FastTree {FastTreeTrees} trees x {FastTreeLeaves} leaves");
        return sb.ToString();
    }
}
