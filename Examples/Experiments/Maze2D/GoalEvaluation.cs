using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;
using MLReward.Environments.Maze2D;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Stage "evaluation" of one goal: the heat map of the map's reward over the base states (and, as a diagnostic, at other noise
/// steps), the reward's held-out AUC and accuracy, the FastTree baseline on the same windows, and the held-out data with the
/// rewards the run gave them (heldout-&lt;goal&gt;.csv, scores-&lt;goal&gt;.csv) so that a saved reward can be checked against
/// the run from the files alone.
/// </summary>
internal static class GoalEvaluation
{
    public sealed record Result(RewardMap Map, double GoalError, bool Hit, RelativeRewardMetrics HeldOut, double Accuracy, double FastTree,
        Dictionary<string, double>? GoalErrorAtStep, ConservativenessReport Conservativeness, Dictionary<string, double> Seconds);

    public static Result Run(Maze2DRunContext run, BaseModels bases, GoalModels models, MazeData baseData, MazeData expertData, Vec2 goal, string tag,
        string outputDirectory)
    {
        var s = run.Settings;
        var seconds = new Dictionary<string, double>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string name = string.Create(CultureInfo.InvariantCulture, $"({goal.X:0.##}, {goal.Y:0.##})");
        string features = s.MapRewardFeatures == RewardFeatures.Position ? "x, y" : "s";
        var map = RewardMap.Build(run.Layout, baseData.Log, RewardMap.ScoreStates(run.Ml, models.MapSource, baseData.Log), s.HeatmapWinsorize, s.HeatmapMinCount);
        double error = map.Peak is { } peak ? MazeMetrics.GoalError(peak, goal) : double.PositiveInfinity;
        bool hit = MazeMetrics.IsHit(error);
        HeatmapPlot.Save(map, goal, string.Create(CultureInfo.InvariantCulture,
            $"{run.Layout.Name}, goal {name}: relative reward R({features}, t=0)\npeak error {error:F2} ({(hit ? "hit" : "miss")})"),
            Path.Combine(outputDirectory, Maze2DExperiment.HeatmapFileName(goal)));
        Dictionary<string, double>? errorAtStep = null;
        foreach (int step in s.DiagnosticMapSteps.Where(k => k > 0 && k < s.DiffusionSteps))
        {
            using var atStep = models.MapSource.AtScoringStep(step);
            var stepMap = RewardMap.Build(run.Layout, baseData.Log, RewardMap.ScoreStates(run.Ml, atStep, baseData.Log), s.HeatmapWinsorize, s.HeatmapMinCount);
            double stepError = stepMap.Peak is { } sp ? MazeMetrics.GoalError(sp, goal) : double.PositiveInfinity;
            (errorAtStep ??= [])[step.ToString(CultureInfo.InvariantCulture)] = Math.Round(stepError, 4);
            HeatmapPlot.Save(stepMap, goal, string.Create(CultureInfo.InvariantCulture, $"{run.Layout.Name}, goal {name}: R({features}, t={step}) (diagnostic)\npeak error {stepError:F2}"),
                Path.Combine(outputDirectory, $"heatmap-{tag}-t{step}.png"));
        }
        seconds["heatmap"] = clock.Elapsed.TotalSeconds;

        clock.Restart();
        var training = MazeWindows.Balanced(run.Ml, expertData.EvaluationTraining, baseData.EvaluationTraining);
        var heldOut = MazeWindows.Balanced(run.Ml, expertData.EvaluationHeldOut, baseData.EvaluationHeldOut);
        var reward = models.Reward;
        var scoredHeldOut = run.Ml.Data.Cache(reward.Transform(heldOut));
        var metrics = run.Rx.Evaluate(scoredHeldOut, nameof(MazeWindow.Label), reward.OutputColumnName);
        double accuracy = PreferenceClassifiers.RewardAccuracy(run.Ml, reward.Transform(training), scoredHeldOut, reward.OutputColumnName);
        WriteHeldOut(run.Ml, Path.Combine(outputDirectory, $"heldout-{tag}.csv"), expertData.HeldOutTransitions, baseData.HeldOutTransitions);
        WriteScores(Path.Combine(outputDirectory, $"scores-{tag}.csv"), scoredHeldOut, reward.OutputColumnName);
        seconds["heldout_accuracy"] = clock.Elapsed.TotalSeconds;

        clock.Restart();
        double fastTree = PreferenceClassifiers.FastTreeAccuracy(run.Ml, training, heldOut, s.FastTreeTrees, s.FastTreeLeaves);
        seconds["fasttree"] = clock.Elapsed.TotalSeconds;

        // The reward's difference was taken against the reference model when there is one.
        var diagnostic = ConservativenessReport.Measure(run.Ml, bases.ReferenceModel ?? bases.Model, models.Expert, reward, heldOut,
            s.DiagnosticRows, s.DiagnosticStride, s.DiagnosticProbes, run.Seeds.For("conservativeness"));
        diagnostic.SavePlot(string.Create(CultureInfo.InvariantCulture, $"{run.Layout.Name}, goal {name}: conservativeness of the reward"),
            Path.Combine(outputDirectory, ConservativenessFileName(tag)));
        seconds["conservativeness"] = diagnostic.Seconds;
        return new Result(map, error, hit, metrics, accuracy, fastTree, errorAtStep, diagnostic, seconds);
    }

