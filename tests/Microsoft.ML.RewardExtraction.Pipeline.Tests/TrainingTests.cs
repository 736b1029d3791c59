using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using Xunit.Abstractions;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

[Collection(TrainedCollection.Name)]
public class TrainingTests(TrainedModels models, ITestOutputHelper output)
{
    private sealed class Progress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public List<TrainingProgress> Reports { get; } = new();

        public void Report(TrainingProgress value)
        {
            Reports.Add(value);
            onReport(value);
        }
    }

    /// <summary>ML.NET's progress tracker of an MLContext (what a console host polls), through its internals.</summary>
    private static object ProgressTracker(MLContext ml)
    {
        object env = typeof(MLContext).GetField("_env", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(ml)!;
        for (var type = env.GetType(); type != null; type = type.BaseType)
        {
            foreach (var field in type.GetFields(BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            {
                if (field.FieldType.Name == "ProgressTracker")
                    return field.GetValue(env)!;
            }
        }
        throw new InvalidOperationException("No progress tracker found.");
    }

    /// <summary>(channel name, progress, limit) of every progress event the tracker gives now.</summary>
    private static List<(string Name, double? Step, double? Limit)> PollProgress(object tracker)
    {
        var events = (System.Collections.IEnumerable)tracker.GetType().GetMethod("GetAllProgress")!.Invoke(tracker, null)!;
        var result = new List<(string, double?, double?)>();
        foreach (var e in events)
        {
            string name = (string)Member(e, "Name")!;
            var entry = Member(e, "ProgressEntry");
            double?[]? progress = entry is null ? null : (double?[]?)Member(entry, "Progress");
            double?[]? limit = entry is null ? null : (double?[]?)Member(entry, "ProgressLim");
            result.Add((name, progress?.FirstOrDefault(), limit?.FirstOrDefault()));
        }
        return result;
    }

    private static object? Member(object o, string name)
    {
        var type = o.GetType();
        const BindingFlags flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance;
        return type.GetField(name, flags)?.GetValue(o) ?? type.GetProperty(name, flags)?.GetValue(o);
    }

    [Fact]
    public void Fit_LogsThroughMlContextLog_AndReportsProgressThroughMLNetsProgressChannel()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        var tracker = ProgressTracker(ml);
        var polled = new List<(string Name, double? Step, double? Limit)>();
        var progress = new Progress(p =>
        {
            if (p.Step % 10 == 0)
                polled.AddRange(PollProgress(tracker));
        });
        var options = Synthetic.DiffusionOptions(steps: 30);
        options.Progress = progress;
        using var model = ml.RewardExtraction().DiffusionModel(options).Fit(ml.Data.LoadFromEnumerable(Synthetic.Rows(50, expert: false, seed: 1)));

        Assert.Equal(Enumerable.Range(1, 30), progress.Reports.Select(r => r.Step));
        Assert.All(progress.Reports, r => Assert.True(r.TotalSteps == 30 && double.IsFinite(r.Loss)));
        foreach (var line in log.Where(l => l.Contains("diffusion model")))
            output.WriteLine(line);
        Assert.Contains(log, l => l.Contains("Training a diffusion model on 50 samples of Trajectory(H=8, D=2)"));
        Assert.Contains(log, l => l.Contains("Training diffusion model: step 30/30, loss"));
        foreach (var p in polled)
            output.WriteLine($"progress channel '{p.Name}': step {p.Step} of {p.Limit}");
        Assert.Contains(polled, p => p.Name.Contains("Training diffusion model") && p.Step == 20 && p.Limit == 30);
    }

    [Fact]
    public void CancellingTheToken_StopsDiffusionFit_WithOperationCanceledException()
    {
        var ml = new MLContext(seed: 1);
        using var cancel = new CancellationTokenSource();
        var progress = new Progress(p => { if (p.Step == 3) cancel.Cancel(); });
        var options = Synthetic.DiffusionOptions(steps: 10_000);
        options.Progress = progress;
        options.CancellationToken = cancel.Token;
        var trainer = ml.RewardExtraction().DiffusionModel(options);
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Fit(ml.Data.LoadFromEnumerable(Synthetic.Rows(50, expert: false, seed: 1))));
        Assert.Equal(3, progress.Reports.Count);
    }

    [Fact]
    public void CancellingTheToken_StopsRewardFit_WithOperationCanceledException()
    {
        using var cancel = new CancellationTokenSource();
        var progress = new Progress(p => { if (p.Step == 2) cancel.Cancel(); });
        var options = Synthetic.RewardOptions(steps: 10_000);
        options.Progress = progress;
        options.CancellationToken = cancel.Token;
        var trainer = models.Ml.RewardExtraction().RelativeReward(models.Base, models.Expert, options);
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Fit(models.MixedData));
        Assert.Equal(2, progress.Reports.Count);
    }

    [Fact]
    public void MLContextCancelExecution_AlsoStopsFit()
    {
        var ml = new MLContext(seed: 1);
        var options = Synthetic.DiffusionOptions(steps: 10_000);
        options.Progress = new Progress(p => { if (p.Step == 2) ml.CancelExecution(); });
        var trainer = ml.RewardExtraction().DiffusionModel(options);
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Fit(ml.Data.LoadFromEnumerable(Synthetic.Rows(50, expert: false, seed: 1))));
    }
}
