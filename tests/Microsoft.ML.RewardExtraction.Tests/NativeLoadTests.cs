using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>Proves that the build's native fix lets libtorch load here and that double backward works.</summary>
public class NativeLoadTests
{
    [Fact]
    public void TorchInitialisesAndRunsDoubleBackward()
    {
        Assert.True(torch.TryInitializeDeviceType(DeviceType.CPU));
        // f(x) = sum x^3  ->  df/dx = 3x^2  ->  d(sum df/dx)/dx = 6x
        using var x = torch.tensor(new double[] { 0.5, -1.25, 2.0 }, requires_grad: true);
        using var f = x.pow(3).sum();
        var g = torch.autograd.grad(new[] { f }, new[] { x }, retain_graph: true, create_graph: true)[0];
        Assert.Equal(new[] { 0.75, 4.6875, 12.0 }, g.data<double>().ToArray());
        var h = torch.autograd.grad(new[] { g.sum() }, new[] { x })[0];
        Assert.Equal(new[] { 3.0, -7.5, 12.0 }, h.data<double>().ToArray());
    }
}
