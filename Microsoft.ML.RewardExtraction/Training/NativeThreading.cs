using System.Runtime.InteropServices;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// How libtorch's OpenMP worker threads wait between parallel regions. By default libgomp lets idle workers spin for
/// about 300,000 iterations before sleeping; on a machine whose cores are shared with other busy processes that spinning
/// steals the cores the work needs (measured on the project's 2-core machines under load: a W1 training step took 17-26 s
/// wall and 3-5 s CPU with 2 threads, 1.2-1.4 s and 0.4 s with passive waiting; 1-thread runs are unaffected). The setting
/// changes no number, only scheduling. libgomp reads it once, when libtorch is loaded, so it must be applied before the
/// first torch call of the process.
/// </summary>
public static class NativeThreading
{
    [DllImport("libc.so.6", EntryPoint = "setenv", SetLastError = true)]
    private static extern int SetEnvironment(string name, string value, int overwrite);

    [DllImport("libc.so.6", EntryPoint = "getenv")]
    private static extern IntPtr GetEnvironment(string name);

    /// <summary>
    /// Sets <c>OMP_WAIT_POLICY=PASSIVE</c> in the native environment so that libtorch's OpenMP threads sleep when idle,
    /// unless the process already chose a policy (<c>OMP_WAIT_POLICY</c> or <c>GOMP_SPINCOUNT</c> set), libtorch is
    /// already loaded (too late to matter), or this is not Linux. Call it first thing in a program, before any torch call.
    /// </summary>
    /// <returns>What happened, for logs: "set", "kept OMP_WAIT_POLICY=...", "too late: libtorch already loaded", or "not Linux".</returns>
    public static string PreferPassiveWaiting()
    {
        if (!OperatingSystem.IsLinux())
            return "not Linux";
        foreach (var name in new[] { "OMP_WAIT_POLICY", "GOMP_SPINCOUNT" })
        {
            var existing = NativeValue(name);
            if (existing is not null)
                return $"kept {name}={existing}";
        }
        if (OpenMPLoaded())
            return "too late: libtorch already loaded";
        return SetEnvironment("OMP_WAIT_POLICY", "PASSIVE", 0) == 0 ? "set" : $"setenv failed ({Marshal.GetLastPInvokeError()})";
    }

    /// <summary>The native environment's <c>OMP_WAIT_POLICY</c>, or null.</summary>
    public static string? WaitPolicy => OperatingSystem.IsLinux() ? NativeValue("OMP_WAIT_POLICY") : Environment.GetEnvironmentVariable("OMP_WAIT_POLICY");

    private static string? NativeValue(string name)
    {
        var pointer = GetEnvironment(name);
        return pointer == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(pointer);
    }

    private static bool OpenMPLoaded()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                if (line.Contains("libgomp", StringComparison.Ordinal) || line.Contains("libtorch_cpu", StringComparison.Ordinal))
                    return true;
            }
            return false;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
