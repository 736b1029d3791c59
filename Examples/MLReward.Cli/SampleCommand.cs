using System.CommandLine;
using System.Globalization;
using Microsoft.ML;
using MLReward.Environments.Maze2D;
using MLReward.Experiments;
using MLReward.Experiments.Maze2D;

namespace MLReward.Cli;

/// <summary><c>mlreward sample</c>: draws samples from a saved guided sampler (sampler.zip, sampler-&lt;goal&gt;.zip).</summary>
internal static class SampleCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "A sampler zip written by a run (sampler.zip, sampler-<goal>.zip).", Required = true };
        var count = new Option<int>("--count") { Description = "Samples to draw.", DefaultValueFactory = _ => 16 };
        var scale = new Option<double?>("--scale") { Description = "Guidance scale (default: the saved one; 0 = the base model unguided)." };
        var steps = new Option<int?>("--steps") { Description = "Reverse steps: 0 = every one of the T steps (ancestral), S = deterministic DDIM over S steps (default: the saved sampler's)." };
        var seed = new Option<long>("--seed") { Description = "Seed of the first sample; the others take the next ones.", DefaultValueFactory = _ => 0 };
        var condition = new Option<string[]>("--condition")
        {
            Description = "A known value STEP:FEATURE=VALUE (raw units), inpainted into every sample; repeatable. Maze2D steps are [ax, ay, x, y, vx, vy], so 0:2=1 0:3=1 starts at (1, 1).",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var output = new Option<FileInfo?>("--out") { Description = "CSV of the samples: Sample, Step, then the step's values (default: printed)." };
        var maze = new Option<string?>("--maze") { Description = "For a Maze2D sampler: also draw the samples on this maze (umaze, medium, large, open), unguided beside guided, to --png." };
        var layoutFile = new Option<FileInfo?>("--layout") { Description = "For a Maze2D sampler trained on a layout file: draw on that layout instead of --maze." };
        var png = new Option<FileInfo?>("--png") { Description = "With --maze or --layout: the picture (default: samples.png beside --out, else in the current folder)." };
        model.MustExist();
        layoutFile.MustExist();
        var device = DeviceOption.Create();
        var command = new Command("sample", "Draw samples from a saved guided sampler.") { model, count, scale, steps, seed, condition, output, maze, layoutFile, png, device };
        command.SetAction(result =>
        {
            var outFile = result.GetValue(output);
            var (n, known, layout, deviceName) = UsageException.Check(() =>
            {
                int n = result.GetValue(count);
                if (n < 1)
                    throw new ArgumentException($"--count must be at least 1; got {n}.");
                if (result.GetValue(steps) is < 0)
                    throw new ArgumentException($"--steps must be 0 (every step) or a number of DDIM steps; got {result.GetValue(steps)}.");
                var known = (result.GetValue(condition) ?? []).Select(ParseCondition).ToList();
                var layout = result.GetValue(layoutFile) is { } file ? Maze2DCommand.LoadLayout(file.FullName, "--layout")
                    : result.GetValue(maze) is { } mazeName ? MazeLayout.FromName(mazeName) : null;
                return (n, known, layout, DeviceOption.Read(result, device));
            });
            string? picture = layout is null ? null : result.GetValue(png)?.FullName ?? Path.Combine(outFile?.DirectoryName ?? ".", "samples.png");
            if (outFile is not null)
                OutputPaths.PrepareFile(outFile.FullName, "--out");
            if (picture is not null)
                OutputPaths.PrepareFile(picture, "--png");

            var ml = new MLContext(seed: 0);
            ExperimentDevice.Apply(ml, deviceName);
            using var sampler = SavedSampler.Load(ml, result.GetValue(model)!.FullName);
            double usedScale = result.GetValue(scale) ?? sampler.Guidance.Scale;
            int? samplingSteps = result.GetValue(steps);
            if (samplingSteps > sampler.BaseModel.Diffusion.Steps)
                throw new UsageException($"--steps must lie in 0..{sampler.BaseModel.Diffusion.Steps} (T of the sampler's base model); got {samplingSteps}.");
            var samples = SavedSampler.Sample(ml, sampler, n, result.GetValue(seed), result.GetValue(scale), known, samplingSteps);
            int dimension = sampler.Shape.Kind == Microsoft.ML.RewardExtraction.SampleShapeKind.Trajectory ? sampler.Shape.TransitionDimension : sampler.Shape.Length;
            using (var writer = outFile is null ? Console.Out : new StreamWriter(outFile.FullName))
            {
                writer.WriteLine("Sample,Step," + string.Join(",", Enumerable.Range(0, dimension).Select(d => $"V{d}")));
                for (int i = 0; i < samples.Length; i++)
                    for (int step = 0; step < samples[i].Length / dimension; step++)
                        writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{i},{step},") +
                            string.Join(",", samples[i].Skip(step * dimension).Take(dimension).Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
            }
            if (outFile is not null)
                Console.WriteLine($"{samples.Length} samples at scale {usedScale.ToString(CultureInfo.InvariantCulture)}: {outFile.FullName}");
            if (layout is not null)
            {
                var unguided = usedScale == 0 ? samples : SavedSampler.Sample(ml, sampler, n, result.GetValue(seed), 0, known, samplingSteps);
                SampledTrajectoryPlot.Save(layout, unguided, samples, usedScale, picture!);
                Console.WriteLine($"picture: {picture}");
            }
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>STEP:FEATURE=VALUE.</summary>
    internal static SavedSampler.Known ParseCondition(string text)
    {
        var parts = text.Split([':', '='], StringSplitOptions.TrimEntries);
        if (parts.Length != 3
            || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int step)
            || !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int feature)
            || !float.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out float value))
            throw new FormatException($"--condition '{text}' is not of the form STEP:FEATURE=VALUE (e.g. 0:2=1.5).");
        return new SavedSampler.Known(step, feature, value);
    }
}
