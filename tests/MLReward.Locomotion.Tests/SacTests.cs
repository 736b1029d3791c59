using MLReward.LocomotionAgents;
using static TorchSharp.torch;

namespace MLReward.Locomotion.Tests;

/// <summary>SAC tests share torch's global seed (network initialisation): they run one at a time.</summary>
[CollectionDefinition(nameof(SacTests), DisableParallelization = true)]
public class SacCollection;

[Collection(nameof(SacTests))]
public class SacTests
{
    /// <summary>Small tensors: one thread is fastest and avoids stalls on a busy machine (process-wide setting).</summary>
    internal static void UseOneThread() => set_num_threads(1);

    public SacTests() => UseOneThread();

    private static readonly SacOptions Small = new() { HiddenSizes = [32, 32], BatchSize = 64, Seed = 7 };

    /// <summary>A fixed toy batch: 64 transitions with 4-d observations and 2-d actions, rewards a smooth function of (s, a).</summary>
    private static TransitionBatch ToyBatch(int seed = 3)
    {
        var random = new Random(seed);
        float[] Uniform(int n) => Enumerable.Range(0, n).Select(_ => (float)(2 * random.NextDouble() - 1)).ToArray();
        float[] obs = Uniform(64 * 4), act = Uniform(64 * 2), next = Uniform(64 * 4);
        float[] reward = Enumerable.Range(0, 64).Select(i => obs[4 * i] + 0.5f * act[2 * i + 1]).ToArray();
        float[] terminal = Enumerable.Range(0, 64).Select(i => i % 8 == 0 ? 1f : 0f).ToArray();
        return new TransitionBatch(tensor(obs, new long[] { 64, 4 }), tensor(act, new long[] { 64, 2 }),
            tensor(reward), tensor(next, new long[] { 64, 4 }), tensor(terminal));
    }

    private static ReplayBuffer ToyBuffer(int count = 500)
    {
        var buffer = new ReplayBuffer(4, 2, 1000);
        var random = new Random(11);
        float[] Uniform(int n) => Enumerable.Range(0, n).Select(_ => (float)(2 * random.NextDouble() - 1)).ToArray();
        for (int i = 0; i < count; i++)
        {
            float[] o = Uniform(4), a = Uniform(2);
            buffer.Add(o, a, o[0] - a[1], Uniform(4), i % 50 == 49);
        }
        return buffer;
    }

    [Fact]
    public void UpdateReducesCriticLossOnFixedBatch()
    {
        using var agent = new SacAgent(4, 2, Small with { Gamma = 0.5 });
        using var scope = NewDisposeScope();
        TransitionBatch batch = ToyBatch();
        float before = agent.CriticLoss(batch);
        SacUpdateStats stats = default;
        for (int i = 0; i < 300; i++)
            stats = agent.Update(batch);
        float after = agent.CriticLoss(batch);
        Assert.True(float.IsFinite(stats.ActorLoss) && float.IsFinite(stats.Entropy) && stats.Alpha > 0);
        Assert.Equal(300, agent.UpdateCount);
        Assert.True(after < 0.2 * before, $"critic loss {before} -> {after}");
        // Automatic entropy tuning moved alpha away from its initial 1.
        Assert.NotEqual(1.0, agent.Alpha, 3);
    }

    [Fact]
    public void TargetCriticsFollowByPolyakAveraging()
    {
        using var agent = new SacAgent(4, 2, Small with { Tau = 0.005 });
        using var scope = NewDisposeScope();
        var targetBefore = agent.TargetCritic.parameters().Select(p => p.detach().clone()).ToArray();
        agent.Update(ToyBatch());
        var critic = agent.Critic.parameters().ToArray();
        var target = agent.TargetCritic.parameters().ToArray();
        for (int i = 0; i < target.Length; i++)
        {
            Tensor expected = 0.995 * targetBefore[i] + 0.005 * critic[i];
            Assert.True(allclose(target[i], expected, rtol: 1e-5, atol: 1e-6), $"target parameter {i}");
        }
    }

