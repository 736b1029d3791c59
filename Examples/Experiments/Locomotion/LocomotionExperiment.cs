using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.ML.RewardExtraction;
using MLReward.LocomotionAgents;
using static TorchSharp.torch;

namespace MLReward.Experiments.Locomotion;

/// <summary>Where and how a locomotion run executes (not part of the results).</summary>
public sealed record LocomotionRunOptions
{
    /// <summary>Folder for report.json, report.md and returns.png.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>Folder with <c>&lt;task&gt;-&lt;role&gt;.policy</c> files; null = <see cref="PolicyFiles.DefaultDirectory"/>.</summary>
    public string? PolicyDirectory { get; init; }

    /// <summary>Folder for the trained models, reused when data and training settings match; null = no cache.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Receives progress lines.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>
/// The locomotion experiment of docs/EXPERIMENTS.md section 2: base ("medium-replay-like") and expert data regenerated from
/// saved SAC policies; a base diffusion model on the base windows and an expert model on the expert windows (normalised
/// with the base normaliser), both conditioned on the first observation; a trajectory reward extracted from the two; then
/// the base planner, replanning every step, unsteered and steered by the reward on the same seeds, and the expert policy,
/// compared with Welch's t-test and the fraction of the base-to-expert gap recovered.
/// </summary>
public sealed class LocomotionExperiment
{
    private const int HeldOutBaseEpisodesPerPolicy = 1;
    private const int HeldOutExpertEpisodes = 2;

    private readonly LocomotionSettings _settings;
    private readonly LocomotionRunOptions _run;

    /// <summary>Sets up a run (nothing is computed yet).</summary>
    public LocomotionExperiment(LocomotionSettings settings, LocomotionRunOptions run)
    {
        _settings = settings ?? throw new ArgumentNullException(nameof(settings));
        _run = run ?? throw new ArgumentNullException(nameof(run));
        settings.Validate();
    }

    /// <summary>The settings of this run.</summary>
    public LocomotionSettings Settings => _settings;

    private void Log(string line) => _run.Log?.Invoke(line);

    /// <summary>Seeds: stream s, episode i -> Seed * 1,000,000 + s * 10,000 + i (streams: base policy p = p + 1, expert 50,
    /// held-out base 60 + p, held-out expert 70, evaluation 90).</summary>
    private int SeedOf(int stream, int episode) => checked(_settings.Seed * 1_000_000 + stream * 10_000 + episode);

