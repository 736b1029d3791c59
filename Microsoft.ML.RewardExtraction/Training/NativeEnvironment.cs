using System.Runtime.InteropServices;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The process's native environment (libc), which libtorch, libgomp and oneDNN read. .NET keeps its own copy of the
/// environment on Linux, so variables meant for native libraries are read and written here instead.
/// </summary>
internal static class NativeEnvironment
{
    [DllImport("libc.so.6", EntryPoint = "setenv", SetLastError = true)]
    private static extern int SetEnvironment(string name, string value, int overwrite);

    [DllImport("libc.so.6", EntryPoint = "getenv")]
    private static extern IntPtr GetEnvironment(string name);

    /// <summary>The native value of <paramref name="name"/>, or null (the managed value off Linux).</summary>
    public static string? Get(string name)
    {
        if (!OperatingSystem.IsLinux())
            return Environment.GetEnvironmentVariable(name);
        var pointer = GetEnvironment(name);
        return pointer == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(pointer);
    }

    /// <summary>Sets <paramref name="name"/> unless it is set (Linux only); null on success, else why not.</summary>
    public static string? SetIfUnset(string name, string value) =>
        SetEnvironment(name, value, 0) == 0 ? null : $"setenv failed ({Marshal.GetLastPInvokeError()})";

    /// <summary>Whether libtorch (or its OpenMP runtime) is already mapped into the process.</summary>
    public static bool LibtorchLoaded()
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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
