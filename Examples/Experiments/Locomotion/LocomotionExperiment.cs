using System.Diagnostics;
using System.Globalization;
using MLReward.LocomotionAgents;
using static TorchSharp.torch;

namespace MLReward.Experiments.Locomotion;

/// <summary>Where and how a locomotion run executes (not part of the results).</summary>
public sealed record LocomotionRunOptions
{
    /// <summary>Folder for report.json, report.md, returns.png and the model zips.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>Folder with <c>&lt;task&gt;-&lt;role&gt;.policy</c> files; null = <see cref="PolicyFiles.DefaultDirectory"/>.</summary>
    public string? PolicyDirectory { get; init; }

    /// <summary>Folder for cached models (ML.NET zips named by the hash of the settings); null = no cache.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>An earlier run's output folder whose models are used instead of training (same settings and policies); null
    /// trains or uses the cache.</summary>
    public string? ModelsDirectory { get; init; }

    /// <summary>Receives the stages' progress and lines of information.</summary>
    public IExperimentObserver? Observer { get; init; }

    /// <summary>The device the models train and plan on ("cpu", "cuda" or "cuda:N", see <see cref="ExperimentDevice"/>);
    /// null = the CPU.</summary>
    public string? Device { get; init; }
}

/// <summary>
/// The locomotion experiment of docs/EXPERIMENTS.md section 2, a user of the library's estimators. Its stages: behaviour data
/// from saved SAC policies (<see cref="LocomotionData"/>); the base and expert diffusion models and the reward
/// (<see cref="LocomotionModels"/>); the reward's held-out AUC, then the base planner, replanning every step, unsteered and
/// steered by the reward on the same seeds, the expert policy and the expert planner (<see cref="LocomotionEvaluation"/>);
/// the report, with Welch's t-test and the fraction of the base-to-expert gap recovered, and the model zips.
/// </summary>
public sealed class LocomotionExperiment
{
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

