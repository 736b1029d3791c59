using System.CommandLine;
using System.Globalization;
using MLReward.Experiments;
using MLReward.Experiments.Locomotion;
using MLReward.Locomotion;
using Spectre.Console;

namespace MLReward.Cli;

/// <summary><c>mlreward locomotion</c>: steering a diffusion planner with the extracted reward (docs/EXPERIMENTS.md section 2).</summary>
internal static class LocomotionCommand
{
    public static Command Create()
    {
        var env = new Option<string>("--env")
        {
            Description = "The task: cheetah (H = 4), hopper or walker (H = 16).",
            DefaultValueFactory = _ => "cheetah",
        };
        env.AcceptOnlyFromAmong([.. LocomotionSettings.EnvironmentNames]);
        var preset = new Option<string>("--preset")
        {
            Description = "quick (CI smoke test: tiny data and models, 4 short episodes) or default (the experiment: 24 episodes of up to 1000 steps).",
            DefaultValueFactory = _ => "default",
        };
        preset.AcceptOnlyFromAmong([.. LocomotionSettings.PresetNames]);
        var output = new Option<DirectoryInfo?>("--out") { Description = "Output folder (default ./runs/locomotion-<env>)." };
        var scale = new Option<double?>("--scale") { Description = "Guidance scale of the steered planner. Default: the best of the preset's ScaleCandidates (cheetah 0.5, 1, 2; hopper and walker 1, 2, 4, 8, 16), each tried on episodes that are not reported; the paper used 0.5 and 0.2." };
        var stopGrad = new Option<int?>("--t-stopgrad") { Description = "No guidance at diffusion steps t below this (default: cheetah 5, hopper and walker 10, of T = 20)." };
        var sweep = new Option<string?>("--sweep") { Description = "Extra guidance settings to evaluate on the first episodes (SweepEpisodes, default 12): scales, each optionally @t_stopgrad, e.g. 0.2,1,1@0." };
        var episodes = new Option<int?>("--episodes") { Description = "Evaluation episodes per condition (default: the preset's)." };
        var policies = new Option<DirectoryInfo?>("--policies")
        {
            Description = "Folder of <env>-{early1,early2,medium,expert}.policy files (default: Policies beside the program, else Examples/LocomotionAgents/Policies).",
        };
        var cache = new Option<DirectoryInfo?>("--cache") { Description = "Model cache folder (default: runs/.cache in the current folder)." };
        var noCache = new Option<bool>("--no-cache") { Description = "Neither read nor write cached models." };
        var models = new Option<DirectoryInfo?>("--models") { Description = "Use the models of an earlier run (its output folder) instead of training; they must have been trained with the same settings and policies." };
        models.MustExist();
        var seed = new Option<int?>("--seed") { Description = "Seed of data, training and evaluation (default 1)." };
        var threads = new Option<int>("--threads")
        {
            Description = "torch intra-op threads (default 1: the networks are small and batches of a few dozen plans gain little from more).",
            DefaultValueFactory = _ => 1,
        };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a setting, e.g. --set RewardTrainingSteps=3000 (names as in the settings class or as report.json prints them). Repeatable.",
            Arity = ArgumentArity.ZeroOrMore,
        };

