using System.CommandLine;
using System.Globalization;
using MLReward.Environments.Maze2D;
using MLReward.Experiments;
using MLReward.Experiments.Maze2D;
using Spectre.Console;

namespace MLReward.Cli;

/// <summary><c>mlreward maze2d</c>: the Maze2D reward-map experiment (docs/EXPERIMENTS.md section 1).</summary>
internal static class Maze2DCommand
{
    private static readonly string[] MazeNames = ["umaze", "medium", "large", "open"];

    public static Command Create()
    {
        var maze = new Option<string>("--maze")
        {
            Description = "Built-in layout: umaze, medium, large or open.",
            DefaultValueFactory = _ => "umaze",
        };
        maze.AcceptOnlyFromAmong(MazeNames);
        var layout = new Option<FileInfo?>("--layout")
        {
            Description = "A layout text file instead of --maze: one row per line, '#' wall, 'O' free, optional 'G' goal. Rows are the first coordinate x, columns the second y.",
        };
        layout.MustExist();
        var goal = new Option<string[]>("--goal")
        {
            Description = "A goal position X,Y (maze units, the cell (i, j) is the point (i, j)); repeat for several goals.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var goals = new Option<string?>("--goals")
        {
            Description = "'all': the layout's 8 standard goals (a layout file: up to 8 free cells spread over the maze). The default when no --goal is given.",
        };
        goals.AcceptOnlyFromAmong("all");
        var preset = new Option<string>("--preset")
        {
            Description = "quick (smoke test, ~1 min), default (umaze/medium in ~10 min on 2 cores), paper-lite (larger: for large/open).",
            DefaultValueFactory = _ => "default",
        };
        preset.AcceptOnlyFromAmong([.. Maze2DSettings.PresetNames]);
        var output = new Option<DirectoryInfo?>("--out")
        {
            Description = "Output folder (default ./runs/maze2d-<maze>).",
        };
        var cache = new Option<DirectoryInfo?>("--cache")
        {
            Description = "Model cache folder (default: runs/.cache in the current folder). Base and expert models are reused when their settings hash matches.",
        };
        var noCache = new Option<bool>("--no-cache") { Description = "Neither read nor write cached models." };
        var models = new Option<DirectoryInfo?>("--models")
        {
            Description = "Use the models of an earlier run (its output folder) instead of training; they must have been trained with the same settings.",
        };
        models.MustExist();
        var threads = new Option<int>("--threads")
        {
            Description = "torch intra-op threads. Default 1: these networks are tiny, and goals run in parallel instead (--parallel).",
            DefaultValueFactory = _ => 1,
        };
        var parallel = new Option<int>("--parallel")
        {
            Description = "Goals trained at the same time, each in a worker process of its own (torch objects must not be shared between threads). Default: the number of logical processors.",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        var seed = new Option<int?>("--seed") { Description = "Seed of data, splits and training (default: the preset's, 1)." };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a preset setting, e.g. --set RewardTrainingSteps=3000 (names as in the settings class or as report.json prints them). Repeatable.",
            Arity = ArgumentArity.ZeroOrMore,
        };

        var device = DeviceOption.Create();
        var command = new Command("maze2d", "Train a base diffusion model on random Maze2D navigation, an expert model per goal, extract the relative reward per goal, and write heat maps (heatmap-<goal>.png), report.json and report.md.")
        {
            maze, layout, goal, goals, preset, output, cache, noCache, models, threads, parallel, seed, set, device,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var (experiment, mazeLayout, goalList, settings, outDir, cacheDir, threadCount, parallelCount) = UsageException.Check(() =>
            {
                var mazeLayout = result.GetValue(layout) is { } file
                    ? LoadLayout(file.FullName, "--layout")
                    : MazeLayout.FromName(result.GetValue(maze)!);
                var goalList = ParseGoals(result.GetValue(goal) ?? [], mazeLayout);
                var settings = SettingsOverrides.Apply(Maze2DSettings.FromPreset(result.GetValue(preset)!), result.GetValue(set) ?? [], nameof(Maze2DSettings.Name));
                if (result.GetValue(seed) is { } s)
                    settings = settings with { Seed = s };
                string outDir = (result.GetValue(output)?.FullName) ?? Path.GetFullPath(Path.Combine("runs", $"maze2d-{mazeLayout.Name}"));
                string? cacheDir = result.GetValue(noCache) ? null : result.GetValue(cache)?.FullName ?? DefaultFolders.ModelCache();
                int threadCount = result.GetValue(threads), parallelCount = result.GetValue(parallel);
                if (threadCount < 1)
                    throw new ArgumentException($"--threads must be at least 1; got {threadCount}.");
                if (parallelCount < 1)
                    throw new ArgumentException($"--parallel must be at least 1; got {parallelCount}.");
                var experiment = new Maze2DExperiment(mazeLayout, goalList, settings, new Maze2DRunOptions
                {
                    OutputDirectory = outDir,
                    CacheDirectory = cacheDir,
                    ModelsDirectory = result.GetValue(models)?.FullName,
                    Threads = threadCount,
                    Parallel = Math.Min(parallelCount, goalList.Count),
                    Device = DeviceOption.Read(result, device),
                });
                return (experiment, mazeLayout, goalList, settings, outDir, cacheDir, threadCount, parallelCount);
            });
            OutputPaths.PrepareFolder(outDir, "--out");
            PrintHeader(mazeLayout, goalList, settings, outDir, cacheDir, threadCount, Math.Min(parallelCount, goalList.Count));
            var report = await Task.Run(() => RunWithProgress(experiment, parallelCount, cancellationToken), cancellationToken);
            PrintSummary(report, outDir);
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>A layout file; one that is not a layout is a bad file (exit code 1, as any unreadable input), named.</summary>
    internal static MazeLayout LoadLayout(string path, string option)
    {
        try
        {
            return MazeLayout.Load(path);
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"{option}: '{path}' is not a maze layout: {e.Message}", e);
        }
    }

    /// <summary>Goals from --goal X,Y values, or all of the layout's (standard or spread) goals.</summary>
    internal static IReadOnlyList<Vec2> ParseGoals(IReadOnlyList<string> values, MazeLayout layout)
    {
        if (values.Count == 0)
            return Maze2DExperiment.DefaultGoals(layout);
        var goals = new List<Vec2>();
        foreach (var value in values)
        {
            var parts = value.Split(',', StringSplitOptions.TrimEntries);
            if (parts.Length != 2
                || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double x)
                || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double y))
                throw new ArgumentException($"--goal '{value}' is not of the form X,Y (e.g. --goal 1,1 or --goal 1.3,2.7).");
            var g = new Vec2(x, y);
            if (!layout.IsValidPosition(g, PointMass.Radius))
                throw new ArgumentException($"--goal {value} is not a free position of maze '{layout.Name}' (free cells: {string.Join(" ", layout.FreeCells.Select(c => $"{c.I},{c.J}"))}).");
            goals.Add(g);
        }
        return goals;
    }

