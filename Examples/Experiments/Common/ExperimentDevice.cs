using Microsoft.ML;
using Microsoft.ML.RewardExtraction;
using TorchSharp;

namespace MLReward.Experiments;

/// <summary>
/// The device an experiment runs on, given as a name ("cpu", "cuda" or "cuda:N"): set on the run's MLContext as ML.NET's
/// <c>GpuDeviceId</c> with <c>FallbackToCpu</c> off, so every estimator trains there and every loaded model is placed there
/// (docs/ARCHITECTURE.md, devices). Null or "cpu" = the CPU.
/// </summary>
public static class ExperimentDevice
{
    /// <summary>Throws before any work starts when <paramref name="name"/> is not a device or this process cannot use it.</summary>
    /// <exception cref="ArgumentException">Not a device name.</exception>
    /// <exception cref="InvalidOperationException">A GPU this process cannot use (e.g. a CPU-only libtorch).</exception>
    public static void Validate(string? name)
    {
        if (name is not null)
            ComputeDevice.Resolve(name, gpuDeviceId: null, fallbackToCpu: false);
    }

    /// <summary>Points <paramref name="ml"/> at the device <paramref name="name"/>.</summary>
    public static void Apply(MLContext ml, string? name)
    {
        ArgumentNullException.ThrowIfNull(ml);
        if (name is null)
            return;
        var device = ComputeDevice.Parse(name);
        if (device.type == DeviceType.CUDA)
        {
            ml.GpuDeviceId = device.index;
            ml.FallbackToCpu = false;
        }
    }
}
