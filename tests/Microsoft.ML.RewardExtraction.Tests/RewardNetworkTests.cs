using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>The three reward networks: shapes, parameter counts, windows, per-sample independence, forward semantics.</summary>
public class RewardNetworkTests
{
    public RewardNetworkTests() => Analytic.UseOneThread();

    private static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());

    [Fact]
    public void BenchmarkStateRewardHasTheReferenceParameterCount()
    {
        using var net = new StateReward(SampleShape.Trajectory(128, 6), StateRewardOptions.Benchmark);
        Assert.Equal(76_033, ParameterCount(net));
    }

    [Fact]
    public void BenchmarkStateRewardMatchesTheReferenceForward()
    {
        // Reference: mlp(cat(x, sinusoidal(t) expanded over the horizon)).sum over horizon, with Linear(6 + 32, 256).
        using var scope = NewDisposeScope();
        var shape = SampleShape.Trajectory(5, 6);
        var net = TorchRandom.Initialize(3, () => new StateReward(shape, StateRewardOptions.Benchmark));
        var gen = TorchRandom.Generator(4);
        var x = randn(shape.BatchShape(3), generator: gen);
        var t = tensor(new long[] { 0, 7, 63 });

        var p = net.named_parameters().ToDictionary(kv => kv.name, kv => (Tensor)kv.parameter);
        var half = 16;
        var freqs = exp(arange(half, dtype: ScalarType.Float32) * -(Math.Log(10000) / (half - 1)));
        var args = t.to_type(ScalarType.Float32).unsqueeze(1) * freqs.unsqueeze(0);
        var emb = cat(new[] { args.sin(), args.cos() }, 1);
        var input = cat(new[] { x, emb.unsqueeze(1).expand(-1, 5, -1) }, 2);
        var w1 = cat(new[] { p["input.weight"], p["input_time.weight"] }, 1);
        Assert.Equal(new long[] { 256, 38 }, w1.shape);
        var h = nn.functional.mish(nn.functional.linear(input, w1, p["input.bias"]));
        h = nn.functional.mish(nn.functional.linear(h, p["hidden.0.weight"], p["hidden.0.bias"]));
        var expected = nn.functional.linear(h, p["output.weight"], p["output.bias"]).sum(new long[] { 1, 2 });

        var actual = net.call(x, t);
        Assert.Equal(new long[] { 3 }, actual.shape);
        Assert.True(allclose(actual, expected, rtol: 1e-5, atol: 1e-5), $"{actual.str()} vs {expected.str()}");
        Assert.Equal(5, net.WindowCount);
    }

    [Fact]
    public void MeanAggregationIsTheSumOverWindowCount()
    {
        using var scope = NewDisposeScope();
        var shape = SampleShape.Trajectory(6, 3);
        var options = new StateRewardOptions { Window = 2, HiddenSizes = new[] { 8 }, TimeEmbeddingDimension = 8, TimeEmbeddingHiddenSize = 8 };
        var mean = TorchRandom.Initialize(1, () => new StateReward(shape, options));
        var sum = TorchRandom.Initialize(1, () => new StateReward(shape, new StateRewardOptions
        {
            Window = 2, HiddenSizes = new[] { 8 }, TimeEmbeddingDimension = 8, TimeEmbeddingHiddenSize = 8, Aggregation = RewardAggregation.Sum,
        }));
        var x = randn(shape.BatchShape(4), generator: TorchRandom.Generator(2));
        var t = tensor(new long[] { 0, 1, 2, 3 });
        Assert.True(allclose(mean.call(x, t) * 5, sum.call(x, t), rtol: 1e-5, atol: 1e-6));
        Assert.True(allclose(mean.call(x, t), mean.WindowRewards(x, t).mean(new long[] { 1 }), rtol: 1e-6, atol: 1e-7));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void WindowsAreContiguousRows(int m)
    {
        // Window i must depend on rows i..i+m-1 and on nothing else.
        using var scope = NewDisposeScope();
        var shape = SampleShape.Trajectory(6, 2);
        var net = TorchRandom.Initialize(5, () => new StateReward(shape, new StateRewardOptions { Window = m, HiddenSizes = new[] { 16, 16 } }));
        var x = randn(shape.BatchShape(2), generator: TorchRandom.Generator(6)).requires_grad_(true);
        var t = tensor(new long[] { 3, 4 });
        var windows = net.WindowRewards(x, t);
        Assert.Equal(new long[] { 2, 6 - m + 1 }, windows.shape);
        for (int i = 0; i < 6 - m + 1; i++)
        {
            var g = torch.autograd.grad(new[] { windows[TensorIndex.Colon, i].sum() }, new[] { x }, retain_graph: true)[0];
            var perRow = g.abs().sum(new long[] { 0, 2 });
            for (int row = 0; row < 6; row++)
            {
                bool inside = row >= i && row < i + m;
                double v = perRow[row].ToDouble();
                Assert.True(inside ? v > 0 : v == 0, $"window {i} (m = {m}) row {row}: |grad| = {v}");
            }
        }
    }

    public static IEnumerable<object[]> Networks()
    {
        yield return new object[] { "state" };
        yield return new object[] { "state-window" };
        yield return new object[] { "trajectory" };
        yield return new object[] { "image" };
    }

    private static RewardNetwork Build(string kind) => TorchRandom.Initialize(7, () => kind switch
    {
        "state" => (RewardNetwork)new StateReward(SampleShape.Trajectory(8, 3), new StateRewardOptions { HiddenSizes = new[] { 16, 16 } }),
        "state-window" => new StateReward(SampleShape.Trajectory(8, 3), new StateRewardOptions { Window = 3, HiddenSizes = new[] { 16 }, Activation = RewardActivation.LeakyReLU }),
        "trajectory" => new TrajectoryReward(SampleShape.Trajectory(8, 3), new TrajectoryRewardOptions { Dimension = 8, DimensionMultipliers = new[] { 1, 2 } }),
        "image" => new ImageReward(SampleShape.Image(1, 8, 8), new ImageRewardOptions { BaseChannels = 8, ChannelMultipliers = new[] { 1, 2 }, TimeEmbeddingDimension = 8 }),
        _ => throw new ArgumentException(kind),
    });

    [Theory]
    [MemberData(nameof(Networks))]
    public void RewardIsOneScalarPerSampleAndSamplesAreIndependent(string kind)
    {
        using var scope = NewDisposeScope();
        using var net = Build(kind);
        var x = randn(net.Shape.BatchShape(4), generator: TorchRandom.Generator(8)).requires_grad_(true);
        var t = tensor(new long[] { 0, 3, 9, 19 });
        var r = net.call(x, t);
        Assert.Equal(new long[] { 4 }, r.shape);
        Assert.True(r.isfinite().all().ToBoolean());
        // d r_0 / d x_j = 0 for j != 0 (no BatchNorm, no mixing), and nonzero for j = 0.
        var g = torch.autograd.grad(new[] { r[0] }, new[] { x })[0];
        var perSample = g.abs().flatten(1).sum(1);
        Assert.True(perSample[0].ToDouble() > 0);
        for (int j = 1; j < 4; j++)
            Assert.Equal(0.0, perSample[j].ToDouble());
        // Batch composition does not change a sample's reward.
        using (no_grad())
        {
            var alone = net.call(x[TensorIndex.Slice(1, 2)], t[TensorIndex.Slice(1, 2)]);
            Assert.True(allclose(alone, r[TensorIndex.Slice(1, 2)], rtol: 1e-5, atol: 1e-6));
        }
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public void DoubleBackwardReachesTheParameters(string kind)
    {
        // The objective differentiates the input gradient with respect to the parameters.
        using var scope = NewDisposeScope();
        using var net = Build(kind);
        var x = randn(net.Shape.BatchShape(3), generator: TorchRandom.Generator(9)).requires_grad_(true);
        var t = tensor(new long[] { 1, 2, 3 });
        var g = torch.autograd.grad(new[] { net.call(x, t).sum() }, new[] { x }, retain_graph: true, create_graph: true)[0];
        g.square().sum().backward();
        Assert.Contains(net.parameters(), p => p.grad is not null && p.grad.abs().sum().ToDouble() > 0);
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public void SeededInitialisationIsDeterministicAndFinite(string kind)
    {
        // Also guards against TorchSharp 0.107.0's uninitialised GroupNorm affine parameters.
        using var a = Build(kind);
        using var b = Build(kind);
        var pa = a.parameters().ToArray();
        var pb = b.parameters().ToArray();
        Assert.Equal(pa.Length, pb.Length);
        for (int i = 0; i < pa.Length; i++)
        {
            Assert.True(pa[i].isfinite().all().ToBoolean());
            Assert.True(pa[i].abs().max().ToDouble() < 10);
            Assert.True(pa[i].eq(pb[i]).all().ToBoolean());
        }
    }

    [Fact]
    public void TrajectoryRewardHandlesShortHorizons()
    {
        using var scope = NewDisposeScope();
        using var net = new TrajectoryReward(SampleShape.Trajectory(4, 2), new TrajectoryRewardOptions { Dimension = 8 });
        var r = net.call(randn(2, 4, 2), tensor(new long[] { 0, 1 }));
        Assert.Equal(new long[] { 2 }, r.shape);
    }

    [Fact]
    public void DefaultNetworksBuild()
    {
        using var state = new StateReward(SampleShape.Trajectory(16, 6));
        using var trajectory = new TrajectoryReward(SampleShape.Trajectory(32, 17));
        using var image = new ImageReward(SampleShape.Image(3, 32, 32));
        // Default state reward: Linear(6,128)+Linear(32,128,no bias)+Linear(128,128)+Linear(128,1)+time MLP 32->128->32.
        Assert.Equal(6 * 128 + 128 + 32 * 128 + 128 * 128 + 128 + 128 + 1 + 32 * 128 + 128 + 128 * 32 + 32, ParameterCount(state));
        Assert.True(ParameterCount(trajectory) > 0);
        Assert.True(ParameterCount(image) > 0);
    }

    [Fact]
    public void BadShapesAndOptionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new StateReward(SampleShape.Image(1, 4, 4)));
        Assert.Throws<ArgumentException>(() => new TrajectoryReward(SampleShape.Image(1, 4, 4)));
        Assert.Throws<ArgumentException>(() => new ImageReward(SampleShape.Trajectory(4, 2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StateReward(SampleShape.Trajectory(4, 2), new StateRewardOptions { Window = 5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StateReward(SampleShape.Trajectory(4, 2), new StateRewardOptions { TimeEmbeddingDimension = 7 }));
        Assert.Throws<ArgumentException>(() => new StateReward(SampleShape.Trajectory(4, 2), new StateRewardOptions { HiddenSizes = Array.Empty<int>() }));
        using var net = new StateReward(SampleShape.Trajectory(4, 2), new StateRewardOptions { HiddenSizes = new[] { 4 } });
        using var model = new RelativeRewardModel(net, NoiseSchedule.Cosine(10));
        using var wrong = zeros(2, 5, 2);
        var e = Assert.Throws<ArgumentException>(() => model.Score(wrong));
        Assert.Contains("[B, 4, 2]", e.Message);
        using var right = zeros(2, 4, 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Score(right, 10));
    }
}
