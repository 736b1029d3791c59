using System.Globalization;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;
using MLReward.Environments.Maze2D;
using MLReward.Experiments;
using MLReward.Experiments.Maze2D;

namespace MLReward.Cli.Tests;

/// <summary>The Maze2D experiment end to end in quick mode, on a layout none of the presets were tuned on, and what a user does
/// with the models it hands back: score its held-out data in a fresh process, rerun from them, sample from them.</summary>
public class Maze2DQuickTests
{
    // A ring with one spur: not one of the built-in mazes.
    private const string RingLayout = "######\n#OOOO#\n#O##O#\n#OOOO#\n###O##\n######";

    [Fact]
    public void QuickRunHandsBackModelsThatReproduceItsRewardsInAFreshProcessAndInALaterRun()
    {
        var layout = MazeLayout.Parse(RingLayout, "ring");
        var goals = new[] { new Vec2(1, 1), new Vec2(4, 3) };
        string root = Path.Combine(Path.GetTempPath(), "mlreward-maze-quick-" + Guid.NewGuid().ToString("N"));
        string output = Path.Combine(root, "run"), rerun = Path.Combine(root, "rerun");
        try
        {
            var report = new Maze2DExperiment(layout, goals, Maze2DSettings.Quick,
                new Maze2DRunOptions { OutputDirectory = output, CacheDirectory = Path.Combine(root, "cache"), Threads = 1 }).Run();

            // Report and pictures.
            foreach (var goal in goals)
            {
                foreach (var picture in new[] { Maze2DExperiment.HeatmapFileName(goal), $"samples-{goal.X}_{goal.Y}.png", $"conservativeness-{goal.X}_{goal.Y}.png" })
                    Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(output, picture))[..4]);
            }
            var text = File.ReadAllText(Path.Combine(output, "report.json"));
            foreach (var field in new[] { "goal", "peak", "goal_error", "hit", "heldout_auc", "heldout_accuracy", "fasttree_accuracy", "models", "input_column", "conservativeness", "explained_fraction", "asymmetry", "mean_explained_fraction" })
                Assert.Contains($"\"{field}\"", text);
            Assert.Contains($"\"schema_version\": 2,", text);
            Assert.Contains($"\"commit\": \"{BuildInfo.Commit}\",", text);
            Assert.Contains("\"reward_features\": \"Transition\"", text);
            Assert.Contains("| goal |", File.ReadAllText(Path.Combine(output, "report.md")));
            Assert.Equal(goals.Length, report.Goals.Count);
            Assert.Equal(["base.zip", "reference.zip"], report.Models.Select(m => m.File));
            foreach (var result in report.Goals)
            {
                Assert.InRange(result.HeldoutAccuracy, 0, 1);
                Assert.InRange(result.HeldoutAuc, 0, 1);
                Assert.InRange(result.FasttreeAccuracy, 0, 1);
                Assert.True(double.IsFinite(result.GoalError) && result.GoalError >= 0, $"goal error {result.GoalError}");
                Assert.Equal(result.GoalError <= 1.0, result.Hit);
                Assert.Equal(["expert", "reward", "map-reward", "sampler"], result.Models.Select(m => m.File[..m.File.LastIndexOf('-')]));
                Assert.All(new[] { "unguided", "guided" }, k => Assert.InRange(result.SampledGoalDistance![k], 0, 10));
                Assert.NotEqual(result.SampledGoalDistance!["unguided"], result.SampledGoalDistance["guided"]);
                // The diagnostic at t = 0, 5 and 9 (quick preset: every 5th level and the last); the asymmetry is a share.
                Assert.Equal([0, 5, 9], result.Conservativeness!.Select(e => e.Step));
                Assert.All(result.Conservativeness!, e => Assert.InRange(e.Asymmetry, 0, 1));
                Assert.All(result.Conservativeness!, e => Assert.True(double.IsFinite(e.ExplainedFraction) && e.ExplainedFraction <= 1, $"explained fraction {e.ExplainedFraction}"));
            }
            Assert.Contains("Conservativeness per noise level t", File.ReadAllText(Path.Combine(output, "report.md")));

