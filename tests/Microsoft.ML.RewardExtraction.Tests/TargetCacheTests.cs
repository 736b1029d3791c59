using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>
/// The opt-in target cache of <see cref="RewardTrainer"/> (RewardTrainingOptions.TargetCachePoolSize): its pool holds exactly
/// what the objective computes for its draws, training with it is deterministic and resumes exactly, and it still learns
/// the analytic relative reward's direction.
/// </summary>
public sealed class TargetCacheTests
{
    private static readonly double[] A = { -0.5, 0.3 };
    private static readonly double[] B = { 0.5, -0.3 };
    private static readonly SampleShape Shape = SampleShape.Trajectory(4, 2);

    public TargetCacheTests() => Analytic.UseOneThread();

    private static (DiffusionModel Base, DiffusionModel Expert, Tensor Data) Setup()
    {
        var schedule = NoiseSchedule.Cosine(10);
        return (Analytic.Model(Shape, schedule, A, 0.5), Analytic.Model(Shape, schedule, B, 0.5), AnalyticRewardTests.Data(128, 21));
    }

    private static RewardTrainingOptions Cached(int steps, string? checkpoint = null, bool resume = false) => new()
    {
        TrainingSteps = steps, BatchSize = 32, LearningRate = 2e-3, Seed = 4, EmaStartStep = 10, EmaUpdateEvery = 5,
        TargetCachePoolSize = 96, TargetCacheRefreshEvery = 15,
        CheckpointPath = checkpoint, CheckpointEvery = 10, ResumeFromCheckpoint = resume,
    };

    private static bool SameWeights(nn.Module a, nn.Module b)
        => a.parameters().Zip(b.parameters()).All(p => p.First.eq(p.Second).all().ToBoolean());

    [Fact]
    public void PoolRowsAreTheObjectivesTargets()
    {
        var (baseModel, expertModel, data) = Setup();
        using var _b = baseModel;
        using var _e = expertModel;
        using var _d = data;
        using var reward = TorchRandom.Initialize(5, () => new StateReward(Shape, AnalyticRewardTests.SmallStateReward));
        var objective = new RelativeRewardObjective(baseModel, expertModel, reward);
        using var cache = new TargetCache(objective, data, 40, 0, 3, CPU);
        cache.Prepare(0);
        using var scope = NewDisposeScope();
        var (at, t, target, weight) = cache.Batch(arange(40, dtype: ScalarType.Int64));
        Assert.Null(weight);
        // The same draws (pool 0's own generator, in the pool's order) through the objective's frozen half.
        using var generator = TorchRandom.Generator(TargetCache.PoolSeed(3, 0));
        var index = randint(0, data.shape[0], new long[] { 40 }, dtype: ScalarType.Int64, generator: generator);
        var steps = randint(0, 10, new long[] { 40 }, dtype: ScalarType.Int64, generator: generator);
        var noise = randn(Shape.BatchShape(40), dtype: ScalarType.Float32, generator: generator);
        var (expectedAt, expectedTarget) = objective.Targets(data.index_select(0, index), steps, noise);
        Assert.True(t.eq(steps).all().ToBoolean());
        Assert.True((at - expectedAt).abs().max().item<float>() < 1e-6f);
        Assert.True((target - expectedTarget).abs().max().item<float>() < 1e-6f);
    }

    [Fact]
    public void CachedTrainingIsDeterministicAndResumesExactly()
    {
        var (baseModel, expertModel, data) = Setup();
        using var _b = baseModel;
        using var _e = expertModel;
        using var _d = data;
        StateReward Network(long seed = 5) => TorchRandom.Initialize(seed, () => new StateReward(Shape, AnalyticRewardTests.SmallStateReward));
        string path = Path.Combine(Path.GetTempPath(), $"cached-reward-{Guid.NewGuid():N}.bin");
        try
        {
            using var first = Network();
            using var second = Network();
            using var a = new RewardTrainer(Cached(40)).Train(baseModel, expertModel, first, data);
            using var b = new RewardTrainer(Cached(40)).Train(baseModel, expertModel, second, data);
            Assert.True(SameWeights(first, second));

            using var half = Network();
            using (new RewardTrainer(Cached(20, path, resume: true)).Train(baseModel, expertModel, half, data)) { }
            using var resumedNetwork = Network(seed: 77);
            using var resumed = new RewardTrainer(Cached(40, path, resume: true)).Train(baseModel, expertModel, resumedNetwork, data);
            Assert.True(SameWeights(first, resumedNetwork));   // the pool of steps 15..29 is rebuilt identically on resume
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void CachedTrainingLearnsTheRelativeRewardDirection()
    {
        var (baseModel, expertModel, data) = Setup();
        using var _b = baseModel;
        using var _e = expertModel;
        using var _d = data;
        using var network = TorchRandom.Initialize(5, () => new StateReward(Shape, AnalyticRewardTests.SmallStateReward));
        var options = Cached(400);
        options.LearningRate = 3e-3;
        options.TargetCachePoolSize = 512;
        options.TargetCacheRefreshEvery = 100;
        using var model = new RewardTrainer(options).Train(baseModel, expertModel, network, data);
        // The expert's mean is B, the base's A: states near B must score higher than states near A.
        using var scope = NewDisposeScope();
        var nearA = Analytic.Broadcast(Shape, A).unsqueeze(0);
        var nearB = Analytic.Broadcast(Shape, B).unsqueeze(0);
        Assert.True(model.Score(nearB).item<float>() > model.Score(nearA).item<float>());
    }

    [Fact]
    public void NegativeSettingsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RewardTrainingOptions { TargetCachePoolSize = -1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new RewardTrainingOptions { TargetCacheRefreshEvery = -1 }.Validate());
    }
}
