using Microsoft.ML.RewardExtraction;
using System.Globalization;
using System.Text;

namespace MLReward.Experiments.Locomotion;

/// <summary>
/// Every setting of one locomotion run (docs/EXPERIMENTS.md section 2), per task and preset. The presets are sized for a
/// busy 2-core CPU; <see cref="For"/> documents why each value was chosen.
/// </summary>
public sealed record LocomotionSettings
{
    /// <summary>The preset names: quick (CI smoke test) and default (the experiment).</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["quick", "default"];

    /// <summary>The task: "cheetah", "hopper" or "walker".</summary>
    public string Environment { get; init; } = "cheetah";

    /// <summary>The preset's name (reported).</summary>
    [NotInModelKey]
    public string Preset { get; init; } = "custom";

    /// <summary>Seed of data, training and evaluation.</summary>
    public int Seed { get; init; } = 1;

    // ---- data ----
    /// <summary>Policies (file stems under the policy folder, without the task prefix) whose stochastic rollouts make the
    /// base ("medium-replay-like") data, with equal numbers of episodes.</summary>
    public string[] BasePolicies { get; init; } = ["early1", "early2", "medium"];

    /// <summary>Episodes per base policy.</summary>
    public int BaseEpisodesPerPolicy { get; init; } = 8;

    /// <summary>The policy whose stochastic rollouts make the expert data.</summary>
    public string ExpertPolicy { get; init; } = "expert";

    /// <summary>Expert episodes.</summary>
    public int ExpertEpisodes { get; init; } = 16;

    /// <summary>Steps at most per data episode (the hopper and the walker may terminate earlier).</summary>
    public int DataEpisodeSteps { get; init; } = 1000;

    /// <summary>H, environment steps per diffusion sample ([action, observation] per step).</summary>
    public int Horizon { get; init; } = 4;

    // ---- diffusion models ----
    /// <summary>T, diffusion steps (the paper's 20).</summary>
    public int DiffusionSteps { get; init; } = 20;

    /// <summary>Width of the temporal U-Net's first level.</summary>
    public int NetworkDimension { get; init; } = 32;

    /// <summary>Width multipliers of the temporal U-Net (H must be divisible by 2^(levels-1)).</summary>
    public int[] NetworkMultipliers { get; init; } = [1, 2, 4];

    /// <summary>Whether the diffusion models clamp their x0 estimates to [-1, 1] (Diffuser's default). The expert data,
    /// normalised with the base data's limits, leave [-1, 1] (measured: cheetah 0.9% of the entries, up to 1.44; hopper 5.4%,
    /// up to 1.95), and a clamped expert model cannot represent them. Default false, as Diffuser's locomotion configuration.</summary>
    public bool ClipDenoised { get; init; }

    /// <summary>How base windows are normalised (the expert's with the base's statistics). Default Gaussian, Diffuser's for
    /// locomotion: the limits normaliser lets a few extreme base windows (a flip, a fall) squeeze every other value of a
    /// dimension into a small part of [-1, 1].</summary>
    public NormalizerKind Normalizer { get; init; } = NormalizerKind.Gaussian;

    /// <summary>Loss weight of the first step's action, the one the planner executes; every other entry weighs 1.
    /// Default 10, Diffuser's locomotion <c>action_weight</c>.</summary>
    public double FirstActionWeight { get; init; } = 10;

    /// <summary>Optimiser steps of each diffusion model.</summary>
    public int DiffusionTrainingSteps { get; init; } = 4000;

    /// <summary>Batch size of the diffusion models.</summary>
    public int DiffusionBatchSize { get; init; } = 64;

    /// <summary>Adam learning rate of the diffusion models.</summary>
    public double DiffusionLearningRate { get; init; } = 5e-4;

    /// <summary>EMA start step of the diffusion models (Diffuser: 2000 of 1e6; our runs are far shorter).</summary>
    public int DiffusionEmaStartStep { get; init; } = 1000;

