using MLReward.Environments.Maze2D;
using ScottPlot;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Draws sampled Maze2D windows (H steps of [ax, ay, x, y, vx, vy]) as paths on the maze, unguided on the left and guided on
/// the right (the same seeds), with the walls and orientation of <see cref="HeatmapPlot"/> (x grows downwards, y to the
/// right). Each path starts at a dot; the goal, when given, is a white diamond.
/// </summary>
public static class SampledTrajectoryPlot
{
    /// <summary>Writes the two panels side by side to <paramref name="path"/>.</summary>
    public static void Save(MazeLayout layout, IReadOnlyList<float[]> unguided, IReadOnlyList<float[]> guided, double scale, string path,
        Vec2? goal = null, int pixelsPerUnit = 80)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var plot = new Plot();
        double offset = layout.Columns + 1;   // the guided panel sits to the right of the unguided one
        var origin = MazeHeatmapGrid.Origin;
        foreach (var (samples, shift, title) in new[] { (unguided, 0.0, "unguided (scale 0)"), (guided, offset, FormattableString.Invariant($"guided (scale {scale:0.###})")) })
        {
            HeatmapPlot.AddWalls(plot, layout, shift);
            var palette = new ScottPlot.Palettes.Category10();
            for (int k = 0; k < samples.Count; k++)
            {
                var sample = samples[k];
                int steps = sample.Length / MazeWindows.StepDimension;
                var ys = Enumerable.Range(0, steps).Select(r => sample[r * MazeWindows.StepDimension + 3] + shift).ToArray();
                var xs = Enumerable.Range(0, steps).Select(r => (double)sample[r * MazeWindows.StepDimension + 2]).ToArray();
                var line = plot.Add.ScatterLine(ys, xs);
                line.Color = palette.GetColor(k);
                line.LineWidth = 2;
                var start = plot.Add.Marker(ys[0], xs[0]);
                start.MarkerShape = MarkerShape.FilledCircle;
                start.MarkerSize = 6;
                start.MarkerFillColor = palette.GetColor(k);
            }
            if (goal is { } g)
            {
                var marker = plot.Add.Marker(g.Y + shift, g.X);
                marker.MarkerShape = MarkerShape.FilledDiamond;
                marker.MarkerSize = 14;
                marker.MarkerFillColor = Colors.White;
                marker.MarkerLineColor = Colors.Black;
            }
            var label = plot.Add.Text(title, origin.Y + shift + 0.1, origin.X - 0.15);
            label.LabelFontSize = 14;
        }
        plot.Axes.SetLimits(origin.Y, origin.Y + offset + layout.Columns, origin.X + layout.Rows, origin.X - 0.6);
        plot.Axes.SquareUnits();
        plot.XLabel("y (second coordinate; the guided panel is shifted right)");
        plot.YLabel("x");
        plot.SavePng(path, Math.Max(480, (int)((2 * layout.Columns + 1) * pixelsPerUnit) + 120), Math.Max(320, layout.Rows * pixelsPerUnit + 140));
    }
}
