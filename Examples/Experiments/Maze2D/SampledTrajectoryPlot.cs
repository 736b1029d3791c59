using MLReward.Environments.Maze2D;
using ScottPlot;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Draws sampled Maze2D windows (H steps of [ax, ay, x, y, vx, vy]) as paths on the maze, unguided beside guided, with the
/// walls as in <see cref="HeatmapPlot"/> (x grows downwards, y to the right). Each path starts at a dot.
/// </summary>
public static class SampledTrajectoryPlot
{
    /// <summary>Writes the two panels side by side to <paramref name="path"/>.</summary>
    public static void Save(MazeLayout layout, IReadOnlyList<float[]> unguided, IReadOnlyList<float[]> guided, double scale, string path, int pixelsPerUnit = 80)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var multiplot = new Multiplot();
        multiplot.AddPlot(Panel(layout, unguided, "unguided (scale 0)"));
        multiplot.AddPlot(Panel(layout, guided, FormattableString.Invariant($"guided (scale {scale:0.###})")));
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        int width = 2 * Math.Max(320, layout.Columns * pixelsPerUnit + 80);
        int height = Math.Max(320, layout.Rows * pixelsPerUnit + 110);
        multiplot.SavePng(path, width, height);
    }

    private static Plot Panel(MazeLayout layout, IReadOnlyList<float[]> samples, string title)
    {
        var plot = new Plot();
        HeatmapPlot.AddWalls(plot, layout);
        var palette = new ScottPlot.Palettes.Category10();
        for (int k = 0; k < samples.Count; k++)
        {
            var sample = samples[k];
            int steps = sample.Length / MazeWindows.StepDimension;
            var ys = Enumerable.Range(0, steps).Select(r => (double)sample[r * MazeWindows.StepDimension + 3]).ToArray();
            var xs = Enumerable.Range(0, steps).Select(r => (double)sample[r * MazeWindows.StepDimension + 2]).ToArray();
            var color = palette.GetColor(k);
            var line = plot.Add.ScatterLine(ys, xs);
            line.Color = color;
            line.LineWidth = 2;
            var start = plot.Add.Marker(ys[0], xs[0]);
            start.MarkerShape = MarkerShape.FilledCircle;
            start.MarkerSize = 7;
            start.MarkerFillColor = color;
        }
        var origin = MazeHeatmapGrid.Origin;
        plot.Title(title, 13);
        plot.XLabel("y");
        plot.YLabel("x");
        plot.Axes.SetLimits(origin.Y, origin.Y + layout.Columns, origin.X + layout.Rows, origin.X);
        plot.Axes.SquareUnits();
        return plot;
    }
}