    /// <summary>Steps between EMA updates of the diffusion models and the reward. Diffuser's 10 with decay 0.995 gives a
    /// half-life of ~1400 steps, a third of our runs, so the EMA would lag far behind; 1 gives ~140 steps.</summary>
    public int EmaUpdateEvery { get; init; } = 1;

    // ---- relative reward ----
    /// <summary>Width of the trajectory reward (value encoder).</summary>
    [ModelKeyOf("reward")]
    public int RewardDimension { get; init; } = 32;

    /// <summary>Width multipliers of the trajectory reward's levels.</summary>
    [ModelKeyOf("reward")]
    public int[] RewardMultipliers { get; init; } = [1, 2, 4];

    /// <summary>Optimiser steps of the reward.</summary>
    [ModelKeyOf("reward")]
    public int RewardTrainingSteps { get; init; } = 3000;

    /// <summary>Batch size of the reward (the paper: 128).</summary>
    [ModelKeyOf("reward")]
    public int RewardBatchSize { get; init; } = 128;

    /// <summary>Adam learning rate of the reward (the paper's locomotion value).</summary>
    [ModelKeyOf("reward")]
    public double RewardLearningRate { get; init; } = 2e-4;

    /// <summary>EMA start step of the reward.</summary>
    [ModelKeyOf("reward")]
    public int RewardEmaStartStep { get; init; } = 1000;

    /// <summary>Regression targets (mu_E - mu_B) per pool; 0 = fresh targets every step (the core trainer's exact mode).</summary>
    [ModelKeyOf("reward")]
    public int RewardTargetPool { get; init; } = 32768;

    /// <summary>Steps between pool rebuilds.</summary>
    [ModelKeyOf("reward")]
    public int RewardTargetRefresh { get; init; } = 1000;

    /// <summary>Whether the reward's regression points are conditioned like the planner's samples (the first observation
    /// inpainted on x_t, as the diffusion models were trained); false = the core <c>RewardTrainer</c> unchanged.</summary>
    [ModelKeyOf("reward")]
    public bool ConditionedRewardTargets { get; init; } = true;

    // ---- planning rollouts ----
    /// <summary>Episodes per condition (unsteered, steered, expert), run as one batch per condition.</summary>
    [NotInModelKey]
    public int EvaluationEpisodes { get; init; } = 24;

    /// <summary>Steps at most per evaluation episode.</summary>
    [NotInModelKey]
    public int EvaluationSteps { get; init; } = 1000;

    /// <summary>Guidance scale of the steered planner.</summary>
    [NotInModelKey]
    public double GuidanceScale { get; init; } = 0.5;

    /// <summary>t_stopgrad: no guidance at steps t below it.</summary>
    [NotInModelKey]
    public int StopGradientBelow { get; init; } = 5;

    /// <summary>Reward-gradient steps per reverse step of the steered planner (Diffuser's <c>n_guide_steps</c>; the
    /// gradient is taken again after each step). Default 1.</summary>
    [NotInModelKey]
    public int GuideSteps { get; init; } = 1;

    /// <summary>Reverse steps of every planner: 0 (default) = the ancestral sampler over all T steps; S in 1..T = deterministic
    /// DDIM over S steps (S denoiser passes per plan instead of T).</summary>
    [NotInModelKey]
    public int SamplingSteps { get; init; }

    /// <summary>Guidance scales tried before the steered run, each on <see cref="SelectionEpisodes"/> episodes whose seeds
    /// are not among the reported ones; the best mean return becomes the steered scale, and <see cref="GuidanceScale"/> is
    /// not used. Each reward has its own gradient size, so no one scale suits every trained reward. Empty = <see cref="GuidanceScale"/>.</summary>
    [NotInModelKey]
    public double[] ScaleCandidates { get; init; } = [];

    /// <summary>Episodes per candidate scale (seeds of their own, never reported).</summary>
    [NotInModelKey]
    public int SelectionEpisodes { get; init; } = 8;

    /// <summary>Steps per selection episode (at most <see cref="EvaluationSteps"/>): a scale that tips the hopper over or
    /// stalls the cheetah shows within a few hundred steps, and full episodes would make the choice cost as much as the
    /// comparison itself.</summary>
    [NotInModelKey]
    public int SelectionSteps { get; init; } = 400;