    /// <summary>Runs everything and writes the reports; returns the report.</summary>
    public LocomotionReport Run(CancellationToken cancellationToken = default)
    {
        var s = _settings;
        var total = Stopwatch.StartNew();
        var timings = new Dictionary<string, double>();
        string machine = MachineDescription();
        Directory.CreateDirectory(_run.OutputDirectory);
        string policyDir = _run.PolicyDirectory ?? PolicyFiles.DefaultDirectory();
        int previousThreads = get_num_threads();
        set_num_threads(s.Threads);
        try
        {
            // ---- data ----
            var clock = Stopwatch.StartNew();
            var roles = s.BasePolicies.Append(s.ExpertPolicy).Distinct().ToArray();
            var paths = roles.ToDictionary(r => r, r => PolicyFiles.Resolve(policyDir, s.Environment, r));
            var policies = paths.ToDictionary(p => p.Key, p => Policy.Load(p.Value));
            BehaviourData baseData, expertData, heldBase, heldExpert;
            try
            {
                var baseEpisodes = new List<RecordedEpisode>();
                var heldBaseEpisodes = new List<RecordedEpisode>();
                for (int p = 0; p < s.BasePolicies.Length; p++)
                {
                    string name = s.BasePolicies[p];
                    baseEpisodes.AddRange(BehaviourData.Record(s.Environment, policies[name], name, s.BaseEpisodesPerPolicy, SeedOf(p + 1, 0), s.DataEpisodeSteps, false, cancellationToken));
                    heldBaseEpisodes.AddRange(BehaviourData.Record(s.Environment, policies[name], name, HeldOutBaseEpisodesPerPolicy, SeedOf(60 + p, 0), s.DataEpisodeSteps, false, cancellationToken));
                }
                var expert = policies[s.ExpertPolicy];
                var expertEpisodes = BehaviourData.Record(s.Environment, expert, s.ExpertPolicy, s.ExpertEpisodes, SeedOf(50, 0), s.DataEpisodeSteps, false, cancellationToken);
                var heldExpertEpisodes = BehaviourData.Record(s.Environment, expert, s.ExpertPolicy, HeldOutExpertEpisodes, SeedOf(70, 0), s.DataEpisodeSteps, false, cancellationToken);
                int o = policies[s.ExpertPolicy].ObservationSize, a = policies[s.ExpertPolicy].ActionSize;
                baseData = new BehaviourData(o, a, baseEpisodes);
                expertData = new BehaviourData(o, a, expertEpisodes);
                heldBase = new BehaviourData(o, a, heldBaseEpisodes);
                heldExpert = new BehaviourData(o, a, heldExpertEpisodes);
            }
            catch
            {
                foreach (var policy in policies.Values)
                    policy.Dispose();
                throw;
            }
            timings["data"] = clock.Elapsed.TotalSeconds;
            Log(string.Create(CultureInfo.InvariantCulture,
                $"data: base {baseData.Episodes.Count} episodes / {baseData.Transitions} steps (return {baseData.ReturnStatistics().Mean:F0}), expert {expertData.Episodes.Count} / {expertData.Transitions} (return {expertData.ReturnStatistics().Mean:F0}) in {timings["data"]:F1} s"));

            try
            {
                return RunWithData(baseData, expertData, heldBase, heldExpert, policies[s.ExpertPolicy], paths, timings, total, machine, cancellationToken);
            }
            finally
            {
                foreach (var policy in policies.Values)
                    policy.Dispose();
            }
        }
        finally
        {
            set_num_threads(previousThreads);
        }
    }

