using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>The conservativeness diagnostic against closed forms: gradient fields, rotations and their mixtures.</summary>
public class ConservativenessTests(ITestOutputHelper output)
{
    private const int Dimension = 8;

    /// <summary>A random symmetric S and antisymmetric W of the given Frobenius norms, float64 [8, 8].</summary>
    private static (Tensor S, Tensor W) Parts(double symmetric, double antisymmetric, long seed)
    {
        var generator = TorchRandom.Generator(seed);
        var a = randn(new long[] { Dimension, Dimension }, dtype: ScalarType.Float64, generator: generator);
        var s = (a + a.T) / 2;
        var w = (a - a.T) / 2;
        return (s * (symmetric / s.norm().ToDouble()), w * (antisymmetric / w.norm().ToDouble()));
    }

    private static Func<Tensor, Tensor> Linear(Tensor m) => x => matmul(x.flatten(1), m.T.to(x.dtype)).reshape(x.shape);

    private static ConservativenessAtStep Measure(Tensor m, Func<Tensor, Tensor> rewardGradient, int probes = 4)
    {
        var x = randn(new long[] { 4000, 4, 2 }, dtype: ScalarType.Float64, generator: TorchRandom.Generator(1));
        using var generator = TorchRandom.Generator(2);
        return ConservativenessDiagnostic.Measure(0, x, Linear(m), rewardGradient, probes, generator);
    }

    [Fact]
    public void AGradientField_HasNoAsymmetry_AndItsOwnGradientExplainsAllOfIt()
    {
        using var scope = NewDisposeScope();
        var (s, _) = Parts(1, 1, seed: 3);
        var result = Measure(s, Linear(s));   // R = x'Sx / 2 has gradient S x
        output.WriteLine(result.ToString());
        Assert.Equal(1.0, result.ExplainedFraction, 12);
        Assert.True(result.Asymmetry < 1e-12, $"asymmetry {result.Asymmetry}");
    }

    [Fact]
    public void ARotation_IsAllAsymmetry_AndNoGradientExplainsIt()
    {
        using var scope = NewDisposeScope();
        var (_, w) = Parts(1, 1, seed: 4);
        // The L2 projection of a rotation onto gradient fields is zero: the best reward has zero gradient.
        var result = Measure(w, x => zeros_like(x));
        output.WriteLine(result.ToString());
        Assert.Equal(1.0, result.Asymmetry, 12);
        Assert.InRange(result.ExplainedFraction, -0.01, 0.01);
    }

    [Theory]
    [InlineData(1.0, 0.5)]
    [InlineData(1.0, 2.0)]
    public void AMixture_GivesTheClosedFormWithinMonteCarloError(double symmetric, double antisymmetric)
    {
        using var scope = NewDisposeScope();
        var (s, w) = Parts(symmetric, antisymmetric, seed: 5);
        var result = Measure(s + w, Linear(s), probes: 8);
        // ||W|| / ||S + W|| with <S, W> = 0; the best reward is the symmetric part, which explains ||S||^2 / (||S||^2 + ||W||^2).
        double asymmetry = antisymmetric / Math.Sqrt(symmetric * symmetric + antisymmetric * antisymmetric);
        double explained = symmetric * symmetric / (symmetric * symmetric + antisymmetric * antisymmetric);
        output.WriteLine($"{result}: expected asymmetry {asymmetry:F4}, explained {explained:F4}");
        Assert.InRange(result.Asymmetry, asymmetry - 0.02, asymmetry + 0.02);
        Assert.InRange(result.ExplainedFraction, explained - 0.03, explained + 0.03);
    }

    [Fact]
    public void TheAsymmetry_IsAShare_EvenFromOnePointAndOneProbe()
    {
        using var scope = NewDisposeScope();
        // J = [[1, 1], [-1, -1]] (symmetric diag(1, -1) plus a rotation, each of Frobenius norm sqrt 2, so the true share is
        // 1/sqrt 2) sends (1, -1) to zero: a probe near that direction sees almost no J v but a full antisymmetric part.
        // A share estimated as ||A v|| / ||J v|| exceeded 1 on such probes (one in the quick locomotion run gave 1.33).
        var m = tensor(new double[] { 1, 1, -1, -1 }, new long[] { 2, 2 });
        var x = zeros(new long[] { 1, 1, 2 }, ScalarType.Float64);
        for (long seed = 0; seed < 200; seed++)
        {
            using var generator = TorchRandom.Generator(seed);
            var result = ConservativenessDiagnostic.Measure(0, x, Linear(m), _ => zeros_like(x), probes: 1, generator);
            Assert.InRange(result.Asymmetry, 0, 1);
        }
        using var many = TorchRandom.Generator(7);
        var pooled = ConservativenessDiagnostic.Measure(0, zeros(new long[] { 4000, 1, 2 }, ScalarType.Float64), Linear(m), x => zeros_like(x), probes: 4, many);
        Assert.InRange(pooled.Asymmetry, Math.Sqrt(0.5) - 0.02, Math.Sqrt(0.5) + 0.02);
    }

    [Fact]
    public void OnGaussianModels_TheDifferenceIsAGradientField_AndATrainedRewardExplainsItWhereItVaries()
    {
        Analytic.UseOneThread();
        var shape = SampleShape.Trajectory(4, 2);
        var schedule = NoiseSchedule.Cosine(10);
        // Different spreads make mu_E - mu_B vary with x along a diagonal (symmetric) Jacobian.
        using var baseModel = Analytic.Model(shape, schedule, new[] { -0.5, 0.3 }, 0.6);
        using var expertModel = Analytic.Model(shape, schedule, new[] { 0.5, -0.3 }, 0.3);
        using var data = AnalyticRewardTests.Data(512, 11);
        using var network = TorchRandom.Initialize(5, () => new StateReward(shape, AnalyticRewardTests.SmallStateReward));
        using var reward = new RewardTrainer(AnalyticRewardTests.Training(600)).Train(baseModel, expertModel, network, data);
        using var heldOut = AnalyticRewardTests.Data(400, 12);
        var results = ConservativenessDiagnostic.Measure(baseModel, expertModel, reward, heldOut, new[] { 1, 5, 9 }, probes: 2, seed: 3);
        foreach (var r in results)
            output.WriteLine(r.ToString());
        Assert.Equal(new[] { 1, 5, 9 }, results.Select(r => r.Step));
        Assert.All(results, r => Assert.True(r.Asymmetry < 1e-5, $"asymmetry {r.Asymmetry} at t = {r.Step}"));
        // At t = 1 and 5 the reward explains over 99 % of the difference's variation (measured 0.995, 0.996). At t = 9 the
        // difference is nearly constant in x: its variation is tiny, so the same small error weighs far more (measured -5.9).
        Assert.All(results.Take(2), r => Assert.True(r.ExplainedFraction > 0.98, $"explained {r.ExplainedFraction} at t = {r.Step}"));
        Assert.True(results[2].ExplainedFraction < results[0].ExplainedFraction);
        Assert.Throws<ArgumentOutOfRangeException>(() => ConservativenessDiagnostic.Measure(baseModel, expertModel, reward, heldOut, new[] { 10 }));
    }
}