        var device = DeviceOption.Create();
        var command = new Command("locomotion", "Regenerate base and expert data from saved SAC policies, train base and expert diffusion planners and the relative reward, then compare the unsteered and the reward-steered planner with the expert policy (report.json, report.md, returns.png).")
        {
            env, preset, output, scale, stopGrad, sweep, episodes, policies, cache, noCache, models, seed, threads, set, device,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var (experiment, settings, outDir, cacheDir) = UsageException.Check(() =>
            {
                string task = result.GetValue(env)!;
                var settings = Apply(LocomotionSettings.For(task, result.GetValue(preset)!), result.GetValue(set) ?? []);
                if (result.GetValue(scale) is { } sc)
                    settings = settings with { GuidanceScale = sc, ScaleCandidates = [] };
                if (result.GetValue(stopGrad) is { } sg)
                    settings = settings with { StopGradientBelow = sg };
                if (result.GetValue(episodes) is { } ep)
                    settings = settings with { EvaluationEpisodes = ep };
                if (result.GetValue(sweep) is { } sw)
                {
                    var (scales, stops) = ParseSweep(sw, settings.StopGradientBelow);
                    settings = settings with { ScaleSweep = scales, SweepStopGradients = stops };
                }
                if (result.GetValue(seed) is { } sd)
                    settings = settings with { Seed = sd };
                settings = settings with { Threads = result.GetValue(threads) };
                string outDir = result.GetValue(output)?.FullName ?? Path.GetFullPath(Path.Combine("runs", $"locomotion-{task}"));
                string? cacheDir = result.GetValue(noCache) ? null : result.GetValue(cache)?.FullName ?? DefaultFolders.ModelCache();
                var experiment = new LocomotionExperiment(settings, new LocomotionRunOptions
                {
                    OutputDirectory = outDir,
                    PolicyDirectory = result.GetValue(policies)?.FullName,
                    CacheDirectory = cacheDir,
                    ModelsDirectory = result.GetValue(models)?.FullName,
                    Observer = new ConsoleObserver(),
                    Device = DeviceOption.Read(result, device),
                });
                return (experiment, settings, outDir, cacheDir);
            });
            OutputPaths.PrepareFolder(outDir, "--out");
            // Before any work: without MuJoCo the run would fail only once the data stage steps its first environment.
            MuJoCo.EnsureAvailable();
            AnsiConsole.MarkupLine($"[bold]mlreward locomotion[/]: task [bold]{settings.Environment}[/], preset [bold]{Markup.Escape(settings.Preset)}[/]; output {Markup.Escape(outDir)}; cache {Markup.Escape(cacheDir ?? "off")}");
            foreach (var line in settings.Describe().Split('\n'))
                AnsiConsole.MarkupLine($"  [grey]{Markup.Escape(line)}[/]");
            var report = await Task.Run(() => experiment.Run(cancellationToken), cancellationToken);
            PrintSummary(report, outDir);
            return ExitCodes.Success;
        });
        return command;
    }

    private static void PrintSummary(LocomotionReport report, string outDir)
    {
        var c = CultureInfo.InvariantCulture;
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("condition").AddColumn(new TableColumn("episodes").RightAligned()).AddColumn(new TableColumn("return").RightAligned())
            .AddColumn(new TableColumn("s.e.").RightAligned()).AddColumn(new TableColumn("length").RightAligned());
        foreach (var r in new[] { report.Unsteered, report.Steered, report.Expert })
            table.AddRow(Markup.Escape(r.Name), r.Episodes.ToString(c), r.MeanReturn.ToString("F1", c), r.StandardError.ToString("F1", c), r.MeanLength.ToString("F0", c));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(string.Create(c, $"Welch p (two-sided) [bold]{report.Welch.PTwoSided:G3}[/], gap recovered [bold]{report.GapRecovered:P1}[/], total {report.TotalSeconds:F0} s"));
        AnsiConsole.MarkupLine($"reports: {Markup.Escape(Path.Combine(outDir, "report.md"))}, {Markup.Escape(Path.Combine(outDir, "report.json"))}, {Markup.Escape(Path.Combine(outDir, "returns.png"))}");
        AnsiConsole.MarkupLine($"models:  {Markup.Escape(string.Join(", ", report.Models.Select(m => m.File)))} (mlreward sample --model {Markup.Escape(Path.Combine(outDir, "sampler.zip"))})");
    }

    /// <summary>"0.2,1,1@0" -> scales (0.2, 1, 1) and t_stopgrads (default, default, 0).</summary>
    internal static (double[] Scales, int[] StopGradients) ParseSweep(string text, int defaultStopGradient)
    {
        var c = CultureInfo.InvariantCulture;
        var scales = new List<double>();
        var stops = new List<int>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = item.Split('@');
            if (parts.Length > 2
                || !double.TryParse(parts[0], NumberStyles.Float, c, out double scale)
                || (parts.Length == 2 && !int.TryParse(parts[1], NumberStyles.Integer, c, out _)))
                throw new ArgumentException($"--sweep item '{item}' is not SCALE or SCALE@T_STOPGRAD.");
            scales.Add(scale);
            stops.Add(parts.Length == 2 ? int.Parse(parts[1], c) : defaultStopGradient);
        }
        return (scales.ToArray(), stops.ToArray());
    }

    /// <summary>Applies <c>--set</c> overrides (see <see cref="SettingsOverrides"/>); the task and the preset are labels, not settings.</summary>
    internal static LocomotionSettings Apply(LocomotionSettings settings, IEnumerable<string> assignments) =>
        SettingsOverrides.Apply(settings, assignments, nameof(LocomotionSettings.Environment), nameof(LocomotionSettings.Preset));
}
