using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MLReward.Experiments.Maze2D;

/// <summary>The outcome of one goal.</summary>
public sealed class Maze2DGoalResult
{
    /// <summary>The goal [x, y].</summary>
    public required double[] Goal { get; init; }

    /// <summary>The heat map's peak bin centre [x, y] (null when every bin was masked).</summary>
    public double[]? Peak { get; init; }

    /// <summary>Distance from the peak to the goal in maze units (infinity when there is no peak).</summary>
    public double GoalError { get; init; }

    /// <summary>The reward-weighted mean position of the top 1% of base states [x, y] (the alternative peak of docs/EXPERIMENTS.md section 1).</summary>
    public double[]? TopCentroid { get; init; }

    /// <summary>Distance from <see cref="TopCentroid"/> to the goal.</summary>
    public double TopCentroidError { get; init; }

    /// <summary>Whether <see cref="GoalError"/> is within 1.0.</summary>
    public bool Hit { get; init; }

    /// <summary>Class-balanced accuracy of a logistic regression on the scalar reward (t = 0), held-out episodes.</summary>
    public double HeldoutAccuracy { get; init; }

    /// <summary>Class-balanced accuracy of FastTree on the raw windows, same split.</summary>
    public double FasttreeAccuracy { get; init; }

    /// <summary>Area under the ROC curve of the reward on the held-out windows (expert against base), from the library's Evaluate.</summary>
    public double HeldoutAuc { get; init; }

    /// <summary>The heat map's file name inside the output folder.</summary>
    public required string Heatmap { get; init; }

    /// <summary>Expert data: episodes, training windows, held-out windows evaluated.</summary>
    public required Dictionary<string, int> Expert { get; init; }

    /// <summary>Whether the expert model came from the cache.</summary>
    public bool ExpertModelCached { get; init; }

    /// <summary>Final average loss of the reward (last 100 steps).</summary>
    public double RewardLoss { get; init; }

    /// <summary>Seconds per stage: expert_data, expert_model, reward, map_reward, heatmap, heldout_accuracy, fasttree, total.</summary>
    public required Dictionary<string, double> TimingsSeconds { get; init; }

    /// <summary>Diagnostic: the map's goal error when the reward is read at these noise steps t instead of 0 (<see cref="Maze2DSettings.DiagnosticMapSteps"/>).</summary>
    public Dictionary<string, double>? GoalErrorAtStep { get; init; }

    /// <summary>Mean distance of the sampled positions to the goal, 64 samples of the base model unguided and guided by the
    /// reward at <see cref="Maze2DSettings.SamplerGuidanceScale"/>, the same seeds (samples-&lt;goal&gt;.png draws 16 of each).</summary>
    public Dictionary<string, double>? SampledGoalDistance { get; init; }

    /// <summary>The conservativeness diagnostic of the reward on the held-out windows, per noise level (docs/METHOD.md section 4).</summary>
    public List<ConservativenessEntry>? Conservativeness { get; init; }

    /// <summary>The diagnostic's plot against t, inside the output folder.</summary>
    public string? ConservativenessPlot { get; init; }

    /// <summary>The mean of the finite <paramref name="values"/> (NaN when none).</summary>
    internal static double MeanOf(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToArray();
        return finite.Length == 0 ? double.NaN : Math.Round(finite.Average(), 4);
    }

    /// <summary>The goal's model zips in the output folder.</summary>
    public IReadOnlyList<ModelFile> Models { get; init; } = [];

    /// <summary>The held-out transitions of both sides (CSV: Episode as expert-ID or base-ID, then the six step values).</summary>
    public string? HeldoutData { get; init; }

    /// <summary>The rewards the run gave the held-out windows (CSV: Episode, StartStep, Expert, Reward).</summary>
    public string? HeldoutScores { get; init; }
}

/// <summary>The base data and model of a run.</summary>
public sealed class Maze2DBaseResult
{
    /// <summary>Transitions generated.</summary>
    public int Transitions { get; init; }

    /// <summary>Episodes generated / held out.</summary>
    public int Episodes { get; init; }

    /// <summary>Held-out episodes.</summary>
    public int HeldOutEpisodes { get; init; }

    /// <summary>Training windows.</summary>
    public int TrainingWindows { get; init; }

    /// <summary>Whether the base model came from the cache.</summary>
    public bool ModelCached { get; init; }

    /// <summary>Final average training loss (NaN when cached).</summary>
    public double ModelLoss { get; init; }

    /// <summary>Seconds: data, model.</summary>
    public required Dictionary<string, double> TimingsSeconds { get; init; }
}

/// <summary>Summary over the goals.</summary>
public sealed class Maze2DSummary
{
    /// <summary>Goals evaluated.</summary>
    public int Goals { get; init; }

    /// <summary>Goals whose peak lies within 1.0 of the goal.</summary>
    public int Hits { get; init; }

