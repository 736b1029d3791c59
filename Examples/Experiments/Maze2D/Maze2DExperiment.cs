using System.Diagnostics;
using System.Globalization;
using MLReward.Environments.Maze2D;
using static TorchSharp.torch;

namespace MLReward.Experiments.Maze2D;

/// <summary>Where and how a run executes (not part of the results).</summary>
public sealed record Maze2DRunOptions
{
    /// <summary>Folder for heatmap-*.png, report.json and report.md.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>Folder for cached models (ML.NET zips named by the hash of the settings); null disables the cache.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>An earlier run's output folder whose models are used instead of training (they must have been trained with
    /// the same settings, layout and goals); null trains or uses the cache.</summary>
    public string? ModelsDirectory { get; init; }

    /// <summary>torch intra-op threads (process-wide). Default 1.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>The device every model trains and runs on ("cpu", "cuda" or "cuda:N", see <see cref="ExperimentDevice"/>);
    /// null = the CPU.</summary>
    public string? Device { get; init; }

    /// <summary>Goals processed at the same time by the <see cref="IGoalRunner"/> given to <see cref="Maze2DExperiment.Run"/>
    /// (worker processes in the mlreward command). With a goal runner the base model, which trains alone before them, uses
    /// <see cref="Threads"/> x Parallel threads. Default 1. Goals never run on concurrent threads of one
    /// process: TorchSharp 0.107 frees implicitly created Scalars in finalizers, which can run while another thread's native
    /// call still uses them ("Unknown scalar type" / "Expected false to be true" in Adam.step).</summary>
    public int Parallel { get; init; } = 1;
}