    [Fact]
    public void SquashedLogProbMatchesClosedFormAndIntegratesToOne()
    {
        using var scope = NewDisposeScope();
        // Tensor version against the scalar change-of-variables formula, including |u| large (stable form).
        double[] u = [-4.0, -0.3, 0.0, 0.7, 6.0], mean = [0.1, -0.5, 0.2, 0.3, 2.0], logStd = [-0.2, 0.3, -1.0, 0.0, 0.5];
        Tensor lp = SquashedGaussian.LogProb(tensor(u).unsqueeze(1), tensor(mean).unsqueeze(1), tensor(logStd).unsqueeze(1));
        for (int i = 0; i < u.Length; i++)
            Assert.Equal(SquashedGaussian.LogProb([u[i]], [mean[i]], [logStd[i]]), lp[i].item<double>(), 9);

        // A density of a in (-1, 1): exp(log p(a)) integrates to 1 (midpoint rule in u-space via a = tanh(u)).
        const int n = 200_000;
        Tensor grid = linspace(-12, 12, n, dtype: ScalarType.Float64);
        double du = 24.0 / (n - 1);
        Tensor m = full(n, 1, 0.4, dtype: ScalarType.Float64), s = full(n, 1, Math.Log(0.8), dtype: ScalarType.Float64);
        Tensor logp = SquashedGaussian.LogProb(grid.unsqueeze(1), m, s);
        // da = (1 - tanh(u)^2) du
        double integral = (logp.exp() * (1 - grid.tanh().square())).sum().item<double>() * du;
        Assert.Equal(1.0, integral, 4);

        // Two independent dimensions: log-probs add.
        Tensor two = SquashedGaussian.LogProb(tensor(new[] { 0.3, -1.2 }).unsqueeze(0), tensor(new[] { 0.0, 0.5 }).unsqueeze(0), tensor(new[] { -0.5, 0.1 }).unsqueeze(0));
        double sum = SquashedGaussian.LogProb([0.3], [0.0], [-0.5]) + SquashedGaussian.LogProb([-1.2], [0.5], [0.1]);
        Assert.Equal(sum, two.item<double>(), 9);
    }

    [Fact]
    public void SampledActionsAreSquashedWithConsistentLogProb()
    {
        using var agent = new SacAgent(4, 2, Small);
        using var scope = NewDisposeScope();
        Tensor obs = ToyBatch().Observation;
        var (action, logProb) = agent.Actor.Sample(obs);
        Assert.True(action.abs().max().item<float>() <= 1f);
        Assert.Equal(new long[] { 64 }, logProb.shape);
        var (mean, logStd) = agent.Actor.forward(obs);
        // Recover u = atanh(a) and recompute the log-probability.
        Tensor u = action.to(ScalarType.Float64).clamp(-0.999999, 0.999999).atanh();
        Tensor expected = SquashedGaussian.LogProb(u, mean.to(ScalarType.Float64), logStd.to(ScalarType.Float64));
        Assert.True(allclose(logProb.to(ScalarType.Float64), expected, rtol: 1e-3, atol: 1e-2));
    }

    [Fact]
    public void SameSeedGivesSameTrainingDifferentSeedDoesNot()
    {
        float[] Train(int seed)
        {
            using var agent = new SacAgent(4, 2, Small with { Seed = seed });
            var buffer = ToyBuffer();
            var random = new Random(seed);
            for (int i = 0; i < 20; i++)
                agent.Update(buffer, random);
            return agent.Act([0.1f, -0.2f, 0.3f, 0.4f], deterministic: false, new Random(5))
                .Concat(agent.Act([0.1f, -0.2f, 0.3f, 0.4f], deterministic: true)).ToArray();
        }
        Assert.Equal(Train(1), Train(1));
        Assert.NotEqual(Train(1), Train(2));
    }

