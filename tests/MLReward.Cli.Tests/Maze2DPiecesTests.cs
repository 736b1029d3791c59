using Microsoft.ML;
using Microsoft.ML.Data;
using MLReward.Environments.Maze2D;
using MLReward.Experiments;
using MLReward.Experiments.Maze2D;

namespace MLReward.Cli.Tests;

/// <summary>Fast checks of the experiment's parts (no training).</summary>
public class Maze2DPiecesTests
{
    [Fact]
    public void Windows_stay_inside_episodes_and_hold_action_then_observation()
    {
        var ml = new MLContext(1);
        var log = new TransitionLog();
        for (int e = 0; e < 2; e++)
            for (int t = 0; t < 10; t++)
                log.Add(e, t, [e, t], [100 * e + t, 1, 2, 3], 0);
        var windows = MazeWindows.Cut(ml, log.ToDataView(ml), horizon: 4, stride: 3, expert: true);
        // Starts 0, 3, 6 in each 10-step episode.
        Assert.Equal(6, windows.Count);
        Assert.Equal(new[] { 0, 0, 0, 1, 1, 1 }, windows.Select(w => w.EpisodeId));
        Assert.Equal(new[] { 0, 3, 6, 0, 3, 6 }, windows.Select(w => w.StartStep));
        Assert.All(windows, w => Assert.True(w.Label));
        var w = windows[4].Features;   // episode 1, start 3
        Assert.Equal(new float[] { 1, 3, 103, 1, 2, 3 }, w[..6]);
        Assert.Equal(106f, w[3 * 6 + 2]);
        Assert.Empty(MazeWindows.Cut(ml, log.ToDataView(ml), horizon: 11, stride: 1, expert: false));
        // A state repeated H times: every row of its window is the state.
        var repeated = ml.Data.CreateEnumerable<MazeWindow>(MazeWindows.RepeatedStates(ml, log, 3), reuseRowObject: false).ToList();
        Assert.Equal(log.Count, repeated.Count);
        Assert.Equal(new float[] { 1, 4, 104, 1, 2, 3, 1, 4, 104, 1, 2, 3, 1, 4, 104, 1, 2, 3 }, repeated[14].Features);
    }

    [Fact]
    public void Padded_windows_rest_at_the_last_state_with_no_action()
    {
        var ml = new MLContext(1);
        var log = new TransitionLog();
        for (int t = 0; t < 10; t++)
            log.Add(0, t, [1, t], [t, 1, 2, 3], 0);
        var windows = MazeWindows.Cut(ml, log.ToDataView(ml), horizon: 4, stride: 3, expert: true, padEnds: true);
        // Full windows at 0, 3, 6; then 9, the last step, padded.
        Assert.Equal(new[] { 0, 3, 6, 9 }, windows.Select(w => w.StartStep));
        Assert.Equal(new float[] { 1, 9, 9, 1, 2, 3, 0, 0, 9, 1, 2, 3, 0, 0, 9, 1, 2, 3, 0, 0, 9, 1, 2, 3 }, windows[3].Features);
        // Episodes shorter than the horizon are padded too.
        Assert.Equal(new[] { 0, 3, 6, 9 }, MazeWindows.Cut(ml, log.ToDataView(ml), horizon: 11, stride: 3, expert: false, padEnds: true).Select(w => w.StartStep));
    }

    [Fact]
    public void Episode_split_is_disjoint_seeded_and_holds_out_about_the_fraction()
    {
        var ml = new MLContext(1);
        var log = new TransitionLog();
        for (int e = 0; e < 200; e++)
            for (int t = 0; t < 3; t++)
                log.Add(e, t, [0, 0], [0, 0, 0, 0], 0);
        var (training, heldOut) = MazeWindows.Split(ml, log, 0.2, 7);
        var (training2, heldOut2) = MazeWindows.Split(ml, log, 0.2, 7);
        var held = heldOut.GetColumn<int>(TransitionLog.EpisodeIdColumn).Distinct().ToHashSet();
        Assert.Equal(held, heldOut2.GetColumn<int>(TransitionLog.EpisodeIdColumn).Distinct().ToHashSet());
        Assert.DoesNotContain(training.GetColumn<int>(TransitionLog.EpisodeIdColumn), held.Contains);
        Assert.Equal(200, held.Count + MazeWindows.EpisodeCount(training));
        Assert.InRange(held.Count, 20, 60);
        Assert.Equal(3 * held.Count, heldOut.GetColumn<int>(TransitionLog.EpisodeIdColumn).Count());   // whole episodes
    }