    /// <summary>Extra guidance scales evaluated after the main comparison (a sweep; empty = none).</summary>
    [NotInModelKey]
    public double[] ScaleSweep { get; init; } = [];

    /// <summary>t_stopgrad of each sweep entry (same length as <see cref="ScaleSweep"/>; empty = <see cref="StopGradientBelow"/> for all).</summary>
    [NotInModelKey]
    public int[] SweepStopGradients { get; init; } = [];

    /// <summary>Episodes per sweep scale.</summary>
    [NotInModelKey]
    public int SweepEpisodes { get; init; } = 12;

    /// <summary>Also run the expert diffusion model as an (unguided) planner on the same seeds: a diagnostic of what the
    /// trained expert model itself achieves, the natural ceiling of steering the base model toward it.</summary>
    [NotInModelKey]
    public bool ExpertPlannerDiagnostic { get; init; } = true;

    /// <summary>Held-out windows on which the conservativeness diagnostic of the reward is measured (0 = off).</summary>
    [NotInModelKey]
    public int DiagnosticRows { get; init; } = 128;

    /// <summary>The diagnostic reads every this-many-th noise level (and the last).</summary>
    [NotInModelKey]
    public int DiagnosticStride { get; init; } = 2;

    /// <summary>Hutchinson probe vectors per window for the diagnostic's asymmetry.</summary>
    [NotInModelKey]
    public int DiagnosticProbes { get; init; } = 2;

    /// <summary>torch intra-op threads.</summary>
    [NotInModelKey]
    public int Threads { get; init; } = 1;

    /// <summary>The task names.</summary>
    public static IReadOnlyList<string> EnvironmentNames { get; } = ["cheetah", "hopper", "walker"];