    /// <summary>The diagnostic's plot of one goal.</summary>
    public static string ConservativenessFileName(string tag) => $"conservativeness-{tag}.png";

    /// <summary>The episode name in the held-out files: expert-ID or base-ID.</summary>
    public static string EpisodeName(bool expert, int id) => string.Create(CultureInfo.InvariantCulture, $"{(expert ? "expert" : "base")}-{id}");

    /// <summary>The held-out transitions of both sides: Episode (expert-ID / base-ID), then the step's six values.</summary>
    private static void WriteHeldOut(MLContext ml, string path, IDataView expert, IDataView @base)
    {
        using var writer = new StreamWriter(path);
        writer.WriteLine("Episode,ActionX,ActionY,X,Y,VelocityX,VelocityY");
        foreach (var (view, isExpert) in new[] { (expert, true), (@base, false) })
        {
            foreach (var row in ml.Data.CreateEnumerable<TransitionColumns>(view, reuseRowObject: true))
                writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{EpisodeName(isExpert, row.EpisodeId)},{row.Action[0]:R},{row.Action[1]:R},{row.Observation[0]:R},{row.Observation[1]:R},{row.Observation[2]:R},{row.Observation[3]:R}"));
        }
    }

    /// <summary>The rewards the run gave the held-out windows: Episode, StartStep, Expert, Reward.</summary>
    private static void WriteScores(string path, IDataView scored, string rewardColumnName)
    {
        using var writer = new StreamWriter(path);
        writer.WriteLine("Episode,StartStep,Expert,Reward");
        using var cursor = scored.GetRowCursor(scored.Schema.Where(c => c.Name is nameof(MazeWindow.EpisodeId) or nameof(MazeWindow.StartStep) or nameof(MazeWindow.Label) || c.Name == rewardColumnName));
        var episode = cursor.GetGetter<int>(scored.Schema[nameof(MazeWindow.EpisodeId)]);
        var start = cursor.GetGetter<int>(scored.Schema[nameof(MazeWindow.StartStep)]);
        var label = cursor.GetGetter<bool>(scored.Schema[nameof(MazeWindow.Label)]);
        var reward = cursor.GetGetter<float>(scored.Schema[rewardColumnName]);
        int e = 0, s = 0;
        bool l = false;
        float r = 0;
        while (cursor.MoveNext())
        {
            episode(ref e);
            start(ref s);
            label(ref l);
            reward(ref r);
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{EpisodeName(l, e)},{s},{(l ? 1 : 0)},{r:R}"));
        }
    }

    private sealed class TransitionColumns
    {
        public int EpisodeId { get; set; }
        public float[] Action { get; set; } = [];
        public float[] Observation { get; set; } = [];
    }
}
