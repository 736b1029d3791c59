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
            var existing = NativeEnvironment.Get(name);
            if (existing is not null)
                return $"kept {name}={existing}";
        }
        if (NativeEnvironment.LibtorchLoaded())
            return "too late: libtorch already loaded";
        return NativeEnvironment.SetIfUnset("OMP_WAIT_POLICY", "PASSIVE") ?? "set";
    }

    /// <summary>The native environment's <c>OMP_WAIT_POLICY</c>, or null.</summary>
    public static string? WaitPolicy => NativeEnvironment.Get("OMP_WAIT_POLICY");
}
