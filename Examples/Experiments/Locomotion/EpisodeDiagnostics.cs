using System.Globalization;
using System.Text;
using Microsoft.ML.RewardExtraction;
using ScottPlot;
using static TorchSharp.torch;

namespace MLReward.Experiments.Locomotion;

/// <summary>One reported episode under the three behaviours that met its start: return, length, and the mean relative
/// reward of the H-step windows it executed (null when it ended before H steps).</summary>
public sealed record EpisodeComparison(int Episode, int Seed, double UnsteeredReturn, int UnsteeredLength, double? UnsteeredMeanReward,
    double SteeredReturn, int SteeredLength, double? SteeredMeanReward, double ExpertReturn, double? ExpertMeanReward);

/// <summary>
/// What each episode did, seen through the reward: a steered episode that gains and one that collapses may differ in what
/// the reward says about the trajectory actually executed. A collapse the reward rates highly means the planner found
/// states the reward overvalues; one it rates low means guidance pushed the plans where the reward gives no direction.
/// The executed trajectories of both planners are written to a CSV for closer reading.
/// </summary>
public sealed class EpisodeDiagnostics
{
    /// <summary>The reported episodes, in seed order.</summary>
    public required List<EpisodeComparison> Episodes { get; init; }

    /// <summary>Pearson correlation of return and mean executed-window reward over the steered episodes (null with fewer
    /// than 3 scored episodes or no spread).</summary>
    public double? SteeredRewardReturnCorrelation { get; init; }

    /// <summary>The same over the unsteered episodes.</summary>
    public double? UnsteeredRewardReturnCorrelation { get; init; }

    /// <summary>Steered episodes whose return fell below <see cref="CollapseThreshold"/>.</summary>
    public int SteeredBelowThreshold { get; init; }

    /// <summary>Half the unsteered mean return: a steered episode below it counts as collapsed.</summary>
    public double CollapseThreshold { get; init; }

    /// <summary>The scatter of return against mean window reward (file name in the output folder).</summary>
    public string? Plot { get; set; }

    /// <summary>The executed trajectories of both planners (file name in the output folder).</summary>
    public string? Trajectories { get; set; }

    /// <summary>Scores the executed windows of the unsteered planner, the steered planner and the expert policy.</summary>
    public static EpisodeDiagnostics Measure(RelativeRewardModel reward, int horizon, int actionSize, int observationSize,
        IReadOnlyList<RecordedEpisode> unsteered, IReadOnlyList<RecordedEpisode> steered, IReadOnlyList<RecordedEpisode> expert)
    {
        ArgumentNullException.ThrowIfNull(reward);
        if (reward.Normalizer is null)
            throw new ArgumentException("The reward needs its normaliser to score raw trajectories.", nameof(reward));
        double?[] Scores(IReadOnlyList<RecordedEpisode> episodes) =>
            episodes.Select(e => MeanWindowReward(reward, e, horizon, actionSize, observationSize)).ToArray();
        var u = Scores(unsteered);
        var s = Scores(steered);
        var x = Scores(expert);
        var rows = Enumerable.Range(0, unsteered.Count).Select(i => new EpisodeComparison(i, unsteered[i].Seed,
            unsteered[i].Return, unsteered[i].Length, u[i], steered[i].Return, steered[i].Length, s[i], expert[i].Return, x[i])).ToList();
        double threshold = unsteered.Average(e => e.Return) / 2;
        return new EpisodeDiagnostics
        {
            Episodes = rows,
            SteeredRewardReturnCorrelation = Correlation(rows.Select(r => (r.SteeredMeanReward, r.SteeredReturn))),
            UnsteeredRewardReturnCorrelation = Correlation(rows.Select(r => (r.UnsteeredMeanReward, r.UnsteeredReturn))),
            CollapseThreshold = threshold,
            SteeredBelowThreshold = rows.Count(r => r.SteeredReturn < threshold),
        };
    }

