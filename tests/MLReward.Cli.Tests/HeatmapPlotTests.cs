using MLReward.Environments.Maze2D;
using MLReward.Experiments.Maze2D;
using ScottPlot;
using SkiaSharp;

namespace MLReward.Cli.Tests;

/// <summary>The heat map PNG shows each bin where it is: a map with one hot spot is drawn with the hot spot at its own
/// position, not mirrored (umaze is symmetric under a vertical flip, so a flipped picture still looks plausible).</summary>
public class HeatmapPlotTests
{
    [Fact]
    public void A_hot_spot_is_drawn_at_its_own_position()
    {
        var layout = MazeLayout.UMaze;
        var grid = new MazeHeatmapGrid(layout);
        var hot = new Vec2(1, 2);
        var values = new double[grid.BinsX, grid.BinsY];
        for (int i = 0; i < grid.BinsX; i++)
            for (int j = 0; j < grid.BinsY; j++)
                values[i, j] = Math.Exp(-2 * grid.BinCenter(i, j).DistanceTo(hot));
        var ctor = typeof(RewardMap).GetConstructors(System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance).Single();
        var map = (RewardMap)ctor.Invoke([grid, values, (Vec2?)new Vec2(3, 1), new Vec2(3, 1), 1]);
        var (plot, width, height) = HeatmapPlot.Create(map, new Vec2(3, 1), "known map");
        string path = Path.Combine(Path.GetTempPath(), $"mlreward-heatmap-{Guid.NewGuid():N}.png");
        try
        {
            plot.SavePng(path, width, height);
            using var bitmap = SKBitmap.Decode(path);
            SKColor At(Vec2 p)
            {
                var pixel = plot.GetPixel(new Coordinates(p.Y, p.X));   // horizontal = second coordinate
                return bitmap.GetPixel((int)pixel.X, (int)pixel.Y);
            }
            var atHot = At(hot);
            var mirrored = At(new Vec2(2.6, 2));   // where a vertical flip of the grid puts (1, 2)
            // Viridis: the top of the range is yellow (high red and green), the bottom dark purple.
            Assert.True(atHot.Red + atHot.Green > 350, $"hot spot drawn as {atHot}");
            Assert.True(mirrored.Red + mirrored.Green < 250, $"mirror position drawn as {mirrored}");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
