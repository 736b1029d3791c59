using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;
using MLReward.Environments.Maze2D;
using TorchSharp;
using static TorchSharp.torch;

namespace MLReward.Experiments.Maze2D;

/// <summary>Receives the progress of a run. Called from several threads when goals run concurrently.</summary>
public interface IExperimentObserver
{
    /// <summary>A task (identified by <paramref name="key"/>) starts; its progress runs from 0 to <paramref name="total"/>.</summary>
    void Started(string key, string description, double total);

    /// <summary>Progress of a task.</summary>
    void Progress(string key, double value, string? status = null);

    /// <summary>A task ends.</summary>
    void Finished(string key, string? summary = null);

    /// <summary>A line of information.</summary>
    void Message(string text);
}

/// <summary>Where and how a run executes (not part of the results).</summary>
public sealed record Maze2DRunOptions
{
    /// <summary>Folder for heatmap-*.png, report.json and report.md.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>Folder for cached base and expert models; null disables the cache.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>torch intra-op threads (process-wide). Default 1.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Goals processed at the same time by the <see cref="IGoalRunner"/> given to <see cref="Maze2DExperiment.Run"/>
    /// (worker processes in the mlreward command). With a goal runner the base model, which trains alone before them, uses
    /// <see cref="Threads"/> x Parallel threads. Default 1. Goals never run on concurrent threads of one
    /// process: TorchSharp 0.107 frees implicitly created Scalars in finalizers, which can run while another thread's native
    /// call still uses them ("Unknown scalar type" / "Expected false to be true" in Adam.step).</summary>
    public int Parallel { get; init; } = 1;
}

/// <summary>
/// The Maze2D experiment of docs/EXPERIMENTS.md section 1: base data and one base diffusion model per layout, then per goal
/// expert data, an expert diffusion model (warm-started from the base model), a per-state relative reward, its heat map,
/// goal error and held-out accuracies.
/// </summary>
public sealed class Maze2DExperiment
{
    private readonly MazeLayout _layout;
    private readonly IReadOnlyList<Vec2> _goals;
    private readonly Maze2DSettings _settings;
    private readonly Maze2DRunOptions _run;

    /// <summary>Sets up a run (nothing is computed yet).</summary>
    public Maze2DExperiment(MazeLayout layout, IReadOnlyList<Vec2> goals, Maze2DSettings settings, Maze2DRunOptions run)
    {
        _layout = layout ?? throw new ArgumentNullException(nameof(layout));
        ArgumentNullException.ThrowIfNull(goals);
        _settings = settings ?? throw new ArgumentNullException(nameof(settings));
        _run = run ?? throw new ArgumentNullException(nameof(run));
        settings.Validate();
        if (goals.Count == 0)
            throw new ArgumentException("At least one goal is needed.", nameof(goals));
        foreach (var g in goals)
        {
            if (!layout.IsValidPosition(g, PointMass.Radius))
                throw new ArgumentException($"Goal ({g.X}, {g.Y}) is not a free position of maze '{layout.Name}'.", nameof(goals));
        }
        if (run.Threads < 1 || run.Parallel < 1)
            throw new ArgumentOutOfRangeException(nameof(run), "Threads and Parallel must be at least 1.");
        _goals = goals;
    }