    [Fact]
    public void CheckpointResumesExactly()
    {
        var buffer = ToyBuffer();
        using var original = new SacAgent(4, 2, Small);
        var random = new Random(1);
        for (int i = 0; i < 10; i++)
            original.Update(buffer, random);

        using var memory = new MemoryStream();
        using (var writer = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true))
            original.SaveCheckpoint(writer);
        memory.Position = 0;
        using var restored = SacAgent.LoadCheckpoint(new BinaryReader(memory));
        Assert.Equal(original.UpdateCount, restored.UpdateCount);
        Assert.Equal(original.Alpha, restored.Alpha, 6);

        // Continue both on the same minibatches: Adam moments and the sampling generator were restored.
        var r1 = new Random(99);
        var r2 = new Random(99);
        for (int i = 0; i < 3; i++)
        {
            var a = original.Update(buffer, r1);
            var b = restored.Update(buffer, r2);
            Assert.Equal(a, b);
        }

        // The replay buffer round-trips too.
        using var bufferMemory = new MemoryStream();
        buffer.Save(new BinaryWriter(bufferMemory));
        bufferMemory.Position = 0;
        var copy = ReplayBuffer.Load(new BinaryReader(bufferMemory));
        Assert.Equal(buffer.Count, copy.Count);
        using var scope = NewDisposeScope();
        Assert.True(buffer.Sample(16, new Random(4)).Observation.eq(copy.Sample(16, new Random(4)).Observation).all().item<bool>());
    }

    [Fact]
    public void PolicyFileRoundTripGivesIdenticalActions()
    {
        using var agent = new SacAgent(4, 2, Small);
        var buffer = ToyBuffer();
        var random = new Random(2);
        for (int i = 0; i < 5; i++)
            agent.Update(buffer, random);
        using var memory = new MemoryStream();
        agent.SavePolicy(memory, "toy", trainingSteps: 1234);
        memory.Position = 0;
        Assert.Equal("MLRPOLCY", System.Text.Encoding.ASCII.GetString(memory.ToArray(), 0, 8));
        using var policy = Policy.Load(memory);
        Assert.Equal("toy", policy.Environment);
        Assert.Equal((4, 2, 1234L), (policy.ObservationSize, policy.ActionSize, policy.TrainingSteps));
        Assert.Equal(new[] { 32, 32 }, policy.HiddenSizes);
        var obsRandom = new Random(8);
        for (int i = 0; i < 10; i++)
        {
            float[] obs = Enumerable.Range(0, 4).Select(_ => (float)obsRandom.NextDouble()).ToArray();
            Assert.Equal(agent.Act(obs, deterministic: true), policy.Act(obs, deterministic: true));
            Assert.Equal(agent.Act(obs, false, new Random(i)), policy.Act(obs, false, new Random(i)));
        }
        Assert.Throws<InvalidDataException>(() => Policy.Load(new MemoryStream(new byte[64])));
    }

    [Fact]
    public void ShippedPoliciesLoadAndFitTheirTasks()
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "Policies");
        if (!Directory.Exists(dir))
            return;
        foreach (string file in Directory.GetFiles(dir, "*.policy"))
        {
            Assert.True(new FileInfo(file).Length < 1_000_000, file);
            using var policy = Policy.Load(file);
            var (obs, act) = policy.Environment switch { "cheetah" => (17, 6), "hopper" => (11, 3), "walker" => (17, 6), _ => (-1, -1) };
            Assert.Equal((obs, act), (policy.ObservationSize, policy.ActionSize));
        }
    }
}

/// <summary>SAC tests that drive the MuJoCo tasks (install: apt-get install -y libmujoco2.2.2 libmujoco-dev).</summary>
[Collection(nameof(SacTests))]
public class SacMuJoCoTests
{
    public SacMuJoCoTests() => SacTests.UseOneThread();

    private static Policy SmallHopperPolicy()
    {
        using var agent = new SacAgent(11, 3, new SacOptions { HiddenSizes = [32, 32], Seed = 4 });
        using var memory = new MemoryStream();
        agent.SavePolicy(memory, "hopper");
        memory.Position = 0;
        return Policy.Load(memory);
    }