    private LocomotionReport RunWithData(BehaviourData baseData, BehaviourData expertData, BehaviourData heldBase, BehaviourData heldExpert,
        Policy expertPolicy, Dictionary<string, string> paths, Dictionary<string, double> timings, Stopwatch total, string machine,
        CancellationToken cancellationToken)
    {
        var s = _settings;
        int h = s.Horizon, a = baseData.ActionSize, o = baseData.ObservationSize, d = a + o;
        var shape = SampleShape.Trajectory(h, d);
        using var scope = NewDisposeScope();
        var baseRaw = baseData.Windows(h);
        var expertRaw = expertData.Windows(h);
        var mask = zeros(new long[] { 1, h, d }, ScalarType.Bool);
        mask.narrow(1, 0, 1).narrow(2, a, o).fill_(true);
        var trainingCondition = new InpaintingCondition(zeros(new long[] { 1, h, d }), mask);

        // ---- models (or the cache) ----
        // Two levels: the diffusion models depend on the data and their own settings only, the reward on those and its
        // own settings, so reward settings can be explored without training the diffusion models again.
        var (diffusionKey, rewardKey) = CacheKeys(paths);
        string? modelDir = _run.CacheDirectory is null ? null : Path.Combine(_run.CacheDirectory, $"locomotion-{s.Environment}-{diffusionKey}");
        string? rewardDir = modelDir is null ? null : Path.Combine(modelDir, $"reward-{rewardKey}");
        DiffusionModel? baseModel = null, expertModel = null;
        RelativeRewardModel? reward = null;
        var losses = new Dictionary<string, double>();
        bool cached = false;
        try
        {
            bool cachedModels = modelDir is not null && TryLoadModels(modelDir, out baseModel, out expertModel, losses);
            if (cachedModels)
            {
                timings["base_diffusion"] = timings["expert_diffusion"] = 0;
                Log($"diffusion models loaded from {modelDir}");
            }
            else
            {
                Log(modelDir is null ? "training the diffusion models (cache off)" : $"training the diffusion models (cached afterwards in {modelDir})");
                var modelOptions = new DiffusionModelOptions
                {
                    Shape = shape,
                    DiffusionSteps = s.DiffusionSteps,
                    ClipDenoised = s.ClipDenoised,
                    Denoiser = new DenoiserOptions { Kind = DenoiserKind.TemporalUNet, Dimension = s.NetworkDimension, Multipliers = s.NetworkMultipliers },
                    Seed = s.Seed,
                };
                var clock = Stopwatch.StartNew();
                var baseTrainer = new DiffusionTrainer(DiffusionOptions(s.Seed, d, a));
                baseModel = baseTrainer.Fit(modelOptions, baseRaw, s.Normalizer, TrainingLog("base diffusion", s.DiffusionTrainingSteps, losses, "base"), cancellationToken, trainingCondition);
                timings["base_diffusion"] = clock.Elapsed.TotalSeconds;

                clock.Restart();
                expertModel = DiffusionModel.Create(new DiffusionModelOptions
                {
                    Shape = shape,
                    DiffusionSteps = s.DiffusionSteps,
                    ClipDenoised = s.ClipDenoised,
                    Denoiser = modelOptions.Denoiser,
                    Seed = s.Seed + 1,
                }, baseModel.Normalizer);
                using (var expertNormalized = baseModel.Normalizer.Normalize(expertRaw))
                    new DiffusionTrainer(DiffusionOptions(s.Seed + 1, d, a)).Train(expertModel, expertNormalized,
                        TrainingLog("expert diffusion", s.DiffusionTrainingSteps, losses, "expert"), cancellationToken, trainingCondition);
                timings["expert_diffusion"] = clock.Elapsed.TotalSeconds;
                if (modelDir is not null)
                    SaveModels(modelDir, baseModel, expertModel, losses);
            }

            if (rewardDir is not null && TryLoadReward(rewardDir, baseModel!.Normalizer, out reward, losses))
            {
                cached = cachedModels;
                timings["reward"] = 0;
                Log($"reward loaded from {rewardDir}");
            }
            else
            {
                var clock = Stopwatch.StartNew();
                var rewardData = cat(new[] { baseModel!.Normalizer.Normalize(baseRaw), baseModel.Normalizer.Normalize(expertRaw) }, 0);
                reward = TrainReward(baseModel, expertModel!, shape, rewardData, mask, losses, cancellationToken);
                timings["reward"] = clock.Elapsed.TotalSeconds;
                if (rewardDir is not null)
                    SaveReward(rewardDir, reward, losses);
            }

            // ---- reward check on held-out windows ----
            var check = CheckReward(reward!, baseModel!.Normalizer, heldBase.Windows(h), heldExpert.Windows(h));
            Log(string.Create(CultureInfo.InvariantCulture, $"reward on held-out windows: AUC {check.Auc:F3}, balanced accuracy {check.BalancedAccuracy:F3}"));

            // ---- planning ----
            int evalSeed = SeedOf(90, 0);
            var clock2 = Stopwatch.StartNew();
            var unsteeredRun = Plan("unsteered", baseModel, null, 0, 0, s.EvaluationEpisodes, evalSeed, cancellationToken);
            timings["unsteered_rollouts"] = clock2.Elapsed.TotalSeconds;
            var unsteered = ConditionResult.From("unsteered base planner", unsteeredRun, timings["unsteered_rollouts"], 0);

            clock2.Restart();
            var steeredRun = Plan("steered", baseModel, reward, s.GuidanceScale, s.StopGradientBelow, s.EvaluationEpisodes, evalSeed, cancellationToken);
            timings["steered_rollouts"] = clock2.Elapsed.TotalSeconds;
            var steered = ConditionResult.From("steered base planner", steeredRun, timings["steered_rollouts"], s.GuidanceScale, s.StopGradientBelow);

            clock2.Restart();
            var expertRun = DiffusionPlanner.RunPolicy(s.Environment, expertPolicy, false, s.EvaluationEpisodes, s.EvaluationSteps, evalSeed, cancellationToken);
            timings["expert_rollouts"] = clock2.Elapsed.TotalSeconds;
            var expert = ConditionResult.From("expert policy", expertRun, timings["expert_rollouts"]);

            ConditionResult? expertPlanner = null;
            if (s.ExpertPlannerDiagnostic)
            {
                clock2.Restart();
                var run = Plan("expert planner", expertModel!, null, 0, 0, s.EvaluationEpisodes, evalSeed, cancellationToken);
                timings["expert_planner_rollouts"] = clock2.Elapsed.TotalSeconds;
                expertPlanner = ConditionResult.From("expert diffusion planner (diagnostic)", run, timings["expert_planner_rollouts"], 0);
            }

            var welch = Statistics.Welch(steered.Returns, unsteered.Returns);
            double gap = (steered.MeanReturn - unsteered.MeanReturn) / (expert.MeanReturn - unsteered.MeanReturn);
            Log(string.Create(CultureInfo.InvariantCulture,
                $"unsteered {unsteered.MeanReturn:F1} +- {unsteered.StandardError:F1}, steered {steered.MeanReturn:F1} +- {steered.StandardError:F1}, expert {expert.MeanReturn:F1} +- {expert.StandardError:F1}; p = {welch.PTwoSided:G3}, gap recovered {gap:P1}"));

            // ---- sweep ----
            var sweep = new List<ConditionResult>();
            if (s.ScaleSweep.Length > 0)
            {
                clock2.Restart();
                int n = Math.Min(s.SweepEpisodes, s.EvaluationEpisodes);
                sweep.Add(Subset(unsteered, n, 0, null));
                for (int i = 0; i < s.ScaleSweep.Length; i++)
                {
                    double scale = s.ScaleSweep[i];
                    int stop = s.SweepStopGradient(i);
                    var sweepClock = Stopwatch.StartNew();
                    var run = Plan(string.Create(CultureInfo.InvariantCulture, $"sweep {scale}@{stop}"), baseModel, reward, scale, stop, n, evalSeed, cancellationToken);
                    sweep.Add(ConditionResult.From("steered", run, sweepClock.Elapsed.TotalSeconds, scale, stop));
                    Log(string.Create(CultureInfo.InvariantCulture, $"sweep scale {scale}, t_stopgrad {stop}: {sweep[^1].MeanReturn:F1} +- {sweep[^1].StandardError:F1} (unsteered on these episodes {sweep[0].MeanReturn:F1})"));
                }
                timings["sweep_rollouts"] = clock2.Elapsed.TotalSeconds;
            }

            var report = new LocomotionReport
            {
                Environment = s.Environment,
                Preset = s.Preset,
                Settings = s,
                Policies = paths.ToDictionary(p => p.Key, p => Path.GetFileName(p.Value)),
                BaseData = Summarize(baseData, h, baseModel.Normalizer, baseRaw, baseRaw),
                ExpertData = Summarize(expertData, h, baseModel.Normalizer, expertRaw, baseRaw),
                Losses = losses,
                ModelsCached = cached,
                RewardCheck = check,
                Unsteered = unsteered,
                Steered = steered,
                Expert = expert,
                ExpertPlanner = expertPlanner,
                Welch = welch,
                Paired = Statistics.Paired(steered.Returns, unsteered.Returns),
                GapRecovered = gap,
                Sweep = sweep,
                Targets = new Dictionary<string, bool>
                {
                    ["p_below_0_05"] = welch.PTwoSided < 0.05 && steered.MeanReturn > unsteered.MeanReturn,
                    ["gap_at_least_30_percent"] = gap >= 0.3,
                },
                TimingsSeconds = timings,
                TotalSeconds = total.Elapsed.TotalSeconds,
                Machine = machine,
            };
            var clock3 = Stopwatch.StartNew();
            const string plotFile = "returns.png";
            ReturnsPlot.Save(new[] { unsteered, steered, expert, expertPlanner }.OfType<ConditionResult>().ToArray(), $"{s.Environment}: returns per episode (mean +- s.e.)", Path.Combine(_run.OutputDirectory, plotFile));
            timings["report"] = clock3.Elapsed.TotalSeconds;
            report = WithTotal(report, total.Elapsed.TotalSeconds);
            report.WriteJson(Path.Combine(_run.OutputDirectory, "report.json"));
            report.WriteMarkdown(Path.Combine(_run.OutputDirectory, "report.md"), plotFile);
            return report;
        }
        finally
        {
            reward?.Dispose();
            baseModel?.Dispose();
            expertModel?.Dispose();
        }
    }

