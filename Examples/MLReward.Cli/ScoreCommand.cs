using System.CommandLine;
using System.Globalization;
using Microsoft.ML;
using MLReward.Experiments.Images;

namespace MLReward.Cli;

/// <summary><c>mlreward score</c>: scores data with a saved reward zip. Today: a folder of images.</summary>
internal static class ScoreCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "A reward zip (reward.zip, or a chain ending in a reward such as models.zip).", Required = true };
        var images = new Option<DirectoryInfo>("--images") { Description = "A folder of image files of the model's size (png, jpg, bmp, ...), read as grey.", Required = true };
        var output = new Option<FileInfo?>("--out") { Description = "CSV of file,reward (default: printed)." };
        var command = new Command("score", "Score image files with a saved reward.") { model, images, output };
        command.SetAction(result =>
        {
            var scores = ImageScoring.Score(new MLContext(seed: 0), result.GetValue(model)!.FullName, result.GetValue(images)!.FullName);
            var lines = new[] { "file,reward" }.Concat(scores.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.File},{s.Reward:R}")));
            if (result.GetValue(output) is { } file)
            {
                File.WriteAllLines(file.FullName, lines);
                Console.WriteLine($"{scores.Count} images scored: {file.FullName}");
            }
            else
            {
                foreach (var line in lines)
                    Console.WriteLine(line);
            }
            return 0;
        });
        return command;
    }
}
