using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MLReward.Experiments.Locomotion;

/// <summary>Return statistics of one condition.</summary>
public sealed class ConditionResult
{
    /// <summary>What ran (e.g. "unsteered base planner").</summary>
    public required string Name { get; init; }
    /// <summary>Guidance scale (planner conditions only).</summary>
    public double? Scale { get; init; }
    /// <summary>t_stopgrad (steered planner only).</summary>
    public int? StopGradientBelow { get; init; }
    /// <summary>Episodes.</summary>
    public int Episodes { get; init; }
    /// <summary>Mean return.</summary>
    public double MeanReturn { get; init; }
    /// <summary>Standard error of the mean return.</summary>
    public double StandardError { get; init; }
    /// <summary>Sample standard deviation of the returns.</summary>
    public double StandardDeviation { get; init; }
    /// <summary>Mean episode length.</summary>
    public double MeanLength { get; init; }
    /// <summary>Episodes that terminated (fell) before the step cap.</summary>
    public int Terminated { get; init; }
    /// <summary>Each episode's return, in seed order.</summary>
    public required double[] Returns { get; init; }
    /// <summary>Each episode's length, in seed order.</summary>
    public required int[] Lengths { get; init; }
    /// <summary>Seconds of this condition (sampling plus simulation).</summary>
    public double Seconds { get; init; }
    /// <summary>Seconds per environment step of one episode batch (sampling only).</summary>
    public double SamplingSecondsPerStep { get; init; }
    /// <summary>What each episode executed (not in report.json; the per-episode diagnostics read it).</summary>
    [JsonIgnore]
    public IReadOnlyList<RecordedEpisode> Trajectories { get; init; } = [];

    /// <summary>Builds the record of a batch result.</summary>
    public static ConditionResult From(string name, EpisodeBatchResult r, double seconds, double? scale = null, int? stopGrad = null)
    {
        int batchSteps = r.Lengths.Length == 0 ? 0 : r.Lengths.Max();
        return new ConditionResult
        {
            Name = name,
            Scale = scale,
            StopGradientBelow = stopGrad,
            Episodes = r.Returns.Length,
            MeanReturn = r.Mean,
            StandardError = r.StandardError,
            StandardDeviation = Math.Sqrt(Statistics.Variance(r.Returns)),
            MeanLength = r.Lengths.Length == 0 ? 0 : r.Lengths.Average(),
            Terminated = r.Terminated.Count(t => t),
            Returns = r.Returns,
            Lengths = r.Lengths,
            Seconds = seconds,
            SamplingSecondsPerStep = batchSteps == 0 ? 0 : r.SamplingSeconds / batchSteps,
            Trajectories = r.Episodes,
        };
    }
}

/// <summary>Summary of one behaviour data set.</summary>
public sealed record DataSummary
{
    /// <summary>Policies and their episode counts.</summary>
    public required Dictionary<string, int> EpisodesPerPolicy { get; init; }
    /// <summary>Mean return per policy (stochastic actions).</summary>
    public required Dictionary<string, double> MeanReturnPerPolicy { get; init; }
    /// <summary>Environment steps.</summary>
    public int Transitions { get; init; }
    /// <summary>H-step windows used for training.</summary>
    public int Windows { get; init; }
    /// <summary>Fraction of the window entries outside the base windows' range of that entry (min..max per step and dimension).</summary>
    public double OutsideBaseLimits { get; init; }
    /// <summary>Largest |value| after the base normaliser.</summary>
    public double MaxAbsNormalized { get; init; }
}

/// <summary>How well the reward separates held-out expert from base windows (t = 0).</summary>
public sealed class RewardCheck
{
    /// <summary>Held-out base windows scored.</summary>
    public int BaseWindows { get; init; }
    /// <summary>Held-out expert windows scored.</summary>
    public int ExpertWindows { get; init; }
    /// <summary>Mean reward of the base windows.</summary>
    public double MeanBaseReward { get; init; }
    /// <summary>Mean reward of the expert windows.</summary>
    public double MeanExpertReward { get; init; }
    /// <summary>P(R(expert window) &gt; R(base window)): the rank AUC.</summary>
    public double Auc { get; init; }
    /// <summary>Class-balanced accuracy of the best threshold on the scalar reward (a one-feature classifier).</summary>
    public double BalancedAccuracy { get; init; }
}

