using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Stage "goal models" of one goal: the expert diffusion model (warm-started from the base model, fine-tuned on the goal's
/// expert windows), the per-state relative reward against the reference (or base) model, and, when the heat map reads other
/// features, the map's reward fitted to the same objective on those features only. Files: expert-, reward-, map-reward- and
/// sampler-&lt;goal&gt;.zip.
/// </summary>
internal sealed class GoalModels : IDisposable
{
    private GoalModels(DiffusionModelTransformer expert, RelativeRewardTransformer reward, RelativeRewardTransformer? mapReward)
    {
        Expert = expert;
        Reward = reward;
        MapReward = mapReward;
    }

    public DiffusionModelTransformer Expert { get; }
    public RelativeRewardTransformer Reward { get; }
    private RelativeRewardTransformer? MapReward { get; }

    /// <summary>The reward the heat map reads.</summary>
    public RelativeRewardTransformer MapSource => MapReward ?? Reward;

    public bool ExpertReused { get; private init; }
    public double RewardLoss { get; private init; } = double.NaN;
    public Dictionary<string, double> Seconds { get; } = new();

    /// <summary>The goal's tag in file names: X_Y with invariant decimals.</summary>
    public static string Tag(MLReward.Environments.Maze2D.Vec2 goal) => string.Create(CultureInfo.InvariantCulture, $"{goal.X:0.##}_{goal.Y:0.##}");

    /// <summary>One flag per step feature [ax, ay, x, y, vx, vy]: true for the features the reward reads.</summary>
    public static bool[] FeatureMask(RewardFeatures features) => Enumerable.Range(0, MazeWindows.StepDimension).Select(f => features switch
    {
        RewardFeatures.Transition => true,
        RewardFeatures.Observation => f >= 2,
        _ => f is 2 or 3,
    }).ToArray();

    public static GoalModels Train(Maze2DRunContext run, BaseModels bases, MazeData baseData, MazeData expertData, string tag, int index,
        Action<double, string> advance)
    {
        var s = run.Settings;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var expertProgress = new ThrottledProgress(p => advance(p.Step, string.Create(CultureInfo.InvariantCulture, $"expert model, loss {p.AverageLoss:F4}")));
        int expertSeed = s.PairedReference ? run.Seeds.For("fine-tuning") : run.Seeds.For("expert-model", index);
        var expert = run.Obtain($"expert-{tag}", run.Key("expert", tag), () =>
            run.Rx.DiffusionModel(run.DiffusionOptions(s.ExpertTrainingSteps, s.ExpertBatchSize, s.ExpertLearningRate, s.ExpertEmaStartStep, expertSeed,
                expertProgress, normalizeLike: bases.Model, initialModel: s.ExpertWarmStart ? bases.Model : null)).Fit(MazeWindows.View(run.Ml, expertData.Training)),
            export: true, out bool expertReused);
        double expertSeconds = clock.Elapsed.TotalSeconds;
        RelativeRewardTransformer? reward = null, mapReward = null;
        try
        {
            clock.Restart();
            var mix = RewardTrainingWindows(baseData.Training, expertData.Training, s.RewardExpertFraction, run.Seeds.For("reward-mix", index));
            double lastLoss = double.NaN;
            RelativeRewardTransformer Fit(RewardFeatures features, string what, int seed, int fittedSteps = 0)
            {
                var progress = new ThrottledProgress(p =>
                {
                    lastLoss = p.AverageLoss;
                    advance(s.ExpertTrainingSteps + p.Step, string.Create(CultureInfo.InvariantCulture, $"{what}, loss {p.AverageLoss:E2}"));
                });
                return run.Rx.RelativeReward(bases.Model, expert, RewardOptions(s, features, seed, bases.ReferenceModel, progress, run.CancellationToken, fittedSteps))
                    .Fit(MazeWindows.View(run.Ml, mix));
            }
            reward = run.Obtain($"reward-{tag}", run.Key("reward", tag), () => Fit(s.RewardFeatures, "reward", run.Seeds.For("reward", index)), export: true, out _);
            double loss = lastLoss;
            double rewardSeconds = clock.Elapsed.TotalSeconds;
            clock.Restart();
            if (s.MapRewardFeatures != s.RewardFeatures)
                mapReward = run.Obtain($"map-reward-{tag}", run.Key("map-reward", tag), () => Fit(s.MapRewardFeatures, "map reward", run.Seeds.For("map-reward", index), s.MapRewardFittedSteps), export: true, out _);
            var result = new GoalModels(expert, reward, mapReward) { ExpertReused = expertReused, RewardLoss = loss };
            result.Seconds["expert_model"] = expertSeconds;
            result.Seconds["reward"] = rewardSeconds;
            result.Seconds["map_reward"] = clock.Elapsed.TotalSeconds;
            return result;
        }
        catch
        {
            mapReward?.Dispose();
            reward?.Dispose();
            expert.Dispose();
            throw;
        }
    }

    /// <summary>The reward's options: a per-state MLP (window 1) reading <paramref name="features"/>, fitted from a target pool built
    /// once (docs/METHOD.md section 5), against the reference model when there is one; with <paramref name="fittedSteps"/> &gt; 0
    /// only the last that many steps of each window are fitted.</summary>
    public static RelativeRewardTrainer.Options RewardOptions(Maze2DSettings s, RewardFeatures features, int seed,
        DiffusionModelTransformer? reference, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken, int fittedSteps = 0) => new()
    {
        Network = RewardNetworkKind.State,
        Window = 1,
        HiddenSizes = s.RewardHiddenSizes,
        FeatureMask = FeatureMask(features),
        LossMask = fittedSteps > 0 ? RewardTrainingOptions.LastStepsMask(s.Horizon, MazeWindows.StepDimension, fittedSteps) : null,
        TrainingSteps = s.RewardTrainingSteps,
        BatchSize = s.RewardBatchSize,
        LearningRate = s.RewardLearningRate,
        TargetCachePoolSize = s.RewardTargetPool,
        TargetCacheRefreshEvery = 0,
        BalanceNoiseLevels = s.RewardBalanceSteps,
        ReferenceModel = reference,
        Seed = seed,
        Progress = progress,
        CancellationToken = cancellationToken,
    };

    /// <summary>All expert windows plus enough base windows (drawn without replacement) that experts make up
    /// <paramref name="expertFraction"/> of the result (every base window when there are too few; only base windows at 0).</summary>
    public static List<MazeWindow> RewardTrainingWindows(List<MazeWindow> @base, List<MazeWindow> expert, double expertFraction, int seed)
    {
        if (expertFraction >= 1)
            return expert;
        if (expertFraction <= 0)
            return @base;
        int wanted = (int)Math.Min(@base.Count, Math.Round(expert.Count * (1 - expertFraction) / expertFraction));
        return [.. expert, .. MazeWindows.Subsample(@base, wanted, seed)];
    }

    /// <summary>The guided sampler of this goal: the base model steered by the reward (input: Seed, Condition, ConditionMask;
    /// output: Sample).</summary>
    public GuidedSamplingTransformer Sampler(Maze2DRunContext run, DiffusionModelTransformer baseModel, out DataViewSchema inputSchema) =>
        SamplerInput.Sampler(run.Ml, baseModel, Reward,
            new GuidanceOptions { Scale = run.Settings.SamplerGuidanceScale, StopGradientBelow = run.Settings.SamplerStopGradientBelow, SamplingSteps = run.Settings.SamplerSamplingSteps },
            out inputSchema);

    public void Dispose()
    {
        MapReward?.Dispose();
        Reward.Dispose();
        Expert.Dispose();
    }
}
