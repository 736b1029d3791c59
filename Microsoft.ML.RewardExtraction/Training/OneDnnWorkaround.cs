using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Keeps oneDNN (libtorch's CPU convolution library) on its SSE4.1 kernels unless the process chose otherwise. With libtorch
/// 2.10.0 on the project's AVX-512 machines (AMD EPYC) oneDNN's 256- and 512-bit convolution kernels are not reliable:
/// <list type="bullet">
/// <item>the first backward pass of a small conv network returned NaN input gradients (anomaly mode: ConvolutionBackward0);</item>
/// <item>a temporal U-Net's forward pass on finite weights and inputs returned NaN in 2,400 of 2,944 outputs, and recomputing
/// it gave different values (max difference 1.7), at a random training step.</item>
/// </list>
/// The cheetah quick experiment failed 3/3 with AVX-512, 2/3 with AVX2 and 2/4 with AVX kernels; it passed 9/9 with SSE4.1.
/// The price is speed: SSE4.1 convolutions are about half as fast (see the benchmark README). oneDNN reads
/// <c>ONEDNN_MAX_CPU_ISA</c> when it first picks its kernels, so the library sets it natively as soon as this assembly loads;
/// a process that sets the variable itself (e.g. <c>ONEDNN_MAX_CPU_ISA=ALL</c> on a machine known to be sound) keeps its value.
/// oneDNN reads the variable once, when libtorch is loaded, so a program calls <see cref="Apply"/> before its first torch call
/// (the module initializer covers programs whose first torch call goes through this library).
/// </summary>
public static class OneDnnWorkaround
{
    /// <summary>The environment variable.</summary>
    public const string Variable = "ONEDNN_MAX_CPU_ISA";

    /// <summary>The kernels the library asks for.</summary>
    public const string SafeIsa = "SSE41";

    [DllImport("libc.so.6", EntryPoint = "setenv")]
    private static extern int SetEnvironment(string name, string value, int overwrite);

#pragma warning disable CA2255 // A library-level workaround that must run before the first convolution.
    /// <summary>Sets <c>ONEDNN_MAX_CPU_ISA=SSE41</c> in the native environment unless it is set (Linux only).</summary>
    [ModuleInitializer]
#pragma warning restore CA2255
    public static void Apply()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(Variable) is not null)
            return;
        // overwrite = 0: a value set natively by the host wins as well.
        SetEnvironment(Variable, SafeIsa, 0);
    }
}