    /// <summary>Runs every stage and writes the reports and models; returns the report.</summary>
    public LocomotionReport Run(CancellationToken cancellationToken = default)
    {
        var s = _settings;
        var total = Stopwatch.StartNew();
        string machine = MachineDescription();
        Directory.CreateDirectory(_run.OutputDirectory);
        int previousThreads = get_num_threads();
        set_num_threads(s.Threads);
        try
        {
            var timings = new Dictionary<string, double>();
            var clock = Stopwatch.StartNew();
            var paths = LocomotionData.PolicyPaths(s, _run.PolicyDirectory ?? PolicyFiles.DefaultDirectory());
            using var data = LocomotionData.Record(s, new SeedStreams(s.Seed), paths, cancellationToken);
            var run = new LocomotionRunContext(s, _run, paths, data.Base.ActionSize, data.Base.ObservationSize, cancellationToken);
            timings["data"] = clock.Elapsed.TotalSeconds;
            run.Log(string.Create(CultureInfo.InvariantCulture, $"data: {data.Describe()} in {timings["data"]:F1} s"));

            using var models = LocomotionModels.Prepare(run, data);
            foreach (var (stage, seconds) in models.Seconds)
                timings[stage] = seconds;

            clock.Restart();
            var check = LocomotionEvaluation.CheckReward(run, data, models.Reward);
            timings["reward_check"] = clock.Elapsed.TotalSeconds;
            run.Log(string.Create(CultureInfo.InvariantCulture, $"reward on held-out windows: AUC {check.Auc:F3}, balanced accuracy {check.BalancedAccuracy:F3}"));
            const string diagnosticFile = "conservativeness.png";
            var diagnostic = LocomotionEvaluation.Conservativeness(run, data, models, Path.Combine(_run.OutputDirectory, diagnosticFile));
            if (diagnostic is not null)
            {
                timings["conservativeness"] = diagnostic.Seconds;
                run.Log(string.Create(CultureInfo.InvariantCulture,
                    $"conservativeness on held-out windows: explained fraction {diagnostic.MeanExplainedFraction:F3}, asymmetry {diagnostic.MeanAsymmetry:F3} (means over t)"));
            }

            var conditions = LocomotionEvaluation.Plan(run, models, data);
            foreach (var (stage, seconds) in conditions.Seconds)
                timings[stage] = seconds;
            models.SaveSampler(run);

            var (unsteered, steered, expert) = (conditions.Unsteered, conditions.Steered, conditions.Expert);
            var welch = Statistics.Welch(steered.Returns, unsteered.Returns);
            double gap = (steered.MeanReturn - unsteered.MeanReturn) / (expert.MeanReturn - unsteered.MeanReturn);
            run.Log(string.Create(CultureInfo.InvariantCulture,
                $"unsteered {unsteered.MeanReturn:F1} +- {unsteered.StandardError:F1}, steered {steered.MeanReturn:F1} +- {steered.StandardError:F1}, expert {expert.MeanReturn:F1} +- {expert.StandardError:F1}; p = {welch.PTwoSided:G3}, gap recovered {gap:P1}"));

            clock.Restart();
            const string plotFile = "returns.png";
            ReturnsPlot.Save(new[] { unsteered, steered, expert, conditions.ExpertPlanner }.OfType<ConditionResult>().ToArray(),
                $"{s.Environment}: returns per episode (mean +- s.e.)", Path.Combine(_run.OutputDirectory, plotFile));
            const string scalePlotFile = "returns-vs-scale.png";
            bool scalePlot = ScalePlot.Save(
                [("scale selection", null, conditions.ScaleSelection), ("sweep", conditions.Sweep.FirstOrDefault(), conditions.Sweep.Skip(1).ToList())],
                $"{s.Environment}: mean return against the guidance scale", Path.Combine(_run.OutputDirectory, scalePlotFile));
            var episodes = EpisodeDiagnostics.Measure(models.Reward.Model, s.Horizon, data.Base.ActionSize, data.Base.ObservationSize,
                unsteered.Trajectories, steered.Trajectories, expert.Trajectories);
            episodes.Plot = "episodes-reward.png";
            episodes.SavePlot($"{s.Environment}: return against the reward of the executed windows", Path.Combine(_run.OutputDirectory, episodes.Plot));
            episodes.Trajectories = "trajectories.csv";
            EpisodeDiagnostics.WriteTrajectories(Path.Combine(_run.OutputDirectory, episodes.Trajectories),
                [("unsteered", unsteered.Trajectories), ("steered", steered.Trajectories)], data.Base.ActionSize, data.Base.ObservationSize);
            run.Log(string.Create(CultureInfo.InvariantCulture,
                $"per episode: {episodes.SteeredBelowThreshold} steered episodes below {episodes.CollapseThreshold:F0}; correlation of the executed windows' reward and return: steered {episodes.SteeredRewardReturnCorrelation:F2}, unsteered {episodes.UnsteeredRewardReturnCorrelation:F2}"));
            timings["report"] = clock.Elapsed.TotalSeconds;
            var normalizer = models.Base.Model.Normalizer;
            var report = new LocomotionReport
            {
                Environment = s.Environment,
                Preset = s.Preset,
                Settings = s,
                Policies = paths.ToDictionary(p => p.Key, p => Path.GetFileName(p.Value)),
                BaseData = LocomotionEvaluation.Summarize(data.Base, data.Base, s.Horizon, normalizer),
                ExpertData = LocomotionEvaluation.Summarize(data.Expert, data.Base, s.Horizon, normalizer),
                Losses = models.Losses,
                ModelsCached = models.Reused,
                ModelsReused = models.ReusedModels,
                RewardCheck = check,
                Conservativeness = diagnostic?.Entries(),
                ConservativenessPlot = diagnostic is null ? null : diagnosticFile,
                Unsteered = unsteered,
                Steered = steered,
                Expert = expert,
                ExpertPlanner = conditions.ExpertPlanner,
                Random = conditions.Random,
                NormalizedScores = NormalizedScore.For(conditions.Random, expert, unsteered, steered, conditions.ExpertPlanner),
                Welch = welch,
                Paired = Statistics.Paired(steered.Returns, unsteered.Returns),
                GapRecovered = gap,
                Sweep = conditions.Sweep,
                ScaleSelection = conditions.ScaleSelection,
                ScalePlot = scalePlot ? scalePlotFile : null,
                EpisodeDiagnostics = episodes,
                Targets = new Dictionary<string, bool>
                {
                    ["p_below_0_05"] = welch.PTwoSided < 0.05 && steered.MeanReturn > unsteered.MeanReturn,
                    ["gap_at_least_30_percent"] = gap >= 0.3,
                },
                Models = models.Files(run),
                TimingsSeconds = timings,
                TotalSeconds = total.Elapsed.TotalSeconds,
                Machine = machine,
            };
            report.WriteJson(Path.Combine(_run.OutputDirectory, "report.json"));
            report.WriteMarkdown(Path.Combine(_run.OutputDirectory, "report.md"), plotFile);
            return report;
        }
        finally
        {
            set_num_threads(previousThreads);
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
}
