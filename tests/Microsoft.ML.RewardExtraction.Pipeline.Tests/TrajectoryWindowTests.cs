using Microsoft.ML;
using Microsoft.ML.Data;
using static Microsoft.ML.RewardExtraction.Pipeline.Tests.TestData;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

public class TrajectoryWindowTests
{
    private static readonly string[] Features = { "Action", "Obs" };

    private static TrajectoryWindowTransformer FitWindows(MLContext ml, IDataView data, int horizon, int stride = 1,
        ShortEpisodeHandling shortEpisodes = ShortEpisodeHandling.Skip, InvalidValueHandling invalid = InvalidValueHandling.Error)
        => ml.RewardExtraction().TrajectoryWindows(new TrajectoryWindowEstimator.Options
        {
            OutputColumnName = "Trajectory",
            EpisodeColumnName = "Episode",
            FeatureColumnNames = Features,
            Horizon = horizon,
            Stride = stride,
            ShortEpisodes = shortEpisodes,
            InvalidValues = invalid,
        }).Fit(data);

    private static void AssertWindows(IReadOnlyList<Window> actual, params (int episode, int start, float[] values)[] expected)
    {
        Assert.Equal(expected.Select(e => (e.episode, e.start)), actual.Select(a => (a.Episode, a.StartStep)));
        for (int i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i].values, actual[i].Trajectory);
    }

    [Fact]
    public void Stride1_GivesEveryWindowRowMajorByTime_AndSkipsShortEpisodes()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Standard());
        var windows = Windows(ml, FitWindows(ml, data, horizon: 3).Transform(data));

        // Written out once in full: episode 1, start 0 = steps 0, 1, 2, each (action, obs0, obs1).
        Assert.Equal(new float[] { 10, 100, -100, 11, 101, -101, 12, 102, -102 }, windows[0].Trajectory);
        AssertWindows(windows,
            (1, 0, ExpectedWindow(1, 0, 3, 4)),
            (1, 1, ExpectedWindow(1, 1, 3, 4)),
            // episode 2 has 2 steps < horizon 3: skipped
            (7, 0, ExpectedWindow(7, 0, 3, 5)),
            (7, 1, ExpectedWindow(7, 1, 3, 5)),
            (7, 2, ExpectedWindow(7, 2, 3, 5)));
    }

    [Fact]
    public void Stride2_StartsEveryOtherStep_AndDropsTrailingSteps()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Standard());
        var windows = Windows(ml, FitWindows(ml, data, horizon: 2, stride: 2).Transform(data));
        AssertWindows(windows,
            (1, 0, ExpectedWindow(1, 0, 2, 4)),
            (1, 2, ExpectedWindow(1, 2, 2, 4)),
            (2, 0, ExpectedWindow(2, 0, 2, 2)),
            (7, 0, ExpectedWindow(7, 0, 2, 5)),
            (7, 2, ExpectedWindow(7, 2, 2, 5)));   // step 4 alone does not fill a window
    }

    [Fact]
    public void PadWithLast_GivesShortEpisodesOneWindow_InTheMiddleAndAtTheEnd()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Episodes((1, 3), (2, 2), (3, 4), (4, 1)));
        var windows = Windows(ml, FitWindows(ml, data, horizon: 3, shortEpisodes: ShortEpisodeHandling.PadWithLast).Transform(data));

        Assert.Equal(new float[] { 20, 200, -200, 21, 201, -201, 21, 201, -201 }, windows[1].Trajectory);
        AssertWindows(windows,
            (1, 0, ExpectedWindow(1, 0, 3, 3)),
            (2, 0, ExpectedWindow(2, 0, 3, 2)),
            (3, 0, ExpectedWindow(3, 0, 3, 4)),
            (3, 1, ExpectedWindow(3, 1, 3, 4)),
            (4, 0, ExpectedWindow(4, 0, 3, 1)));   // one step repeated three times, last episode of the input
    }

    private static TrajectoryWindowTransformer FitPadded(MLContext ml, IDataView data, int horizon, int stride, params string[] zeroPadded)
        => ml.RewardExtraction().TrajectoryWindows(new TrajectoryWindowEstimator.Options
        {
            OutputColumnName = "Trajectory",
            EpisodeColumnName = "Episode",
            FeatureColumnNames = Features,
            Horizon = horizon,
            Stride = stride,
            PadEpisodeEnds = true,
            ZeroPaddedColumnNames = zeroPadded,
            InvalidValues = InvalidValueHandling.SkipWindow,
        }).Fit(data);

    [Fact]
    public void PadEpisodeEnds_StartsWindowsUpToTheLastStep_AndRepeatsIt()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Standard());   // episodes 1 (4 steps), 2 (2), 7 (5)
        var windows = Windows(ml, FitPadded(ml, data, horizon: 3, stride: 1).Transform(data));

        // Written out once in full: episode 1 from step 2 = steps 2, 3, 3.
        Assert.Equal(new float[] { 12, 102, -102, 13, 103, -103, 13, 103, -103 }, windows[2].Trajectory);
        AssertWindows(windows,
            (1, 0, ExpectedWindow(1, 0, 3, 4)),
            (1, 1, ExpectedWindow(1, 1, 3, 4)),
            (1, 2, ExpectedWindow(1, 2, 3, 4)),
            (1, 3, ExpectedWindow(1, 3, 3, 4)),
            (2, 0, ExpectedWindow(2, 0, 3, 2)),
            (2, 1, ExpectedWindow(2, 1, 3, 2)),
            (7, 0, ExpectedWindow(7, 0, 3, 5)),
            (7, 1, ExpectedWindow(7, 1, 3, 5)),
            (7, 2, ExpectedWindow(7, 2, 3, 5)),
            (7, 3, ExpectedWindow(7, 3, 3, 5)),
            (7, 4, ExpectedWindow(7, 4, 3, 5)));   // the last episode of the input pads as well
    }

    [Fact]
    public void PadEpisodeEnds_KeepsTheStride_ZeroesTheNamedColumns_AndSkipsInvalidSteps()
    {
        var ml = new MLContext(seed: 1);
        var rows = Episodes((1, 7), (2, 1));
        rows[4].Action = float.NaN;   // episode 1, step 4: no window may contain it
        var data = ml.Data.LoadFromEnumerable(rows);
        var windows = Windows(ml, FitPadded(ml, data, horizon: 4, stride: 2, "Action").Transform(data));

        static float[] ZeroPaddedWindow(int episode, int start, int horizon, int length)
        {
            var values = ExpectedWindow(episode, start, horizon, length);
            for (int k = Math.Max(0, length - start); k < horizon; k++)
                values[3 * k] = 0;   // the action of each step past the end
            return values;
        }

        Assert.Equal(new float[] { 16, 106, -106, 0, 106, -106, 0, 106, -106, 0, 106, -106 }, windows[1].Trajectory);
        AssertWindows(windows,
            (1, 0, ExpectedWindow(1, 0, 4, 7)),
            // starts 2 and 4 contain step 4; 6 is the last step, on the stride
            (1, 6, ZeroPaddedWindow(1, 6, 4, 7)),
            (2, 0, ZeroPaddedWindow(2, 0, 4, 1)));
    }

    [Fact]
    public void ExtraEndSteps_StartsWindowsPastTheEnd_ThatHoldOnlyTheRestingLastStep()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Episodes((1, 3)));
        var transformer = ml.RewardExtraction().TrajectoryWindows(new TrajectoryWindowEstimator.Options
        {
            OutputColumnName = "Trajectory", EpisodeColumnName = "Episode", FeatureColumnNames = Features,
            Horizon = 2, Stride = 2, PadEpisodeEnds = true, ZeroPaddedColumnNames = ["Action"], ExtraEndSteps = 3,
        }).Fit(data);
        var windows = Windows(ml, transformer.Transform(data));
        // Steps 0-2, resting 3 steps more: starts 0 and 2 (padded), 4 (past the end, rest only); 6 would be 4 steps past.
        Assert.Equal(new[] { 0, 2, 4 }, windows.Select(w => w.StartStep));
        Assert.Equal(new float[] { 12, 102, -102, 0, 102, -102 }, windows[1].Trajectory);
        Assert.Equal(new float[] { 0, 102, -102, 0, 102, -102 }, windows[2].Trajectory);

        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "windows.zip");
        ml.Model.Save(transformer, data.Schema, path);
        var loaded = Assert.IsType<TrajectoryWindowTransformer>(ml.Model.Load(path, out _));
        Assert.Equal(3, loaded.ExtraEndSteps);
        Assert.Equal(Format(ml, transformer.Transform(data)), Format(ml, loaded.Transform(data)));

        Assert.Contains("set PadEpisodeEnds too", Assert.Throws<ArgumentOutOfRangeException>(() => ml.RewardExtraction().TrajectoryWindows(
            new TrajectoryWindowEstimator.Options { EpisodeColumnName = "Episode", FeatureColumnNames = Features, Horizon = 2, ExtraEndSteps = 1 })).Message);
    }

    [Fact]
    public void PadEpisodeEnds_SavesAndLoads_AndItsOptionsAreChecked()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Standard());
        var transformer = FitPadded(ml, data, horizon: 3, stride: 2, "Obs");
        string expected = Format(ml, transformer.Transform(data));

        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "windows.zip");
        ml.Model.Save(transformer, data.Schema, path);
        var ml2 = new MLContext(seed: 2);
        var loaded = Assert.IsType<TrajectoryWindowTransformer>(ml2.Model.Load(path, out _));
        Assert.True(loaded.PadEpisodeEnds);
        Assert.Equal(new[] { "Obs" }, loaded.ZeroPaddedColumnNames);
        Assert.Equal(expected, Format(ml2, loaded.Transform(ml2.Data.LoadFromEnumerable(Standard()))));

        var rx = ml.RewardExtraction();
        var notAFeature = Assert.Throws<ArgumentOutOfRangeException>(() => rx.TrajectoryWindows(new TrajectoryWindowEstimator.Options
        {
            EpisodeColumnName = "Episode", FeatureColumnNames = Features, Horizon = 2, PadEpisodeEnds = true, ZeroPaddedColumnNames = ["Velocity"],
        }));
        Assert.Contains("'Velocity' is not one of the feature columns ('Action', 'Obs')", notAFeature.Message);
        var withoutPadding = Assert.Throws<ArgumentOutOfRangeException>(() => rx.TrajectoryWindows(new TrajectoryWindowEstimator.Options
        {
            EpisodeColumnName = "Episode", FeatureColumnNames = Features, Horizon = 2, ZeroPaddedColumnNames = ["Action"],
        }));
        Assert.Contains("set PadEpisodeEnds too", withoutPadding.Message);
    }

    [Fact]
    public void Output_HasThreeColumns_NoRowCount_AndSameRowsWhateverIsActive()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Standard());
        var output = FitWindows(ml, data, horizon: 3).Transform(data);

        Assert.Equal(new[] { "Episode", "StartStep", "Trajectory" }, output.Schema.Select(c => c.Name));
        Assert.Equal(NumberDataViewType.Int32, output.Schema["Episode"].Type);
        Assert.Equal(NumberDataViewType.Int32, output.Schema["StartStep"].Type);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 9), output.Schema["Trajectory"].Type);
        Assert.Null(output.GetRowCount());
        Assert.False(output.CanShuffle);

        var starts = new List<int>();
        using (var cursor = output.GetRowCursor(new[] { output.Schema["StartStep"] }))
        {
            var getStart = cursor.GetGetter<int>(output.Schema["StartStep"]);
            Assert.False(cursor.IsColumnActive(output.Schema["Trajectory"]));
            while (cursor.MoveNext())
            {
                int s = 0;
                getStart(ref s);
                starts.Add(s);
            }
        }
        Assert.Equal(new[] { 0, 1, 0, 1, 2 }, starts);
        Assert.Equal(5, output.Preview().RowView.Length);
    }

    [Fact]
    public void TextAndLongEpisodeIds_AreSupported()
    {
        var ml = new MLContext(seed: 1);
        var text = ml.Data.LoadFromEnumerable(new[] { "a", "a", "b", "b", "b" }.Select((e, i) => new TextStep { Episode = e, Action = i }));
        var textWindows = ml.RewardExtraction().TrajectoryWindows("Trajectory", "Episode", new[] { "Action" }, horizon: 2).Fit(text).Transform(text);
        var ids = textWindows.GetColumn<ReadOnlyMemory<char>>("Episode").Select(m => m.ToString()).ToArray();
        Assert.Equal(new[] { "a", "b", "b" }, ids);
        Assert.Equal(new[] { new float[] { 0, 1 }, new float[] { 2, 3 }, new float[] { 3, 4 } },
            textWindows.GetColumn<float[]>("Trajectory").ToArray());

        var longs = ml.Data.LoadFromEnumerable(new[] { 5_000_000_000L, 5_000_000_000L, -3L, -3L }.Select((e, i) => new LongStep { Episode = e, Action = i }));
        var longWindows = ml.RewardExtraction().TrajectoryWindows("Trajectory", "Episode", new[] { "Action" }, horizon: 2).Fit(longs).Transform(longs);
        Assert.Equal(new[] { 5_000_000_000L, -3L }, longWindows.GetColumn<long>("Episode").ToArray());
    }

    [Fact]
    public void NaN_IsAnError_NamingColumnRowAndEpisode()
    {
        var ml = new MLContext(seed: 1);
        var rows = Standard();
        rows[5].Obs[1] = float.NaN;   // input row 5 = episode 2, step 1 (a short episode, in no window: still checked)
        var data = ml.Data.LoadFromEnumerable(rows);
        var output = FitWindows(ml, data, horizon: 3).Transform(data);

        var ex = Assert.Throws<InvalidOperationException>(() => Windows(ml, output));
        Assert.Contains("Column 'Obs'", ex.Message);
        Assert.Contains("NaN", ex.Message);
        Assert.Contains("input row 5", ex.Message);
        Assert.Contains("episode '2'", ex.Message);
        Assert.Contains("slot 1", ex.Message);
        Assert.Contains("SkipWindow", ex.Message);
    }

    [Fact]
    public void Infinity_WithSkipWindow_DropsOnlyTheWindowsContainingIt()
    {
        var ml = new MLContext(seed: 1);
        var rows = Standard();
        rows[7].Action = float.PositiveInfinity;   // episode 7, step 1
        var data = ml.Data.LoadFromEnumerable(rows);
        var windows = Windows(ml, FitWindows(ml, data, horizon: 2, invalid: InvalidValueHandling.SkipWindow).Transform(data));
        AssertWindows(windows,
            (1, 0, ExpectedWindow(1, 0, 2, 4)),
            (1, 1, ExpectedWindow(1, 1, 2, 4)),
            (1, 2, ExpectedWindow(1, 2, 2, 4)),
            (2, 0, ExpectedWindow(2, 0, 2, 2)),
            // episode 7: windows at 0 and 1 contain step 1
            (7, 2, ExpectedWindow(7, 2, 2, 5)),
            (7, 3, ExpectedWindow(7, 3, 2, 5)));
    }

    [Fact]
    public void ReappearingEpisode_IsAnError_NamingIdAndRow()
    {
        var ml = new MLContext(seed: 1);
        var rows = Episodes((1, 2), (2, 2), (1, 2));
        var data = ml.Data.LoadFromEnumerable(rows);
        var output = FitWindows(ml, data, horizon: 2).Transform(data);
        var ex = Assert.Throws<InvalidOperationException>(() => Windows(ml, output));
        Assert.Contains("Episode '1' reappears at input row 4", ex.Message);
        Assert.Contains("consecutive", ex.Message);
    }

    [Fact]
    public void WrongFeatureType_IsASchemaMismatch_NamingTheColumn()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new DoubleStep { Episode = 1 } });
        var estimator = ml.RewardExtraction().TrajectoryWindows("Trajectory", "Episode", Features, horizon: 2);

        var fit = Assert.Throws<ArgumentOutOfRangeException>(() => estimator.Fit(data));
        Assert.StartsWith("Schema mismatch for input column 'Obs': expected Single or known-size vector of Single, got Vector<Double, 2>", fit.Message);

        var shape = Assert.Throws<ArgumentOutOfRangeException>(() => estimator.GetOutputSchema(SchemaShape.Create(data.Schema)));
        Assert.StartsWith("Schema mismatch for input column 'Obs': expected Single or known-size vector of Single, got Vector<Double>", shape.Message);
    }

    [Fact]
    public void MissingColumnsAndBadEpisodeType_AreSchemaErrors()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Standard());
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.RewardExtraction().TrajectoryWindows("Trajectory", "Episode", new[] { "Action", "Velocity" }, horizon: 2).Fit(data));
        Assert.Contains("'Velocity'", missing.Message);

        var badEpisode = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.RewardExtraction().TrajectoryWindows("Trajectory", "Action", new[] { "Obs" }, horizon: 2).Fit(data));
        Assert.StartsWith("Schema mismatch for episode column 'Action': expected integer, key or text, got Single", badEpisode.Message);
    }

    [Fact]
    public void BadOptions_FailWhenTheEstimatorIsCreated()
    {
        var ml = new MLContext(seed: 1);
        var rx = ml.RewardExtraction();
        Assert.Contains("Horizon", Assert.Throws<ArgumentOutOfRangeException>(() => rx.TrajectoryWindows("T", "Episode", Features, horizon: 0)).Message);
        Assert.Contains("Stride", Assert.Throws<ArgumentOutOfRangeException>(() => rx.TrajectoryWindows("T", "Episode", Features, horizon: 2, stride: 0)).Message);
        Assert.Contains("FeatureColumnNames", Assert.Throws<ArgumentOutOfRangeException>(() => rx.TrajectoryWindows("T", "Episode", Array.Empty<string>(), horizon: 2)).Message);
        Assert.Contains("three different names", Assert.Throws<ArgumentOutOfRangeException>(() => rx.TrajectoryWindows("Episode", "Episode", Features, horizon: 2)).Message);
    }

    [Fact]
    public void FittedTransformer_RejectsAnotherFeatureSize()
    {
        var ml = new MLContext(seed: 1);
        var transformer = FitWindows(ml, ml.Data.LoadFromEnumerable(Standard()), horizon: 2);
        var wider = ml.Data.LoadFromEnumerable(new[] { new WideStep { Episode = 1 } });
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => transformer.Transform(wider));
        Assert.StartsWith("Schema mismatch for input column 'Obs': expected Vector<Single, 2>, got Vector<Single, 3>", ex.Message);
    }

    public sealed class WideStep
    {
        public int Episode { get; set; }
        public float Action { get; set; }
        [VectorType(3)]
        public float[] Obs { get; set; } = new float[3];
    }

    [Fact]
    public void SaveLoad_InAFreshContext_GivesIdenticalWindows()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Standard());
        var transformer = FitWindows(ml, data, horizon: 3, stride: 2, shortEpisodes: ShortEpisodeHandling.PadWithLast);
        string expected = Format(ml, transformer.Transform(data));

        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "windows.zip");
        ml.Model.Save(transformer, data.Schema, path);

        var ml2 = new MLContext(seed: 2);
        var loaded = ml2.Model.Load(path, out var schema);
        var typed = Assert.IsType<TrajectoryWindowTransformer>(loaded);
        Assert.Equal(3, typed.Horizon);
        Assert.Equal(2, typed.Stride);
        Assert.Equal(ShortEpisodeHandling.PadWithLast, typed.ShortEpisodes);
        Assert.Equal(new[] { 1, 2 }, typed.FeatureSizes);
        Assert.Equal(data.Schema.Select(c => c.Name), schema.Select(c => c.Name));
        Assert.Equal(expected, Format(ml2, loaded.Transform(ml2.Data.LoadFromEnumerable(Standard()))));
    }
}
