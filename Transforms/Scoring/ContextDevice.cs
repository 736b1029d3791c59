using Microsoft.ML.Runtime;
using TorchSharp;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The device an MLContext asks for: its <c>GpuDeviceId</c> and <c>FallbackToCpu</c> (ML.NET keeps them on the environment
/// every catalog and loader receives), resolved by <see cref="ComputeDevice.Resolve"/>. Trainers call it at <c>Fit</c>
/// with their explicit <c>Device</c> option; loaders call it without one, so <c>mlContext.Model.Load</c> puts a model on
/// the loading context's device whatever device saved it.
/// </summary>
internal static class ContextDevice
{
    /// <summary>The device for <paramref name="env"/>, with <paramref name="explicitName"/> taking precedence; a fallback
    /// warning goes to <paramref name="host"/>'s log.</summary>
    /// <exception cref="InvalidOperationException">A GPU is asked for, cannot be used, and FallbackToCpu is not set.</exception>
    public static torch.Device Resolve(IHostEnvironment env, IHost host, string? explicitName = null)
    {
        var settings = env as IHostEnvironmentInternal;
        try
        {
            return ComputeDevice.Resolve(explicitName, settings?.GpuDeviceId, settings?.FallbackToCpu ?? false, message =>
            {
                using var channel = host.Start("Device");
                channel.Warning(message);
            });
        }
        catch (InvalidOperationException e)
        {
            throw host.Except(e, e.Message);
        }
    }
}
