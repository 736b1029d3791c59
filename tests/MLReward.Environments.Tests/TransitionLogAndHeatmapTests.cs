using Microsoft.ML;
using Microsoft.ML.Data;
using MLReward.Environments.Maze2D;

namespace MLReward.Environments.Tests;

public class TransitionLogAndHeatmapTests
{
    private static TransitionLog Sample()
    {
        var log = new TransitionLog();
        log.Add(0, 0, [0.5f, -1f], [1f, 2f, 0f, 0f], 0f);
        log.Add(0, 1, [1e-7f, float.Epsilon], [1.0000001f, 2.25f, -3.5e-3f, 12345.678f], 1f);
        log.Add(7, 0, [-0.33333334f, 0.1f], [3f, 4f, 5f, 6f], 0f);
        return log;
    }

    [Fact]
    public void StoresTransitionsAndEpisodes()
    {
        var log = Sample();
        Assert.Equal(3, log.Count);
        Assert.Equal(2, log.EpisodeCount);
        Assert.Equal(new[] { (0, 0, 2), (7, 2, 1) }, log.Episodes().ToArray());
        var t = log[1];
        Assert.Equal(new Transition(0, 1, 1e-7f, float.Epsilon, 1.0000001f, 2.25f, -3.5e-3f, 12345.678f, 1f), t);
        Assert.Equal(new[] { 1.0000001f, 2.25f, -3.5e-3f, 12345.678f }, t.Observation);
        Assert.Equal(new[] { -0.33333334f, 0.1f }, log.GetAction(2).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => log[3]);
        Assert.Throws<ArgumentException>(() => log.Add(0, 0, [1f], [1f, 2f, 3f, 4f], 0f));
        var copy = new TransitionLog();
        foreach (var tr in log.Transitions) copy.Add(tr);
        Assert.Equal(log.Transitions, copy.Transitions);
    }

    [Fact]
    public void DataViewHasTheSpecifiedSchemaAndValues()
    {
        var ml = new MLContext(seed: 1);
        var log = Sample();
        var view = log.ToDataView(ml);
        var schema = view.Schema;
        Assert.Equal(new[] { "EpisodeId", "Step", "Action", "Observation", "Reward" }, schema.Select(c => c.Name));
        Assert.Equal(NumberDataViewType.Int32, schema["EpisodeId"].Type);
        Assert.Equal(NumberDataViewType.Int32, schema["Step"].Type);
        var action = Assert.IsType<VectorDataViewType>(schema["Action"].Type);
        Assert.Equal(NumberDataViewType.Single, action.ItemType);
        Assert.Equal(2, action.Size);
        var obs = Assert.IsType<VectorDataViewType>(schema["Observation"].Type);
        Assert.Equal(NumberDataViewType.Single, obs.ItemType);
        Assert.Equal(4, obs.Size);
        Assert.Equal(NumberDataViewType.Single, schema["Reward"].Type);

        var obsValues = view.GetColumn<float[]>("Observation").ToArray();
        Assert.Equal(3, obsValues.Length);
        Assert.Equal(new[] { 3f, 4f, 5f, 6f }, obsValues[2]);
        Assert.Equal(new[] { 0, 0, 7 }, view.GetColumn<int>("EpisodeId"));
        Assert.Equal(new[] { 0f, 1f, 0f }, view.GetColumn<float>("Reward"));

        var back = TransitionLog.FromDataView(ml, view);
        Assert.Equal(log.Transitions, back.Transitions);
    }

