using System.Diagnostics;
using System.Text;
using System.Text.Json;
using MLReward.Environments.Maze2D;
using MLReward.Experiments;
using MLReward.Experiments.Maze2D;

namespace MLReward.Cli.Tests;

/// <summary>
/// The whole `mlreward maze2d` command in quick mode, as a user runs it: a freshly generated layout file (a layout the code
/// has never seen), two goals, two worker processes. Asserts that the outputs exist and are well formed, and that the numbers
/// are sane. The quick preset's models are far too small to reach the paper's targets, so only structure, ranges and the
/// FastTree baseline (which needs no diffusion model and separates expert from base windows reliably, ~0.75 or more) are
/// asserted; the reward's own accuracy is only checked to be a valid balanced accuracy, because at this size it ranges from
/// chance to ~0.7 depending on the goal.
/// </summary>
public class Maze2DQuickRunTests
{
    /// <summary>A perfect maze on a rooms x rooms grid (randomised depth-first search), as a layout text (walls take whole cells).</summary>
    internal static string GenerateLayout(int roomRows, int roomColumns, int seed)
    {
        int rows = 2 * roomRows + 1, columns = 2 * roomColumns + 1;
        var grid = new char[rows, columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                grid[i, j] = '#';
        var rng = new Random(seed);
        var visited = new bool[roomRows, roomColumns];
        var stack = new Stack<(int R, int C)>();
        stack.Push((0, 0));
        visited[0, 0] = true;
        grid[1, 1] = 'O';
        while (stack.Count > 0)
        {
            var (r, c) = stack.Peek();
            var next = new[] { (r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1) }
                .Where(n => n.Item1 >= 0 && n.Item2 >= 0 && n.Item1 < roomRows && n.Item2 < roomColumns && !visited[n.Item1, n.Item2])
                .ToArray();
            if (next.Length == 0)
            {
                stack.Pop();
                continue;
            }
            var (nr, nc) = next[rng.Next(next.Length)];
            visited[nr, nc] = true;
            grid[2 * nr + 1, 2 * nc + 1] = 'O';
            grid[r + nr + 1, c + nc + 1] = 'O';   // the wall cell between the two rooms
            stack.Push((nr, nc));
        }
        var text = new StringBuilder();
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < columns; j++)
                text.Append(grid[i, j]);
            text.Append('\n');
        }
        return text.ToString();
    }

    [Fact]
    public void Generated_layouts_are_connected_mazes()
    {
        var layout = MazeLayout.Parse(GenerateLayout(2, 3, seed: 4), "generated");
        Assert.Equal(5, layout.Rows);
        Assert.Equal(7, layout.Columns);
        Assert.Equal(11, layout.FreeCells.Count);   // 6 rooms + 5 openings of a spanning tree
    }

    [Fact]
    public void Quick_run_on_a_generated_layout_writes_heatmaps_and_a_well_formed_report()
    {
        string root = Path.Combine(Path.GetTempPath(), "mlreward-cli-test-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        try
        {
            string layoutPath = Path.Combine(root, "generated.txt");
            File.WriteAllText(layoutPath, GenerateLayout(2, 3, seed: 4));
            var layout = MazeLayout.Load(layoutPath);
            string output = Path.Combine(root, "out");
            var goals = new[] { layout.FreeCells[0], layout.FreeCells[^1] };
            var args = new List<string> { "maze2d", "--layout", layoutPath, "--preset", "quick", "--out", output, "--cache", Path.Combine(root, "cache"), "--parallel", "2", "--device", "cpu" };
            foreach (var g in goals)
                args.AddRange(["--goal", $"{g.I},{g.J}"]);
            // A damaged cache entry for the base model (garbage under the right name and key): the run says so and retrains.
            string baseKey = ModelStore.Key(Maze2DSettings.Quick, BaseModels.BaseName, layout.ToText());
            string corrupt = new ModelStore(new Microsoft.ML.MLContext(0), Path.Combine(root, "cache"), hashedNames: true).PathOf(BaseModels.BaseName, baseKey);
            Directory.CreateDirectory(Path.GetDirectoryName(corrupt)!);
            File.WriteAllBytes(corrupt, [0x50, 0x4B, 0x03, 0x04, 1, 2, 3]);
            File.WriteAllText(corrupt + ".key", baseKey + "\n");

            var (exitCode, log) = RunCli(args, TimeSpan.FromMinutes(4));
            Assert.True(exitCode == 0, $"mlreward exited with {exitCode}:\n{log}");
            Assert.Contains("hits", log);
            Assert.Contains($"warning: the cached model '{corrupt}' is corrupt and was deleted; training it again",
                System.Text.RegularExpressions.Regex.Replace(log, @"\s+", " "));   // Spectre wraps long lines
            Assert.True(new FileInfo(corrupt).Length > 1000, "the retrained base model replaced the damaged entry");

            foreach (var g in goals)
            {
                var png = File.ReadAllBytes(Path.Combine(output, $"heatmap-{g.I}_{g.J}.png"));
                Assert.True(png.Length > 1000);
                Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
            }

            using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json")));
            var rootElement = report.RootElement;
            Assert.Equal("maze2d", rootElement.GetProperty("experiment").GetString());
            Assert.Equal("generated", rootElement.GetProperty("maze").GetString());
            Assert.Equal("quick", rootElement.GetProperty("preset").GetString());
            var results = rootElement.GetProperty("goals").EnumerateArray().ToArray();
            Assert.Equal(goals.Length, results.Length);
            double diameter = Math.Sqrt(layout.Rows * layout.Rows + layout.Columns * layout.Columns);
            for (int k = 0; k < results.Length; k++)
            {
                var r = results[k];
                Assert.Equal(new[] { (double)goals[k].I, goals[k].J }, r.GetProperty("goal").EnumerateArray().Select(v => v.GetDouble()).ToArray());
                var peak = r.GetProperty("peak").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                Assert.Equal(2, peak.Length);
                Assert.True(layout.IsFree(MazeLayout.CellOf(new Vec2(peak[0], peak[1]))), $"the peak ({peak[0]}, {peak[1]}) lies in a wall");
                double error = r.GetProperty("goal_error").GetDouble();
                Assert.InRange(error, 0, diameter);
                Assert.Equal(error <= 1.0, r.GetProperty("hit").GetBoolean());
                Assert.InRange(r.GetProperty("heldout_accuracy").GetDouble(), 0, 1);
                Assert.InRange(r.GetProperty("heldout_auc").GetDouble(), 0, 1);
                Assert.InRange(r.GetProperty("fasttree_accuracy").GetDouble(), 0.6, 1);
                var timings = r.GetProperty("timings_seconds");
                foreach (var stage in new[] { "expert_data", "expert_model", "reward", "map_reward", "heatmap", "heldout_accuracy", "fasttree", "sampling", "total" })
                    Assert.True(timings.GetProperty(stage).GetDouble() >= 0, stage);
                Assert.Equal($"heatmap-{goals[k].I}_{goals[k].J}.png", r.GetProperty("heatmap").GetString());
                // Every model the goal lists was written by its worker process.
                foreach (var model in r.GetProperty("models").EnumerateArray())
                    Assert.True(File.Exists(Path.Combine(output, model.GetProperty("file").GetString()!)), model.GetProperty("file").GetString());
            }
            var summary = rootElement.GetProperty("summary");
            Assert.Equal(goals.Length, summary.GetProperty("goals").GetInt32());
            Assert.Equal(results.Count(r => r.GetProperty("hit").GetBoolean()), summary.GetProperty("hits").GetInt32());
            Assert.True(rootElement.GetProperty("base").GetProperty("timings_seconds").GetProperty("model").GetDouble() > 0);
            // One thread per goal (the default), two goals at a time: the base model, trained first and alone, gets both.
            Assert.Equal(1, rootElement.GetProperty("threads").GetInt32());
            Assert.Equal(2, rootElement.GetProperty("parallel").GetInt32());
            Assert.Equal(2, rootElement.GetProperty("base_threads").GetInt32());

            string markdown = File.ReadAllText(Path.Combine(output, "report.md"));
            Assert.Contains("| goal | peak | goal error | hit |", markdown);
            Assert.Contains($"Hits: {summary.GetProperty("hits").GetInt32()} / {goals.Length}", markdown);
            Assert.Contains("mean accuracy", markdown);
            Assert.True(File.Exists(Path.Combine(output, "base.zip")) && File.Exists(Path.Combine(output, "reference.zip")));
            Assert.False(Directory.Exists(Path.Combine(output, ".workers")), "the worker folder is removed after a successful run");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Bad_arguments_exit_with_a_usage_error()
    {
        var (exitCode, log) = RunCli(["maze2d", "--goal", "2,1", "--out", Path.Combine(Path.GetTempPath(), "mlreward-never")], TimeSpan.FromMinutes(1));
        Assert.Equal(2, exitCode);
        Assert.Contains("not a free position", log);
    }

    /// <summary>Runs mlreward.dll (copied next to the tests) with `dotnet exec`; returns the exit code and the output.</summary>
    internal static (int ExitCode, string Log) RunCli(IEnumerable<string> arguments, TimeSpan timeout)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "mlreward.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(dll);
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        start.Environment["COLUMNS"] = "160";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"mlreward did not finish within {timeout}.");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
