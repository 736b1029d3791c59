using System.Runtime.CompilerServices;

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
/// The price is speed: SSE4.1 convolutions are about half as fast (see the benchmark README). A process that sets
/// <c>ONEDNN_MAX_CPU_ISA</c> itself (e.g. <c>ALL</c> on a machine known to be sound) keeps its value. The setting only takes
/// effect before libtorch loads (measured: set from this assembly's module initializer after a program's own first torch
/// call, it changed nothing), so a program calls <see cref="Apply"/> first thing; the module initializer covers programs
/// whose first torch call goes through this library.
/// </summary>
public static class OneDnnWorkaround
{
    /// <summary>The environment variable.</summary>
    public const string Variable = "ONEDNN_MAX_CPU_ISA";

    /// <summary>The kernels the library asks for.</summary>
    public const string SafeIsa = "SSE41";

#pragma warning disable CA2255 // A library-level workaround that must run before the first convolution.
    /// <summary>Sets <c>ONEDNN_MAX_CPU_ISA=SSE41</c> in the native environment unless it is set (Linux only).</summary>
    [ModuleInitializer]
#pragma warning restore CA2255
    public static void Apply()
    {
        if (OperatingSystem.IsLinux() && NativeEnvironment.Get(Variable) is null)
            NativeEnvironment.SetIfUnset(Variable, SafeIsa);
    }

    /// <summary>The kernels oneDNN is limited to: the native <c>ONEDNN_MAX_CPU_ISA</c>, or null when unset.</summary>
    public static string? Value => NativeEnvironment.Get(Variable);
}
