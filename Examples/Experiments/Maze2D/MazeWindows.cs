using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using MLReward.Environments.Maze2D;

namespace MLReward.Experiments.Maze2D;

/// <summary>One window of H consecutive steps of a Maze2D episode, each step [action x, action y, x, y, vx, vy] (raw values),
/// as the library's window transform cuts it; with the expert label and a class weight for the classifiers.</summary>
public sealed class MazeWindow
{
    /// <summary>The episode.</summary>
    public int EpisodeId { get; set; }

    /// <summary>The window's first step within its episode.</summary>
    public int StartStep { get; set; }

    /// <summary>The H x 6 values, row-major.</summary>
    public float[] Features { get; set; } = [];

    /// <summary>True for an expert window.</summary>
    public bool Label { get; set; }

    /// <summary>The row's weight in the classifiers (classes balanced).</summary>
    public float Weight { get; set; } = 1;
}

/// <summary>Transition logs as ML.NET data and windows, through the library's split and window transform.</summary>
public static class MazeWindows
{
    /// <summary>Values per step: action (2) then observation (4).</summary>
    public const int StepDimension = PointMass.ActionSize + PointMass.ObservationSize;

    /// <summary>The sample shape of H-step windows.</summary>
    public static SampleShape Shape(int horizon) => SampleShape.Trajectory(horizon, StepDimension);

    /// <summary>Splits <paramref name="log"/>'s episodes (never a window on both sides): the library's episode split.</summary>
    public static (IDataView Training, IDataView HeldOut) Split(MLContext ml, TransitionLog log, double heldOutFraction, int seed)
    {
        var split = ml.RewardExtraction().TrainTestSplitByEpisode(log.ToDataView(ml), TransitionLog.EpisodeIdColumn, heldOutFraction, seed);
        return (split.TrainSet, split.TestSet);
    }

    /// <summary>The distinct episodes of a transition view.</summary>
    public static int EpisodeCount(IDataView transitions) =>
        transitions.GetColumn<int>(TransitionLog.EpisodeIdColumn).Distinct().Count();

    /// <summary>The windows of <paramref name="horizon"/> steps starting every <paramref name="stride"/> steps of each episode
    /// (the window transform), labelled <paramref name="expert"/>. Without <paramref name="padEnds"/> shorter episodes give
    /// none; with it windows start up to each episode's last step (and <paramref name="restSteps"/> past it), padded with its
    /// last state and a zero action.</summary>
    public static List<MazeWindow> Cut(MLContext ml, IDataView transitions, int horizon, int stride, bool expert, bool padEnds = false, int restSteps = 0)
    {
        var windows = ml.RewardExtraction().TrajectoryWindows(new TrajectoryWindowEstimator.Options
        {
            EpisodeColumnName = TransitionLog.EpisodeIdColumn,
            FeatureColumnNames = [TransitionLog.ActionColumn, TransitionLog.ObservationColumn],
            Horizon = horizon,
            Stride = stride,
            PadEpisodeEnds = padEnds,
            ZeroPaddedColumnNames = padEnds ? [TransitionLog.ActionColumn] : [],
            ExtraEndSteps = padEnds ? restSteps : 0,
        }).Fit(transitions).Transform(transitions);
        return ml.Data.CreateEnumerable<WindowColumns>(windows, reuseRowObject: false)
            .Select(w => new MazeWindow { EpisodeId = w.EpisodeId, StartStep = w.StartStep, Features = w.Features, Label = expert })
            .ToList();
    }

    /// <summary>At most <paramref name="maximum"/> of <paramref name="windows"/>, drawn without replacement with
    /// <paramref name="seed"/> and kept in their order (all of them when there are fewer).</summary>
    public static List<MazeWindow> Subsample(List<MazeWindow> windows, int maximum, int seed)
    {
        if (windows.Count <= maximum)
            return windows;
        var indices = Enumerable.Range(0, windows.Count).ToArray();
        new Random(seed).Shuffle(indices);
        return indices.Take(maximum).Order().Select(i => windows[i]).ToList();
    }

    /// <summary>Expert and base windows as one view, each class weighted n / (2 n_class) so that both count alike.</summary>
    public static IDataView Balanced(MLContext ml, IReadOnlyList<MazeWindow> expert, IReadOnlyList<MazeWindow> @base)
    {
        int total = expert.Count + @base.Count;
        float expertWeight = total / (2f * Math.Max(1, expert.Count)), baseWeight = total / (2f * Math.Max(1, @base.Count));
        foreach (var w in expert)
            w.Weight = expertWeight;
        foreach (var w in @base)
            w.Weight = baseWeight;
        return View(ml, expert.Concat(@base).ToList());
    }

    /// <summary>Windows as an ML.NET view (Features a known-size vector, as the estimators require).</summary>
    public static IDataView View(MLContext ml, IReadOnlyList<MazeWindow> windows)
    {
        if (windows.Count == 0)
            throw new InvalidOperationException("No windows to make a data view of.");
        var schema = SchemaDefinition.Create(typeof(MazeWindow));
        schema[nameof(MazeWindow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, windows[0].Features.Length);
        return ml.Data.LoadFromEnumerable(windows, schema);
    }

    /// <summary>Every state of <paramref name="log"/> as an H-step window of that state repeated: with a per-state (window 1)
    /// reward, R(window) = mean over its rows of r(row) = r(state), so the reward transform scores states one by one.</summary>
    public static IDataView RepeatedStates(MLContext ml, TransitionLog log, int horizon)
    {
        var actions = log.Actions.ToArray();
        var observations = log.Observations.ToArray();
        IEnumerable<MazeWindow> Rows()
        {
            for (int i = 0; i < log.Count; i++)
            {
                var values = new float[horizon * StepDimension];
                for (int r = 0; r < horizon; r++)
                {
                    Array.Copy(actions, 2 * i, values, r * StepDimension, 2);
                    Array.Copy(observations, 4 * i, values, r * StepDimension + 2, 4);
                }
                yield return new MazeWindow { EpisodeId = log.GetEpisodeId(i), StartStep = log.GetStep(i), Features = values };
            }
        }
        var schema = SchemaDefinition.Create(typeof(MazeWindow));
        schema[nameof(MazeWindow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, horizon * StepDimension);
        return ml.Data.LoadFromEnumerable(Rows(), schema);
    }

    private sealed class WindowColumns
    {
        public int EpisodeId { get; set; }
        public int StartStep { get; set; }
        public float[] Features { get; set; } = [];
    }
}
