using System.Text.Json;
using MLReward.Environments.Maze2D;
using MLReward.Experiments.Maze2D;

namespace MLReward.Cli.Tests;

/// <summary>Fast checks of the experiment's parts (no training).</summary>
public class Maze2DPiecesTests
{
    [Fact]
    public void Windows_stay_inside_episodes_and_hold_action_then_observation()
    {
        var log = new TransitionLog();
        for (int e = 0; e < 2; e++)
            for (int t = 0; t < 10; t++)
                log.Add(e, t, [e, t], [100 * e + t, 1, 2, 3], 0);
        var windows = TrajectoryWindowSet.Cut(log, horizon: 4, stride: 3);
        // Starts 0, 3, 6 in each 10-step episode.
        Assert.Equal(6, windows.Count);
        Assert.Equal(new[] { 0, 0, 0, 1, 1, 1 }, windows.EpisodeIds);
        var w = windows.Window(4).ToArray();   // episode 1, start 3
        Assert.Equal(new float[] { 1, 3, 103, 1, 2, 3 }, w[..6]);
        Assert.Equal(106f, w[3 * 6 + 2]);
        var covered = TrajectoryWindowSet.Cut(log, horizon: 4, stride: 4, coverTail: true);
        Assert.Equal(6, covered.Count);      // starts 0, 4 and the tail window 6
        Assert.Equal(6f, covered.Window(2)[2]);
        Assert.Equal(0, TrajectoryWindowSet.Cut(log, horizon: 11, stride: 1).Count);
    }

    [Fact]
    public void Episode_split_is_disjoint_seeded_and_holds_out_the_fraction()
    {
        var log = new TransitionLog();
        for (int e = 0; e < 50; e++)
            log.Add(e, 0, [0, 0], [0, 0, 0, 0], 0);
        var a = EpisodeSplit.Create(log, 0.2, 7);
        var b = EpisodeSplit.Create(log, 0.2, 7);
        Assert.Equal(10, a.HeldOutEpisodes);
        Assert.All(Enumerable.Range(0, 50), e => Assert.Equal(a.IsHeldOut(e), b.IsHeldOut(e)));
        Assert.All(Enumerable.Range(0, 50), e => Assert.NotEqual(a.IsHeldOut(e), a.IsTraining(e)));
    }

    [Fact]
    public void Scale_winsorises_each_tail_then_maps_to_unit_interval()
    {
        var values = Enumerable.Range(0, 1000).Select(i => (float)i).ToArray();
        values[999] = 1e6f;   // an outlier is clamped to the 99.5th percentile
        var scaled = RewardMap.Scale(values, 0.005);
        Assert.Equal(0, scaled[0], 6);
        Assert.Equal(1, scaled[999], 6);
        Assert.Equal(1, scaled[996], 6);
        Assert.InRange(scaled[500], 0.49, 0.51);
        Assert.All(RewardMap.Scale(new float[] { 3, 3, 3 }, 0.005), v => Assert.Equal(0.5, v));
    }

    [Fact]
    public void Map_peak_is_the_bin_with_the_largest_mean_and_sparse_bins_are_masked()
    {
        var layout = MazeLayout.Parse("#####\n#OOO#\n#####\n", "corridor");
        var log = new TransitionLog();
        var rewards = new List<float>();
        // 20 states in the bin around (1, 1) with reward 0, 20 around (1, 3) with reward 1, 3 at (1, 2) with reward 5 (too few).
        foreach (var (y, r, n) in new[] { (1.0, 0f, 20), (3.0, 1f, 20), (2.0, 5f, 3) })
            for (int i = 0; i < n; i++)
            {
                log.Add(0, log.Count, [0, 0], [1.02f, (float)y + 0.02f, 0, 0], 0);
                rewards.Add(r);
            }
        var map = RewardMap.Build(layout, log, rewards.ToArray(), winsorize: 0, minCount: 5);
        Assert.NotNull(map.Peak);
        Assert.True(map.Peak!.Value.DistanceTo(new Vec2(1.05, 3.05)) < 1e-9, $"peak {map.Peak}");
        var grid = map.Grid;
        Assert.True(grid.TryGetBin(new Vec2(1.02, 2.02), out int bx, out int by));
        Assert.True(double.IsNaN(map.Values[bx, by]));
    }