    /// <summary>The settings of <paramref name="environment"/> ("cheetah", "hopper" or "walker") under <paramref name="preset"/>.</summary>
    public static LocomotionSettings For(string environment, string preset)
    {
        string env = environment.ToLowerInvariant();
        if (!EnvironmentNames.Contains(env))
            throw new ArgumentException($"Unknown task '{environment}' (expected one of: {string.Join(", ", EnvironmentNames)}).", nameof(environment));
        // Cheetah: H = 4 as in the paper (0.2 s of motion at 0.05 s per step), t_stopgrad 5 as the paper; scale 1, the
        // best of a sweep (0.25, 0.5, 1, 2, 4 on 6 episodes of 300 steps: 513, 601, 654, 551, 266 against 517 unsteered),
        // where the paper's 0.5 gained half as much.
        // Hopper: 0.008 s per step, so the paper's H = 32 spans 0.26 s; H = 4 would see 32 ms, a fraction of one hop, and
        // the reward could not tell a stable hop from a fall. H = 16 (0.13 s) halves the paper's window for CPU time.
        // t_stopgrad 10 as in the paper; scale 16, the best of a sweep with the reward the estimators train (first 8
        // episodes, 400 steps: 0.5, 1, 2, 4, 8, 16 gave 407, 423, 485, 372, 415, 384 against 431 unsteered, and only 16
        // kept all 8 hoppers up; on 24 episodes of 1000 steps 16 gave 778 +- 64 against 479 +- 26). The earlier reward
        // trainer's reward was best at 4 (1107 against 508); the paper's 0.2 gained little with either. A second seed's
        // reward collapsed every hopper at 16 (299 against 707 unsteered; 8: 423, 4: 663 against 749 on the first 12
        // episodes), so the default run chooses among candidates
        // on episodes of its own (ScaleCandidates); GuidanceScale is the fallback when there are none.
        // Walker: the hopper's control interval (0.008 s per step), so the hopper's H = 16 and t_stopgrad 10 for the same
        // reasons, and the hopper's data sizes, since its episodes also end when it falls. No walker sweep has been run:
        // the candidates are the hopper's (1 to 16) and GuidanceScale 4, their middle, is only the fallback.
        var settings = env switch
        {
            "cheetah" => new LocomotionSettings
            {
                Environment = env, Horizon = 4, NetworkMultipliers = [1, 2, 4], RewardMultipliers = [1, 2, 4], GuidanceScale = 1, StopGradientBelow = 5,
                ScaleCandidates = [0.5, 1, 2],
            },
            "hopper" => new LocomotionSettings
            {
                Environment = env, Horizon = 16, NetworkMultipliers = [1, 2, 4], RewardMultipliers = [1, 2, 4], GuidanceScale = 16, StopGradientBelow = 10,
                BaseEpisodesPerPolicy = 16, ExpertEpisodes = 24, ScaleCandidates = [1, 2, 4, 8, 16],
            },
            _ => new LocomotionSettings
            {
                Environment = env, Horizon = 16, NetworkMultipliers = [1, 2, 4], RewardMultipliers = [1, 2, 4], GuidanceScale = 4, StopGradientBelow = 10,
                BaseEpisodesPerPolicy = 16, ExpertEpisodes = 24, ScaleCandidates = [1, 2, 4, 8, 16],
            },
        };
        return preset.ToLowerInvariant() switch
        {
            "default" => settings with { Preset = "default" },
            "quick" => settings with
            {
                Preset = "quick",
                BaseEpisodesPerPolicy = 1,
                ExpertEpisodes = 2,
                DataEpisodeSteps = 150,
                NetworkDimension = 16,
                DiffusionTrainingSteps = 100,
                DiffusionBatchSize = 32,
                DiffusionEmaStartStep = 100,
                RewardDimension = 16,
                RewardTrainingSteps = 60,
                RewardBatchSize = 32,
                RewardEmaStartStep = 100,
                RewardTargetPool = 512,
                RewardTargetRefresh = 0,
                EvaluationEpisodes = 4,
                EvaluationSteps = 30,
                ScaleSweep = [],
                SweepEpisodes = 2,
                ScaleCandidates = env == "cheetah" ? [0.5, 1] : [4, 16],
                SelectionEpisodes = 2,
                DiagnosticRows = 32,
                DiagnosticStride = 5,
            },
            _ => throw new ArgumentException($"Unknown preset '{preset}' (expected one of: {string.Join(", ", PresetNames)}).", nameof(preset)),
        };
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok)
                throw new ArgumentException(message);
        }
        Check(EnvironmentNames.Contains(Environment), $"Environment must be one of {string.Join(", ", EnvironmentNames)}, not '{Environment}'.");
        Check(BasePolicies.Length > 0, "At least one base policy is needed.");
        Check(BaseEpisodesPerPolicy >= 1 && ExpertEpisodes >= 1, "Base and expert data need at least one episode each.");
        Check(Horizon >= 1 && DataEpisodeSteps >= Horizon, "The horizon must be at least 1 and at most the data episode length.");
        Check(Horizon % (1 << (NetworkMultipliers.Length - 1)) == 0, $"H = {Horizon} must be divisible by 2^(levels-1) = {1 << (NetworkMultipliers.Length - 1)} of the U-Net.");
        Check(DiffusionSteps >= 1, "DiffusionSteps must be at least 1.");
        Check(SamplingSteps >= 0 && SamplingSteps <= DiffusionSteps, $"SamplingSteps must lie in 0..{DiffusionSteps} (0 = every step, ancestral; S = DDIM over S steps).");
        Check(!(ClipDenoised && Normalizer == NormalizerKind.Gaussian), "ClipDenoised clamps x0 to [-1, 1], which only the Limits normaliser maps the data into; use Normalizer=Limits or ClipDenoised=false.");
        Check(FirstActionWeight >= 0 && double.IsFinite(FirstActionWeight), "FirstActionWeight must be a finite number >= 0.");
        Check(NetworkDimension >= 8 && NetworkDimension % 8 == 0, "NetworkDimension must be a positive multiple of 8.");
        Check(DiffusionTrainingSteps >= 0 && RewardTrainingSteps >= 1, "Training step counts must be positive.");
        Check(DiffusionBatchSize >= 1 && RewardBatchSize >= 1, "Batch sizes must be positive.");
        Check(RewardDimension >= 4 && RewardDimension % 4 == 0, "RewardDimension must be a positive multiple of 4.");
        Check(RewardTargetPool >= 0 && RewardTargetRefresh >= 0, "The target pool settings must be >= 0.");
        Check(EvaluationEpisodes >= 2 && EvaluationSteps >= 1, "At least 2 evaluation episodes of at least 1 step are needed.");
        Check(StopGradientBelow >= 0, "StopGradientBelow must be >= 0.");
        Check(GuideSteps >= 1, "GuideSteps must be at least 1.");
        Check(double.IsFinite(GuidanceScale) && ScaleSweep.All(double.IsFinite), "Guidance scales must be finite.");
        Check(SweepEpisodes >= 2, "SweepEpisodes must be at least 2.");
        Check(ScaleCandidates.All(c => double.IsFinite(c) && c >= 0), "ScaleCandidates must be finite numbers >= 0.");
        Check(SelectionEpisodes >= 1 && SelectionSteps >= 1, "SelectionEpisodes and SelectionSteps must be at least 1.");
        Check(SweepStopGradients.Length == 0 || SweepStopGradients.Length == ScaleSweep.Length, "SweepStopGradients must be empty or as long as ScaleSweep.");
        Check(Threads >= 1, "Threads must be at least 1.");
        Check(EmaUpdateEvery >= 1, "EmaUpdateEvery must be at least 1.");
    }

    /// <summary>t_stopgrad of sweep entry <paramref name="index"/>.</summary>
    public int SweepStopGradient(int index) => SweepStopGradients.Length == 0 ? StopGradientBelow : SweepStopGradients[index];

    /// <summary>A few readable lines for logs and report.md.</summary>
    public string Describe()
    {
        var c = CultureInfo.InvariantCulture;
        var b = new StringBuilder();
        b.Append(c, $"data: base = {BaseEpisodesPerPolicy} stochastic episodes each of {string.Join(", ", BasePolicies)}; expert = {ExpertEpisodes} stochastic episodes of {ExpertPolicy}; <= {DataEpisodeSteps} steps each; H = {Horizon}\n");
        b.Append(c, $"diffusion: T = {DiffusionSteps}, {Normalizer} normaliser, clip x0 {ClipDenoised}, first action weight {FirstActionWeight:G3}, TemporalUNet dim {NetworkDimension} mults ({string.Join(",", NetworkMultipliers)}), {DiffusionTrainingSteps} steps x batch {DiffusionBatchSize}, lr {DiffusionLearningRate:G3}, EMA every {EmaUpdateEvery}, conditioned on the first observation\n");
        b.Append(c, $"reward: TrajectoryReward dim {RewardDimension} mults ({string.Join(",", RewardMultipliers)}), {RewardTrainingSteps} steps x batch {RewardBatchSize}, lr {RewardLearningRate:G3}, target pool {RewardTargetPool}/{RewardTargetRefresh}, conditioned targets {ConditionedRewardTargets}\n");
        string scale = ScaleCandidates.Length == 0 ? GuidanceScale.ToString("G3", c)
            : $"the best of {string.Join(", ", ScaleCandidates.Select(x => x.ToString("G3", c)))} on {SelectionEpisodes} episodes of their own (<= {Math.Min(SelectionSteps, EvaluationSteps)} steps)";
        b.Append(c, $"planning: {EvaluationEpisodes} episodes x <= {EvaluationSteps} steps per condition, replanning every step; steered scale {scale}, t_stopgrad {StopGradientBelow}, {GuideSteps} guide step(s)");
        if (SamplingSteps > 0)
            b.Append(c, $", DDIM over {SamplingSteps} of {DiffusionSteps} steps");
        if (ScaleSweep.Length > 0)
            b.Append(c, $"; sweep (scale@t_stopgrad) {string.Join(", ", ScaleSweep.Select((s, i) => string.Create(c, $"{s:G3}@{SweepStopGradient(i)}")))} ({SweepEpisodes} episodes each)");
        b.Append(c, $"; seed {Seed}; torch threads {Threads}");
        return b.ToString();
    }
}