    private static Maze2DReport RunWithProgress(Maze2DExperiment experiment, int workers, CancellationToken cancellationToken)
    {
        Maze2DReport? report = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(context => report = experiment.Run(new SpectreObserver(context), cancellationToken,
                workers > 1 ? new ProcessGoalRunner(workers) : null));
        return report!;
    }

    private static void PrintHeader(MazeLayout layout, IReadOnlyList<Vec2> goals, Maze2DSettings settings, string outDir, string? cacheDir, int threads, int parallel)
    {
        AnsiConsole.MarkupLine($"[bold]mlreward maze2d[/]: maze [bold]{Markup.Escape(layout.Name)}[/] ({layout.Rows}x{layout.Columns}), preset [bold]{Markup.Escape(settings.Name)}[/], {goals.Count} goal(s): {Markup.Escape(string.Join(" ", goals.Select(g => string.Create(CultureInfo.InvariantCulture, $"({g.X:0.##},{g.Y:0.##})"))))}");
        foreach (var line in settings.Describe().Split('\n'))
            AnsiConsole.MarkupLine($"  [grey]{Markup.Escape(line)}[/]");
        AnsiConsole.MarkupLine($"  [grey]torch threads {threads} per goal ({threads * parallel} for the base model), {parallel} goal(s) at a time; output {Markup.Escape(outDir)}; cache {Markup.Escape(cacheDir ?? "off")}[/]");
    }

    private static void PrintSummary(Maze2DReport report, string outDir)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("goal").AddColumn("peak").AddColumn(new TableColumn("error").RightAligned()).AddColumn("hit")
            .AddColumn(new TableColumn("held-out AUC").RightAligned()).AddColumn(new TableColumn("held-out acc.").RightAligned()).AddColumn(new TableColumn("FastTree acc.").RightAligned()).AddColumn(new TableColumn("seconds").RightAligned());
        var c = CultureInfo.InvariantCulture;
        foreach (var g in report.Goals)
        {
            table.AddRow(
                string.Create(c, $"({g.Goal[0]:0.##}, {g.Goal[1]:0.##})"),
                g.Peak is null ? "none" : string.Create(c, $"({g.Peak[0]:0.##}, {g.Peak[1]:0.##})"),
                g.GoalError.ToString("F2", c),
                g.Hit ? "[green]yes[/]" : "[red]no[/]",
                g.HeldoutAuc.ToString("F3", c),
                g.HeldoutAccuracy.ToString("F3", c),
                g.FasttreeAccuracy.ToString("F3", c),
                g.TimingsSeconds.GetValueOrDefault("total").ToString("F0", c));
        }
        AnsiConsole.Write(table);
        var s = report.Summary;
        AnsiConsole.MarkupLine(string.Create(c, $"[bold]hits {s.Hits}/{s.Goals}[/] (peak within 1.0 of the goal), mean held-out accuracy [bold]{s.MeanHeldoutAccuracy:F3}[/] (FastTree {s.MeanFasttreeAccuracy:F3}), total {report.TotalSeconds:F0} s"));
        AnsiConsole.MarkupLine($"heat maps: {Markup.Escape(Path.Combine(outDir, "heatmap-*.png"))}");
        AnsiConsole.MarkupLine($"reports:   {Markup.Escape(Path.Combine(outDir, "report.md"))}, {Markup.Escape(Path.Combine(outDir, "report.json"))}");
        AnsiConsole.MarkupLine($"models:    {Markup.Escape(Path.Combine(outDir, "*.zip"))} (mlreward score --model reward-<goal>.zip --data heldout-<goal>.csv; mlreward sample --model sampler-<goal>.zip)");
    }

    /// <summary>Shows each stage and goal as a Spectre.Console progress task.</summary>
    private sealed class SpectreObserver(ProgressContext context) : IExperimentObserver
    {
        private readonly Dictionary<string, (ProgressTask Task, string Description)> _tasks = new();
        private readonly object _lock = new();

        public void Started(string key, string description, double total)
        {
            lock (_lock)
            {
                var task = context.AddTask(Markup.Escape(description), maxValue: Math.Max(total, 1e-9));
                _tasks[key] = (task, Markup.Escape(description));
            }
        }

        public void Progress(string key, double value, string? status = null)
        {
            lock (_lock)
            {
                if (!_tasks.TryGetValue(key, out var entry))
                    return;
                entry.Task.Value = Math.Min(value, entry.Task.MaxValue);
                if (status is not null)
                    entry.Task.Description = $"{entry.Description} [grey]{Markup.Escape(status)}[/]";
            }
        }

        public void Finished(string key, string? summary = null)
        {
            lock (_lock)
            {
                if (!_tasks.TryGetValue(key, out var entry))
                    return;
                entry.Task.Value = entry.Task.MaxValue;
                entry.Task.Description = summary is null ? entry.Description : $"{entry.Description}: [green]{Markup.Escape(summary)}[/]";
                entry.Task.StopTask();
            }
        }

        public void Message(string text) => AnsiConsole.MarkupLine(Markup.Escape(text));
    }
}
