using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;

namespace MLReward.Experiments.Locomotion;

/// <summary>
/// Stage "models", all through the library's estimators: the base diffusion model on the base windows, the expert model on the
/// expert windows in the base model's data space (both trained with the first observation inpainted, Diffuser's
/// conditioning, and the first action weighted in the loss), and the trajectory reward extracted from the two with its
/// targets conditioned the same way (docs/METHOD.md section 5). Files: base.zip, expert.zip, reward.zip and sampler.zip
/// (the base model's planner guided by the reward at the run's scale).
/// </summary>
internal sealed class LocomotionModels : IDisposable
{
    public const string BaseName = "base", ExpertName = "expert", RewardName = "reward", SamplerName = "sampler";

    private LocomotionModels(DiffusionModelTransformer @base, DiffusionModelTransformer expert, RelativeRewardTransformer reward)
    {
        Base = @base;
        Expert = expert;
        Reward = reward;
    }

    public DiffusionModelTransformer Base { get; }
    public DiffusionModelTransformer Expert { get; }
    public RelativeRewardTransformer Reward { get; }
    public Dictionary<string, double> Losses { get; } = new();
    public Dictionary<string, double> Seconds { get; } = new();
    public bool Reused => ReusedModels.Values.All(r => r);
    public Dictionary<string, bool> ReusedModels { get; } = new();

    public static LocomotionModels Prepare(LocomotionRunContext run, LocomotionData data)
    {
        var s = run.Settings;
        var clock = Stopwatch.StartNew();
        var baseWindows = data.Windows(run.Ml, data.Base, s.Horizon);
        run.WindowSchema = baseWindows.Schema;
        var baseTask = run.Training("base-model", $"base diffusion model ({s.DiffusionTrainingSteps} steps)", s.DiffusionTrainingSteps);
        var @base = run.Obtain(BaseName, () => run.Rx.DiffusionModel(DiffusionOptions(run, run.Seeds.For("base-model"), null, baseTask)).Fit(baseWindows), out bool baseReused);
        baseTask.Finish(baseReused);
        double baseSeconds = clock.Elapsed.TotalSeconds;
        DiffusionModelTransformer? expert = null;
        try
        {
            clock.Restart();
            var expertTask = run.Training("expert-model", $"expert diffusion model ({s.DiffusionTrainingSteps} steps)", s.DiffusionTrainingSteps);
            expert = run.Obtain(ExpertName, () => run.Rx.DiffusionModel(DiffusionOptions(run, run.Seeds.For("expert-model"), @base, expertTask))
                .Fit(data.Windows(run.Ml, data.Expert, s.Horizon)), out bool expertReused);
            expertTask.Finish(expertReused);
            double expertSeconds = clock.Elapsed.TotalSeconds;

            clock.Restart();
            var rewardTask = run.Training("reward", $"relative reward ({s.RewardTrainingSteps} steps)", s.RewardTrainingSteps);
            var both = new BehaviourData(data.Base.ObservationSize, data.Base.ActionSize, [.. data.Base.Episodes, .. data.Expert.Episodes]);
            var reward = run.Obtain(RewardName, () => run.Rx.RelativeReward(@base, expert, RewardOptions(run, rewardTask)).Fit(data.Windows(run.Ml, both, s.Horizon)),
                out bool rewardReused);
            rewardTask.Finish(rewardReused);
            var models = new LocomotionModels(@base, expert, reward);
            models.ReusedModels[BaseName] = baseReused;
            models.ReusedModels[ExpertName] = expertReused;
            models.ReusedModels[RewardName] = rewardReused;
            foreach (var (name, task) in new[] { ("base", baseTask), ("expert", expertTask), ("reward", rewardTask) })
                if (double.IsFinite(task.LastLoss))
                    models.Losses[name] = task.LastLoss;
            models.Seconds["base_diffusion"] = baseSeconds;
            models.Seconds["expert_diffusion"] = expertSeconds;
            models.Seconds["reward"] = clock.Elapsed.TotalSeconds;
            return models;
        }
        catch
        {
            expert?.Dispose();
            @base.Dispose();
            throw;
        }
    }

