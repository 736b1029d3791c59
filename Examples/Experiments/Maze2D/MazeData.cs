using Microsoft.ML;
using MLReward.Environments.Maze2D;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Stage "data" of one side of the comparison (the base data, or one goal's expert data): the generated log, its episode
/// split, the training windows, and the classifiers' windows (stride H/2, at most <see cref="Maze2DSettings.EvaluationWindows"/>
/// per side) of the training and the held-out episodes.
/// </summary>
internal sealed class MazeData
{
    public required TransitionLog Log { get; init; }
    public required IDataView HeldOutTransitions { get; init; }
    public required List<MazeWindow> Training { get; init; }
    public required List<MazeWindow> EvaluationTraining { get; init; }
    public required List<MazeWindow> EvaluationHeldOut { get; init; }
    public required int Episodes { get; init; }
    public required int HeldOutEpisodes { get; init; }

    /// <summary>The base data: random starts and random goals.</summary>
    public static MazeData Base(Maze2DRunContext run) =>
        Create(run, new Maze2DDataGenerator(run.Layout).GenerateBase(run.Settings.BaseTransitions, run.Seeds.For("base-data"), run.CancellationToken).Log,
            expert: false, stream: "base", index: 0, what: "base");

    /// <summary>The expert data of goal <paramref name="index"/>: a fixed goal, random starts.</summary>
    public static MazeData Expert(Maze2DRunContext run, Vec2 goal, int index) =>
        Create(run, new Maze2DDataGenerator(run.Layout).GenerateExpert(goal, run.Settings.ExpertTransitions, run.Seeds.For("expert-data", index), run.CancellationToken).Log,
            expert: true, stream: "expert", index, what: string.Create(System.Globalization.CultureInfo.InvariantCulture, $"goal ({goal.X:0.##}, {goal.Y:0.##})"));

    private static MazeData Create(Maze2DRunContext run, TransitionLog log, bool expert, string stream, int index, string what)
    {
        var s = run.Settings;
        var ml = run.Ml;
        var (training, heldOut) = MazeWindows.Split(ml, log, s.HeldOutFraction, run.Seeds.For(stream + "-split", index));
        var windows = MazeWindows.Cut(ml, training, s.Horizon, s.WindowStride, expert, s.PadEpisodeEnds, s.EndRestSteps);
        if (windows.Count == 0)
            throw new InvalidOperationException($"No {what} training episode is at least {s.Horizon} steps long; lower the horizon.");
        int stride = Math.Max(1, s.Horizon / 2);
        var evaluationTraining = MazeWindows.Subsample(MazeWindows.Cut(ml, training, s.Horizon, stride, expert), s.EvaluationWindows, run.Seeds.For(stream + "-evaluation-training", index));
        var evaluationHeldOut = MazeWindows.Subsample(MazeWindows.Cut(ml, heldOut, s.Horizon, stride, expert), s.EvaluationWindows, run.Seeds.For(stream + "-evaluation-heldout", index));
        if (evaluationTraining.Count == 0 || evaluationHeldOut.Count == 0)
            throw new InvalidOperationException($"The {what} data has no training or no held-out episode of at least {s.Horizon} steps; generate more transitions or hold out a larger fraction.");
        return new MazeData
        {
            Log = log,
            HeldOutTransitions = heldOut,
            Training = windows,
            EvaluationTraining = evaluationTraining,
            EvaluationHeldOut = evaluationHeldOut,
            Episodes = log.EpisodeCount,
            HeldOutEpisodes = MazeWindows.EpisodeCount(heldOut),
        };
    }
}