    [Fact]
    public void Reward_windows_mix_experts_and_base_at_the_fraction_and_masks_pick_the_features()
    {
        var expert = Enumerable.Range(0, 10).Select(i => new MazeWindow { EpisodeId = i, Label = true }).ToList();
        var @base = Enumerable.Range(0, 100).Select(i => new MazeWindow { EpisodeId = 1000 + i }).ToList();
        var half = GoalModels.RewardTrainingWindows(@base, expert, 0.5, 3);
        Assert.Equal(20, half.Count);
        Assert.Equal(10, half.Count(w => w.Label));
        Assert.Equal(20, half.Select(w => w.EpisodeId).Distinct().Count());
        Assert.Equal(half.Select(w => w.EpisodeId), GoalModels.RewardTrainingWindows(@base, expert, 0.5, 3).Select(w => w.EpisodeId));
        Assert.Equal(110, GoalModels.RewardTrainingWindows(@base, expert, 0.05, 3).Count);   // too few base windows: all of them
        Assert.Same(expert, GoalModels.RewardTrainingWindows(@base, expert, 1, 3));
        Assert.Equal([false, false, true, true, false, false], GoalModels.FeatureMask(RewardFeatures.Position));
        Assert.Equal([false, false, true, true, true, true], GoalModels.FeatureMask(RewardFeatures.Observation));
        Assert.All(GoalModels.FeatureMask(RewardFeatures.Transition), Assert.True);
    }

