using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

public class TemporalUNetTests
{
    public TemporalUNetTests() => DiffusionModelTests.UseOneThread();

    private static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());

    [Fact]
    public void BenchmarkShapeHasTheReferenceParameterCount()
    {
        // The benchmark reference (docs/ARCHITECTURE.md section 7): TemporalUNet(horizon 128, transition 6, dim 32, mults 1,4,8) has 3,682,118 parameters.
        using var net = new TemporalUNet(SampleShape.Trajectory(128, 6), 32, 1, 4, 8);
        Assert.Equal(3_682_118L, ParameterCount(net));
    }

    [Fact]
    public void ForwardKeepsTheTrajectoryShape()
    {
        using var scope = NewDisposeScope();
        using var net = TorchRandom.Initialize(1, () => new TemporalUNet(SampleShape.Trajectory(8, 3), 8, 1, 2));
        var x = randn(2, 8, 3);
        var t = tensor(new long[] { 0, 5 });
        var y = net.call(x, t);
        Assert.Equal(new long[] { 2, 8, 3 }, y.shape);
        Assert.True(y.isfinite().all().item<bool>());
        // Gradients reach every parameter.
        y.square().sum().backward();
        Assert.All(net.parameters(), p => Assert.NotNull(p.grad));
    }

    [Fact]
    public void InPlaceInferenceEqualsAutogradForward()
    {
        using var scope = NewDisposeScope();
        using var net = TorchRandom.Initialize(2, () => new TemporalUNet(SampleShape.Trajectory(8, 3), 8, 1, 2));
        var x = randn(3, 8, 3);
        var t = tensor(new long[] { 1, 2, 3 });
        var withGrad = net.call(x, t).detach();
        Tensor without;
        using (no_grad())
            without = net.call(x, t);
        Assert.Equal(withGrad.data<float>().ToArray(), without.data<float>().ToArray());
    }

    [Fact]
    public void RowsAreIndependent()
    {
        using var scope = NewDisposeScope();
        using var net = TorchRandom.Initialize(3, () => new TemporalUNet(SampleShape.Trajectory(8, 3), 8, 1, 2));
        using var _ = no_grad();
        var x = randn(4, 8, 3);
        var t = tensor(new long[] { 1, 2, 3, 4 });
        var all = net.call(x, t);
        var one = net.call(x[2..3], t[2..3]);
        var diff = (all[2..3] - one).abs().max().item<float>();
        Assert.True(diff < 1e-5f, $"row 2 differs by {diff}");
    }

    [Theory]
    [InlineData(6, 8, new[] { 1, 2, 4 }, "divisible by 4")]
    [InlineData(8, 12, new[] { 1, 2 }, "GroupNorm")]
    public void InvalidConfigurationsAreExplained(int horizon, int dim, int[] mults, string fragment)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new TemporalUNet(SampleShape.Trajectory(horizon, 2), dim, mults));
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void GroupNormsStartAtIdentity()
    {
        // TorchSharp 0.107.0 leaves nn.GroupNorm's affine parameters uninitialised; Layers.GroupNorm fixes that.
        using var net = new TemporalUNet(SampleShape.Trajectory(8, 3), 8, 1, 2);
        foreach (var (name, p) in net.named_parameters().Where(np => np.name.Contains("norm")))
        {
            float expected = name.EndsWith("weight") ? 1f : 0f;
            Assert.All(p.data<float>().ToArray(), v => Assert.Equal(expected, v));
        }
    }

    [Fact]
    public void SinusoidalEmbeddingMatchesTheFormula()
    {
        using var scope = NewDisposeScope();
        using var emb = new SinusoidalPositionEmbedding(8);
        var e = emb.call(tensor(new long[] { 0, 3 })).data<float>().ToArray();
        Assert.Equal(16, e.Length);
        double scale = Math.Log(10000) / 3;
        for (int i = 0; i < 4; i++)
        {
            double f = Math.Exp(-i * scale);
            Assert.Equal(0, e[i], 6);
            Assert.Equal(1, e[4 + i], 6);
            Assert.Equal(Math.Sin(3 * f), e[8 + i], 5);
            Assert.Equal(Math.Cos(3 * f), e[12 + i], 5);
        }
        Assert.Empty(emb.parameters());
        Assert.Empty(emb.buffers());
    }

    [Fact]
    public void MlpDenoiserKeepsShapes()
    {
        using var scope = NewDisposeScope();
        using var traj = new MlpDenoiser(SampleShape.Trajectory(4, 2), 16, 2, 8);
        Assert.Equal(new long[] { 3, 4, 2 }, traj.call(randn(3, 4, 2), tensor(new long[] { 0, 1, 2 })).shape);
        using var image = new MlpDenoiser(SampleShape.Image(1, 4, 4), 16, 1, 8);
        Assert.Equal(new long[] { 2, 1, 4, 4 }, image.call(randn(2, 1, 4, 4), tensor(new long[] { 0, 1 })).shape);
    }

    [Fact]
    public void ImageUNetKeepsShapesAndTrains()
    {
        using var scope = NewDisposeScope();
        using var net = TorchRandom.Initialize(4, () => new ImageUNet(SampleShape.Image(1, 8, 8), 8, 1, 2));
        var y = net.call(randn(2, 1, 8, 8), tensor(new long[] { 0, 7 }));
        Assert.Equal(new long[] { 2, 1, 8, 8 }, y.shape);
        y.square().sum().backward();
        Assert.All(net.parameters(), p => Assert.NotNull(p.grad));
        Assert.Throws<ArgumentException>(() => new ImageUNet(SampleShape.Image(1, 6, 6), 8, 1, 2, 4));
    }
}