    private static LocomotionReport WithTotal(LocomotionReport r, double seconds) => new()
    {
        Environment = r.Environment, Preset = r.Preset, Settings = r.Settings, Policies = r.Policies, BaseData = r.BaseData, ExpertData = r.ExpertData,
        Losses = r.Losses, ModelsCached = r.ModelsCached, RewardCheck = r.RewardCheck, Unsteered = r.Unsteered, Steered = r.Steered, Expert = r.Expert, ExpertPlanner = r.ExpertPlanner,
        Welch = r.Welch, Paired = r.Paired, GapRecovered = r.GapRecovered, Sweep = r.Sweep, Targets = r.Targets, TimingsSeconds = r.TimingsSeconds, TotalSeconds = seconds, Machine = r.Machine,
    };

    private EpisodeBatchResult Plan(string name, DiffusionModel model, RelativeRewardModel? reward, double scale, int stopGrad, int episodes, int seed,
        CancellationToken cancellationToken)
    {
        var s = _settings;
        var guidance = new GuidanceOptions { Scale = reward is null ? 0 : scale, StopGradientBelow = stopGrad, GuideSteps = s.GuideSteps };
        int every = Math.Max(1, s.EvaluationSteps / 10);
        var clock = Stopwatch.StartNew();
        var result = DiffusionPlanner.Run(s.Environment, model, reward, guidance, episodes, s.EvaluationSteps, seed, (step, running) =>
        {
            if (step % every == 0)
                Log(string.Create(CultureInfo.InvariantCulture, $"  {name}: step {step}/{s.EvaluationSteps}, {running} running, {clock.Elapsed.TotalSeconds:F0} s"));
        }, cancellationToken);
        Log(string.Create(CultureInfo.InvariantCulture, $"{name}: return {result.Mean:F1} +- {result.StandardError:F1} in {clock.Elapsed.TotalSeconds:F1} s (sampling {result.SamplingSeconds:F1} s, simulation {result.EnvironmentSeconds:F1} s)"));
        return result;
    }