/// <summary>Everything a locomotion run measured (written as report.json and report.md).</summary>
public sealed class LocomotionReport : ExperimentReport
{
    /// <summary>"locomotion".</summary>
    public string Experiment { get; init; } = "locomotion";
    /// <summary>Task name.</summary>
    public required string Environment { get; init; }
    /// <summary>Preset name.</summary>
    public required string Preset { get; init; }
    /// <summary>All settings.</summary>
    public required LocomotionSettings Settings { get; init; }
    /// <summary>Policy files used (role -> file name).</summary>
    public required Dictionary<string, string> Policies { get; init; }
    /// <summary>Base data.</summary>
    public required DataSummary BaseData { get; init; }
    /// <summary>Expert data.</summary>
    public required DataSummary ExpertData { get; init; }
    /// <summary>Final running losses: base, expert, reward.</summary>
    public required Dictionary<string, double> Losses { get; init; }
    /// <summary>Whether the trained models came from the cache.</summary>
    public bool ModelsCached { get; init; }
    /// <summary>Reward separation on held-out windows.</summary>
    public required RewardCheck RewardCheck { get; init; }
    /// <summary>The conservativeness diagnostic of the reward on the held-out windows, per noise level (docs/METHOD.md section 4).</summary>
    public List<ConservativenessEntry>? Conservativeness { get; init; }
    /// <summary>Its plot against t.</summary>
    public string? ConservativenessPlot { get; init; }
    /// <summary>Unsteered base planner.</summary>
    public required ConditionResult Unsteered { get; init; }
    /// <summary>Steered base planner.</summary>
    public required ConditionResult Steered { get; init; }
    /// <summary>The expert policy (stochastic actions, as in the expert data) on the same starts.</summary>
    public required ConditionResult Expert { get; init; }
    /// <summary>The expert diffusion model as an unguided planner (diagnostic; null unless asked for).</summary>
    public ConditionResult? ExpertPlanner { get; init; }
    /// <summary>Uniform random actions on the same starts: the zero of the normalised scores.</summary>
    public ConditionResult? Random { get; init; }
    /// <summary>D4RL-style normalised scores of the planners, with this run's random and expert policy as 0 and 100.</summary>
    public List<NormalizedScore> NormalizedScores { get; init; } = [];
    /// <summary>Welch's t-test, steered minus unsteered.</summary>
    public required WelchResult Welch { get; init; }
    /// <summary>Paired t-test of the per-episode differences, steered minus unsteered (the two planners meet the same
    /// starts and noise streams, so the pairs share what does not depend on guidance). A supplement to Welch's test,
    /// which the targets use.</summary>
    public WelchResult? Paired { get; init; }
    /// <summary>(steered - unsteered) / (expert - unsteered).</summary>
    public double GapRecovered { get; init; }
    /// <summary>Extra guidance scales on the first episodes (same seeds), with the unsteered planner on those episodes first.</summary>
    public required List<ConditionResult> Sweep { get; init; }
    /// <summary>The candidate scales, each on episodes that are not reported; the steered planner uses the best (empty when
    /// the scale was fixed).</summary>
    public List<ConditionResult> ScaleSelection { get; init; } = [];
    /// <summary>Every reported episode under both planners and the expert policy, with the reward of what it executed.</summary>
    public EpisodeDiagnostics? EpisodeDiagnostics { get; init; }
    /// <summary>The plot of mean return against the guidance scale (scale selection and sweep), or null when neither ran.</summary>
    public string? ScalePlot { get; init; }
    /// <summary>Whether the targets were met: p &lt; 0.05 (two-sided Welch) and gap recovered &gt;= 0.3.</summary>
    public required Dictionary<string, bool> Targets { get; init; }

    /// <summary>The model zips in the output folder.</summary>
    public IReadOnlyList<ModelFile> Models { get; init; } = [];

    /// <summary>Per model (base, expert, reward): whether it was loaded (cache or --models) rather than trained.</summary>
    public Dictionary<string, bool> ModelsReused { get; init; } = [];
    /// <summary>Seconds per stage.</summary>
    public required Dictionary<string, double> TimingsSeconds { get; init; }
    /// <summary>Wall-clock seconds of the whole run.</summary>
    public double TotalSeconds { get; init; }
    /// <summary>Machine: logical processors seen by the process and the load average at the start.</summary>
    public required string Machine { get; init; }

    /// <summary>The JSON options of report.json (<see cref="ExperimentReport.CreateJsonOptions"/>; absent results, such as the
    /// expert planner when not asked for, are left out).</summary>
    public static JsonSerializerOptions JsonOptions { get; } = CreateJsonOptions(o => o.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull);

