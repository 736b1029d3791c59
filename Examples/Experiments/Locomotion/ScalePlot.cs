using ScottPlot;

namespace MLReward.Experiments.Locomotion;

/// <summary>
/// Draws mean return (+- one standard error) against the guidance scale, one line per group of episodes (the scale
/// selection's episodes, the sweep's), with the unsteered planner on those episodes at scale 0. Scales are spread
/// over a log axis, as the candidates are (1, 2, 4, ...).
/// </summary>
public static class ScalePlot
{
    /// <summary>Renders the groups to <paramref name="path"/>; each group is (its name, its unsteered result or null,
    /// its guided results). Returns false and writes nothing when no group has a guided result.</summary>
    public static bool Save(IReadOnlyList<(string Name, ConditionResult? Unsteered, IReadOnlyList<ConditionResult> Guided)> groups, string title, string path)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var drawn = groups.Where(g => g.Guided.Any(r => r.Scale is > 0)).ToList();
        if (drawn.Count == 0)
            return false;
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        double smallest = drawn.SelectMany(g => g.Guided).Where(r => r.Scale is > 0).Min(r => r.Scale!.Value);
        // Scale 0 (unsteered) has no logarithm: it sits one step left of the smallest scale.
        double ZeroPosition() => Math.Log2(smallest) - 1;
        for (int i = 0; i < drawn.Count; i++)
        {
            var (name, unsteered, guided) = drawn[i];
            var points = guided.Where(r => r.Scale is > 0).OrderBy(r => r.Scale).Select(r => (X: Math.Log2(r.Scale!.Value), R: r)).ToList();
            if (unsteered is not null)
                points.Insert(0, (ZeroPosition(), unsteered));
            var xs = points.Select(p => p.X).ToArray();
            var ys = points.Select(p => p.R.MeanReturn).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.Color = palette.GetColor(i);
            line.LineWidth = 2;
            line.MarkerSize = 7;
            line.LegendText = $"{name} (n = {points[0].R.Episodes})";
            var error = plot.Add.ErrorBar(xs, ys, points.Select(p => p.R.StandardError).ToArray());
            error.Color = palette.GetColor(i);
        }
        var ticks = drawn.SelectMany(g => g.Guided).Where(r => r.Scale is > 0).Select(r => r.Scale!.Value).Distinct().Order().ToArray();
        var positions = ticks.Select(Math.Log2).Prepend(ZeroPosition()).ToArray();
        var labels = ticks.Select(t => t.ToString("G3", System.Globalization.CultureInfo.InvariantCulture)).Prepend("0 (unsteered)").ToArray();
        plot.Axes.Bottom.SetTicks(positions, labels);
        plot.XLabel("guidance scale");
        plot.YLabel("mean episode return");
        plot.Title(title, 13);
        plot.ShowLegend();
        plot.SavePng(path, 640, 480);
        return true;
    }
}