    [Fact]
    public void Default_goals_of_an_unknown_layout_are_spread_free_cells()
    {
        var layout = MazeLayout.Parse("######\n#OOOO#\n#O##O#\n#OOOO#\n######\n", "ring");
        var goals = Maze2DExperiment.DefaultGoals(layout, 4);
        Assert.Equal(4, goals.Count);
        Assert.Equal(goals.Count, goals.Distinct().Count());
        Assert.All(goals, g => Assert.True(layout.IsFree((int)g.X, (int)g.Y)));
        Assert.Contains(new Vec2(3, 4), goals);   // the cell farthest from (1, 1)
        Assert.Equal(MazeLayout.UMaze.StandardGoals, Maze2DExperiment.DefaultGoals(MazeLayout.UMaze));
    }

    [Fact]
    public void Goal_options_parse_and_reject_walls()
    {
        var goals = Maze2DCommand.ParseGoals(["1,1", "1.3, 2.7"], MazeLayout.UMaze);
        Assert.Equal([new Vec2(1, 1), new Vec2(1.3, 2.7)], goals);
        Assert.Equal(8, Maze2DCommand.ParseGoals([], MazeLayout.UMaze).Count);
        Assert.Throws<ArgumentException>(() => Maze2DCommand.ParseGoals(["2,1"], MazeLayout.UMaze));
        Assert.Throws<ArgumentException>(() => Maze2DCommand.ParseGoals(["1;1"], MazeLayout.UMaze));
    }

    [Fact]
    public void Settings_overrides_change_one_copy_and_name_bad_input()
    {
        var preset = Maze2DSettings.Quick;
        var changed = SettingsOverrides.Apply(preset, ["rewardtrainingsteps=7", "NetworkMultipliers=1,2", "RewardFeatures=position", "PredictNoise=false"]);
        Assert.Equal(7, changed.RewardTrainingSteps);
        Assert.Equal(RewardFeatures.Position, changed.RewardFeatures);
        Assert.False(changed.PredictNoise);
        Assert.NotEqual(7, preset.RewardTrainingSteps);
        Assert.Contains("Unknown setting", Assert.Throws<ArgumentException>(() => SettingsOverrides.Apply(preset, ["Nope=1"])).Message);
        Assert.Throws<ArgumentException>(() => SettingsOverrides.Apply(preset, ["Horizon=abc"]));
        Assert.Throws<ArgumentException>(() => (preset with { Horizon = 7 }).Validate());   // not divisible by 2 for a 2-level U-Net
        Assert.Throws<ArgumentOutOfRangeException>(() => (preset with { HeldOutFraction = 1 }).Validate());
    }

    [Fact]
    public void Presets_are_valid_and_jobs_round_trip_through_json()
    {
        foreach (var name in Maze2DSettings.PresetNames)
            Maze2DSettings.FromPreset(name).Validate();
        var experiment = new Maze2DExperiment(MazeLayout.UMaze, [new Vec2(1, 1)], Maze2DSettings.Quick,
            new Maze2DRunOptions { OutputDirectory = "out", CacheDirectory = "cache" });
        var job = Maze2DJob.FromJson(experiment.ToJob().ToJson());
        var quick = Maze2DSettings.Quick;
        Assert.Equal(quick, job.Settings with { NetworkMultipliers = quick.NetworkMultipliers, RewardHiddenSizes = quick.RewardHiddenSizes, DiagnosticMapSteps = quick.DiagnosticMapSteps });
        Assert.Equal(Maze2DSettings.Quick.NetworkMultipliers, job.Settings.NetworkMultipliers);
        Assert.Equal(MazeLayout.UMaze.ToText(), job.LayoutText);
        Assert.Equal([1.0, 1.0], job.Goals[0]);
    }
}