    private static ConditionResult Subset(ConditionResult r, int n, double? scale, int? stopGrad)
    {
        var returns = r.Returns.Take(n).ToArray();
        var lengths = r.Lengths.Take(n).ToArray();
        return new ConditionResult
        {
            Name = r.Name, Scale = scale, StopGradientBelow = stopGrad, Episodes = returns.Length,
            MeanReturn = Statistics.Mean(returns), StandardError = Statistics.StandardError(returns),
            StandardDeviation = Math.Sqrt(Statistics.Variance(returns)), MeanLength = lengths.Average(), Returns = returns, Lengths = lengths,
        };
    }

    private DiffusionTrainingOptions DiffusionOptions(int seed, int transitionDimension, int actionSize) => new()
    {
        TrainingSteps = _settings.DiffusionTrainingSteps,
        BatchSize = _settings.DiffusionBatchSize,
        LearningRate = _settings.DiffusionLearningRate,
        EmaStartStep = _settings.DiffusionEmaStartStep,
        EmaUpdateEvery = _settings.EmaUpdateEvery,
        LossWeights = _settings.FirstActionWeight == 1 ? null
            : DiffusionTrainingOptions.TrajectoryLossWeights(_settings.Horizon, transitionDimension, actionSize, _settings.FirstActionWeight),
        Seed = seed,
    };

