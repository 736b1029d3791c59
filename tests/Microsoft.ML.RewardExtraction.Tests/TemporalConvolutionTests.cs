using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>The batched-GEMM convolution against libtorch's conv1d, in float64 (to rounding) and float32 (against float64).</summary>
public class TemporalConvolutionTests
{
    [Theory]
    [InlineData(3, 6, 32, 16, 5, 1, 2, true)]     // the U-Net's first block: few input channels
    [InlineData(2, 32, 8, 7, 5, 1, 2, true)]      // odd length
    [InlineData(4, 16, 16, 8, 3, 2, 1, true)]     // stride-2 downsampling, even length
    [InlineData(4, 16, 16, 9, 3, 2, 1, true)]     // stride-2, odd length
    [InlineData(5, 24, 8, 6, 1, 1, 0, true)]      // 1x1 residual projection
    [InlineData(1, 4, 4, 1, 5, 1, 2, false)]      // one step, all taps but the centre read padding; no bias
    [InlineData(2, 3, 5, 10, 4, 3, 0, true)]      // even kernel, stride 3, no padding
    public void MatchesConv1dInValueAndEveryGradient(int batch, int inputs, int outputs, int length, int kernel, int stride, int padding, bool withBias)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        var x = randn(new long[] { batch, inputs, length }, ScalarType.Float64, generator: generator);
        var w = randn(new long[] { outputs, inputs, kernel }, ScalarType.Float64, generator: generator);
        var b = withBias ? randn(new long[] { outputs }, ScalarType.Float64, generator: generator) : null;

        var expected = Evaluate(x, w, b, stride, padding, reference: true);
        var actual = Evaluate(x, w, b, stride, padding, reference: false);
        Assert.Equal(expected.Length, actual.Length);
        for (int k = 0; k < expected.Length; k++)
        {
            Assert.Equal(expected[k].shape, actual[k].shape);
            double scale = Math.Max(1, expected[k].abs().max().ToDouble());
            double error = (actual[k] - expected[k]).abs().max().ToDouble();
            Assert.True(error < 1e-12 * scale, $"output {k}: max error {error}");
        }

        // Float32 against the float64 truth, as the networks run it.
        var single = Evaluate(x.to(ScalarType.Float32), w.to(ScalarType.Float32), b?.to(ScalarType.Float32), stride, padding, reference: false);
        for (int k = 0; k < expected.Length; k++)
        {
            double scale = expected[k].abs().max().ToDouble();
            double error = (single[k].to(ScalarType.Float64) - expected[k]).abs().max().ToDouble();
            Assert.True(error < 1e-5 * scale, $"float32 output {k}: relative error {error / scale}");
        }
    }

    /// <summary>Through a nonlinearity the input and weight gradients depend on x, w and b, so differentiating them again
    /// reaches every derivative of the three GEMM operations (convolution, input gradient, weight gradient).</summary>
    [Theory]
    [InlineData(3, 6, 8, 16, 5, 1, 2, true)]
    [InlineData(4, 8, 8, 9, 3, 2, 1, true)]       // stride-2 downsampling, odd length
    [InlineData(2, 8, 4, 2, 5, 1, 2, true)]       // the reward's deepest levels: length below the kernel
    [InlineData(5, 6, 8, 6, 1, 1, 0, false)]      // 1x1 residual projection, no bias
    public void SecondDerivativesMatchConv1dInFloat64(int batch, int inputs, int outputs, int length, int kernel, int stride, int padding, bool withBias)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(11);
        var x = randn(new long[] { batch, inputs, length }, ScalarType.Float64, generator: generator);
        var w = randn(new long[] { outputs, inputs, kernel }, ScalarType.Float64, generator: generator);
        var b = withBias ? randn(new long[] { outputs }, ScalarType.Float64, generator: generator) : null;

        Tensor[] SecondOrder(bool reference)
        {
            var xs = x.detach().requires_grad_(true);
            var ws = w.detach().requires_grad_(true);
            var bs = b?.detach().requires_grad_(true);
            var y = reference ? F.conv1d(xs, ws, bs, stride: stride, padding: padding) : TemporalConvolution.Apply(xs, ws, bs, stride, padding);
            var inputs = bs is null ? new[] { xs, ws } : new[] { xs, ws, bs };
            var first = torch.autograd.grad(new[] { y.tanh().mul(y.detach().cos()).sum() }, new[] { xs, ws }, retain_graph: true, create_graph: true);
            var objective = first[0].square().sum() + first[1].sin().sum();
            return first.Concat(torch.autograd.grad(new[] { objective }, inputs)).Select(t => t.detach()).ToArray();
        }

        var expected = SecondOrder(reference: true);
        var actual = SecondOrder(reference: false);
        Assert.Equal(expected.Length, actual.Length);
        for (int k = 0; k < expected.Length; k++)
        {
            Assert.Equal(expected[k].shape, actual[k].shape);
            double scale = Math.Max(1, expected[k].abs().max().ToDouble());
            double error = (actual[k] - expected[k]).abs().max().ToDouble();
            Assert.True(error < 1e-10 * scale, $"derivative {k}: max error {error}");
        }
    }

    [Fact]
    public void WithoutAutogradGivesTheSameValuesAndAcceptsStridedInput()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(9);
        var x = randn(new long[] { 3, 20, 12 }, generator: generator).transpose(1, 2);   // [3, 12, 20], not contiguous
        var w = randn(new long[] { 7, 12, 5 }, generator: generator);
        var b = randn(new long[] { 7 }, generator: generator);
        using (no_grad())
        {
            var actual = TemporalConvolution.Apply(x, w, b, 1, 2);
            var expected = F.conv1d(x, w, b, padding: 2);
            Assert.True(actual.is_contiguous());
            Assert.Equal(expected.shape, actual.shape);
            Assert.True((actual - expected).abs().max().ToSingle() < 1e-4f);
        }
    }

    [Fact]
    public void ShapeErrorsAreLibtorchsNotACrash()
    {
        using var scope = NewDisposeScope();
        var x = randn(2, 5, 8);
        var w = randn(4, 6, 3);   // expects 6 input channels
        var error = Assert.ThrowsAny<Exception>(() => TemporalConvolution.Apply(x, w, null, 1, 1));
        Assert.Contains("channels", error.Message);
    }

    /// <summary>[y, dL/dx, dL/dw, (dL/db), d(sum (dL/dx)^2)/dw] for L = sum(y * cos(y.detach())).</summary>
    private static Tensor[] Evaluate(Tensor x, Tensor w, Tensor? b, int stride, int padding, bool reference)
    {
        x = x.detach().requires_grad_(true);
        w = w.detach().requires_grad_(true);
        b = b?.detach().requires_grad_(true);
        Tensor Convolve() => reference ? F.conv1d(x, w, b, stride: stride, padding: padding) : TemporalConvolution.Apply(x, w, b, stride, padding);

        var y = Convolve();
        var probe = y.detach().cos();
        var inputs = b is null ? new[] { x, w } : new[] { x, w, b };
        var first = torch.autograd.grad(new[] { (y * probe).sum() }, inputs);

        // Double backward (create_graph), as the reward objective differentiates an input gradient.
        var again = Convolve();
        var inputGradient = torch.autograd.grad(new[] { (again * probe).sum() }, new[] { x }, create_graph: true)[0];
        var second = torch.autograd.grad(new[] { inputGradient.square().sum() }, new[] { w })[0];
        return new[] { y.detach() }.Concat(first).Append(second).ToArray();
    }
}