    [SkippableFact]
    public void DataGenerationIsDeterministicWithTheRightColumns()
    {
        RequireMuJoCo.OrSkip();
        using var policy = SmallHopperPolicy();
        string Generate(bool deterministic)
        {
            using var env = new HopperEnv { MaxEpisodeSteps = 60 };
            var writer = new StringWriter();
            var summary = Rollouts.WriteDataset(env, policy, episodes: 3, seed: 5, deterministic, writer);
            Assert.Equal(3, summary.Returns.Count);
            return writer.ToString();
        }
        string first = Generate(false);
        Assert.Equal(first, Generate(false));
        Assert.NotEqual(first, Generate(true));

        string[] lines = first.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] header = lines[0].Split(',');
        Assert.Equal(2 + 11 + 3 + 2, header.Length);
        Assert.Equal(["episode", "step", "obs_0"], header[..3]);
        Assert.Equal(["act_2", "reward", "terminal"], header[^3..]);
        Assert.All(lines.Skip(1), l => Assert.Equal(header.Length, l.Split(',').Length));
        var episodes = lines.Skip(1).Select(l => int.Parse(l.Split(',')[0], System.Globalization.CultureInfo.InvariantCulture)).Distinct();
        Assert.Equal([0, 1, 2], episodes);
        // A terminal flag, if any, is the last row of its episode.
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToArray();
        for (int i = 0; i + 1 < rows.Length; i++)
            if (rows[i][^1] == "1")
                Assert.NotEqual(rows[i][0], rows[i + 1][0]);
    }

    [SkippableFact]
    public void RandomEvaluationIsSeededAndMatchesAnExplicitUniformPolicy()
    {
        RequireMuJoCo.OrSkip();
        using var env = new WalkerEnv { MaxEpisodeSteps = 50 };
        var first = Rollouts.EvaluateRandom(env, episodes: 3, seed: 9);
        var again = Rollouts.EvaluateRandom(env, episodes: 3, seed: 9);
        Assert.Equal(first.Returns, again.Returns);
        Assert.Equal(first.Lengths, again.Lengths);
        Assert.NotEqual(first.Returns, Rollouts.EvaluateRandom(env, episodes: 3, seed: 10).Returns);
        // The same draws written out: each component U(-1, 1) from the episode's Random(seed + i), in order.
        var explicitly = Rollouts.Run(env, (_, r) => Enumerable.Range(0, 6).Select(_ => (float)(2 * r.NextDouble() - 1)).ToArray(), 3, 9);
        Assert.Equal(explicitly.Returns, first.Returns);
    }

    [SkippableFact]
    public void TrainerWritesSnapshotsCheckpointsAndResumes()
    {
        RequireMuJoCo.OrSkip();
        string dir = Path.Combine(Path.GetTempPath(), "sac-trainer-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = new SacTrainingOptions
            {
                Environment = "hopper", OutputDirectory = dir, TotalSteps = 200, RandomSteps = 100, UpdateAfter = 64,
                CheckpointEvery = 100, SnapshotEvery = 100, EvaluationEpisodes = 1,
                Agent = new SacOptions { HiddenSizes = [16, 16], BatchSize = 32, Seed = 3 },
            };
            SacTrainer.Run(options, resume: false, TextWriter.Null);
            Assert.True(File.Exists(Path.Combine(dir, SacTrainer.CheckpointFile)));
            Assert.True(File.Exists(Path.Combine(dir, SacTrainer.ReplayFile)));
            Assert.Equal(2, Directory.GetFiles(Path.Combine(dir, "snapshots"), "*.policy").Length);

            var log = new StringWriter();
            SacTrainer.Run(options with { TotalSteps = 300 }, resume: true, log);
            Assert.Contains("resumed at 200 env steps", log.ToString());
            using var policy = Policy.Load(Path.Combine(dir, "snapshots", "hopper-0000300.policy"));
            Assert.Equal(300, policy.TrainingSteps);
            Assert.Equal(4, File.ReadAllLines(Path.Combine(dir, "snapshots.csv")).Length);
        }
        finally
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
    }
}