            foreach (var result in report.Goals)
            {
                string tag = string.Create(CultureInfo.InvariantCulture, $"{result.Goal[0]:0.##}_{result.Goal[1]:0.##}");
                var runScores = ReadScores(Path.Combine(output, result.HeldoutScores!));
                Assert.True(runScores.Count > 10);
                Assert.Contains(runScores.Keys, k => k.Episode.StartsWith("expert-", StringComparison.Ordinal));
                Assert.Contains(runScores.Keys, k => k.Episode.StartsWith("base-", StringComparison.Ordinal));

                // A fresh process that knows nothing of the experiment: mlreward score on the held-out CSV, every window.
                string scored = Path.Combine(root, $"scored-{tag}.csv");
                var (exit, log) = Maze2DQuickRunTests.RunCli(["score", "--model", Path.Combine(output, $"reward-{tag}.zip"),
                    "--data", Path.Combine(output, result.HeldoutData!), "--out", scored], TimeSpan.FromMinutes(2));
                Assert.True(exit == 0, log);
                var cliScores = ReadScores(scored);
                Assert.True(cliScores.Count > runScores.Count, "stride 1 scores every window, the run a subsample");
                foreach (var (key, reward) in runScores)
                    Assert.Equal(reward, cliScores[key]);   // bit for bit
                var episodes = File.ReadAllLines(Path.ChangeExtension(scored, null) + "-episodes.csv");
                Assert.Equal("Episode,Windows,Reward", episodes[0]);
                Assert.Equal(cliScores.Keys.Select(k => k.Episode).Distinct().Count(), episodes.Length - 1);
            }

            // A later run from the models folder trains nothing and gives the same rewards.
            var again = new Maze2DExperiment(layout, goals, Maze2DSettings.Quick,
                new Maze2DRunOptions { OutputDirectory = rerun, ModelsDirectory = output, Threads = 1 }).Run();
            Assert.True(again.Base.ModelCached);
            Assert.All(again.Goals, g => Assert.True(g.ExpertModelCached));
            Assert.Equal(report.Goals.Select(g => g.GoalError), again.Goals.Select(g => g.GoalError));
            foreach (var result in report.Goals)
                Assert.Equal(File.ReadAllText(Path.Combine(output, result.HeldoutScores!)), File.ReadAllText(Path.Combine(rerun, result.HeldoutScores!)));
            // ... and refuses models made with other settings, naming the file.
            var other = new Maze2DExperiment(layout, goals, Maze2DSettings.Quick with { DiffusionSteps = 12 },
                new Maze2DRunOptions { OutputDirectory = Path.Combine(root, "other"), ModelsDirectory = output, Threads = 1 });
            var error = Assert.Throws<InvalidDataException>(() => other.Run());
            Assert.Contains("base.zip", error.Message);   // the key holds every setting, so the first model loaded is already refused
            Assert.Contains("other settings", error.Message);

