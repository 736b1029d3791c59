using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>
/// The convolutions the networks run, as the library configures them (<see cref="OneDnnWorkaround"/>), against the same
/// computation in float64. The cases are ones that oneDNN's AVX2 / AVX-512 kernels got wrong on the project's machines
/// (a 23-channel input, a batch of 24 at length 2 and 4, the double backward of 1x1 and k5 convolutions).
/// </summary>
public class ConvolutionSafetyTests
{
    [Fact]
    public void BuildingANetworkTurnsOneDnnConvolutionsOff()
    {
        using var network = new TemporalUNet(SampleShape.Trajectory(4, 3), 8, 1);
        Assert.Equal(false, OneDnnWorkaround.ConvolutionsUseOneDnn);
    }

    [Theory]
    [InlineData(3, 23, 32, 16, 5, 1, 2, false)]
    [InlineData(24, 14, 32, 4, 5, 1, 2, false)]
    [InlineData(24, 64, 64, 2, 1, 1, 0, false)]
    [InlineData(1, 32, 32, 32, 1, 1, 0, false)]
    [InlineData(24, 32, 64, 8, 5, 1, 2, false)]
    [InlineData(24, 64, 64, 8, 3, 2, 1, false)]
    [InlineData(24, 32, 32, 2, 4, 2, 1, true)]
    public void ConvolutionAndItsGradientsMatchFloat64(int batch, int inputs, int outputs, int length, int kernel, int stride, int padding, bool transposed)
    {
        using var network = new TemporalUNet(SampleShape.Trajectory(4, 3), 8, 1);   // what any use of the library does first
        using var scope = NewDisposeScope();
        var generator = new Generator(11);
        var x = randn(new long[] { batch, inputs, length }, ScalarType.Float64, generator: generator);
        var w = (transposed
            ? randn(new long[] { inputs, outputs, kernel }, ScalarType.Float64, generator: generator)
            : randn(new long[] { outputs, inputs, kernel }, ScalarType.Float64, generator: generator)) / Math.Sqrt(inputs * kernel);
        var b = randn(new long[] { outputs }, ScalarType.Float64, generator: generator);

        var expected = Evaluate(x, w, b, stride, padding, transposed);
        var actual = Evaluate(x.to(ScalarType.Float32), w.to(ScalarType.Float32), b.to(ScalarType.Float32), stride, padding, transposed);
        string[] names = ["forward", "input gradient", "weight gradient", "double backward"];
        for (int k = 0; k < names.Length; k++)
        {
            Assert.True(actual[k].isfinite().all().ToBoolean(), $"{names[k]} is not finite");
            double scale = expected[k].abs().max().ToDouble();
            double error = (actual[k].to(ScalarType.Float64) - expected[k]).abs().max().ToDouble() / scale;
            Assert.True(error < 1e-4, $"{names[k]}: relative error {error}");
        }
    }

    /// <summary>[y, dL/dx, dL/dw, d(sum (dL/dx)^2)/dw] for L = sum(y * y.detach()).</summary>
    private static Tensor[] Evaluate(Tensor x, Tensor w, Tensor b, int stride, int padding, bool transposed)
    {
        x = x.detach().requires_grad_(true);
        w = w.detach().requires_grad_(true);
        var y = transposed ? F.conv_transpose1d(x, w, b, stride: stride, padding: padding) : F.conv1d(x, w, b, stride: stride, padding: padding);
        var probe = y.detach().cos();
        var first = torch.autograd.grad(new[] { (y * probe).sum() }, new[] { x, w }, retain_graph: true, create_graph: true);
        var second = torch.autograd.grad(new[] { first[0].square().sum() }, new[] { w }, retain_graph: true)[0];
        return [y.detach(), first[0].detach(), first[1].detach(), second.detach()];
    }
}