    private IProgress<TrainingProgress> TrainingLog(string name, int steps, Dictionary<string, double> losses, string key)
    {
        int every = Math.Max(1, steps / 5);
        return new SynchronousProgress(p =>
        {
            losses[key] = p.AverageLoss;
            if (p.Step % every == 0 || p.Step == steps)
                Log(string.Create(CultureInfo.InvariantCulture, $"  {name}: step {p.Step}/{steps}, loss {p.AverageLoss:G4}, {p.Elapsed.TotalSeconds:F0} s"));
        });
    }

    private RelativeRewardModel TrainReward(DiffusionModel baseModel, DiffusionModel expertModel, SampleShape shape, Tensor data, Tensor mask,
        Dictionary<string, double> losses, CancellationToken cancellationToken)
    {
        var s = _settings;
        var options = new TrajectoryRewardOptions { Dimension = s.RewardDimension, DimensionMultipliers = s.RewardMultipliers };
        var network = TorchRandom.Initialize(s.Seed + 2, () => new TrajectoryReward(shape, options));
        int every = Math.Max(1, s.RewardTrainingSteps / 5);
        if (s.ConditionedRewardTargets)
        {
            var shadow = TorchRandom.Initialize(s.Seed + 2, () => new TrajectoryReward(shape, options));
            var trainer = new ConditionedRewardTrainer
            {
                TrainingSteps = s.RewardTrainingSteps,
                BatchSize = s.RewardBatchSize,
                LearningRate = s.RewardLearningRate,
                PoolSize = Math.Max(s.RewardBatchSize, s.RewardTargetPool),
                RefreshEvery = s.RewardTargetRefresh,
                EmaStartStep = s.RewardEmaStartStep,
                EmaUpdateEvery = s.EmaUpdateEvery,
                Seed = s.Seed + 3,
            };
            var clock = Stopwatch.StartNew();
            try
            {
                return trainer.Train(baseModel, expertModel, network, shadow, data, mask, (step, totalSteps, loss) =>
                {
                    losses["reward"] = loss;
                    if (step % every == 0 || step == totalSteps)
                        Log(string.Create(CultureInfo.InvariantCulture, $"  reward: step {step}/{totalSteps}, loss {loss:G4}, {clock.Elapsed.TotalSeconds:F0} s"));
                }, cancellationToken);
            }
            finally
            {
                network.Dispose();
            }
        }
        try
        {
            var trainer = new RewardTrainer(new RewardTrainingOptions
            {
                TrainingSteps = s.RewardTrainingSteps,
                BatchSize = s.RewardBatchSize,
                LearningRate = s.RewardLearningRate,
                EmaStartStep = s.RewardEmaStartStep,
                EmaUpdateEvery = s.EmaUpdateEvery,
                TargetCachePoolSize = s.RewardTargetPool,
                TargetCacheRefreshEvery = s.RewardTargetRefresh,
                Seed = s.Seed + 3,
            });
            return trainer.Train(baseModel, expertModel, network, data, TrainingLog("reward", s.RewardTrainingSteps, losses, "reward"), cancellationToken);
        }
        finally
        {
            network.Dispose();
        }
    }

    /// <summary>Scores held-out windows at t = 0: AUC and the best balanced accuracy of a threshold.</summary>
    internal static RewardCheck CheckReward(RelativeRewardModel reward, Normalizer normalizer, Tensor baseRaw, Tensor expertRaw)
    {
        using var scope = NewDisposeScope();
        double[] Score(Tensor raw)
        {
            var scores = new List<double>();
            var normalized = normalizer.Normalize(raw);
            for (long first = 0; first < normalized.shape[0]; first += 2048)
            {
                var chunk = normalized.narrow(0, first, Math.Min(2048, normalized.shape[0] - first));
                scores.AddRange(reward.Score(chunk, 0).to(ScalarType.Float64).data<double>().ToArray());
            }
            return scores.ToArray();
        }
        var b = Score(baseRaw);
        var e = Score(expertRaw);
        return new RewardCheck
        {
            BaseWindows = b.Length,
            ExpertWindows = e.Length,
            MeanBaseReward = b.Average(),
            MeanExpertReward = e.Average(),
            Auc = Auc(e, b),
            BalancedAccuracy = BestBalancedAccuracy(e, b),
        };
    }