    [Fact]
    public void The_map_reward_fits_the_last_steps_of_each_window_and_the_accuracy_reward_every_step()
    {
        var s = Maze2DSettings.Default;
        Assert.Equal(4, s.MapRewardFittedSteps);
        var map = GoalModels.RewardOptions(s, RewardFeatures.Position, 1, null, null, default, s.MapRewardFittedSteps);
        int d = MazeWindows.StepDimension;
        Assert.Equal(s.Horizon * d, map.LossMask!.Length);
        Assert.All(map.LossMask[..((s.Horizon - 4) * d)], Assert.False);
        Assert.All(map.LossMask[((s.Horizon - 4) * d)..], Assert.True);
        Assert.Null(GoalModels.RewardOptions(s, RewardFeatures.Transition, 1, null, null, default).LossMask);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => (s with { MapRewardFittedSteps = s.Horizon + 1 }).Validate());
        Assert.Equal(nameof(Maze2DSettings.MapRewardFittedSteps), e.ParamName);
    }

    [Fact]
    public void Seed_streams_are_fixed_distinct_and_non_negative()
    {
        var seeds = new SeedStreams(1);
        Assert.Equal(seeds.For("reward", 3), new SeedStreams(1).For("reward", 3));
        var all = new[] { seeds.For("reward", 0), seeds.For("reward", 1), seeds.For("map-reward", 0), new SeedStreams(2).For("reward", 0) };
        Assert.Equal(all.Length, all.Distinct().Count());
        Assert.All(all, s => Assert.True(s >= 0));
    }

    [Fact]
    public void Model_store_keys_follow_every_setting_and_a_stale_or_damaged_model_is_never_served()
    {
        string folder = Path.Combine(Path.GetTempPath(), "mlreward-store-" + Guid.NewGuid().ToString("N"));
        try
        {
            var quick = Maze2DSettings.Quick;
            string key = ModelStore.Key(quick, "base");
            Assert.Equal(key, ModelStore.Key(Maze2DSettings.Quick, "base"));
            Assert.Equal(key, ModelStore.Key(quick with { FastTreeTrees = 21, Name = "renamed" }, "base"));   // evaluation only
            Assert.NotEqual(key, ModelStore.Key(quick with { ExpertLearningRate = 2e-3 }, "base"));            // unmarked: every key
            Assert.NotEqual(key, ModelStore.Key(quick with { DiffusionSteps = 12 }, "base"));
            Assert.NotEqual(key, ModelStore.Key(quick, "expert"));
            // A reward setting changes the rewards' keys and leaves the diffusion models'.
            Assert.Equal(key, ModelStore.Key(quick with { RewardHiddenSizes = [32, 33] }, "base"));
            string reward = ModelStore.Key(quick, "reward", "1_1");
            Assert.NotEqual(reward, ModelStore.Key(quick with { RewardHiddenSizes = [32, 33] }, "reward", "1_1"));
            Assert.NotEqual(reward, ModelStore.Key(quick, "reward", "1_2"));
            Assert.Equal(reward, ModelStore.Key(quick with { MapRewardFeatures = RewardFeatures.Observation }, "reward", "1_1"));
            Assert.NotEqual(ModelStore.Key(quick, "map-reward", "1_1"), ModelStore.Key(quick with { MapRewardFeatures = RewardFeatures.Observation }, "map-reward", "1_1"));

            var ml = new MLContext(1);
            var data = ml.Data.LoadFromEnumerable(new[] { new { X = 1f } });
            var model = ml.Transforms.CopyColumns("Y", "X").Fit(data);
            var cache = new ModelStore(ml, folder, hashedNames: true);
            Assert.Null(cache.TryLoad<ITransformer>("m", key));
            cache.Save(model, data.Schema, "m", key);
            Assert.NotNull(cache.TryLoad<ITransformer>("m", key));
            Assert.Null(cache.TryLoad<ITransformer>("m", ModelStore.Key(quick, "other")));
            File.WriteAllBytes(cache.PathOf("m", key), [1, 2, 3]);
            Assert.Null(cache.TryLoad<ITransformer>("m", key));   // damaged: retrained

            var output = new ModelStore(ml, folder, hashedNames: false);
            output.Save(model, data.Schema, "m", key);
            Assert.NotNull(output.Load<ITransformer>("m", key));
            var stale = Assert.Throws<InvalidDataException>(() => output.Load<ITransformer>("m", ModelStore.Key(quick with { Seed = 9 }, "base")));
            Assert.Contains("m.zip", stale.Message);
            Assert.Contains("other settings", stale.Message);
            Assert.Throws<FileNotFoundException>(() => output.Load<ITransformer>("n", key));
        }
        finally
        {
            if (Directory.Exists(folder))
                Directory.Delete(folder, recursive: true);
        }
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
        var changed = SettingsOverrides.Apply(preset, ["rewardtrainingsteps=7", "NetworkMultipliers=1,2", "RewardFeatures=position", "predict_noise=false", "sampler_guidance_scale=2.5"], "Name");
        Assert.Equal(7, changed.RewardTrainingSteps);
        Assert.Equal(RewardFeatures.Position, changed.RewardFeatures);
        Assert.False(changed.PredictNoise);                 // report.json's snake_case names work too
        Assert.Equal(2.5, changed.SamplerGuidanceScale);
        Assert.Contains("cannot be changed", Assert.Throws<ArgumentException>(() => SettingsOverrides.Apply(preset, ["Name=x"], "Name")).Message);
        Assert.NotEqual(7, preset.RewardTrainingSteps);
        Assert.Contains("Unknown setting", Assert.Throws<ArgumentException>(() => SettingsOverrides.Apply(preset, ["Nope=1"], "Name")).Message);
        Assert.Throws<ArgumentException>(() => SettingsOverrides.Apply(preset, ["Horizon=abc"], "Name"));
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
