using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Keeps convolutions off oneDNN's unreliable kernels. With libtorch 2.10.0 on the project's AVX-512 machines (AMD EPYC),
/// oneDNN's 256- and 512-bit convolution kernels give wrong numbers. <c>mlreward-bench --check-convolutions</c> compares 660
/// float32 convolution cases (the shapes of this project's networks: forward, input and weight gradients, double backward)
/// with float64; measured with oneDNN on AVX-512 kernels: 81 cases not finite and 105 off by 17-100%; on AVX2: 8 and 28;
/// on SSE4.1, and with libtorch's own convolutions, none (largest relative error 3e-6).
/// <para>
/// Two layers of protection:
/// <list type="number">
/// <item>Every network this library builds (<see cref="Denoiser"/>, <see cref="RewardNetwork"/>) switches libtorch's
/// convolutions from oneDNN to libtorch's own implementation (im2col and the BLAS GEMM; <c>at::Context::setUserEnabledMkldnn</c>
/// and <c>setUserEnabledNNPACK</c>, PyTorch's <c>torch.backends.mkldnn.enabled = False</c> and its NNPACK flag). The check finds that path correct whatever the ISA limit and, measured on this project's
/// workloads, 1.6-1.8x faster than oneDNN's SSE4.1 kernels. <c>MLREWARD_ONEDNN_CONVOLUTIONS=1</c> keeps oneDNN.</item>
/// <item><see cref="Apply"/> (a module initializer, and first thing in each program here) sets <c>ONEDNN_MAX_CPU_ISA=SSE41</c>
/// unless the process set it, for whatever still reaches oneDNN. It only takes effect before libtorch loads.</item>
/// </list>
/// </para>
/// </summary>
public static class OneDnnWorkaround
{
    /// <summary>The environment variable that limits oneDNN's kernels.</summary>
    public const string Variable = "ONEDNN_MAX_CPU_ISA";

    /// <summary>The kernels the library asks for.</summary>
    public const string SafeIsa = "SSE41";

    /// <summary>Set to 1 to keep libtorch's convolutions on oneDNN (for comparisons).</summary>
    public const string KeepOneDnnConvolutionsVariable = "MLREWARD_ONEDNN_CONVOLUTIONS";

    private static int _convolutionsChecked;

#pragma warning disable CA2255 // A library-level workaround that must run before libtorch loads.
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

    /// <summary>Whether libtorch sends CPU convolutions to oneDNN (true), to its own implementation (false), or null where
    /// the switch could not be read (another libtorch build). Reading it loads libtorch.</summary>
    public static bool? ConvolutionsUseOneDnn
    {
        get
        {
            try
            {
                return UserEnabledMkldnn(GlobalContext());
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return null;
            }
        }
    }

    /// <summary>Turns oneDNN convolutions off once per process, unless <c>MLREWARD_ONEDNN_CONVOLUTIONS=1</c>. Called by the
    /// network base classes, whose base constructor has loaded libtorch by then.</summary>
    internal static void EnsureSafeConvolutions()
    {
        if (Interlocked.Exchange(ref _convolutionsChecked, 1) != 0)
            return;
        if (Environment.GetEnvironmentVariable(KeepOneDnnConvolutionsVariable) == "1")
            return;
        try
        {
            var context = GlobalContext();
            SetUserEnabledMkldnn(context, false);
            // The path without oneDNN first asks NNPACK, which on CPUs it does not support logs "Could not initialize
            // NNPACK! Reason: Unsupported hardware." for every convolution; one path everywhere is simpler as well.
            SetUserEnabledNnpack(context, false);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Another libtorch build without these symbols: the ISA limit of Apply still holds.
        }
    }

    // at::globalContext() and two of its members (Itanium C++ ABI: the object is the first argument).
    [DllImport("libtorch_cpu.so", EntryPoint = "_ZN2at13globalContextEv")]
    private static extern IntPtr GlobalContext();

    [DllImport("libtorch_cpu.so", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    private static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport("libtorch_cpu.so", EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    private static extern void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport("libtorch_cpu.so", EntryPoint = "_ZNK2at7Context17userEnabledMkldnnEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static extern bool UserEnabledMkldnn(IntPtr context);
}