    /// <summary>P(positive &gt; negative) + P(tie) / 2, by ranks.</summary>
    internal static double Auc(double[] positive, double[] negative)
    {
        var all = positive.Select(v => (v, 1)).Concat(negative.Select(v => (v, 0))).OrderBy(p => p.v).ToArray();
        double rankSum = 0;
        for (int i = 0; i < all.Length;)
        {
            int j = i;
            while (j < all.Length && all[j].v == all[i].v)
                j++;
            double rank = (i + j + 1) / 2.0;   // average 1-based rank of the tie group
            for (int k = i; k < j; k++)
                if (all[k].Item2 == 1)
                    rankSum += rank;
            i = j;
        }
        double np = positive.Length, nn = negative.Length;
        return (rankSum - np * (np + 1) / 2) / (np * nn);
    }

    /// <summary>The best class-balanced accuracy of "positive when score &gt; threshold" over all thresholds.</summary>
    internal static double BestBalancedAccuracy(double[] positive, double[] negative)
    {
        var all = positive.Select(v => (v, 1)).Concat(negative.Select(v => (v, 0))).OrderBy(p => p.v).ToArray();
        double np = positive.Length, nn = negative.Length;
        double best = 0.5;
        int posBelow = 0, negBelow = 0;
        for (int i = 0; i < all.Length;)
        {
            int j = i;
            while (j < all.Length && all[j].v == all[i].v)
            {
                if (all[j].Item2 == 1) posBelow++; else negBelow++;
                j++;
            }
            double tpr = (np - posBelow) / np, tnr = negBelow / nn;
            best = Math.Max(best, 0.5 * (tpr + tnr));
            i = j;
        }
        return best;
    }

    /// <summary>Sizes, returns, and how far <paramref name="raw"/> reaches beyond the base data's per-entry range (raw
    /// space, whatever the normaliser) and from 0 after the base normaliser.</summary>
    private static DataSummary Summarize(BehaviourData data, int horizon, Normalizer normalizer, Tensor raw, Tensor baseRaw)
    {
        using var scope = NewDisposeScope();
        var low = baseRaw.amin(new long[] { 0 }, keepdim: true);
        var high = baseRaw.amax(new long[] { 0 }, keepdim: true);
        var outside = raw.lt(low).logical_or_(raw.gt(high));
        return Summarize(data, horizon) with
        {
            OutsideBaseLimits = outside.to(ScalarType.Float64).mean().item<double>(),
            MaxAbsNormalized = normalizer.Normalize(raw).abs().max().to(ScalarType.Float64).item<double>(),
        };
    }

    private static DataSummary Summarize(BehaviourData data, int horizon) => new()
    {
        EpisodesPerPolicy = data.Episodes.GroupBy(e => e.Policy).ToDictionary(g => g.Key, g => g.Count()),
        MeanReturnPerPolicy = data.Episodes.GroupBy(e => e.Policy).ToDictionary(g => g.Key, g => g.Average(e => e.Return)),
        Transitions = data.Transitions,
        Windows = data.WindowCount(horizon),
    };

