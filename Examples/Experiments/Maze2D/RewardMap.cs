using Microsoft.ML.RewardExtraction;
using MLReward.Environments.Maze2D;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// The navigation heat map of docs/METHOD.md section 8: the per-state reward R(s, t = 0) of every base-data state, winsorised at
/// <c>winsorize</c> per tail, min-max scaled to [0, 1], averaged per spatial bin (10 bins per maze unit), bins with fewer
/// than <c>minCount</c> states masked (NaN); the peak is the centre of the largest bin (ties, which winsorising makes common,
/// broken by the bins' unwinsorised means).
/// </summary>
public sealed class RewardMap
{
    private RewardMap(MazeHeatmapGrid grid, double[,] values, Vec2? peak, Vec2 topCentroid, int states)
    {
        Grid = grid;
        Values = values;
        Peak = peak;
        TopCentroid = topCentroid;
        States = states;
    }

    /// <summary>The reward-weighted mean position of the top 1% of states (by scaled reward): the alternative to the peak bin of docs/EXPERIMENTS.md section 1.</summary>
    public Vec2 TopCentroid { get; }

    /// <summary>The bins.</summary>
    public MazeHeatmapGrid Grid { get; }

    /// <summary>Mean scaled reward per bin [BinsX, BinsY] (NaN: masked).</summary>
    public double[,] Values { get; }

    /// <summary>Centre of the largest bin, or null when every bin is masked.</summary>
    public Vec2? Peak { get; }

    /// <summary>States scored.</summary>
    public int States { get; }

    /// <summary>
    /// Scores every state of <paramref name="log"/> with a per-state (window 1) reward through its ML.NET transformer: each
    /// state goes in as a window of that state repeated, whose reward is the state's own (see
    /// <see cref="MazeWindows.RepeatedStates"/>). <paramref name="reward"/> scores at its own step (see
    /// <c>RelativeRewardTransformer.AtScoringStep</c>).
    /// </summary>
    public static float[] ScoreStates(MLContext ml, RelativeRewardTransformer reward, TransitionLog log)
    {
        ArgumentNullException.ThrowIfNull(reward);
        ArgumentNullException.ThrowIfNull(log);
        var states = MazeWindows.RepeatedStates(ml, log, reward.Shape.Horizon);
        return reward.Transform(states).GetColumn<float>(reward.OutputColumnName).ToArray();
    }

    /// <summary>Builds the map from per-state rewards and the states' positions (observation x, y).</summary>
    public static RewardMap Build(MazeLayout layout, TransitionLog log, ReadOnlySpan<float> rewards, double winsorize = 0.005, int minCount = 5)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(log);
        if (rewards.Length != log.Count)
            throw new ArgumentException($"Expected {log.Count} rewards, got {rewards.Length}.", nameof(rewards));
        var scaled = Scale(rewards, winsorize);
        var grid = new MazeHeatmapGrid(layout);
        var observations = log.Observations.ToArray();
        var samples = Enumerable.Range(0, log.Count).Select(i => (new Vec2(observations[4 * i], observations[4 * i + 1]), scaled[i]));
        var values = grid.Average(samples, minCount);
        // The winsorised top states share one value, so several bins can tie at the maximum: the raw means decide.
        var unscaled = rewards.ToArray();
        var raw = grid.Average(Enumerable.Range(0, log.Count).Select(i => (new Vec2(observations[4 * i], observations[4 * i + 1]), (double)unscaled[i])), minCount);
        return new RewardMap(grid, values, grid.PeakPosition(values, raw), TopCentroidOf(observations, scaled, 0.01), log.Count);
    }

    private static Vec2 TopCentroidOf(float[] observations, double[] scaled, double fraction)
    {
        int n = scaled.Length;
        int take = Math.Max(1, (int)Math.Ceiling(fraction * n));
        var order = Enumerable.Range(0, n).OrderByDescending(i => scaled[i]).Take(take);
        double sx = 0, sy = 0, sw = 0;
        foreach (int i in order)
        {
            double w = Math.Max(scaled[i], 1e-12);
            sx += w * observations[4 * i];
            sy += w * observations[4 * i + 1];
            sw += w;
        }
        return new Vec2(sx / sw, sy / sw);
    }

    /// <summary>Winsorises <paramref name="fraction"/> per tail, then scales min-max to [0, 1] (all 0.5 when constant).</summary>
    public static double[] Scale(ReadOnlySpan<float> values, double fraction)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        int n = sorted.Length;
        var result = new double[n];
        if (n == 0)
            return result;
        double lo = Quantile(sorted, fraction), hi = Quantile(sorted, 1 - fraction);
        for (int i = 0; i < n; i++)
        {
            double v = Math.Clamp(values[i], lo, hi);
            result[i] = hi > lo ? (v - lo) / (hi - lo) : 0.5;
        }
        return result;
    }

    private static double Quantile(float[] sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }
}
