using System.Text.Json;
using MLReward.Environments.Maze2D;
using MLReward.Experiments.Maze2D;

namespace MLReward.Cli.Tests;

/// <summary>The Maze2D experiment end to end in quick mode, on a layout none of the presets were tuned on.</summary>
public class Maze2DQuickTests
{
    // A ring with one spur: not one of the built-in mazes.
    private const string RingLayout = "######\n#OOOO#\n#O##O#\n#OOOO#\n###O##\n######";

    [Fact]
    public void QuickRunOnAnUnseenLayoutWritesHeatmapsAndAWellFormedReport()
    {
        var layout = MazeLayout.Parse(RingLayout, "ring");
        var goals = new[] { new Vec2(1, 1), new Vec2(4, 3) };
        string output = Path.Combine(Path.GetTempPath(), "mlreward-maze-quick-" + Guid.NewGuid().ToString("N"));
        try
        {
            var report = new Maze2DExperiment(layout, goals, Maze2DSettings.Quick,
                new Maze2DRunOptions { OutputDirectory = output, CacheDirectory = Path.Combine(output, "cache"), Threads = 1, Parallel = 2 }).Run();

            foreach (var goal in goals)
            {
                var png = File.ReadAllBytes(Path.Combine(output, Maze2DExperiment.HeatmapFileName(goal)));
                Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
            }
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json")));
            var text = File.ReadAllText(Path.Combine(output, "report.json"));
            foreach (var field in new[] { "goal", "peak", "goal_error", "hit", "heldout_accuracy", "fasttree_accuracy" })
                Assert.Contains($"\"{field}\"", text);
            Assert.Contains("| goal |", File.ReadAllText(Path.Combine(output, "report.md")));
            Assert.Equal(goals.Length, report.Goals.Count);
            foreach (var result in report.Goals)
            {
                Assert.InRange(result.HeldoutAccuracy, 0, 1);
                Assert.InRange(result.FasttreeAccuracy, 0, 1);
                Assert.True(double.IsFinite(result.GoalError) && result.GoalError >= 0, $"goal error {result.GoalError}");
                Assert.Equal(result.GoalError <= 1.0, result.Hit);
            }
        }
        finally
        {
            if (Directory.Exists(output))
                Directory.Delete(output, recursive: true);
        }
    }
}