    // ---- cache ----
    /// <summary>Keys of the diffusion models (data, policies and diffusion settings) and of the reward (its settings).</summary>
    private (string Diffusion, string Reward) CacheKeys(Dictionary<string, string> paths)
    {
        var s = _settings;
        var c = CultureInfo.InvariantCulture;
        var b = new StringBuilder();
        b.Append(c, $"v2;{s.Environment};{s.Seed};{string.Join(",", s.BasePolicies)};{s.BaseEpisodesPerPolicy};{s.ExpertPolicy};{s.ExpertEpisodes};{s.DataEpisodeSteps};{s.Horizon};");
        b.Append(c, $"{s.DiffusionSteps};{(s.ClipDenoised ? "" : "noclip;")}ema{s.EmaUpdateEvery};{s.NetworkDimension};{string.Join(",", s.NetworkMultipliers)};{s.DiffusionTrainingSteps};{s.DiffusionBatchSize};{s.DiffusionLearningRate:R};{s.DiffusionEmaStartStep};{s.Normalizer};aw{s.FirstActionWeight:R};");
        foreach (var (role, path) in paths.OrderBy(p => p.Key, StringComparer.Ordinal))
            b.Append(role).Append('=').Append(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)))).Append(';');
        string reward = string.Create(c, $"v2;ema{s.EmaUpdateEvery};{s.RewardDimension};{string.Join(",", s.RewardMultipliers)};{s.RewardTrainingSteps};{s.RewardBatchSize};{s.RewardLearningRate:R};{s.RewardEmaStartStep};{s.RewardTargetPool};{s.RewardTargetRefresh};{s.ConditionedRewardTargets}");
        static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
        return (Hash(b.ToString()), Hash(reward));
    }

    private static void SaveModels(string dir, DiffusionModel baseModel, DiffusionModel expertModel, Dictionary<string, double> losses)
    {
        Directory.CreateDirectory(dir);
        baseModel.Save(Path.Combine(dir, "base.model"));
        expertModel.Save(Path.Combine(dir, "expert.model"));
        WriteLosses(Path.Combine(dir, "losses.json"), losses, "base", "expert");
    }

    private static void SaveReward(string dir, RelativeRewardModel reward, Dictionary<string, double> losses)
    {
        Directory.CreateDirectory(dir);
        reward.Save(Path.Combine(dir, "reward.model"));
        WriteLosses(Path.Combine(dir, "losses.json"), losses, "reward");
    }

    private static void WriteLosses(string path, Dictionary<string, double> losses, params string[] keys) =>
        File.WriteAllText(path, JsonSerializer.Serialize(keys.Where(losses.ContainsKey).ToDictionary(k => k, k => losses[k])));

    private static void ReadLosses(string path, Dictionary<string, double> losses)
    {
        foreach (var (k, v) in JsonSerializer.Deserialize<Dictionary<string, double>>(File.ReadAllText(path)) ?? [])
            losses[k] = v;
    }

    private static bool TryLoadModels(string dir, out DiffusionModel? baseModel, out DiffusionModel? expertModel, Dictionary<string, double> losses)
    {
        baseModel = expertModel = null;
        if (!new[] { "base.model", "expert.model", "losses.json" }.All(f => File.Exists(Path.Combine(dir, f))))
            return false;
        try
        {
            baseModel = DiffusionModel.Load(Path.Combine(dir, "base.model"));
            expertModel = DiffusionModel.Load(Path.Combine(dir, "expert.model"));
            ReadLosses(Path.Combine(dir, "losses.json"), losses);
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or JsonException)
        {
            baseModel?.Dispose();
            expertModel?.Dispose();
            baseModel = expertModel = null;
            return false;
        }
    }

    private static bool TryLoadReward(string dir, Normalizer normalizer, out RelativeRewardModel? reward, Dictionary<string, double> losses)
    {
        reward = null;
        if (!new[] { "reward.model", "losses.json" }.All(f => File.Exists(Path.Combine(dir, f))))
            return false;
        try
        {
            using (var stream = File.OpenRead(Path.Combine(dir, "reward.model")))
                reward = RelativeRewardModel.Load(stream, normalizer);
            ReadLosses(Path.Combine(dir, "losses.json"), losses);
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or JsonException)
        {
            reward?.Dispose();
            reward = null;
            return false;
        }
    }

    private static string MachineDescription()
    {
        string load = "";
        try
        {
            if (File.Exists("/proc/loadavg"))
                load = ", load average at start " + string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
        }
        return $"{System.Environment.ProcessorCount} logical processors{load}; torch CPU";
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports on the caller's thread.</summary>
    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
