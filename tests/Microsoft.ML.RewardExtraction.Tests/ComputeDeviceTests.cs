using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

public class ComputeDeviceTests
{
    [Theory]
    [InlineData("cpu", "cpu")]
    [InlineData(" CPU ", "cpu")]
    [InlineData("cuda", "cuda:0")]
    [InlineData("cuda:0", "cuda:0")]
    [InlineData("CUDA:3", "cuda:3")]
    public void Names_ParseToTheDeviceTheyName_AndDescribeBack(string name, string described)
    {
        var device = ComputeDevice.Parse(name);
        Assert.Equal(described, ComputeDevice.Describe(device));
        Assert.True(ComputeDevice.Same(device, ComputeDevice.Parse(described)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:1.5")]
    [InlineData("mps")]
    public void OtherNames_AreRefused_SayingWhatIsAccepted(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => ComputeDevice.Parse(name));
        Assert.StartsWith($"'{name}' is not a device: use \"cpu\", \"cuda\" or \"cuda:N\"", e.Message);
    }

    [Fact]
    public void Resolve_PrefersTheName_ThenTheGpuId_ThenTheCpu()
    {
        Assert.Equal(DeviceType.CPU, ComputeDevice.Resolve(null, null, fallbackToCpu: false).type);
        Assert.Equal(DeviceType.CPU, ComputeDevice.Resolve("cpu", 0, fallbackToCpu: false).type);
        Assert.Contains("GpuDeviceId must be 0 or more; got -2", Assert.Throws<ArgumentException>(() => ComputeDevice.Resolve(null, -2, true)).Message);
        if (cuda.is_available())
            return; // What follows is the answer of a process without CUDA (every CI host).
        var warnings = new List<string>();
        Assert.Equal(DeviceType.CPU, ComputeDevice.Resolve(null, 1, fallbackToCpu: true, warnings.Add).type);
        Assert.Equal(["GpuDeviceId 1 asks for cuda:1, but this process has no usable CUDA device (TorchSharp's CPU build, or no GPU or driver; build with -p:TorchBackend=cuda on a CUDA machine); running on the CPU (FallbackToCpu is set)."], warnings);
        var e = Assert.Throws<InvalidOperationException>(() => ComputeDevice.Resolve("cuda", null, fallbackToCpu: false, warnings.Add));
        Assert.StartsWith("Device \"cuda\" asks for cuda:0, but this process has no usable CUDA device", e.Message);
        Assert.EndsWith("Set the MLContext's FallbackToCpu to run on the CPU instead.", e.Message);
    }

    [Fact]
    public void Same_ComparesTypeAndIndex_NotReferences()
    {
        Assert.True(ComputeDevice.Same(CPU, new Device(DeviceType.CPU)));
        Assert.True(ComputeDevice.Same(new Device(DeviceType.CUDA), new Device(DeviceType.CUDA, 0)));
        Assert.False(ComputeDevice.Same(new Device(DeviceType.CUDA, 0), new Device(DeviceType.CUDA, 1)));
        Assert.False(ComputeDevice.Same(CPU, new Device(DeviceType.CUDA, 0)));
    }
}