    /// <summary>A diffusion model of this task: the temporal U-Net, x0 prediction, conditioned on the first observation,
    /// the first action weighted in the loss; in the data space of <paramref name="normalizeLike"/> when given.</summary>
    private static DiffusionModelTrainer.Options DiffusionOptions(LocomotionRunContext run, int seed, DiffusionModelTransformer? normalizeLike,
        IProgress<TrainingProgress> progress)
    {
        var s = run.Settings;
        int d = run.Shape.TransitionDimension;
        return new DiffusionModelTrainer.Options
        {
            Shape = run.Shape,
            DiffusionSteps = s.DiffusionSteps,
            Prediction = PredictionTarget.Start,
            ClipDenoised = s.ClipDenoised,
            Network = DenoiserKind.TemporalUNet,
            NetworkDimension = s.NetworkDimension,
            DimensionMultipliers = s.NetworkMultipliers,
            Normalization = s.Normalizer,
            NormalizeLike = normalizeLike,
            LossWeights = s.FirstActionWeight == 1 ? null : DiffusionTrainingOptions.TrajectoryLossWeights(s.Horizon, d, run.ActionSize, s.FirstActionWeight),
            ConditionMask = RewardTrainingOptions.FirstObservationCondition(s.Horizon, d, run.ActionSize),
            TrainingSteps = s.DiffusionTrainingSteps,
            BatchSize = s.DiffusionBatchSize,
            LearningRate = s.DiffusionLearningRate,
            EmaStartStep = s.DiffusionEmaStartStep,
            EmaUpdateEvery = s.EmaUpdateEvery,
            Seed = seed,
            ShuffleBufferSize = InMemory,
            Progress = progress,
            CancellationToken = run.CancellationToken,
        };
    }

    /// <summary>The windows are in memory already (up to ~72,000 at the default preset, past the estimators' default buffer):
    /// a buffer that holds them all keeps the exact batches of the runs these settings were measured with.</summary>
    private const int InMemory = int.MaxValue;

    /// <summary>The reward: Diffuser's value encoder (<see cref="TrajectoryReward"/>) fitted from target pools rebuilt every
    /// <see cref="LocomotionSettings.RewardTargetRefresh"/> steps, with the targets conditioned like the planner's samples
    /// (<see cref="LocomotionSettings.ConditionedRewardTargets"/>).</summary>
    private static RelativeRewardTrainer.Options RewardOptions(LocomotionRunContext run, IProgress<TrainingProgress> progress)
    {
        var s = run.Settings;
        var network = new TrajectoryRewardOptions { Dimension = s.RewardDimension, DimensionMultipliers = s.RewardMultipliers };
        return new RelativeRewardTrainer.Options
        {
            CustomNetwork = shape => new TrajectoryReward(shape, network),
            ConditionMask = s.ConditionedRewardTargets ? RewardTrainingOptions.FirstObservationCondition(s.Horizon, run.Shape.TransitionDimension, run.ActionSize) : null,
            TrainingSteps = s.RewardTrainingSteps,
            BatchSize = s.RewardBatchSize,
            LearningRate = s.RewardLearningRate,
            EmaStartStep = s.RewardEmaStartStep,
            EmaUpdateEvery = s.EmaUpdateEvery,
            TargetCachePoolSize = Math.Max(s.RewardBatchSize, s.RewardTargetPool),
            TargetCacheRefreshEvery = s.RewardTargetRefresh,
            Seed = run.Seeds.For("reward"),
            ShuffleBufferSize = InMemory,
            Progress = progress,
            CancellationToken = run.CancellationToken,
        };
    }

    /// <summary>Writes sampler.zip: the base model's sampler guided by the reward at the run's scale (input: Seed, Condition,
    /// ConditionMask, so that the current observation can be inpainted; output: Sample).</summary>
    public void SaveSampler(LocomotionRunContext run)
    {
        var s = run.Settings;
        using var sampler = SamplerInput.Sampler(run.Ml, Base, Reward,
            new GuidanceOptions { Scale = s.GuidanceScale, StopGradientBelow = s.StopGradientBelow, GuideSteps = s.GuideSteps, SamplingSteps = s.SamplingSteps },
            out var inputSchema);
        run.Stores.Output.Save(sampler, inputSchema, SamplerName, run.Key(SamplerName));
    }

    /// <summary>The model files of a run, for the report.</summary>
    public List<ModelFile> Files(LocomotionRunContext run) =>
    [
        ModelFile.Of(BaseName, "base diffusion model (adds DenoisingError)", run.Shape),
        ModelFile.Of(ExpertName, "expert diffusion model (adds DenoisingError)", run.Shape),
        ModelFile.Of(RewardName, "relative reward at t = 0 (adds Reward)", run.Shape),
        new($"{SamplerName}.zip", "Seed, Condition, ConditionMask", run.Shape.ToString(),
            FormattableString.Invariant($"the base planner's sampler guided by the reward, scale {run.Settings.GuidanceScale}, t_stopgrad {run.Settings.StopGradientBelow} (adds Sample)")),
    ];

    public void Dispose()
    {
        Reward.Dispose();
        Expert.Dispose();
        Base.Dispose();
    }
}