    /// <summary>Writes report.json.</summary>
    public void WriteJson(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, JsonOptions));

    /// <summary>Writes report.md.</summary>
    public void WriteMarkdown(string path, string plotFile) => File.WriteAllText(path, ToMarkdown(plotFile));

    /// <summary>The Markdown report.</summary>
    public string ToMarkdown(string plotFile)
    {
        var c = CultureInfo.InvariantCulture;
        var b = new StringBuilder();
        b.Append(c, $"# Locomotion: {Environment} (preset {Preset})\n\n");
        b.Append("Steering the base diffusion planner with the relative reward extracted from the base and expert diffusion models ");
        b.Append("(docs/EXPERIMENTS.md section 2). Every condition runs the same episode seeds (resets and, for the planners, sampling noise).\n\n");
        b.Append("| condition | episodes | mean return | +- s.e. | s.d. | mean length | terminated |\n|---|---:|---:|---:|---:|---:|---:|\n");
        foreach (var r in new[] { Unsteered, Steered, Expert, ExpertPlanner }.OfType<ConditionResult>())
            b.Append(c, $"| {r.Name} | {r.Episodes} | {r.MeanReturn:F1} | {r.StandardError:F1} | {r.StandardDeviation:F1} | {r.MeanLength:F0} | {r.Terminated} |\n");
        b.Append('\n');
        b.Append(c, $"- Welch t-test, steered vs unsteered: t = {Welch.T:F2}, df = {Welch.DegreesOfFreedom:F1}, p (two-sided) = {FormatP(Welch.PTwoSided)}, p (one-sided, steered > unsteered) = {FormatP(Welch.PGreater)}\n");
        if (Paired is { } paired)
            b.Append(c, $"- Paired t-test on the same episodes (supplement): mean difference {Steered.MeanReturn - Unsteered.MeanReturn:F1}, t = {paired.T:F2}, df = {paired.DegreesOfFreedom:F0}, p (two-sided) = {FormatP(paired.PTwoSided)}\n");
        b.Append(c, $"- Gap recovered, (steered - unsteered) / (expert - unsteered): **{GapRecovered:P1}**\n");
        if (Random is { } random && NormalizedScores.Count > 0)
        {
            b.Append(c, $"- D4RL-style normalised scores, 100 (R - R_random) / (R_expert - R_random), with this run's uniform random actions ({random.MeanReturn:F1} +- {random.StandardError:F1}, mean length {random.MeanLength:F0}) as 0 and its expert policy as 100: ");
            b.Append(string.Join("; ", NormalizedScores.Select(n => string.Create(c, $"{n.Condition} {n.Score:F1} +- {n.StandardError:F1}"))));
            b.Append('\n');
        }
        b.Append(c, $"- Targets: p < 0.05 {(Targets.GetValueOrDefault("p_below_0_05") ? "met" : "NOT met")}; gap >= 30% {(Targets.GetValueOrDefault("gap_at_least_30_percent") ? "met" : "NOT met")}\n");
        b.Append(c, $"- Reward on held-out windows (t = 0): AUC expert vs base {RewardCheck.Auc:F3}, balanced accuracy {RewardCheck.BalancedAccuracy:F3} ({RewardCheck.ExpertWindows} expert / {RewardCheck.BaseWindows} base windows)\n");
        b.Append(c, $"- Return distributions: ![returns]({plotFile})\n");
        if (ScalePlot is not null)
            b.Append(c, $"- Mean return against the guidance scale: ![returns against the scale]({ScalePlot})\n");
        b.Append('\n');
        if (Conservativeness is { Count: > 0 } diagnostic)
        {
            b.Append("## Conservativeness of the reward (held-out windows)\n\n");
            b.Append(ConservativenessReport.From(diagnostic).ToMarkdown());
            b.Append(c, $"\n![conservativeness]({ConservativenessPlot})\n\n");
        }
        if (EpisodeDiagnostics is { } episodes)
            AppendEpisodes(b, episodes);
        if (ScaleSelection.Count > 0)
        {
            b.Append(c, $"## Guidance scale, chosen on {ScaleSelection[0].Episodes} episodes of its own (seeds not among the reported)\n\n| scale | t_stopgrad | episodes | mean return | +- s.e. | mean length |\n|---:|---:|---:|---:|---:|---:|\n");
            foreach (var r in ScaleSelection)
                b.Append(c, $"| {r.Scale:G3}{(r.Scale == Steered.Scale ? " (chosen)" : "")} | {r.StopGradientBelow} | {r.Episodes} | {r.MeanReturn:F1} | {r.StandardError:F1} | {r.MeanLength:F0} |\n");
            b.Append('\n');
        }
        if (Sweep.Count > 0)
        {
            b.Append("## Guidance scale sweep (first episodes, same seeds)\n\n| scale | t_stopgrad | episodes | mean return | +- s.e. | mean length |\n|---:|---:|---:|---:|---:|---:|\n");
            foreach (var r in Sweep)
                b.Append(c, $"| {r.Scale:G3} | {r.StopGradientBelow} | {r.Episodes} | {r.MeanReturn:F1} | {r.StandardError:F1} | {r.MeanLength:F0} |\n");
            b.Append('\n');
        }
        b.Append("## Data\n\n| set | episodes per policy | mean return per policy (stochastic) | transitions | windows | outside the base data's range | max abs (normalised) |\n|---|---|---|---:|---:|---:|---:|\n");
        foreach (var (name, d) in new[] { ("base", BaseData), ("expert", ExpertData) })
            b.Append(c, $"| {name} | {string.Join(", ", d.EpisodesPerPolicy.Select(p => $"{p.Key}: {p.Value}"))} | {string.Join(", ", d.MeanReturnPerPolicy.Select(p => string.Create(c, $"{p.Key}: {p.Value:F0}")))} | {d.Transitions} | {d.Windows} | {d.OutsideBaseLimits:P2} | {d.MaxAbsNormalized:F2} |\n");
        b.Append(c, $"\nPolicy files: {string.Join(", ", Policies.Select(p => $"{p.Key} = `{p.Value}`"))}\n\n");
        if (Models.Count > 0)
        {
            b.Append("## Models (load with `mlContext.Model.Load`)\n\n| file | input | shape | contents |\n|---|---|---|---|\n");
            foreach (var m in Models)
                b.Append(c, $"| `{m.File}` | {m.InputColumn} | {m.Shape} | {m.Contents} |\n");
            b.Append('\n');
        }
        b.Append("## Settings\n\n```\n").Append(Settings.Describe()).Append("\n```\n\n");
        b.Append(c, $"Final running losses: {string.Join(", ", Losses.Select(l => string.Create(c, $"{l.Key} {l.Value:G4}")))}{(ModelsCached ? " (models loaded from the cache)" : "")}\n\n");
        b.Append("## Timings (seconds)\n\n| stage | seconds |\n|---|---:|\n");
        foreach (var (stage, seconds) in TimingsSeconds)
            b.Append(c, $"| {stage} | {seconds:F1} |\n");
        b.Append(c, $"| **total** | **{TotalSeconds:F1}** |\n\n");
        b.Append(c, $"Machine: {Machine}\n");
        return b.ToString();
    }

    private static void AppendEpisodes(StringBuilder b, EpisodeDiagnostics episodes)
    {
        var c = CultureInfo.InvariantCulture;
        static string Reward(double? r) => r is double v ? v.ToString("F3", CultureInfo.InvariantCulture) : "-";
        static string Correlation(double? r) => r is double v ? v.ToString("F2", CultureInfo.InvariantCulture) : "n/a";
        b.Append("## Per episode: returns and the reward of what was executed\n\n");
        b.Append(c, $"R is the mean relative reward (t = 0) of the H-step windows each episode executed. Steered episodes below half the unsteered mean ({episodes.CollapseThreshold:F0}): **{episodes.SteeredBelowThreshold}** of {episodes.Episodes.Count}. ");
        b.Append(c, $"Correlation of R and return: steered {Correlation(episodes.SteeredRewardReturnCorrelation)}, unsteered {Correlation(episodes.UnsteeredRewardReturnCorrelation)}.");
        if (episodes.Plot is not null)
            b.Append(c, $" ![return against R]({episodes.Plot})");
        if (episodes.Trajectories is not null)
            b.Append(c, $" Executed trajectories: `{episodes.Trajectories}`.");
        b.Append("\n\n| episode | seed | unsteered return (length) | R | steered return (length) | R | expert policy return | R |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        foreach (var e in episodes.Episodes)
            b.Append(c, $"| {e.Episode} | {e.Seed} | {e.UnsteeredReturn:F0} ({e.UnsteeredLength}) | {Reward(e.UnsteeredMeanReward)} | {e.SteeredReturn:F0} ({e.SteeredLength}) | {Reward(e.SteeredMeanReward)} | {e.ExpertReturn:F0} | {Reward(e.ExpertMeanReward)} |\n");
        b.Append('\n');
    }

    private static string FormatP(double p) => p < 1e-4 ? p.ToString("0.0e+0", CultureInfo.InvariantCulture) : p.ToString("F4", CultureInfo.InvariantCulture);
}

/// <summary>A condition's D4RL-style normalised score: 100 (R - R_random) / (R_expert - R_random), and its standard error
/// (the condition's own, scaled alike; the reference returns are taken as fixed).</summary>
public sealed record NormalizedScore(string Condition, double Score, double StandardError)
{
    /// <summary>The scores of <paramref name="conditions"/> (nulls skipped) against <paramref name="random"/> and <paramref name="expert"/>;
    /// empty when the expert does not beat random.</summary>
    public static List<NormalizedScore> For(ConditionResult random, ConditionResult expert, params ConditionResult?[] conditions)
    {
        double span = expert.MeanReturn - random.MeanReturn;
        if (!(span > 0))
            return [];
        return conditions.OfType<ConditionResult>()
            .Select(r => new NormalizedScore(r.Name, 100 * (r.MeanReturn - random.MeanReturn) / span, 100 * r.StandardError / span))
            .ToList();
    }
}