            // The sampler: a conditioned sample holds the known start; the CLI writes samples and the maze picture.
            var ml = new MLContext(1);
            using (var sampler = SavedSampler.Load(ml, Path.Combine(output, "sampler-1_1.zip")))
            {
                var start = new List<SavedSampler.Known> { new(0, 2, 1f), new(0, 3, 3f) };
                var samples = SavedSampler.Sample(ml, sampler, 3, firstSeed: 5, condition: start);
                Assert.All(samples, s => Assert.Equal((1f, 3f), (s[2], s[3])));
                Assert.Equal(samples[1], SavedSampler.Sample(ml, sampler, 3, firstSeed: 5, condition: start)[1]);
                Assert.NotEqual(samples[0], SavedSampler.Sample(ml, sampler, 1, firstSeed: 5, scale: 0, condition: start)[0]);
                // DDIM over 4 steps: another chain, deterministic, and it keeps the known start too.
                var ddim = SavedSampler.Sample(ml, sampler, 3, firstSeed: 5, condition: start, samplingSteps: 4);
                Assert.All(ddim, s => Assert.Equal((1f, 3f), (s[2], s[3])));
                Assert.NotEqual(samples[0], ddim[0]);
                Assert.Equal(ddim[2], SavedSampler.Sample(ml, sampler, 3, firstSeed: 5, condition: start, samplingSteps: 4)[2]);
            }
            string layoutFile = Path.Combine(root, "ring.txt");
            File.WriteAllText(layoutFile, RingLayout);
            var (sampleExit, sampleLog) = Maze2DQuickRunTests.RunCli(["sample", "--model", Path.Combine(output, "sampler-1_1.zip"), "--count", "4",
                "--condition", "0:2=1", "--condition", "0:3=1", "--steps", "5", "--out", Path.Combine(root, "samples.csv"), "--layout", layoutFile], TimeSpan.FromMinutes(2));
            Assert.True(sampleExit == 0, sampleLog);
            var sampleLines = File.ReadAllLines(Path.Combine(root, "samples.csv"));
            Assert.Equal(1 + 4 * Maze2DSettings.Quick.Horizon, sampleLines.Length);
            Assert.Equal("0,0,", sampleLines[1][..4]);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(root, "samples.png"))[..4]);
        }
        finally
        {
            if (Directory.Exists(root))
                Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void ScoringACsvNamesWhatDoesNotFit()
    {
        string root = Path.Combine(Path.GetTempPath(), "mlreward-score-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            var ml = new MLContext(1);
            var shape = SampleShape.Trajectory(4, 2);
            var rows = Enumerable.Range(0, 40).Select(i => new Row { Features = Enumerable.Range(0, 8).Select(k => (float)Math.Sin(i + k)).ToArray(), Label = i % 2 == 0 }).ToList();
            var schema = Microsoft.ML.Data.SchemaDefinition.Create(typeof(Row));
            schema[nameof(Row.Features)].ColumnType = new Microsoft.ML.Data.VectorDataViewType(Microsoft.ML.Data.NumberDataViewType.Single, 8);
            var view = ml.Data.LoadFromEnumerable(rows, schema);
            var options = new RelativeRewardExtractor.Options { Shape = shape };
            options.BaseModel.TrainingSteps = options.ExpertModel.TrainingSteps = options.Reward.TrainingSteps = 2;
            using var chain = ml.RewardExtraction().ExtractRelativeReward(options).Fit(view);
            string model = Path.Combine(root, "reward.zip");
            ml.Model.Save(chain.LastTransformer, view.Schema, model);

            string csv = Path.Combine(root, "t.csv");
            File.WriteAllLines(csv, ["Run,A,B,C", .. Enumerable.Range(0, 6).Select(i => $"e1,{i},{i},{i}")]);
            Assert.Contains("no episode column 'Episode'", Assert.Throws<InvalidDataException>(() => TrajectoryScoring.Score(ml, model, csv)).Message);
            var wrongCount = Assert.Throws<InvalidDataException>(() => TrajectoryScoring.Score(ml, model, csv, "Run")).Message;
            Assert.Contains("reads 2 values per step", wrongCount);
            Assert.Contains("3 feature columns (A, B, C)", wrongCount);
            Assert.Contains("no feature column 'D'", Assert.Throws<InvalidDataException>(() => TrajectoryScoring.Score(ml, model, csv, "Run", ["A", "D"])).Message);
            var windows = TrajectoryScoring.Score(ml, model, csv, "Run", ["A", "C"]);
            Assert.Equal([0, 1, 2], windows.Select(w => w.StartStep));   // 6 steps, H = 4
            var perEpisode = Assert.Single(TrajectoryScoring.PerEpisode(windows));
            Assert.Equal(windows.Sum(w => (double)w.Reward), perEpisode.Reward, 12);
            File.WriteAllLines(csv, ["Run,A,B", "e1,1,2", "e1,1,2"]);
            Assert.Contains("at least 4 steps", Assert.Throws<InvalidDataException>(() => TrajectoryScoring.Score(ml, model, csv, "Run")).Message);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
        public bool Label { get; set; }
    }

    private static Dictionary<(string Episode, int StartStep), float> ReadScores(string path)
    {
        var lines = File.ReadAllLines(path);
        int reward = Array.IndexOf(lines[0].Split(','), "Reward");
        return lines.Skip(1).Select(l => l.Split(',')).ToDictionary(
            p => (p[0], int.Parse(p[1], CultureInfo.InvariantCulture)), p => float.Parse(p[reward], CultureInfo.InvariantCulture));
    }
}
