using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Where models live and compute: "cpu", "cuda" or "cuda:N". The choice follows Microsoft.ML.TorchSharp's convention: an
/// explicit name wins; otherwise the MLContext's <c>GpuDeviceId</c> asks for that GPU, and none means the CPU. When a GPU
/// is asked for but this process cannot use it (the CPU build of libtorch, no driver, no such index), the MLContext's
/// <c>FallbackToCpu</c> decides between the CPU, with a warning, and an error that says what was asked for and why it
/// cannot be had. Randomness is always drawn on the CPU, so a seed gives the same numbers on every device up to the
/// device's arithmetic.
/// </summary>
public static class ComputeDevice
{
    /// <summary>The names <see cref="Parse"/> accepts, for messages.</summary>
    public const string AcceptedNames = "\"cpu\", \"cuda\" or \"cuda:N\" (N = 0, 1, ...)";

    /// <summary>Parses a device name without checking that the device can be used.</summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="AcceptedNames"/>.</exception>
    public static Device Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string trimmed = name.Trim().ToLowerInvariant();
        if (trimmed == "cpu")
            return CPU;
        if (trimmed == "cuda")
            return new Device(DeviceType.CUDA, 0);
        if (trimmed.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(trimmed.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int index))
            return new Device(DeviceType.CUDA, index);
        throw new ArgumentException($"'{name}' is not a device: use {AcceptedNames}.", nameof(name));
    }

    /// <summary>
    /// The device to use: <paramref name="name"/> when given, else GPU <paramref name="gpuDeviceId"/> when given, else the CPU.
    /// </summary>
    /// <param name="name">An explicit device name (<see cref="AcceptedNames"/>), or null.</param>
    /// <param name="gpuDeviceId">The MLContext's GPU, or null.</param>
    /// <param name="fallbackToCpu">Whether a GPU this process cannot use falls back to the CPU (with a warning) rather than failing.</param>
    /// <param name="warning">Receives the fallback warning; null = <see cref="System.Diagnostics.Trace.TraceWarning(string)"/>.</param>
    /// <exception cref="ArgumentException">A name that is not a device, or a negative GPU index.</exception>
    /// <exception cref="InvalidOperationException">A GPU is asked for, cannot be used, and <paramref name="fallbackToCpu"/> is false.</exception>
    public static Device Resolve(string? name, int? gpuDeviceId, bool fallbackToCpu, Action<string>? warning = null)
    {
        if (gpuDeviceId < 0)
            throw new ArgumentException($"GpuDeviceId must be 0 or more; got {gpuDeviceId}.", nameof(gpuDeviceId));
        var device = name is not null ? Parse(name) : gpuDeviceId is int id ? new Device(DeviceType.CUDA, id) : CPU;
        if (device.type != DeviceType.CUDA)
            return device;
        string? why = CudaUnavailable(device.index);
        if (why is null)
            return device;
        string asked = name is not null ? $"Device \"{name}\"" : $"GpuDeviceId {gpuDeviceId}";
        if (!fallbackToCpu)
            throw new InvalidOperationException($"{asked} asks for {Describe(device)}, but {why}. Set the MLContext's FallbackToCpu to run on the CPU instead.");
        string message = $"{asked} asks for {Describe(device)}, but {why}; running on the CPU (FallbackToCpu is set).";
        if (warning is null)
            System.Diagnostics.Trace.TraceWarning(message);
        else
            warning(message);
        return CPU;
    }

    /// <summary>Whether two devices are the same one (torch's <see cref="Device"/> compares by reference; an index of -1
    /// means the first device).</summary>
    public static bool Same(Device a, Device b) =>
        a.type == b.type && (a.type == DeviceType.CPU || Math.Max(0, (int)a.index) == Math.Max(0, (int)b.index));

    /// <summary>"cpu" or "cuda:N": the name <see cref="Parse"/> reads back.</summary>
    public static string Describe(Device device) =>
        device.type == DeviceType.CUDA ? string.Create(CultureInfo.InvariantCulture, $"cuda:{Math.Max(0, (int)device.index)}") : device.type.ToString().ToLowerInvariant();

    /// <summary>Why GPU <paramref name="index"/> cannot be used, or null when it can.</summary>
    private static string? CudaUnavailable(long index)
    {
        if (!cuda.is_available())
            return "this process has no usable CUDA device (TorchSharp's CPU build, or no GPU or driver; build with -p:TorchBackend=cuda on a CUDA machine)";
        int count = cuda.device_count();
        return index < count ? null : string.Create(CultureInfo.InvariantCulture, $"this machine has {count} CUDA device(s)");
    }
}
