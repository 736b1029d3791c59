using System.CommandLine;
using System.Globalization;
using Microsoft.ML;
using MLReward.Experiments;
using MLReward.Experiments.Images;

namespace MLReward.Cli;

/// <summary><c>mlreward score</c>: scores data with a saved reward zip: a CSV of transitions (windowed as at training time), or a
/// folder of images.</summary>
internal static class ScoreCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "A reward zip (reward.zip, reward-<goal>.zip, or a chain ending in a reward such as models.zip).", Required = true };
        var data = new Option<FileInfo?>("--data") { Description = "A CSV of transitions with a header row: an episode column, then the step's values (an episode's rows together and in order)." };
        var images = new Option<DirectoryInfo?>("--images") { Description = "A folder of image files of the model's size (png, jpg, bmp, ...), read as grey." };
        var episode = new Option<string>("--episode-column") { Description = "With --data: the episode column.", DefaultValueFactory = _ => "Episode" };
        var features = new Option<string?>("--features") { Description = "With --data: the step's columns, comma-separated, in the model's order (default: every column but the episode column)." };
        var stride = new Option<int>("--stride") { Description = "With --data: steps between window starts.", DefaultValueFactory = _ => 1 };
        var output = new Option<FileInfo?>("--out") { Description = "CSV of the rewards (default: printed). With --data, per window; the per-episode sums go to <out>-episodes.csv." };
        model.MustExist();
        data.MustExist();
        images.MustExist();
        var device = DeviceOption.Create();
        var command = new Command("score", "Score transitions (a CSV) or image files with a saved reward.") { model, data, images, episode, features, stride, output, device };
        command.SetAction((result, cancellationToken) =>
        {
            var ml = new MLContext(seed: 0);
            ExperimentDevice.Apply(ml, UsageException.Check(() => DeviceOption.Read(result, device)));
            string modelPath = result.GetValue(model)!.FullName;
            var outFile = result.GetValue(output);
            if ((result.GetValue(data) is null) == (result.GetValue(images) is null))
                throw new UsageException("Give either --data FILE.csv (transitions) or --images DIR, not both.");
            if (result.GetValue(stride) < 1)
                throw new UsageException($"--stride must be at least 1; got {result.GetValue(stride)}.");
            var episodeFile = outFile is null ? null : new FileInfo(Path.Combine(outFile.DirectoryName ?? ".", Path.GetFileNameWithoutExtension(outFile.Name) + "-episodes.csv"));
            if (outFile is not null)
                OutputPaths.PrepareFile(outFile.FullName, "--out");
            if (result.GetValue(images) is { } folder)
            {
                var scores = ImageScoring.Score(ml, modelPath, folder.FullName);
                Write(outFile, scores.Count, "images", writer =>
                {
                    writer.WriteLine("file,reward");
                    foreach (var s in scores)
                        writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{s.File},{s.Reward:R}"));
                });
                return Task.FromResult(ExitCodes.Success);
            }
            var columns = result.GetValue(features)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            // A progress line for a person watching; in a log or a test, stderr holds only errors.
            bool showProgress = !Console.IsErrorRedirected;
            var progress = showProgress ? new Progress<long>(n => Console.Error.Write($"\rwindows scored: {n:N0}")) : null;
            var windows = TrajectoryScoring.Score(ml, modelPath, result.GetValue(data)!.FullName, result.GetValue(episode)!, columns,
                result.GetValue(stride), progress, cancellationToken);
            if (showProgress)
                Console.Error.WriteLine();
            var episodes = TrajectoryScoring.PerEpisode(windows);
            Write(outFile, windows.Count, "windows", writer => TrajectoryScoring.WriteWindows(writer, windows));
            Write(episodeFile, episodes.Count, "episodes", writer => TrajectoryScoring.WriteEpisodes(writer, episodes));
            return Task.FromResult(ExitCodes.Success);
        });
        return command;
    }

    private static void Write(FileInfo? file, int count, string what, Action<TextWriter> write)
    {
        if (file is null)
        {
            write(Console.Out);
            return;
        }
        using (var writer = new StreamWriter(file.FullName))
            write(writer);
        Console.WriteLine($"{count:N0} {what} scored: {file.FullName}");
    }
}