/// <summary>
/// The Maze2D experiment of docs/EXPERIMENTS.md section 1, a user of the library's estimators: base data and one base diffusion
/// model per layout (<see cref="MazeData"/>, <see cref="BaseModels"/>), then per goal expert data, an expert model warm-started
/// from the base model and the per-state relative rewards (<see cref="GoalModels"/>), the heat map, held-out AUC and
/// accuracies (<see cref="GoalEvaluation"/>), and every model as an ML.NET zip in the output folder.
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
        ModelsDirectory = _run.ModelsDirectory,
        Threads = _run.Threads,
        Device = _run.Device,
    };

    /// <summary>Rebuilds an experiment from a job (in a worker).</summary>
    public static Maze2DExperiment FromJob(Maze2DJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        var layout = MazeLayout.Parse(job.LayoutText, job.LayoutName);
        return new Maze2DExperiment(layout, job.Goals.Select(g => new Vec2(g[0], g[1])).ToArray(), job.Settings, new Maze2DRunOptions
        {
            OutputDirectory = job.OutputDirectory,
            CacheDirectory = job.CacheDirectory,
            ModelsDirectory = job.ModelsDirectory,
            Threads = job.Threads,
            Device = job.Device,
        });
    }

    /// <summary>
    /// Runs goal <paramref name="index"/> alone, as a worker does: the base (and reference) model must already be stored (the
    /// parent's <see cref="Run"/> puts them in the cache); writes the goal's files and returns its result.
    /// </summary>
    public Maze2DGoalResult RunGoal(int index, IExperimentObserver? observer = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _goals.Count);
        if (_run.CacheDirectory is null && _run.ModelsDirectory is null)
            throw new InvalidOperationException("A single goal needs the cache (or models) folder that holds the base model.");
        Directory.CreateDirectory(_run.OutputDirectory);
        return WithThreads(_run.Threads, () =>
        {
            var run = Context(_run, cancellationToken, observer);
            var baseData = MazeData.Base(run);
            using var bases = BaseModels.Prepare(run, baseData, NullObserver.Instance, stored: true);
            return RunGoal(run, index, baseData, bases, observer ?? NullObserver.Instance);
        });
    }

    /// <summary>
    /// Runs the experiment and writes its outputs; returns the report. The stages: base data, base (and reference) model, then
    /// per goal (in this process one after another, or through <paramref name="goalRunner"/>, e.g. in worker processes) expert
    /// data, expert model, rewards, evaluation and model files; then the report.
    /// </summary>
    public Maze2DReport Run(IExperimentObserver? observer = null, CancellationToken cancellationToken = default, IGoalRunner? goalRunner = null)
    {
        var total = Stopwatch.StartNew();
        var started = DateTime.UtcNow;
        observer ??= NullObserver.Instance;
        Directory.CreateDirectory(_run.OutputDirectory);
        // Workers find the base model in the cache; without one, a scratch cache inside the output folder is used and removed.
        string? scratchCache = goalRunner is not null && _run.CacheDirectory is null ? Path.Combine(_run.OutputDirectory, ".work-cache") : null;
        var options = scratchCache is null ? _run : _run with { CacheDirectory = scratchCache };
        // Nothing else runs while the base model trains, so it takes the threads that the parallel goals share later.
        int baseThreads = goalRunner is not null ? _run.Threads * _run.Parallel : _run.Threads;
        try
        {
            var run = Context(options, cancellationToken, observer);
            var clock = Stopwatch.StartNew();
            observer.Started("base-data", $"Base data ({_settings.BaseTransitions:N0} transitions)", 1);
            var baseData = MazeData.Base(run);
            observer.Finished("base-data", $"{baseData.Log.Count:N0} transitions, {baseData.Episodes} episodes, {baseData.Training.Count:N0} training windows");
            double dataSeconds = clock.Elapsed.TotalSeconds;
            using var bases = WithThreads(baseThreads, () => BaseModels.Prepare(run, baseData, observer, stored: false));
            var results = WithThreads(_run.Threads, () => goalRunner is null
                ? Enumerable.Range(0, _goals.Count).Select(i => RunGoal(run, i, baseData, bases, observer)).ToArray()
                : goalRunner.RunGoals(ToJob(options.CacheDirectory), Enumerable.Range(0, _goals.Count).ToArray(), observer, cancellationToken).ToArray());
            if (results.Length != _goals.Count)
                throw new InvalidOperationException($"The goal runner returned {results.Length} results for {_goals.Count} goals.");
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
                Base = new Maze2DBaseResult
                {
                    Transitions = baseData.Log.Count,
                    Episodes = baseData.Episodes,
                    HeldOutEpisodes = baseData.HeldOutEpisodes,
                    TrainingWindows = baseData.Training.Count,
                    ModelCached = bases.Reused,
                    ModelLoss = bases.Loss,
                    TimingsSeconds = new() { ["data"] = Math.Round(dataSeconds, 2), ["model"] = Math.Round(bases.ModelSeconds, 2), ["reference_model"] = Math.Round(bases.ReferenceSeconds, 2) },
                },
                Models = BaseModelFiles(run, bases),
                Goals = results,
                Summary = Maze2DSummary.Of(results),
                TotalSeconds = Math.Round(total.Elapsed.TotalSeconds, 2),
            };
            File.WriteAllText(Path.Combine(_run.OutputDirectory, "report.json"), report.ToJson());
            File.WriteAllText(Path.Combine(_run.OutputDirectory, "report.md"), report.ToMarkdown());
            return report;
        }
        finally
        {
            if (scratchCache is not null && Directory.Exists(scratchCache))
                Directory.Delete(scratchCache, recursive: true);
        }
    }

    private Maze2DRunContext Context(Maze2DRunOptions options, CancellationToken cancellationToken, IExperimentObserver? observer) =>
        new(_layout, _settings, options.OutputDirectory, options.CacheDirectory, options.ModelsDirectory, cancellationToken, observer is null ? null : observer.Message, options.Device);

    private static List<ModelFile> BaseModelFiles(Maze2DRunContext run, BaseModels bases)
    {
        var files = new List<ModelFile> { ModelFile.Of(BaseModels.BaseName, "base diffusion model (adds DenoisingError)", run.Shape) };
        if (bases.ReferenceModel is not null)
            files.Add(ModelFile.Of(BaseModels.ReferenceName, "reference model: the base model fine-tuned like the experts (adds DenoisingError)", run.Shape));
        return files;
    }

    /// <summary>One goal: expert data -> expert model -> rewards -> evaluation -> sampler file.</summary>
    private Maze2DGoalResult RunGoal(Maze2DRunContext run, int index, MazeData baseData, BaseModels bases, IExperimentObserver observer)
    {
        var s = _settings;
        var goal = _goals[index];
        string tag = GoalModels.Tag(goal);
        string task = $"goal-{index}";
        var clock = Stopwatch.StartNew();
        int rewardFits = s.MapRewardFeatures != s.RewardFeatures ? 2 : 1;
        double totalWork = s.ExpertTrainingSteps + rewardFits * s.RewardTrainingSteps;
        observer.Started(task, string.Create(CultureInfo.InvariantCulture, $"Goal ({goal.X:0.##}, {goal.Y:0.##})"), totalWork);
        var timings = new Dictionary<string, double>();

        observer.Progress(task, 0, "expert data");
        var expertData = MazeData.Expert(run, goal, index);
        timings["expert_data"] = clock.Elapsed.TotalSeconds;

        int rewardFit = 0;
        using var models = GoalModels.Train(run, bases, baseData, expertData, tag, index, (value, status) =>
        {
            if (status.StartsWith("map", StringComparison.Ordinal))
                rewardFit = 1;
            observer.Progress(task, value + rewardFit * (value >= s.ExpertTrainingSteps ? s.RewardTrainingSteps : 0), status);
        });
        foreach (var (stage, seconds) in models.Seconds)
            timings[stage] = seconds;

        observer.Progress(task, totalWork, "evaluation");
        var evaluation = GoalEvaluation.Run(run, bases, models, baseData, expertData, goal, tag, _run.OutputDirectory);
        foreach (var (stage, seconds) in evaluation.Seconds)
            timings[stage] = seconds;

        var sampling = clock.Elapsed.TotalSeconds;
        GoalSampling.Result steering;
        using (var sampler = models.Sampler(run, bases.Model, out var samplerSchema))
        {
            run.Stores.Output.Save(sampler, samplerSchema, $"sampler-{tag}", run.Key("sampler", tag));
            steering = GoalSampling.Run(run, sampler, goal, Path.Combine(_run.OutputDirectory, $"samples-{tag}.png"));
        }
        timings["sampling"] = clock.Elapsed.TotalSeconds - sampling;
        timings["total"] = clock.Elapsed.TotalSeconds;
        var map = evaluation.Map;
        observer.Finished(task, string.Create(CultureInfo.InvariantCulture,
            $"peak {(map.Peak is { } p ? $"({p.X:0.##}, {p.Y:0.##})" : "none")}, error {evaluation.GoalError:F2} {(evaluation.Hit ? "HIT" : "miss")}, accuracy {evaluation.Accuracy:F3} (FastTree {evaluation.FastTree:F3}), {timings["total"]:F0} s"));

        var files = new List<ModelFile>
        {
            ModelFile.Of($"expert-{tag}", "expert diffusion model (adds DenoisingError)", run.Shape),
            ModelFile.Of($"reward-{tag}", "relative reward at t = 0 (adds Reward)", run.Shape),
        };
        if (s.MapRewardFeatures != s.RewardFeatures)
            files.Add(ModelFile.Of($"map-reward-{tag}", $"the heat map's reward, reading the {s.MapRewardFeatures.ToString().ToLowerInvariant()} (adds Reward)", run.Shape));
        files.Add(new ModelFile($"sampler-{tag}.zip", "Seed, Condition, ConditionMask", run.Shape.ToString(),
            string.Create(CultureInfo.InvariantCulture, $"the base model's sampler guided by the reward, scale {s.SamplerGuidanceScale} (adds Sample)")));
        return new Maze2DGoalResult
        {
            Goal = [goal.X, goal.Y],
            Peak = map.Peak is { } pk ? [Math.Round(pk.X, 4), Math.Round(pk.Y, 4)] : null,
            GoalError = Math.Round(evaluation.GoalError, 4),
            TopCentroid = [Math.Round(map.TopCentroid.X, 4), Math.Round(map.TopCentroid.Y, 4)],
            TopCentroidError = Math.Round(MazeMetrics.GoalError(map.TopCentroid, goal), 4),
            Hit = evaluation.Hit,
            HeldoutAccuracy = Math.Round(evaluation.Accuracy, 4),
            HeldoutAuc = Math.Round(evaluation.HeldOut.AreaUnderRocCurve, 4),
            FasttreeAccuracy = Math.Round(evaluation.FastTree, 4),
            Heatmap = HeatmapFileName(goal),
            Expert = new()
            {
                ["transitions"] = expertData.Log.Count,
                ["episodes"] = expertData.Episodes,
                ["heldout_episodes"] = expertData.HeldOutEpisodes,
                ["training_windows"] = expertData.Training.Count,
                ["heldout_windows"] = expertData.EvaluationHeldOut.Count,
            },
            ExpertModelCached = models.ExpertReused,
            RewardLoss = models.RewardLoss,
            TimingsSeconds = timings.ToDictionary(t => t.Key, t => Math.Round(t.Value, 2)),
            GoalErrorAtStep = evaluation.GoalErrorAtStep,
            Conservativeness = evaluation.Conservativeness.Entries(),
            ConservativenessPlot = GoalEvaluation.ConservativenessFileName(tag),
            SampledGoalDistance = new() { ["unguided"] = Math.Round(steering.UnguidedGoalDistance, 4), ["guided"] = Math.Round(steering.GuidedGoalDistance, 4) },
            Models = files,
            HeldoutData = $"heldout-{tag}.csv",
            HeldoutScores = $"scores-{tag}.csv",
        };
    }

    /// <summary>Runs <paramref name="work"/> with <paramref name="threads"/> torch threads (a process-wide setting).</summary>
    private static T WithThreads<T>(int threads, Func<T> work)
    {
        int previous = get_num_threads();
        set_num_threads(threads);
        try
        {
            return work();
        }
        finally
        {
            set_num_threads(previous);
        }
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

    /// <summary>An earlier run's models to use instead of training (see <see cref="Maze2DRunOptions.ModelsDirectory"/>).</summary>
    public string? ModelsDirectory { get; init; }

    /// <summary>torch intra-op threads.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>The device (see <see cref="Maze2DRunOptions.Device"/>).</summary>
    public string? Device { get; init; }

    /// <summary>Serialises with <see cref="Maze2DReport.JsonOptions"/>.</summary>
    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this, Maze2DReport.JsonOptions);

    /// <summary>Reads what <see cref="ToJson"/> wrote.</summary>
    public static Maze2DJob FromJson(string json) =>
        System.Text.Json.JsonSerializer.Deserialize<Maze2DJob>(json, Maze2DReport.JsonOptions) ?? throw new InvalidDataException("Empty Maze2D job.");
}
