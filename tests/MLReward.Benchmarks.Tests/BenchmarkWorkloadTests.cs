using MLReward.Benchmarks;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;
using TorchSharp;
using static TorchSharp.torch;

namespace MLReward.Benchmarks.Tests;

/// <summary>
/// Each benchmark workload runs (one timed iteration, no warm-up) and reports the reference's keys and parameter counts.
/// No timing is asserted: these machines are shared and noisy; compare.sh measures speed.
/// </summary>
public sealed class BenchmarkWorkloadTests
{
    private static readonly BenchmarkOptions Tiny = new() { Threads = 2, Seconds = 0, Warmup = 0, TargetCachePoolSize = 128, TargetCacheRefreshEvery = 2 };

    [Theory]
    [InlineData("W1")]
    [InlineData("W2")]
    [InlineData("W2-cached")]
    [InlineData("W3")]
    [InlineData("W4")]
    [InlineData("W4-raw")]
    [InlineData("W5")]
    public void EachWorkloadRunsOneIteration(string workload)
    {
        var line = Workloads.Run(workload, Tiny);

        Assert.Equal(workload, line["workload"]);
        Assert.True(line["per_second"] is double rate && rate > 0 && double.IsFinite(rate), $"per_second of {workload}: {line["per_second"]}");
        Assert.True(line["cpu_seconds_per_iteration"] is double cpu && cpu >= 0, $"cpu_seconds_per_iteration of {workload}: {line["cpu_seconds_per_iteration"]}");
        Assert.True(line["peak_working_set_mb"] is double peak && peak > 0);
        int iterations = (int)(line["steps"] ?? line["batches"] ?? line["passes"])!;
        Assert.True(iterations >= 1);
        if (line["unet_params"] is long unet)
            Assert.Equal(3_682_118L, unet);
        if (line["reward_params"] is long reward)
            Assert.Equal(workload == "W5" ? 584_865L : 76_033L, reward);
        string json = line.ToString();
        Assert.StartsWith("{\"workload\":\"" + workload + "\"", json);
        Assert.Contains("\"per_second\":", json);
    }

    [Fact]
    public void NetworksHaveTheReferenceParameterCounts()
    {
        using var model = Workloads.CreateModel(0);
        using var reward = Workloads.CreateReward(0);
        Assert.Equal(3_682_118L, Workloads.ParameterCount(model.Denoiser));
        Assert.Equal(76_033L, Workloads.ParameterCount(reward));
    }

    [Fact]
    public void TheLocomotionRewardHasTheReferenceParameterCount()
    {
        using var reward = Workloads.CreateTrajectoryReward(0);
        Assert.Equal(584_865L, Workloads.ParameterCount(reward));
    }

    [Fact]
    public void BothScoringPathsGiveTheSameRewards()
    {
        using var scope = NewDisposeScope();
        var data = Workloads.UniformData(300, seed: 7);
        var mlContext = new MLContext(seed: 0);
        var reward = new RelativeRewardModel(Workloads.CreateReward(3), NoiseSchedule.Cosine(Workloads.DiffusionSteps));
        using var transformer = Workloads.CreateScoringTransformer(mlContext, reward);
        var raw = new float[300];
        Workloads.ScoreRaw(reward, data, raw);
        var viaView = Workloads.ReadRewards(transformer.Transform(Workloads.InMemoryView(mlContext, data)));
        Assert.Equal(300, viaView.Length);
        for (int i = 0; i < raw.Length; i++)
            Assert.Equal(raw[i], viaView[i], 1e-3f);
    }
}
