using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Keeps oneDNN (libtorch's CPU convolution library) on its AVX2 kernels. With libtorch 2.10.0 on AVX-512 CPUs (measured on
/// the project's AMD EPYC machines) the first backward pass of a small 1-D/2-D convolution network returns NaN input
/// gradients (autograd's anomaly mode names ConvolutionBackward0); the same call again, or with ONEDNN_MAX_CPU_ISA=AVX2, is
/// finite and correct. oneDNN reads the variable when it first picks its kernels, so the library sets it (natively, unless
/// the process already chose a value) as soon as this assembly loads, before any of its networks runs.
/// </summary>
internal static class OneDnnWorkaround
{
    internal const string Variable = "ONEDNN_MAX_CPU_ISA";

    [DllImport("libc.so.6", EntryPoint = "setenv")]
    private static extern int SetEnvironment(string name, string value, int overwrite);

#pragma warning disable CA2255 // A library-level workaround that must run before the first convolution.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Apply()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(Variable) is not null)
            return;
        // overwrite = 0: a value set natively by the host wins as well.
        SetEnvironment(Variable, "AVX2", 0);
    }
}