    /// <summary>The mean reward (t = 0) of every window of <paramref name="horizon"/> steps inside the episode, each step
    /// [a_t, o_t] as in training; null for an episode shorter than the horizon.</summary>
    public static double? MeanWindowReward(RelativeRewardModel reward, RecordedEpisode episode, int horizon, int actionSize, int observationSize)
    {
        var windows = new BehaviourData(observationSize, actionSize, [episode]);
        if (windows.WindowCount(horizon) == 0)
            return null;
        using var scope = NewDisposeScope();
        var scores = reward.Score(reward.Normalizer!.Normalize(windows.Windows(horizon)), 0);
        return scores.to(ScalarType.Float64).mean().item<double>();
    }

    private static double? Correlation(IEnumerable<(double? Reward, double Return)> pairs)
    {
        var scored = pairs.Where(p => p.Reward is double r && double.IsFinite(r)).Select(p => (X: p.Reward!.Value, Y: p.Return)).ToArray();
        if (scored.Length < 3)
            return null;
        double mx = scored.Average(p => p.X), my = scored.Average(p => p.Y);
        double sxy = scored.Sum(p => (p.X - mx) * (p.Y - my)), sxx = scored.Sum(p => (p.X - mx) * (p.X - mx)), syy = scored.Sum(p => (p.Y - my) * (p.Y - my));
        return sxx > 0 && syy > 0 ? sxy / Math.Sqrt(sxx * syy) : null;
    }

    /// <summary>Writes the executed trajectories as CSV: condition, episode, seed, step, then the action and the observation
    /// at which it was taken.</summary>
    public static void WriteTrajectories(string path, IReadOnlyList<(string Condition, IReadOnlyList<RecordedEpisode> Episodes)> conditions,
        int actionSize, int observationSize)
    {
        var c = CultureInfo.InvariantCulture;
        var b = new StringBuilder();
        b.Append("condition,episode,seed,step");
        for (int k = 0; k < actionSize; k++)
            b.Append(c, $",a{k}");
        for (int k = 0; k < observationSize; k++)
            b.Append(c, $",o{k}");
        b.Append('\n');
        foreach (var (condition, episodes) in conditions)
        {
            for (int i = 0; i < episodes.Count; i++)
            {
                var e = episodes[i];
                for (int t = 0; t < e.Length; t++)
                {
                    b.Append(c, $"{condition},{i},{e.Seed},{t}");
                    for (int k = 0; k < actionSize; k++)
                        b.Append(c, $",{e.Actions[t * actionSize + k]:G6}");
                    for (int k = 0; k < observationSize; k++)
                        b.Append(c, $",{e.Observations[t * observationSize + k]:G6}");
                    b.Append('\n');
                }
            }
        }
        File.WriteAllText(path, b.ToString());
    }

    /// <summary>Return against mean executed-window reward, one dot per episode and behaviour.</summary>
    public void SavePlot(string title, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var groups = new (string Name, Func<EpisodeComparison, double?> Reward, Func<EpisodeComparison, double> Return)[]
        {
            ("unsteered planner", r => r.UnsteeredMeanReward, r => r.UnsteeredReturn),
            ("steered planner", r => r.SteeredMeanReward, r => r.SteeredReturn),
            ("expert policy", r => r.ExpertMeanReward, r => r.ExpertReturn),
        };
        for (int g = 0; g < groups.Length; g++)
        {
            var points = Episodes.Where(r => groups[g].Reward(r) is double v && double.IsFinite(v)).ToArray();
            if (points.Length == 0)
                continue;
            var dots = plot.Add.ScatterPoints(points.Select(r => groups[g].Reward(r)!.Value).ToArray(), points.Select(groups[g].Return).ToArray());
            dots.Color = palette.GetColor(g).WithAlpha(0.75);
            dots.MarkerSize = 7;
            dots.LegendText = groups[g].Name;
        }
        plot.XLabel("mean relative reward of the executed windows (t = 0)");
        plot.YLabel("episode return");
        plot.Title(title, 13);
        plot.ShowLegend();
        plot.SavePng(path, 640, 480);
    }
}
