using System.Runtime.InteropServices;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Gives the memory that training freed back to the operating system. libtorch allocates and frees hundreds of megabytes
/// of tensors during a fit; glibc keeps the freed pages in its arenas, so a process that trains again and again (a service,
/// a sweep, the soak in Examples/Benchmarks) sees its resident set creep upward with memory it does not use. Trimming after
/// each fit keeps the resident set near what is live (the soak in Examples/Benchmarks/README.md measures it). A no-op off
/// glibc.
/// </summary>
public static class NativeHeap
{
    private static bool _unavailable = !OperatingSystem.IsLinux();

    [DllImport("libc.so.6", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>Returns freed heap pages to the operating system (glibc's <c>malloc_trim(0)</c>); a few milliseconds.</summary>
    public static void ReturnFreedMemory()
    {
        if (_unavailable)
            return;
        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;   // musl and other C libraries have no malloc_trim
        }
    }
}
