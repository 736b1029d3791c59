using System.CommandLine;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;
using MLReward.Experiments;

namespace MLReward.Cli;

/// <summary><c>mlreward distill</c>: distils a saved trajectory reward into ML.NET trees that score without libtorch, reports
/// their fidelity on held-out windows and optionally exports them to ONNX, checked with ONNX Runtime.</summary>
internal static class DistillCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "A reward zip (reward.zip, reward-<goal>.zip, or a chain ending in a reward).", Required = true };
        var data = new Option<FileInfo>("--data") { Description = "A CSV of transitions, as for 'mlreward score --data': the windows the student learns from.", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "The distilled model's zip (ML.NET trees only: scores with Microsoft.ML and Microsoft.ML.FastTree, no TorchSharp).", Required = true };
        var onnx = new Option<FileInfo?>("--onnx") { Description = "Also export the distilled model to this ONNX file and check it with ONNX Runtime on the held-out windows." };
        var learner = new Option<string>("--learner") { Description = "The regression learner.", DefaultValueFactory = _ => "fasttree" };
        learner.AcceptOnlyFromAmong("fasttree", "lightgbm");
        var label = new Option<string?>("--label-column") { Description = "A true/false column of the CSV, constant per episode (e.g. expert or not): adds the held-out preference accuracy of teacher and student." };
        var episode = new Option<string>("--episode-column") { Description = "The episode column; the split keeps each episode's windows together.", DefaultValueFactory = _ => "Episode" };
        var features = new Option<string?>("--features") { Description = "The step's columns, comma-separated, in the model's order (default: every column but the episode and label columns)." };
        var stride = new Option<int>("--stride") { Description = "Steps between window starts.", DefaultValueFactory = _ => 1 };
        var testFraction = new Option<double>("--test-fraction") { Description = "The share of episodes held out to measure the student, in (0, 1).", DefaultValueFactory = _ => 0.2 };
        var seed = new Option<int>("--seed") { Description = "Seeds the split and the learner.", DefaultValueFactory = _ => 0 };
        var trees = new Option<int>("--trees") { Description = "Trees (boosting rounds) of the student.", DefaultValueFactory = _ => new RewardDistillationEstimator.Options().NumberOfTrees };
        var leaves = new Option<int>("--leaves") { Description = "Leaves per tree of the student.", DefaultValueFactory = _ => new RewardDistillationEstimator.Options().NumberOfLeaves };
        model.MustExist();
        data.MustExist();
        var device = DeviceOption.Create();
        var command = new Command("distill", "Distil a saved trajectory reward into ML.NET trees (no libtorch needed to score), optionally exported to ONNX.")
            { model, data, output, onnx, learner, label, episode, features, stride, testFraction, seed, trees, leaves, device };
        command.SetAction((result, cancellationToken) =>
        {
            var ml = new MLContext(seed: 0);
            ExperimentDevice.Apply(ml, UsageException.Check(() => DeviceOption.Read(result, device)));
            string modelPath = result.GetValue(model)!.FullName;
            string outPath = result.GetValue(output)!.FullName;
            string? onnxPath = result.GetValue(onnx)?.FullName;
            if (result.GetValue(stride) < 1)
                throw new UsageException($"--stride must be at least 1; got {result.GetValue(stride)}.");
            var options = UsageException.Check(() => new RewardDistillationEstimator.Options
            {
                LabelColumnName = result.GetValue(label),
                EpisodeColumnName = TrajectoryScoring.EpisodeColumnName,
                TestFraction = result.GetValue(testFraction) is var f && f > 0 && f < 1 ? f
                    : throw new ArgumentException($"--test-fraction must lie strictly between 0 and 1; got {f.ToString(CultureInfo.InvariantCulture)}."),
                Seed = result.GetValue(seed),
                Learner = result.GetValue(learner) == "lightgbm" ? DistillationLearner.LightGbm : DistillationLearner.FastTree,
                NumberOfTrees = result.GetValue(trees) is var n && n >= 1 ? n : throw new ArgumentException($"--trees must be at least 1; got {n}."),
                NumberOfLeaves = result.GetValue(leaves) is var l && l >= 2 ? l : throw new ArgumentException($"--leaves must be at least 2; got {l}."),
            });
            OutputPaths.PrepareFile(outPath, "--out");
            if (onnxPath is not null)
                OutputPaths.PrepareFile(onnxPath, "--onnx");

            var loaded = SafeModelSave.Load(ml, modelPath, out _);   // names the file when it is not a readable model
            try
            {
                var reward = TrajectoryScoring.FindReward(loaded, modelPath);
                var columns = result.GetValue(features)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                var windows = TrajectoryScoring.ReadWindows(ml, reward, modelPath, result.GetValue(data)!.FullName, result.GetValue(episode)!, columns,
                    result.GetValue(stride), result.GetValue(label));
                cancellationToken.ThrowIfCancellationRequested();
                var distilled = ml.RewardExtraction().DistillReward(reward, options).Distill(windows);
                // The saved model asks only for the window vector: a user scores windows, not the file's episode ids.
                var inputSchema = ml.Transforms.SelectColumns(distilled.FeatureColumnName).Fit(windows).Transform(windows).Schema;
                SafeModelSave.Save(ml, distilled.Model, inputSchema, outPath);
                WriteFidelity(Console.Out, options.Learner, distilled.Metrics);
                Console.WriteLine($"distilled model: {outPath}");
                if (onnxPath is not null)
                {
                    OnnxExport.Export(ml, distilled.Model, distilled.HeldOut, distilled.FeatureColumnName, onnxPath);
                    var check = OnnxExport.Compare(ml, distilled.Model, onnxPath, distilled.HeldOut, distilled.FeatureColumnName, distilled.OutputColumnName,
                        TimeSpan.FromSeconds(1));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"ONNX: {onnxPath}; max |ONNX Runtime - ML.NET| on {check.Rows:N0} held-out windows: {check.MaxAbsoluteDifference:G3}; ONNX Runtime scores {check.RowsPerSecond:N0} windows/s"));
                }
            }
            finally
            {
                (loaded as IDisposable)?.Dispose();
            }
            return Task.FromResult(ExitCodes.Success);
        });
        return command;
    }

    /// <summary>The fidelity table: correlations with the teacher and, with a label, both preference accuracies.</summary>
    internal static void WriteFidelity(TextWriter writer, DistillationLearner learner, DistillationMetrics m)
    {
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"student: {learner}, fitted on {m.TrainingRows:N0} windows, measured on {m.HeldOutRows:N0} held-out windows"));
        void Line(string metric, string teacher, string student) => writer.WriteLine($"{metric,-32}{teacher,9}{student,9}");
        string Value(double? v) => v is { } x ? x.ToString("F4", CultureInfo.InvariantCulture) : "";
        Line("metric", "teacher", "student");
        Line("Spearman (student vs teacher)", "", Value(m.Spearman));
        Line("Pearson (student vs teacher)", "", Value(m.Pearson));
        if (m.TeacherAccuracy is not null)
        {
            Line("preference accuracy", Value(m.TeacherAccuracy), Value(m.StudentAccuracy));
            Line("ROC AUC", Value(m.TeacherAreaUnderRocCurve), Value(m.StudentAreaUnderRocCurve));
        }
    }
}
