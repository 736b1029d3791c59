using MLReward.Environments.Maze2D;
using ScottPlot;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Draws a <see cref="RewardMap"/> as a PNG with ScottPlot: the scaled reward per bin (viridis; masked bins blank), wall
/// cells in dark grey, the goal (white star) and the map's peak (red cross). The picture is oriented like the layout's
/// text grid: the first coordinate x grows downwards (rows), the second coordinate y to the right (columns).
/// </summary>
public static class HeatmapPlot
{
    /// <summary>Renders the map to <paramref name="path"/>.</summary>
    public static void Save(RewardMap map, Vec2 goal, string title, string path, int pixelsPerUnit = 80)
    {
        var (plot, width, height) = Create(map, goal, title, pixelsPerUnit);
        plot.SavePng(path, width, height);
    }

    /// <summary>Draws the layout's wall cells in dark grey (y horizontal, x vertical, as the layout's text grid), shifted
    /// <paramref name="shiftY"/> to the right.</summary>
    public static void AddWalls(Plot plot, MazeLayout layout, double shiftY = 0)
    {
        for (int i = 0; i < layout.Rows; i++)
            for (int j = 0; j < layout.Columns; j++)
            {
                if (!layout.IsWall(i, j))
                    continue;
                var min = MazeLayout.CellMin(i, j);
                var max = MazeLayout.CellMax(i, j);
                var wall = plot.Add.Rectangle(min.Y + shiftY, max.Y + shiftY, min.X, max.X);
                wall.FillColor = Colors.DimGray;
                wall.LineColor = Colors.DimGray;
            }
    }

    /// <summary>The plot <see cref="Save"/> writes, and its size in pixels.</summary>
    public static (Plot Plot, int Width, int Height) Create(RewardMap map, Vec2 goal, string title, int pixelsPerUnit = 80)
    {
        ArgumentNullException.ThrowIfNull(map);
        var grid = map.Grid;
        var layout = grid.Layout;
        var origin = MazeHeatmapGrid.Origin;
        double xMax = origin.X + layout.Rows, yMax = origin.Y + layout.Columns;

        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(map.Values);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.NaNCellColor = Colors.White;
        heatmap.ManualRange = new ScottPlot.Range(0, 1);
        // Data row bx (first coordinate) runs along the vertical axis, column by along the horizontal one. With the vertical
        // axis inverted below (x grows downwards) ScottPlot already puts row 0 at x = origin.X: no flip (a flip drew every
        // map upside down; HeatmapPlotTests checks the pixels of a known map).
        heatmap.Rectangle = new CoordinateRect(origin.Y, yMax, origin.X, xMax);
        heatmap.FlipVertically = false;

        AddWalls(plot, layout);

        // A white diamond on a slightly larger black one: visible on the colour map and on masked (white) bins alike.
        var goalOutline = plot.Add.Marker(goal.Y, goal.X);
        goalOutline.MarkerShape = MarkerShape.FilledDiamond;
        goalOutline.MarkerSize = 20;
        goalOutline.MarkerFillColor = Colors.Black;
        var goalMarker = plot.Add.Marker(goal.Y, goal.X);
        goalMarker.MarkerShape = MarkerShape.FilledDiamond;
        goalMarker.MarkerSize = 13;
        goalMarker.MarkerFillColor = Colors.White;
        goalMarker.LegendText = $"goal ({goal.X:0.##}, {goal.Y:0.##})";
        if (map.Peak is { } peak)
        {
            var peakMarker = plot.Add.Marker(peak.Y, peak.X);
            peakMarker.MarkerShape = MarkerShape.Cross;
            peakMarker.MarkerSize = 16;
            peakMarker.MarkerLineColor = Colors.Red;
            peakMarker.MarkerLineWidth = 3;
            peakMarker.LegendText = $"peak ({peak.X:0.##}, {peak.Y:0.##})";
        }
        plot.ShowLegend(Edge.Bottom);

        plot.Add.ColorBar(heatmap);
        plot.Title(title, 13);
        plot.XLabel("y (second coordinate, columns)");
        plot.YLabel("x (first coordinate, rows)");
        plot.Axes.SetLimits(origin.Y, yMax, xMax, origin.X);
        plot.Axes.SquareUnits();

        int width = Math.Max(360, (int)(layout.Columns * pixelsPerUnit) + 160);
        int height = Math.Max(360, (int)(layout.Rows * pixelsPerUnit) + 170);
        return (plot, width, height);
    }
}
