using System.Text.Json;
using MLReward.Cli;
using MLReward.Experiments.Locomotion;
using Xunit.Abstractions;

namespace MLReward.Cli.Tests;

/// <summary>
/// <c>mlreward locomotion --preset quick</c> end to end for the three tasks (tiny data and models, 4 episodes of 40 steps: a
/// smoke test of well-formed outputs, not of the result), and the statistics the report relies on.
/// Needs MuJoCo 2.2.2 (<c>apt-get install -y libmujoco2.2.2</c>); without it the run tests return early and say so.
/// </summary>
public class LocomotionQuickTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("cheetah")]
    [InlineData("hopper")]
    [InlineData("walker")]
    public void QuickPresetWritesWellFormedReports(string env)
    {
        if (!MLReward.Locomotion.MuJoCo.IsAvailable)
        {
            output.WriteLine($"MuJoCo is not available, test not run: {MLReward.Locomotion.MuJoCo.UnavailableReason}");
            return;
        }
        string dir = Path.Combine(Path.GetTempPath(), $"mlreward-locomotion-{env}-{Guid.NewGuid():N}");
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            int code = LocomotionCommand.Create().Parse(["--env", env, "--preset", "quick", "--out", dir, "--no-cache"]).Invoke();
            output.WriteLine($"{env} quick preset: {clock.Elapsed.TotalSeconds:F1} s");
            Assert.Equal(0, code);

            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "report.json")));
            var root = json.RootElement;
            Assert.Equal(2, root.GetProperty("schema_version").GetInt32());
            Assert.Equal(MLReward.Experiments.BuildInfo.ToolVersion, root.GetProperty("tool_version").GetString());
            Assert.Equal(MLReward.Experiments.BuildInfo.Commit, root.GetProperty("commit").GetString());
            Assert.Equal("locomotion", root.GetProperty("experiment").GetString());
            Assert.Equal(env, root.GetProperty("environment").GetString());
            Assert.Equal("quick", root.GetProperty("preset").GetString());
            var settings = root.GetProperty("settings");
            Assert.Equal("Gaussian", settings.GetProperty("normalizer").GetString());   // enums by name, as --set takes them
            int episodes = settings.GetProperty("evaluation_episodes").GetInt32();
            int maxSteps = settings.GetProperty("evaluation_steps").GetInt32();
            foreach (var name in new[] { "unsteered", "steered", "expert", "random" })
            {
                var condition = root.GetProperty(name);
                Assert.Equal(episodes, condition.GetProperty("episodes").GetInt32());
                var returns = condition.GetProperty("returns").EnumerateArray().Select(r => r.GetDouble()).ToArray();
                var lengths = condition.GetProperty("lengths").EnumerateArray().Select(r => r.GetInt32()).ToArray();
                Assert.Equal(episodes, returns.Length);
                Assert.All(returns, r => Assert.True(double.IsFinite(r)));
                Assert.All(lengths, l => Assert.InRange(l, 1, maxSteps));
                Assert.Equal(returns.Average(), condition.GetProperty("mean_return").GetDouble(), 6);
                Assert.True(condition.GetProperty("standard_error").GetDouble() >= 0);
            }
            // The steered scale is the best candidate on the selection episodes, which have seeds of their own.
            var candidates = settings.GetProperty("scale_candidates").EnumerateArray().Select(c => c.GetDouble()).ToArray();
            var selection = root.GetProperty("scale_selection").EnumerateArray().ToArray();
            Assert.NotEmpty(candidates);
            Assert.Equal(candidates, selection.Select(r => r.GetProperty("scale").GetDouble()));
            Assert.All(selection, r => Assert.Equal(settings.GetProperty("selection_episodes").GetInt32(), r.GetProperty("episodes").GetInt32()));
            double chosen = selection.MaxBy(r => r.GetProperty("mean_return").GetDouble()).GetProperty("scale").GetDouble();
            Assert.Equal(chosen, root.GetProperty("steered").GetProperty("scale").GetDouble());
            var welch = root.GetProperty("welch");
            Assert.InRange(welch.GetProperty("p_two_sided").GetDouble(), 0, 1);
            Assert.InRange(welch.GetProperty("p_greater").GetDouble(), 0, 1);
            Assert.Equal(JsonValueKind.Number, root.GetProperty("gap_recovered").ValueKind);
            // D4RL-style scores: 0 at the run's random actions, 100 at its expert policy.
            double randomMean = root.GetProperty("random").GetProperty("mean_return").GetDouble();
            double expertMean = root.GetProperty("expert").GetProperty("mean_return").GetDouble();
            var scores = root.GetProperty("normalized_scores").EnumerateArray().ToArray();
            if (expertMean > randomMean)
            {
                string[] planners = root.TryGetProperty("expert_planner", out _) ? ["unsteered", "steered", "expert_planner"] : ["unsteered", "steered"];
                Assert.Equal(planners.Select(p => root.GetProperty(p).GetProperty("name").GetString()), scores.Select(n => n.GetProperty("condition").GetString()));
                foreach (var (score, name) in scores.Zip(planners))
                {
                    double mean = root.GetProperty(name).GetProperty("mean_return").GetDouble();
                    Assert.Equal(100 * (mean - randomMean) / (expertMean - randomMean), score.GetProperty("score").GetDouble(), 9);
                }
            }
            else
            {
                Assert.Empty(scores);
            }
            Assert.True(File.Exists(Path.Combine(dir, root.GetProperty("scale_plot").GetString()!)));
            Assert.InRange(root.GetProperty("reward_check").GetProperty("auc").GetDouble(), 0, 1);
            // The conservativeness diagnostic at t = 0, 5, 10, 15 and the last level, each asymmetry a share.
            var diagnostic = root.GetProperty("conservativeness").EnumerateArray().ToArray();
            Assert.Equal([0, 5, 10, 15, 19], diagnostic.Select(e => e.GetProperty("step").GetInt32()));
            Assert.All(diagnostic, e => Assert.InRange(e.GetProperty("asymmetry").GetDouble(), 0, 1));
            Assert.True(File.Exists(Path.Combine(dir, root.GetProperty("conservativeness_plot").GetString()!)));
            CheckEpisodes(env, dir, root, episodes);
            var timings = root.GetProperty("timings_seconds");
            foreach (var stage in new[] { "data", "base_diffusion", "expert_diffusion", "reward", "scale_selection_rollouts", "unsteered_rollouts", "steered_rollouts", "expert_rollouts" })
                Assert.True(timings.GetProperty(stage).GetDouble() >= 0, stage);
            Assert.True(root.GetProperty("base_data").GetProperty("windows").GetInt32() > 0);
            Assert.True(root.GetProperty("expert_data").GetProperty("windows").GetInt32() > 0);

            string markdown = File.ReadAllText(Path.Combine(dir, "report.md"));
            Assert.Contains("| unsteered base planner |", markdown);
            Assert.Contains("| steered base planner |", markdown);
            Assert.Contains("(chosen) |", markdown);
            Assert.Contains("| expert policy |", markdown);
            Assert.Contains("Welch t-test", markdown);
            Assert.Contains("Gap recovered", markdown);
            Assert.Contains("returns-vs-scale.png", markdown);

            byte[] png = File.ReadAllBytes(Path.Combine(dir, "returns.png"));
            Assert.True(png.Length > 1000);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png.Take(4).ToArray());
        }
        finally
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void CacheKeepsDiffusionModelsAcrossRewardSettings()
    {
        if (!MLReward.Locomotion.MuJoCo.IsAvailable)
        {
            output.WriteLine($"MuJoCo is not available, test not run: {MLReward.Locomotion.MuJoCo.UnavailableReason}");
            return;
        }
        string root = Path.Combine(Path.GetTempPath(), $"mlreward-locomotion-cache-{Guid.NewGuid():N}");
        string cache = Path.Combine(root, "cache");
        JsonElement Run(string name, string[] options, params string[] sets)
        {
            string dir = Path.Combine(root, name);
            string[] args = ["--env", "cheetah", "--preset", "quick", "--out", dir, "--cache", cache, "--episodes", "2", "--set", "EvaluationSteps=3",
                "--set", "ExpertPlannerDiagnostic=false", .. options, .. sets.SelectMany(s => new[] { "--set", s })];
            Assert.Equal(0, LocomotionCommand.Create().Parse(args).Invoke());
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "report.json")));
            return json.RootElement.Clone();
        }
        try
        {
            var first = Run("first", []);
            Assert.False(first.GetProperty("models_cached").GetBoolean());
            Assert.True(first.GetProperty("timings_seconds").GetProperty("base_diffusion").GetDouble() > 0);
            Assert.Equal(["base.zip", "expert.zip", "reward.zip", "sampler.zip"], first.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("file").GetString()));

            // Another reward setting: the diffusion models come from the cache, the reward is trained.
            var other = Run("other-reward", [], "RewardTrainingSteps=61");
            Assert.False(other.GetProperty("models_cached").GetBoolean());
            var reused = other.GetProperty("models_reused");
            Assert.True(reused.GetProperty("base").GetBoolean());
            Assert.True(reused.GetProperty("expert").GetBoolean());
            Assert.False(reused.GetProperty("reward").GetBoolean());
            Assert.False(other.GetProperty("losses").TryGetProperty("base", out _));   // loaded, not trained
            Assert.True(other.GetProperty("losses").TryGetProperty("reward", out _));

            // The first settings again: everything is loaded, and the planners meet the same returns.
            var again = Run("again", []);
            Assert.True(again.GetProperty("models_cached").GetBoolean());
            foreach (var condition in new[] { "unsteered", "steered" })
                Assert.Equal(first.GetProperty(condition).GetProperty("returns").EnumerateArray().Select(r => r.GetDouble()),
                    again.GetProperty(condition).GetProperty("returns").EnumerateArray().Select(r => r.GetDouble()));
            // One cache: two diffusion models and two rewards, each an ML.NET zip with its key; every run wrote its own zips.
            Assert.Equal(4, Directory.GetFiles(cache, "*.zip").Length);
            foreach (var name in new[] { "base.zip", "expert.zip", "reward.zip", "sampler.zip" })
                Assert.True(File.Exists(Path.Combine(root, "again", name)), name);
            // An earlier run's models reproduce its returns with nothing trained.
            var fromModels = Run("from-models", ["--models", Path.Combine(root, "first")]);
            Assert.True(fromModels.GetProperty("models_cached").GetBoolean());
            Assert.Equal(first.GetProperty("steered").GetProperty("returns").EnumerateArray().Select(r => r.GetDouble()),
                fromModels.GetProperty("steered").GetProperty("returns").EnumerateArray().Select(r => r.GetDouble()));
        }
        finally
        {
            if (Directory.Exists(root))
                Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void SetOverridesParseEnumsAndArraysAndNameBadValues()
    {
        var settings = LocomotionCommand.Apply(LocomotionSettings.For("cheetah", "default"),
            ["normalizer=limits", "first_action_weight=1", "NetworkMultipliers=1,4,8", "BasePolicies=medium", "scale_sweep=0.5,2"]);
        Assert.Equal(Microsoft.ML.RewardExtraction.NormalizerKind.Limits, settings.Normalizer);
        Assert.Equal(1, settings.FirstActionWeight);
        Assert.Equal([1, 4, 8], settings.NetworkMultipliers);
        Assert.Equal(["medium"], settings.BasePolicies);
        Assert.Equal([0.5, 2.0], settings.ScaleSweep);
        Assert.Contains("cannot be changed", Assert.Throws<ArgumentException>(() => LocomotionCommand.Apply(settings, ["environment=hopper"])).Message);
        // Diffuser's locomotion defaults unless overridden.
        Assert.Equal(Microsoft.ML.RewardExtraction.NormalizerKind.Gaussian, LocomotionSettings.For("hopper", "default").Normalizer);
        Assert.Equal(10, LocomotionSettings.For("hopper", "default").FirstActionWeight);

        var bad = Assert.Throws<ArgumentException>(() => LocomotionCommand.Apply(settings, ["Normalizer=minmax"]));
        Assert.Contains("'minmax' is not a valid value of Normalizer", bad.Message);
        var clamped = settings with { Normalizer = Microsoft.ML.RewardExtraction.NormalizerKind.Gaussian, ClipDenoised = true };
        Assert.Contains("ClipDenoised", Assert.Throws<ArgumentException>(clamped.Validate).Message);
        Assert.Contains("FirstActionWeight", Assert.Throws<ArgumentException>((settings with { FirstActionWeight = -1 }).Validate).Message);
    }

    [Fact]
    public void WalkerPresetsTakeTheHoppersWindowAndDataSizes()
    {
        var walker = LocomotionSettings.For("walker", "default");
        var hopper = LocomotionSettings.For("hopper", "default");
        Assert.Equal("walker", walker.Environment);
        Assert.Equal(16, walker.Horizon);   // 0.008 s per step, as the hopper
        Assert.Equal(10, walker.StopGradientBelow);
        Assert.Equal((16, 24), (walker.BaseEpisodesPerPolicy, walker.ExpertEpisodes));
        Assert.Equal(hopper.ScaleCandidates, walker.ScaleCandidates);
        Assert.Equal(4, walker.GuidanceScale);
        walker.Validate();
        var quick = LocomotionSettings.For("WALKER", "quick");
        Assert.Equal(("walker", "quick", 150), (quick.Environment, quick.Preset, quick.DataEpisodeSteps));
        Assert.Equal([4.0, 16.0], quick.ScaleCandidates);
        quick.Validate();
        var unknown = Assert.Throws<ArgumentException>(() => LocomotionSettings.For("ant", "quick"));
        Assert.StartsWith("Unknown task 'ant' (expected one of: cheetah, hopper, walker).", unknown.Message);
        Assert.Contains("Environment must be one of cheetah, hopper, walker, not 'ant'.",
            Assert.Throws<ArgumentException>((walker with { Environment = "ant" }).Validate).Message);
    }

    [Fact]
    public void StudentTMatchesReferenceValues()
    {
        // References from numerical integration of the t density.
        Assert.Equal(0.07338803477, 2 * Statistics.StudentTUpperTail(2.0, 10), 9);
        Assert.Equal(0.25, Statistics.StudentTUpperTail(1, 1), 12);
        Assert.Equal(0.67733218334, Statistics.StudentTUpperTail(-0.5, 3.7), 9);
        Assert.Equal(0.00151887349, Statistics.StudentTUpperTail(3.1, 55.5), 9);
        Assert.Equal(0.5, Statistics.StudentTCdf(0, 7), 12);
    }

    [Fact]
    public void WelchMatchesReferenceValues()
    {
        double[] a = [1.0, 2.5, 3.1, 4.7, 2.2], b = [0.3, 1.1, 0.9, 2.0, 1.4, 0.2];
        var r = Statistics.Welch(a, b);
        Assert.Equal(2.576449660766006, r.T, 9);
        Assert.Equal(5.65425608498516, r.DegreesOfFreedom, 9);
        Assert.Equal(0.04428855208, r.PTwoSided, 8);
        Assert.Equal(r.PTwoSided / 2, r.PGreater, 12);
        var reversed = Statistics.Welch(b, a);
        Assert.Equal(r.PTwoSided, reversed.PTwoSided, 12);
        Assert.Equal(1 - r.PGreater, reversed.PGreater, 12);
    }

    [Fact]
    public void PairedTestMatchesTheClosedFormForFourDegreesOfFreedom()
    {
        // Differences 0.7, 1.4, 2.2, 2.7, 0.8: mean 1.56, t = 3.99344..., and for df = 4 the t distribution's CDF has the
        // closed form 1/2 + (3/8) u (1 - u^2/12) with u = t / sqrt(1 + t^2/4), which gives the p-values below.
        double[] a = [1.0, 2.5, 3.1, 4.7, 2.2], b = [0.3, 1.1, 0.9, 2.0, 1.4];
        var r = Statistics.Paired(a, b);
        Assert.Equal(3.9934415433832755, r.T, 9);
        Assert.Equal(4, r.DegreesOfFreedom);
        Assert.Equal(0.008109185049156364, r.PGreater, 9);
        Assert.Equal(0.01621837009831273, r.PTwoSided, 9);
        Assert.Equal(1 - r.PGreater, Statistics.Paired(b, a).PGreater, 12);
        Assert.Throws<ArgumentException>(() => Statistics.Paired(a, b[..4]));
    }

    /// <summary>The per-episode table matches the conditions' returns, and trajectories.csv holds what the planners executed:
    /// replaying the steered planner's first episode from its seed with the recorded actions gives back its observations and
    /// its return.</summary>
    private static void CheckEpisodes(string env, string dir, JsonElement root, int episodes)
    {
        var diagnostics = root.GetProperty("episode_diagnostics");
        var rows = diagnostics.GetProperty("episodes").EnumerateArray().ToArray();
        Assert.Equal(episodes, rows.Length);
        double[] Returns(string condition) => root.GetProperty(condition).GetProperty("returns").EnumerateArray().Select(r => r.GetDouble()).ToArray();
        Assert.Equal(Returns("unsteered"), rows.Select(r => r.GetProperty("unsteered_return").GetDouble()));
        Assert.Equal(Returns("steered"), rows.Select(r => r.GetProperty("steered_return").GetDouble()));
        Assert.Equal(Returns("expert"), rows.Select(r => r.GetProperty("expert_return").GetDouble()));
        Assert.True(File.Exists(Path.Combine(dir, diagnostics.GetProperty("plot").GetString()!)));

        var lines = File.ReadAllLines(Path.Combine(dir, diagnostics.GetProperty("trajectories").GetString()!));
        int Lengths(string condition) => root.GetProperty(condition).GetProperty("lengths").EnumerateArray().Sum(l => l.GetInt32());
        Assert.Equal(1 + Lengths("unsteered") + Lengths("steered"), lines.Length);
        var header = lines[0].Split(',');
        using var task = MLReward.LocomotionAgents.LocomotionTasks.Create(env);
        int a = task.ActionSize, o = task.ObservationSize;
        Assert.Equal(4 + a + o, header.Length);
        var first = lines.Skip(1).Select(l => l.Split(',')).Where(f => f[0] == "steered" && f[1] == "0").ToArray();
        Assert.Equal(rows[0].GetProperty("steered_length").GetInt32(), first.Length);
        float Value(string text) => float.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
        var observation = task.Reset(int.Parse(first[0][2], System.Globalization.CultureInfo.InvariantCulture));
        double total = 0;
        foreach (var f in first)
        {
            for (int k = 0; k < o; k++)
                Assert.Equal(observation[k], Value(f[4 + a + k]), 3e-4 * Math.Max(1, Math.Abs(observation[k])));
            var action = Enumerable.Range(0, a).Select(k => Value(f[4 + k])).ToArray();
            var result = task.Step(action);
            total += result.Reward;
            observation = result.Observation;
        }
        // The CSV keeps 6 significant digits of each action, so the replayed return is close, not bit-equal.
        double recorded = rows[0].GetProperty("steered_return").GetDouble();
        Assert.Equal(recorded, total, 0.01 * Math.Max(1, Math.Abs(recorded)));
    }
}