    [Fact]
    public void CsvRoundTripIsExact()
    {
        var log = new Maze2DDataGenerator(MazeLayout.UMaze).GenerateBase(500, 3).Log;
        log.Add(99, 0, [float.Epsilon, -0f], [1e-30f, -1e30f, 0.1f, 1f / 3f], 0.5f);
        var path = Path.Combine(Path.GetTempPath(), $"log-{Guid.NewGuid():N}.csv");
        try
        {
            log.SaveCsv(path);
            Assert.Equal(TransitionLog.CsvHeader, File.ReadLines(path).First());
            var back = TransitionLog.LoadCsv(path);
            Assert.Equal(log.Count, back.Count);
            Assert.Equal(log.EpisodeCount, back.EpisodeCount);
            Assert.True(log.Observations.SequenceEqual(back.Observations));
            Assert.True(log.Actions.SequenceEqual(back.Actions));
            Assert.True(log.Rewards.SequenceEqual(back.Rewards));
            Assert.Equal(log.Transitions, back.Transitions);
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData("a,b\n1,2", "first line")]
    [InlineData(TransitionLog.CsvHeader + "\n1,2,3", "Line 2: expected 9 fields")]
    [InlineData(TransitionLog.CsvHeader + "\n0,0,0,0,0,0,0,0,0\n0,1,x,0,0,0,0,0,0", "Line 3")]
    public void CsvErrorsAreClear(string text, string message)
    {
        var e = Assert.Throws<FormatException>(() => TransitionLog.ReadCsv(new StringReader(text)));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void HeatmapBinsAlignWithCells()
    {
        var grid = new MazeHeatmapGrid(MazeLayout.UMaze);
        Assert.Equal(50, grid.BinsX);
        Assert.Equal(50, grid.BinsY);
        Assert.True(grid.TryGetBin((1.03, 0.96), out int bx, out int by));
        Assert.Equal((17, 16), (bx, by));
        Assert.Equal(new GridCell(1, 1), grid.CellOfBin(bx, by));
        Assert.Equal(MazeLayout.CellOf((1.03, 0.96)), grid.CellOfBin(bx, by));
        var c = grid.BinCenter(17, 16);
        Assert.Equal(1.05, c.X, 12);
        Assert.Equal(0.95, c.Y, 12);
        Assert.False(grid.TryGetBin((-0.71, 1), out _, out _));
        Assert.Equal((0, 10), grid.GetBin((-5, 0.35)));
        // Cell (i, j) covers bins [10i, 10i+9] x [10j, 10j+9].
        Assert.Equal(new GridCell(2, 3), grid.CellOfBin(29, 30));
        var rng = new Random(1);
        for (int k = 0; k < 1000; k++)
        {
            var p = new Vec2(-0.7 + 5 * rng.NextDouble(), -0.7 + 5 * rng.NextDouble());
            grid.TryGetBin(p, out bx, out by);
            Assert.Equal(MazeLayout.CellOf(p), grid.CellOfBin(bx, by));
            Assert.True(Math.Abs(grid.BinCenter(bx, by).X - p.X) <= 0.05 + 1e-12);
        }
    }

    [Fact]
    public void WallMaskMarksWallCells()
    {
        var grid = new MazeHeatmapGrid(MazeLayout.UMaze);
        var mask = grid.WallMask();
        Assert.Equal(50, mask.GetLength(0));
        Assert.Equal(50, mask.GetLength(1));
        int walls = 0;
        foreach (bool w in mask) walls += w ? 1 : 0;
        Assert.Equal((25 - 7) * 100, walls);
        Assert.False(mask[17, 17]);
        Assert.True(mask[25, 25]);
        Assert.True(mask[20, 19]); // cell (2,1)
        Assert.False(mask[20, 30]); // cell (2,3)
        var coarse = new MazeHeatmapGrid(MazeLayout.Large, binsPerUnit: 2);
        Assert.Equal((18, 24), (coarse.BinsX, coarse.BinsY));
    }

    [Fact]
    public void AverageMasksSparseBinsAndFindsThePeak()
    {
        var grid = new MazeHeatmapGrid(MazeLayout.UMaze);
        var samples = new List<(Vec2, double)>();
        for (int k = 0; k < 5; k++) samples.Add(((1.03, 0.96), k));        // bin (17,16): mean 2
        for (int k = 0; k < 4; k++) samples.Add(((3.0, 3.0), 100));       // only 4 samples: masked
        for (int k = 0; k < 6; k++) samples.Add(((2.9, 1.1), 3 + k % 2)); // bin (36,18): mean 3.5
        samples.Add(((2.0, 2.0), 1e9));                                   // inside a wall: masked
        var avg = grid.Average(samples);
        Assert.Equal(2.0, avg[17, 16], 12);
        Assert.Equal(3.5, avg[36, 18], 12);
        Assert.True(double.IsNaN(avg[37, 37]));
        Assert.True(double.IsNaN(avg[27, 27]));
        Assert.Equal(grid.BinCenter(36, 18), grid.PeakPosition(avg));
        Assert.Null(grid.PeakPosition(new double[50, 50] is var z ? Fill(z, double.NaN) : z));
    }

    [Fact]
    public void TiedPeaks_GoToTheLargestTieBreakValue_ThenToTheFirstBin()
    {
        var grid = new MazeHeatmapGrid(MazeLayout.UMaze);
        var map = Fill(new double[grid.BinsX, grid.BinsY], double.NaN);
        var raw = Fill(new double[grid.BinsX, grid.BinsY], double.NaN);
        map[15, 15] = 1; raw[15, 15] = 7;    // first of the tied bins in row-major order
        map[35, 35] = 1; raw[35, 35] = 9;    // tied, with the largest raw mean
        map[36, 18] = 1;                     // tied, no raw mean
        map[25, 35] = 0.5; raw[25, 35] = 99; // not tied: its raw mean does not count
        Assert.Equal(grid.BinCenter(15, 15), grid.PeakPosition(map));
        Assert.Equal(grid.BinCenter(35, 35), grid.PeakPosition(map, raw));
        raw[35, 35] = 7;                     // equal tie-break values: the first bin again
        Assert.Equal(grid.BinCenter(15, 15), grid.PeakPosition(map, raw));
        Assert.Throws<ArgumentException>(() => grid.PeakPosition(map, new double[3, 3]));
    }

    private static double[,] Fill(double[,] a, double v)
    {
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++) a[i, j] = v;
        return a;
    }

    [Fact]
    public void GoalErrorIsEuclideanDistanceInMazeUnits()
    {
        Assert.Equal(5.0, MazeMetrics.GoalError((1, 2), (4, 6)), 15);
        Assert.True(MazeMetrics.IsHit(1.0));
        Assert.False(MazeMetrics.IsHit(1.0000001));
        Assert.True(MazeMetrics.IsHit(MazeMetrics.GoalError((7, 9.5), (7, 10))));
    }
}