    /// <summary>A default set of goals for a layout without standard goals: up to <paramref name="count"/> free cells spread
    /// over the maze (farthest-point order from the first free cell), each at its cell centre in the paper's goal convention (i, j).</summary>
    public static IReadOnlyList<Vec2> DefaultGoals(MazeLayout layout, int count = 8)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (layout.StandardGoals.Count > 0)
            return layout.StandardGoals;
        var cells = layout.FreeCells.Where(c => layout.IsValidPosition(new Vec2(c.I, c.J), PointMass.Radius)).ToList();
        if (cells.Count == 0)
            throw new ArgumentException($"Maze '{layout.Name}' has no free cell that can hold a goal.", nameof(layout));
        var chosen = new List<GridCell> { cells[0] };
        while (chosen.Count < Math.Min(count, cells.Count))
        {
            var next = cells.Where(c => !chosen.Contains(c))
                .OrderByDescending(c => chosen.Min(s => Math.Abs(s.I - c.I) + Math.Abs(s.J - c.J)))
                .ThenBy(c => c.I).ThenBy(c => c.J)
                .First();
            chosen.Add(next);
        }
        return chosen.Select(c => new Vec2(c.I, c.J)).ToArray();
    }

    /// <summary>The file name of a goal's heat map: heatmap-X_Y.png with invariant decimals.</summary>
    public static string HeatmapFileName(Vec2 goal) =>
        string.Create(CultureInfo.InvariantCulture, $"heatmap-{goal.X:0.##}_{goal.Y:0.##}.png");

    /// <summary>Everything a worker needs to run goals of this experiment (see <see cref="FromJob"/>).</summary>
    public Maze2DJob ToJob(string? cacheDirectory = null) => new()
    {
        LayoutName = _layout.Name,
        LayoutText = _layout.ToText(),
        Goals = _goals.Select(g => new[] { g.X, g.Y }).ToArray(),
        Settings = _settings,
        OutputDirectory = _run.OutputDirectory,
        CacheDirectory = cacheDirectory ?? _run.CacheDirectory,
        Threads = _run.Threads,
    };

    /// <summary>Rebuilds an experiment from a job (in a worker).</summary>
    public static Maze2DExperiment FromJob(Maze2DJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        var layout = MazeLayout.Parse(job.LayoutText, job.LayoutName);
        return new Maze2DExperiment(layout, job.Goals.Select(g => new Vec2(g[0], g[1])).ToArray(), job.Settings,
            new Maze2DRunOptions { OutputDirectory = job.OutputDirectory, CacheDirectory = job.CacheDirectory, Threads = job.Threads });
    }

    /// <summary>
    /// Runs goal <paramref name="index"/> alone, as a worker does: the base (and reference) model must already be in the cache
    /// (the parent's <see cref="Run"/> puts it there); writes the goal's heat map and returns its result.
    /// </summary>
    public Maze2DGoalResult RunGoal(int index, IExperimentObserver? observer = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _goals.Count);
        if (_run.CacheDirectory is null)
            throw new InvalidOperationException("A single goal needs the cache folder that holds the base model.");
        Directory.CreateDirectory(_run.OutputDirectory);
        int previousThreads = get_num_threads();
        set_num_threads(_run.Threads);
        try
        {
            using var baseState = PrepareBase(NullObserver.Instance, cancellationToken, requireCached: true);
            return RunGoal(index, baseState, observer ?? NullObserver.Instance, cancellationToken);
        }
        finally
        {
            set_num_threads(previousThreads);
        }
    }

    /// <summary>
    /// Runs the experiment and writes its outputs; returns the report. The base (and reference) model is prepared here;
    /// the goals run one after another in this process, or through <paramref name="goalRunner"/> (e.g. in worker processes).
    /// </summary>
    public Maze2DReport Run(IExperimentObserver? observer = null, CancellationToken cancellationToken = default, IGoalRunner? goalRunner = null)
    {
        var total = Stopwatch.StartNew();
        var started = DateTime.UtcNow;
        observer ??= NullObserver.Instance;
        Directory.CreateDirectory(_run.OutputDirectory);
        // Workers find the base model in the cache; without one, a scratch cache inside the output folder is used and removed.
        string? scratchCache = goalRunner is not null && _run.CacheDirectory is null ? Path.Combine(_run.OutputDirectory, ".work-cache") : null;
        var run = scratchCache is null ? _run : _run with { CacheDirectory = scratchCache };
        if (run.CacheDirectory is not null)
            Directory.CreateDirectory(run.CacheDirectory);
        int previousThreads = get_num_threads();
        // Nothing else runs while the base model trains, so it takes the threads that the parallel goals share later.
        int baseThreads = goalRunner is not null ? _run.Threads * _run.Parallel : _run.Threads;
        set_num_threads(baseThreads);
        try
        {
            using var baseState = new Maze2DExperiment(_layout, _goals, _settings, run).PrepareBase(observer, cancellationToken);
            set_num_threads(_run.Threads);
            Maze2DGoalResult[] results;
            if (goalRunner is not null)
            {
                results = goalRunner.RunGoals(ToJob(run.CacheDirectory), Enumerable.Range(0, _goals.Count).ToArray(), observer, cancellationToken).ToArray();
                if (results.Length != _goals.Count)
                    throw new InvalidOperationException($"The goal runner returned {results.Length} results for {_goals.Count} goals.");
            }
            else
            {
                results = new Maze2DGoalResult[_goals.Count];
                for (int i = 0; i < _goals.Count; i++)
                    results[i] = RunGoal(i, baseState, observer, cancellationToken);
            }

            var summary = new Maze2DSummary
            {
                Goals = results.Length,
                Hits = results.Count(r => r.Hit),
                MeanGoalError = results.Average(r => r.GoalError),
                MeanHeldoutAccuracy = results.Average(r => r.HeldoutAccuracy),
                MeanFasttreeAccuracy = results.Average(r => r.FasttreeAccuracy),
                MeanHeldoutAccuracyAtTrainingHorizon = results.Average(r => r.HeldoutAccuracyAtTrainingHorizon),
            };
            var report = new Maze2DReport
            {
                Maze = _layout.Name,
                Layout = _layout.ToText().Split('\n', StringSplitOptions.RemoveEmptyEntries),
                Preset = _settings.Name,
                Settings = _settings,
                Threads = _run.Threads,
                Parallel = _run.Parallel,
                BaseThreads = baseThreads,
                StartedUtc = started,
                Base = baseState.Result,
                Goals = results,
                Summary = summary,
                TotalSeconds = Math.Round(total.Elapsed.TotalSeconds, 2),
            };
            File.WriteAllText(Path.Combine(_run.OutputDirectory, "report.json"), report.ToJson());
            File.WriteAllText(Path.Combine(_run.OutputDirectory, "report.md"), report.ToMarkdown());
            return report;
        }
        finally
        {
            set_num_threads(previousThreads);
            if (scratchCache is not null && Directory.Exists(scratchCache))
                Directory.Delete(scratchCache, recursive: true);
        }
    }

    private sealed class BaseState : IDisposable
    {
        public required TransitionLog Log { get; init; }
        public required EpisodeSplit Split { get; init; }
        public required TrajectoryWindowSet TrainingWindows { get; init; }
        public required DiffusionModel Model { get; init; }
        /// <summary>The model the reward is extracted against: <see cref="Model"/>, or its paired fine-tuned copy.</summary>
        public required DiffusionModel Reference { get; init; }
        public required Tensor NormalizedTraining { get; init; }
        public required string Key { get; init; }
        public required Maze2DBaseResult Result { get; init; }
        public TrajectoryWindowSet? EvaluationTrain { get; set; }
        public TrajectoryWindowSet? EvaluationTest { get; set; }
        /// <summary>Held-out-accuracy windows of the diffusion horizon H (the same as above when the classifiers use H).</summary>
        public TrajectoryWindowSet? EvaluationTrainAtH { get; set; }
        public TrajectoryWindowSet? EvaluationTestAtH { get; set; }

        public void Dispose()
        {
            if (!ReferenceEquals(Reference, Model))
                Reference.Dispose();
            Model.Dispose();
            NormalizedTraining.Dispose();
        }
    }

    private BaseState PrepareBase(IExperimentObserver observer, CancellationToken ct, bool requireCached = false)
    {
        var s = _settings;
        var clock = Stopwatch.StartNew();
        observer.Started("base-data", $"Base data ({s.BaseTransitions:N0} transitions)", 1);
        var dataset = new Maze2DDataGenerator(_layout).GenerateBase(s.BaseTransitions, s.Seed, ct);
        var split = EpisodeSplit.Create(dataset.Log, s.HeldOutFraction, s.Seed);
        var training = TrajectoryWindowSet.Cut(dataset.Log, s.Horizon, s.WindowStride, split.IsTraining);
        if (training.Count == 0)
            throw new InvalidOperationException($"No base episode of maze '{_layout.Name}' is at least {s.Horizon} steps long; lower the horizon.");
        double dataSeconds = clock.Elapsed.TotalSeconds;
        observer.Progress("base-data", 1);
        observer.Finished("base-data", $"{dataset.Log.Count:N0} transitions, {dataset.Episodes.Count} episodes, {training.Count:N0} training windows ({dataSeconds:F1} s)");

        clock.Restart();
        string key = s.BaseModelKey(_layout.ToText());
        string hash = Hash(key);
        string? cachePath = _run.CacheDirectory is null ? null : Path.Combine(_run.CacheDirectory, $"base-{hash}.mlrd");
        DiffusionModel model;
        bool cached = false;
        double loss = double.NaN;
        var shape = SampleShape.Trajectory(s.Horizon, TrajectoryWindowSet.TransitionDimension);
        using var raw = training.ToTensor();
        if (cachePath is not null && TryLoad(cachePath, out var loaded))
        {
            model = loaded!;
            cached = true;
            observer.Started("base-model", "Base diffusion model", 1);
            observer.Progress("base-model", 1);
            observer.Finished("base-model", $"loaded from cache ({Path.GetFileName(cachePath)})");
        }
        else
        {
            if (requireCached)
                throw new InvalidOperationException($"The base model is not in the cache ({cachePath}).");
            observer.Started("base-model", $"Base diffusion model ({s.BaseTrainingSteps} steps)", s.BaseTrainingSteps);
            var progress = new StepProgress(p => observer.Progress("base-model", p.Step, string.Create(CultureInfo.InvariantCulture, $"loss {p.AverageLoss:F4}")));
            var trainer = new DiffusionTrainer(DiffusionOptions(s.BaseTrainingSteps, s.BaseBatchSize, s.Seed, s.DiffusionLearningRate, s.DiffusionEmaStartStep));
            model = trainer.Fit(ModelOptions(shape, s.Seed), raw, NormalizerKind.Limits, progress, ct);
            loss = progress.Last.AverageLoss;
            if (cachePath is not null)
                Save(model, cachePath, key);
            observer.Finished("base-model", string.Create(CultureInfo.InvariantCulture, $"loss {loss:F4} ({clock.Elapsed.TotalSeconds:F0} s)"));
        }
        double modelSeconds = clock.Elapsed.TotalSeconds;
        var normalized = model.Normalizer.Normalize(raw).DetachFromDisposeScope();
        var reference = model;
        double referenceSeconds = 0;
        if (s.PairedReference)
        {
            clock.Restart();
            string referenceKey = s.ReferenceModelKey(key);
            string? referencePath = _run.CacheDirectory is null ? null : Path.Combine(_run.CacheDirectory, $"reference-{Hash(referenceKey)}.mlrd");
            observer.Started("reference-model", $"Reference model (base fine-tuned like the experts, {s.ExpertTrainingSteps} steps)", Math.Max(1, s.ExpertTrainingSteps));
            if (referencePath is not null && TryLoad(referencePath, out var loadedReference))
            {
                reference = loadedReference!;
                observer.Finished("reference-model", $"loaded from cache ({Path.GetFileName(referencePath)})");
            }
            else
            {
                if (requireCached)
                    throw new InvalidOperationException($"The reference model is not in the cache ({referencePath}).");
                reference = DiffusionModel.Create(ModelOptions(shape, s.FineTuneSeed), model.Normalizer);
                CopyWeights(model.Denoiser, reference.Denoiser);
                var progress = new StepProgress(p => observer.Progress("reference-model", p.Step, string.Create(CultureInfo.InvariantCulture, $"loss {p.AverageLoss:F4}")));
                if (s.ExpertTrainingSteps > 0)
                    new DiffusionTrainer(DiffusionOptions(s.ExpertTrainingSteps, s.ExpertBatchSize, s.FineTuneSeed, s.ExpertLearningRate, s.ExpertEmaStartStep)).Train(reference, normalized, progress, ct);
                if (referencePath is not null)
                    Save(reference, referencePath, referenceKey);
                observer.Finished("reference-model", string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds:F0} s"));
            }
            referenceSeconds = clock.Elapsed.TotalSeconds;
        }
        var result = new Maze2DBaseResult
        {
            Transitions = dataset.Log.Count,
            Episodes = split.TotalEpisodes,
            HeldOutEpisodes = split.HeldOutEpisodes,
            TrainingWindows = training.Count,
            ModelCached = cached,
            ModelHash = hash,
            ModelLoss = loss,
            TimingsSeconds = new() { ["data"] = Math.Round(dataSeconds, 2), ["model"] = Math.Round(modelSeconds, 2), ["reference_model"] = Math.Round(referenceSeconds, 2) },
        };
        int classifierHorizon = s.ClassifierHorizon;
        var evaluationTrain = EvaluationWindows(dataset.Log, classifierHorizon, split.IsTraining, s.Seed + 11);
        var evaluationTest = EvaluationWindows(dataset.Log, classifierHorizon, split.IsHeldOut, s.Seed + 12);
        bool sameHorizon = classifierHorizon == s.Horizon;
        return new BaseState
        {
            Log = dataset.Log,
            Split = split,
            TrainingWindows = training,
            Model = model,
            Reference = reference,
            NormalizedTraining = normalized,
            Key = key,
            Result = result,
            EvaluationTrain = evaluationTrain,
            EvaluationTest = evaluationTest,
            EvaluationTrainAtH = sameHorizon ? evaluationTrain : EvaluationWindows(dataset.Log, s.Horizon, split.IsTraining, s.Seed + 11),
            EvaluationTestAtH = sameHorizon ? evaluationTest : EvaluationWindows(dataset.Log, s.Horizon, split.IsHeldOut, s.Seed + 12),
        };
    }

    private Maze2DGoalResult RunGoal(int index, BaseState baseState, IExperimentObserver observer, CancellationToken ct)
    {
        var s = _settings;
        var goal = _goals[index];
        string name = string.Create(CultureInfo.InvariantCulture, $"({goal.X:0.##}, {goal.Y:0.##})");
        string task = $"goal-{index}";
        var timings = new Dictionary<string, double>();
        var goalClock = Stopwatch.StartNew();
        var clock = Stopwatch.StartNew();
        void Lap(string stage)
        {
            timings[stage] = Math.Round(clock.Elapsed.TotalSeconds, 2);
            clock.Restart();
        }
        int goalSeed = s.Seed + 1000 * (index + 1);
        int expertTotal = s.ExpertTrainingSteps, rewardTotal = s.RewardTrainingSteps;
        bool separateMap = s.MapRewardFeatures != s.RewardFeatures;
        double totalWork = 1 + expertTotal + 0.25 * rewardTotal + (separateMap ? 2 : 1) * rewardTotal + 0.25 * rewardTotal;
        observer.Started(task, $"Goal {name}", totalWork);
        double done = 0;
        void Advance(double value, string status) => observer.Progress(task, done + value, status);

        // Expert data.
        Advance(0, "expert data");
        var expert = new Maze2DDataGenerator(_layout).GenerateExpert(goal, s.ExpertTransitions, goalSeed, ct);
        var split = EpisodeSplit.Create(expert.Log, s.HeldOutFraction, goalSeed);
        var expertTraining = TrajectoryWindowSet.Cut(expert.Log, s.Horizon, s.WindowStride, split.IsTraining);
        if (expertTraining.Count == 0)
            throw new InvalidOperationException($"No expert episode for goal {name} is at least {s.Horizon} steps long; lower the horizon.");
        Lap("expert_data");
        done += 1;

        // Expert model (warm start from the base model).
        using var expertRaw = expertTraining.ToTensor();
        using var expertNormalized = baseState.Model.Normalizer.Normalize(expertRaw);
        string key = s.ExpertModelKey(baseState.Key, goal.X, goal.Y);
        string? cachePath = _run.CacheDirectory is null ? null : Path.Combine(_run.CacheDirectory, $"expert-{Hash(key)}.mlrd");
        bool expertCached = false;
        DiffusionModel expertModel;
        if (cachePath is not null && TryLoad(cachePath, out var loaded))
        {
            expertModel = loaded!;
            expertCached = true;
        }
        else
        {
            expertModel = DiffusionModel.Create(ModelOptions(baseState.Model.Shape, goalSeed), baseState.Model.Normalizer);
            if (s.ExpertWarmStart)
                CopyWeights(baseState.Model.Denoiser, expertModel.Denoiser);
            var progress = new StepProgress(p => Advance(p.Step, string.Create(CultureInfo.InvariantCulture, $"expert model, loss {p.AverageLoss:F4}")));
            if (expertTotal > 0)
                new DiffusionTrainer(DiffusionOptions(expertTotal, s.ExpertBatchSize, s.PairedReference ? s.FineTuneSeed : goalSeed, s.ExpertLearningRate, s.ExpertEmaStartStep)).Train(expertModel, expertNormalized, progress, ct);
            if (cachePath is not null)
                Save(expertModel, cachePath, key);
        }
        using var _expert = expertModel;
        Lap("expert_model");
        done += expertTotal;

        // Relative reward: per-state MLP (window 1) on a mix of base and expert training windows.
        using var mix = MixTrainingData(baseState.NormalizedTraining, expertNormalized, s.RewardExpertFraction, goalSeed);
        PerStateReward CreateReward() => TorchRandom.Initialize(goalSeed, () => new PerStateReward(baseState.Model.Shape, s.RewardFeatures, s.RewardHiddenSizes));
        var network = CreateReward();
        RelativeRewardModel reward;
        RelativeRewardModel? mapReward = null;
        double rewardLoss;
        PerStateReward CreateMapReward() => TorchRandom.Initialize(goalSeed + 1, () => new PerStateReward(baseState.Model.Shape, s.MapRewardFeatures, s.RewardHiddenSizes));
        using (network)
        {
            var trainer = new CachedTargetRewardTrainer
            {
                PoolSize = s.RewardTargetPool,
                TrainingSteps = rewardTotal,
                BatchSize = s.RewardBatchSize,
                LearningRate = s.RewardLearningRate,
                Seed = goalSeed,
                BalanceSteps = s.RewardBalanceSteps,
            };
            using var pool = s.RewardTargetPool > 0
                ? trainer.ComputeTargets(baseState.Reference, expertModel, mix, f => Advance(f * 0.25 * rewardTotal, "reward targets"), ct)
                : null;
            Lap("reward_targets");
            done += 0.25 * rewardTotal;
            (reward, rewardLoss) = trainer.Train(network, CreateReward, baseState.Reference, expertModel, mix, pool,
                (step, loss) => Advance(step, string.Create(CultureInfo.InvariantCulture, $"reward, loss {loss:E2}")), ct);
            Lap("reward_training");
            done += rewardTotal;
            if (separateMap)
            {
                // The map's reward: the same objective and targets, restricted to the map's features (positions by default).
                using var mapNetwork = CreateMapReward();
                (mapReward, _) = trainer.Train(mapNetwork, CreateMapReward, baseState.Reference, expertModel, mix, pool,
                    (step, loss) => Advance(step, string.Create(CultureInfo.InvariantCulture, $"map reward, loss {loss:E2}")), ct);
                done += rewardTotal;
            }
            Lap("map_reward_training");
        }
        using var _reward = reward;
        using var _mapReward = mapReward;

        // Heat map.
        Advance(0, "heat map");
        var mapSource = mapReward ?? reward;
        var stateRewards = RewardMap.ScoreStates(mapSource, baseState.Log);
        var map = RewardMap.Build(_layout, baseState.Log, stateRewards, s.HeatmapWinsorize, s.HeatmapMinCount);
        string file = HeatmapFileName(goal);
        double error = map.Peak is { } peak ? MazeMetrics.GoalError(peak, goal) : double.PositiveInfinity;
        bool hit = MazeMetrics.IsHit(error);
        HeatmapPlot.Save(map, goal, string.Create(CultureInfo.InvariantCulture,
            $"{_layout.Name}, goal {name}: relative reward R({(s.MapRewardFeatures == RewardFeatures.Position ? "x, y" : "s")}, t=0)\npeak error {error:F2} ({(hit ? "hit" : "miss")})"), Path.Combine(_run.OutputDirectory, file));
        Dictionary<string, double>? errorAtStep = null;
        foreach (int step in s.DiagnosticMapSteps.Where(k => k > 0 && k < s.DiffusionSteps))
        {
            var stepMap = RewardMap.Build(_layout, baseState.Log, RewardMap.ScoreStates(mapSource, baseState.Log, step), s.HeatmapWinsorize, s.HeatmapMinCount);
            double stepError = stepMap.Peak is { } sp ? MazeMetrics.GoalError(sp, goal) : double.PositiveInfinity;
            (errorAtStep ??= [])[step.ToString(CultureInfo.InvariantCulture)] = Math.Round(stepError, 4);
            HeatmapPlot.Save(stepMap, goal, string.Create(CultureInfo.InvariantCulture, $"{_layout.Name}, goal {name}: R(s, t={step}) (diagnostic)\npeak error {stepError:F2}"),
                Path.Combine(_run.OutputDirectory, Path.GetFileNameWithoutExtension(file) + $"-t{step}.png"));
        }
        Lap("heatmap");

        // Held-out accuracy of the reward (logistic regression on the scalar) and of FastTree, same split.
        Advance(0.1 * rewardTotal, "held-out accuracy");
        int classifierHorizon = s.ClassifierHorizon;
        TrajectoryWindowSet ExpertWindows(int horizon, Func<int, bool> episodes, int seed)
        {
            var windows = EvaluationWindows(expert.Log, horizon, episodes, seed);
            if (windows.Count == 0)
                throw new InvalidOperationException($"No expert episode for goal {name} is at least {horizon} steps long; lower EvaluationHorizon.");
            return windows;
        }
        var expertEvalTrain = ExpertWindows(classifierHorizon, split.IsTraining, goalSeed + 11);
        var expertEvalTest = ExpertWindows(classifierHorizon, split.IsHeldOut, goalSeed + 12);
        var ml = new MLContext(goalSeed);
        ml.Log += (_, _) => { };
        double accuracy = PreferenceClassifiers.RewardAccuracy(ml,
            ScoreWindows(reward, expertEvalTrain), ScoreWindows(reward, baseState.EvaluationTrain!),
            ScoreWindows(reward, expertEvalTest), ScoreWindows(reward, baseState.EvaluationTest!));
        double accuracyAtH = classifierHorizon == s.Horizon ? accuracy : PreferenceClassifiers.RewardAccuracy(ml,
            ScoreWindows(reward, ExpertWindows(s.Horizon, split.IsTraining, goalSeed + 11)), ScoreWindows(reward, baseState.EvaluationTrainAtH!),
            ScoreWindows(reward, ExpertWindows(s.Horizon, split.IsHeldOut, goalSeed + 12)), ScoreWindows(reward, baseState.EvaluationTestAtH!));
        Lap("heldout_accuracy");
        Advance(0.15 * rewardTotal, "FastTree baseline");
        double fastTree = PreferenceClassifiers.FastTreeAccuracy(ml, expertEvalTrain, baseState.EvaluationTrain!, expertEvalTest, baseState.EvaluationTest!,
            s.FastTreeTrees, s.FastTreeLeaves);
        Lap("fasttree");
        timings["total"] = Math.Round(goalClock.Elapsed.TotalSeconds, 2);
        observer.Progress(task, totalWork);
        observer.Finished(task, string.Create(CultureInfo.InvariantCulture,
            $"peak {(map.Peak is { } p ? $"({p.X:0.##}, {p.Y:0.##})" : "none")}, error {error:F2} {(hit ? "HIT" : "miss")}, accuracy {accuracy:F3} (FastTree {fastTree:F3}), {timings["total"]:F0} s"));

        return new Maze2DGoalResult
        {
            Goal = [goal.X, goal.Y],
            Peak = map.Peak is { } pk ? [Math.Round(pk.X, 4), Math.Round(pk.Y, 4)] : null,
            GoalError = Math.Round(error, 4),
            TopCentroid = [Math.Round(map.TopCentroid.X, 4), Math.Round(map.TopCentroid.Y, 4)],
            TopCentroidError = Math.Round(MazeMetrics.GoalError(map.TopCentroid, goal), 4),
            Hit = hit,
            HeldoutAccuracy = Math.Round(accuracy, 4),
            FasttreeAccuracy = Math.Round(fastTree, 4),
            AccuracyHorizon = classifierHorizon,
            HeldoutAccuracyAtTrainingHorizon = Math.Round(accuracyAtH, 4),
            Heatmap = file,
            Expert = new()
            {
                ["transitions"] = expert.Log.Count,
                ["episodes"] = split.TotalEpisodes,
                ["heldout_episodes"] = split.HeldOutEpisodes,
                ["training_windows"] = expertTraining.Count,
                ["heldout_windows"] = expertEvalTest.Count,
            },
            ExpertModelCached = expertCached,
            RewardLoss = rewardLoss,
            TimingsSeconds = timings,
            GoalErrorAtStep = errorAtStep,
        };
    }

    /// <summary>At most <see cref="Maze2DSettings.EvaluationWindows"/> windows of <paramref name="horizon"/> steps (stride H/2) of
    /// the chosen episodes, drawn with <paramref name="seed"/>: the classifiers' data.</summary>
    private TrajectoryWindowSet EvaluationWindows(TransitionLog log, int horizon, Func<int, bool> episodes, int seed) =>
        TrajectoryWindowSet.Cut(log, horizon, Math.Max(1, horizon / 2), episodes).Subsample(_settings.EvaluationWindows, seed);

    /// <summary>R(window, t = 0) of every window: the mean of its states' rewards, for windows of any length (the reward is
    /// per state; at the diffusion horizon this is exactly the reward model's own score).</summary>
    private static float[] ScoreWindows(RelativeRewardModel reward, TrajectoryWindowSet windows)
    {
        var network = (PerStateReward)reward.Network;
        int horizon = reward.Shape.Horizon;
        var result = new float[windows.Count];
        const int chunk = 1024;
        for (int first = 0; first < windows.Count; first += chunk)
        {
            int n = Math.Min(chunk, windows.Count - first);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var raw = tensor(windows.Data.AsSpan(first * windows.WindowLength, n * windows.WindowLength).ToArray(),
                new long[] { n, windows.Horizon, TrajectoryWindowSet.TransitionDimension }, ScalarType.Float32);
            // The normaliser works on [B, H, D] samples: normalise the states H to a row (the length is a multiple of H).
            var normalized = reward.Normalizer!.Normalize(raw.reshape(-1, horizon, TrajectoryWindowSet.TransitionDimension)).reshape(raw.shape);
            var t = zeros(new long[] { n }, ScalarType.Int64);
            network.StateRewards(normalized, t).mean(new long[] { 1 }).contiguous().data<float>().CopyTo(result, first);
        }
        return result;
    }

    /// <summary>All expert windows plus enough base windows (drawn without replacement) that experts make up
    /// <paramref name="expertFraction"/> of the result (all base windows when there are too few).</summary>
    private static Tensor MixTrainingData(Tensor baseWindows, Tensor expertWindows, double expertFraction, int seed)
    {
        using var scope = NewDisposeScope();
        long nE = expertWindows.shape[0], nB = baseWindows.shape[0];
        if (expertFraction >= 1)
            return expertWindows.clone().MoveToOuterDisposeScope();
        long wantBase = expertFraction <= 0 ? nB : Math.Min(nB, (long)Math.Round(nE * (1 - expertFraction) / expertFraction));
        using var generator = TorchRandom.Generator(seed + 7);
        var chosen = randperm(nB, generator: generator).narrow(0, 0, wantBase);
        var parts = expertFraction <= 0
            ? new[] { baseWindows.index_select(0, chosen) }
            : new[] { expertWindows, baseWindows.index_select(0, chosen) };
        return cat(parts, 0).MoveToOuterDisposeScope();
    }

    private DiffusionModelOptions ModelOptions(SampleShape shape, int seed) => new()
    {
        Shape = shape,
        DiffusionSteps = _settings.DiffusionSteps,
        Target = _settings.PredictNoise ? PredictionTarget.Noise : PredictionTarget.Start,
        ClipDenoised = _settings.ClipDenoised,
        Denoiser = new DenoiserOptions { Kind = DenoiserKind.TemporalUNet, Dimension = _settings.NetworkDimension, Multipliers = _settings.NetworkMultipliers },
        Seed = seed,
    };

    private static DiffusionTrainingOptions DiffusionOptions(int steps, int batch, int seed, double learningRate, int emaStartStep) => new()
    {
        TrainingSteps = steps,
        BatchSize = batch,
        LearningRate = learningRate,
        EmaStartStep = emaStartStep,
        Seed = seed,
    };

    private static void CopyWeights(nn.Module source, nn.Module destination)
    {
        using var _ = no_grad();
        foreach (var (from, to) in source.parameters().Zip(destination.parameters()))
            to.copy_(from);
        foreach (var (from, to) in source.buffers().Zip(destination.buffers()))
            to.copy_(from);
    }

    private static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16];

    private static bool TryLoad(string path, out DiffusionModel? model)
    {
        model = null;
        if (!File.Exists(path))
            return false;
        try
        {
            model = DiffusionModel.Load(path);
            return true;
        }
        catch (InvalidDataException)
        {
            return false;   // a stale or damaged cache entry is retrained and overwritten
        }
    }

    private static void Save(DiffusionModel model, string path, string key)
    {
        model.Save(path);   // atomic, with a unique temporary name: parallel goal processes may save the same entry
        File.WriteAllText(Path.ChangeExtension(path, ".txt"), key + "\n");
    }

    private sealed class StepProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        private long _lastReport;

        public TrainingProgress Last { get; private set; }

        public void Report(TrainingProgress value)
        {
            Last = value;
            long now = Environment.TickCount64;
            if (now - _lastReport >= 200 || value.Step == value.TotalSteps)
            {
                _lastReport = now;
                report(value);
            }
        }
    }

    internal sealed class NullObserver : IExperimentObserver
    {
        public static readonly NullObserver Instance = new();
        public void Started(string key, string description, double total) { }
        public void Progress(string key, double value, string? status = null) { }
        public void Finished(string key, string? summary = null) { }
        public void Message(string text) { }
    }
}

/// <summary>Runs some goals of a job elsewhere (e.g. in worker processes) and returns their results in the order asked.</summary>
public interface IGoalRunner
{
    /// <summary>Runs goals <paramref name="goalIndices"/> of <paramref name="job"/>; the base model is in <see cref="Maze2DJob.CacheDirectory"/>.</summary>
    IReadOnlyList<Maze2DGoalResult> RunGoals(Maze2DJob job, IReadOnlyList<int> goalIndices, IExperimentObserver observer, CancellationToken cancellationToken);
}

/// <summary>A serialisable description of a Maze2D run, for worker processes.</summary>
public sealed record Maze2DJob
{
    /// <summary>The layout's name.</summary>
    public required string LayoutName { get; init; }

    /// <summary>The layout as text.</summary>
    public required string LayoutText { get; init; }

    /// <summary>The goals, [x, y] each.</summary>
    public required double[][] Goals { get; init; }

    /// <summary>The settings.</summary>
    public required Maze2DSettings Settings { get; init; }

    /// <summary>Where heat maps go.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>The model cache (holds the base model).</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>torch intra-op threads.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Serialises with <see cref="Maze2DReport.JsonOptions"/>.</summary>
    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this, Maze2DReport.JsonOptions);

    /// <summary>Reads what <see cref="ToJson"/> wrote.</summary>
    public static Maze2DJob FromJson(string json) =>
        System.Text.Json.JsonSerializer.Deserialize<Maze2DJob>(json, Maze2DReport.JsonOptions) ?? throw new InvalidDataException("Empty Maze2D job.");
}