    /// <summary>Mean goal error.</summary>
    public double MeanGoalError { get; init; }

    /// <summary>Mean held-out accuracy of the reward.</summary>
    public double MeanHeldoutAccuracy { get; init; }

    /// <summary>Mean held-out accuracy of FastTree.</summary>
    public double MeanFasttreeAccuracy { get; init; }

    /// <summary>Mean held-out AUC of the reward.</summary>
    public double MeanHeldoutAuc { get; init; }

    /// <summary>Conservativeness diagnostic: the explained fraction averaged over goals and noise levels.</summary>
    public double MeanExplainedFraction { get; init; }

    /// <summary>Conservativeness diagnostic: the asymmetry of the difference averaged over goals and noise levels.</summary>
    public double MeanAsymmetry { get; init; }

    /// <summary>The summary of <paramref name="results"/>.</summary>
    public static Maze2DSummary Of(IReadOnlyList<Maze2DGoalResult> results) => new()
    {
        MeanExplainedFraction = Maze2DGoalResult.MeanOf(results.SelectMany(r => r.Conservativeness ?? []).Select(e => e.ExplainedFraction)),
        MeanAsymmetry = Maze2DGoalResult.MeanOf(results.SelectMany(r => r.Conservativeness ?? []).Select(e => e.Asymmetry)),
        Goals = results.Count,
        Hits = results.Count(r => r.Hit),
        MeanGoalError = results.Average(r => r.GoalError),
        MeanHeldoutAccuracy = results.Average(r => r.HeldoutAccuracy),
        MeanFasttreeAccuracy = results.Average(r => r.FasttreeAccuracy),
        MeanHeldoutAuc = results.Average(r => r.HeldoutAuc),
    };
}

/// <summary>Everything <c>mlreward maze2d</c> writes to report.json (and, as a table, to report.md).</summary>
public sealed class Maze2DReport : ExperimentReport
{
    /// <summary>"maze2d".</summary>
    public string Experiment { get; init; } = "maze2d";

    /// <summary>The maze's name.</summary>
    public required string Maze { get; init; }

    /// <summary>The layout's text rows.</summary>
    public required string[] Layout { get; init; }

    /// <summary>The preset's name.</summary>
    public required string Preset { get; init; }

    /// <summary>All settings.</summary>
    public required Maze2DSettings Settings { get; init; }

    /// <summary>torch intra-op threads.</summary>
    public int Threads { get; init; }

    /// <summary>Goals processed concurrently (worker processes).</summary>
    public int Parallel { get; init; }

    /// <summary>torch intra-op threads of the base (and reference) model, which trains before any goal starts.</summary>
    public int BaseThreads { get; init; }

    /// <summary>Logical processors of the machine.</summary>
    public int ProcessorCount { get; init; } = Environment.ProcessorCount;

    /// <summary>UTC start time.</summary>
    public DateTime StartedUtc { get; init; }

    /// <summary>The base data and model.</summary>
    public required Maze2DBaseResult Base { get; init; }

    /// <summary>One result per goal, in the order given.</summary>
    public required IReadOnlyList<Maze2DGoalResult> Goals { get; init; }

    /// <summary>The base and reference model zips in the output folder (each goal lists its own).</summary>
    public IReadOnlyList<ModelFile> Models { get; init; } = [];

    /// <summary>Totals.</summary>
    public required Maze2DSummary Summary { get; init; }

    /// <summary>Wall-clock seconds of the whole run.</summary>
    public double TotalSeconds { get; init; }

    /// <summary>The JSON options of report.json (<see cref="ExperimentReport.CreateJsonOptions"/>, and snake_case dictionary
    /// keys), also those of the jobs and results exchanged with worker processes.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = CreateJsonOptions(o => o.DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower);

    /// <summary>Serialises to JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>A Markdown report: settings, one table row per goal, hits out of N and the mean accuracies.</summary>
    public string ToMarkdown()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(c, $"# Maze2D reward maps: {Maze}, preset {Preset}\n\n");
        sb.Append("```\n").Append(string.Join("\n", Layout)).Append("\n```\n\n");
        sb.Append(c, $"{Settings.Describe().Replace("\n", "  \n")}  \n");
        sb.Append(c, $"torch threads {Threads} per goal ({BaseThreads} for the base model), {Parallel} goal(s) at a time, {ProcessorCount} logical processors; started {StartedUtc:yyyy-MM-dd HH:mm} UTC.\n\n");
        sb.Append(c, $"Base: {Base.Transitions:N0} transitions, {Base.Episodes} episodes ({Base.HeldOutEpisodes} held out), {Base.TrainingWindows:N0} training windows; ");
        sb.Append(c, $"data {Base.TimingsSeconds.GetValueOrDefault("data"):F1} s, model {Base.TimingsSeconds.GetValueOrDefault("model"):F1} s{(Base.ModelCached ? " (cached)" : "")}, reference model {Base.TimingsSeconds.GetValueOrDefault("reference_model"):F1} s.\n\n");
        sb.Append("| goal | peak | goal error | hit | held-out AUC | held-out accuracy (reward) | FastTree accuracy | explained fraction | asymmetry | samples' distance to goal: unguided / guided | expert model s | reward s | eval s | total s |\n");
        sb.Append("|---|---|---:|:-:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        foreach (var g in Goals)
        {
            var t = g.TimingsSeconds;
            double reward = t.GetValueOrDefault("reward") + t.GetValueOrDefault("map_reward");
            double eval = t.GetValueOrDefault("heatmap") + t.GetValueOrDefault("heldout_accuracy") + t.GetValueOrDefault("fasttree");
            sb.Append(c, $"| ({g.Goal[0]:0.##}, {g.Goal[1]:0.##}) | {(g.Peak is null ? "none" : $"({g.Peak[0]:0.##}, {g.Peak[1]:0.##})")} | {g.GoalError:F2} | {(g.Hit ? "yes" : "no")} | ");
            string steering = g.SampledGoalDistance is { } d ? string.Create(c, $"{d.GetValueOrDefault("unguided"):F2} / {d.GetValueOrDefault("guided"):F2}") : "";
            var diagnostic = g.Conservativeness ?? [];
            sb.Append(c, $"{g.HeldoutAuc:F3} | {g.HeldoutAccuracy:F3} | {g.FasttreeAccuracy:F3} | {Maze2DGoalResult.MeanOf(diagnostic.Select(e => e.ExplainedFraction)):F3} | {Maze2DGoalResult.MeanOf(diagnostic.Select(e => e.Asymmetry)):F3} | {steering} | {t.GetValueOrDefault("expert_model"):F1}{(g.ExpertModelCached ? " (cached)" : "")} | {reward:F1} | {eval:F1} | {t.GetValueOrDefault("total"):F1} |\n");
        }
        sb.Append(c, $"\n**Hits: {Summary.Hits} / {Summary.Goals}** (peak within 1.0 of the goal). Mean goal error {Summary.MeanGoalError:F2}; ");
        sb.Append(c, $"held-out windows of H = {Settings.Horizon} steps: mean AUC {Summary.MeanHeldoutAuc:F3}, mean accuracy {Summary.MeanHeldoutAccuracy:F3} (reward) vs {Summary.MeanFasttreeAccuracy:F3} (FastTree).  \n");
        sb.Append(c, $"Conservativeness of the rewards (mean over goals and noise levels): explained fraction {Summary.MeanExplainedFraction:F3}, asymmetry of the models' difference {Summary.MeanAsymmetry:F3}.  \n");
        sb.Append(c, $"Total time {TotalSeconds:F0} s ({TotalSeconds / 60:F1} min).\n\n");
        AppendConservativeness(sb, c);
        sb.Append("Heat maps: ").Append(string.Join(", ", Goals.Select(g => $"[{g.Heatmap}]({g.Heatmap})"))).Append('\n');
        sb.Append("\nModel zips (load with `mlContext.Model.Load`): ").Append(string.Join(", ", Models.Concat(Goals.SelectMany(g => g.Models)).Select(m => $"`{m.File}`"))).Append('\n');
        return sb.ToString();
    }

    /// <summary>Per noise level t and goal: explained fraction / asymmetry (the columns of conservativeness-&lt;goal&gt;.png).</summary>
    private void AppendConservativeness(StringBuilder sb, CultureInfo c)
    {
        var withDiagnostic = Goals.Where(g => g.Conservativeness is { Count: > 0 }).ToArray();
        if (withDiagnostic.Length == 0)
            return;
        sb.Append("Conservativeness per noise level t (explained fraction / asymmetry; 1 / 0 for a reward that explains a gradient field exactly):\n\n");
        sb.Append("| t | ").Append(string.Join(" | ", withDiagnostic.Select(g => string.Create(c, $"({g.Goal[0]:0.##}, {g.Goal[1]:0.##})")))).Append(" |\n");
        sb.Append("|---:|").Append(string.Concat(withDiagnostic.Select(_ => "---:|"))).Append('\n');
        foreach (int t in withDiagnostic.SelectMany(g => g.Conservativeness!).Select(e => e.Step).Distinct().Order())
        {
            sb.Append(c, $"| {t} | ");
            sb.Append(string.Join(" | ", withDiagnostic.Select(g => g.Conservativeness!.FirstOrDefault(e => e.Step == t) is { } e
                ? string.Create(c, $"{e.ExplainedFraction:F2} / {e.Asymmetry:F2}") : "")));
            sb.Append(" |\n");
        }
        sb.Append("\nPlots: ").Append(string.Join(", ", withDiagnostic.Select(g => $"[{g.ConservativenessPlot}]({g.ConservativenessPlot})"))).Append("\n\n");
    }
}
