using System.Runtime.InteropServices;

namespace MLReward.Locomotion;

/// <summary>
/// Entry point of the MuJoCo 2.2.2 binding: finds and loads <c>libmujoco.so.2.2.2</c> once, checks its version,
/// and says why it cannot be used when it cannot.
/// </summary>
/// <remarks>
/// The library is the file named by the <c>MLREWARD_MUJOCO_LIBRARY</c> environment variable when it is set (and only
/// that one: a library asked for by name that does not load is an error, not a reason to pick another), else the first
/// of the names <c>libmujoco.so.2.2.2</c>, <c>libmujoco.so.2</c>, <c>libmujoco.so</c>, <c>mujoco</c> that loads (the
/// system's loader search path). Fields of <c>mjModel</c>/<c>mjData</c> are read at the offsets of the
/// 2.2.2 layout, so any other version is refused (<see cref="UnavailableReason"/> says so).
/// </remarks>
public static unsafe class MuJoCo
{
    /// <summary><c>mj_version()</c> of the only MuJoCo release this binding accepts (2.2.2).</summary>
    public const int RequiredVersion = 222;

    /// <summary>The command that installs what this binding needs on Debian/Ubuntu.</summary>
    public const string InstallCommand = "sudo apt-get install libmujoco2.2.2 libmujoco-dev";

    /// <summary>The environment variable that may name the MuJoCo library file explicitly.</summary>
    public const string LibraryVariable = "MLREWARD_MUJOCO_LIBRARY";

    private static readonly string[] s_names = ["libmujoco.so.2.2.2", "libmujoco.so.2", "libmujoco.so", "mujoco"];

    private static readonly Lazy<LoadResult> s_load = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>True when MuJoCo 2.2.2 was found and loaded; every other type of this namespace needs it.</summary>
    public static bool IsAvailable => s_load.Value.Error is null;

    /// <summary>Why MuJoCo cannot be used, including how to install it; null when <see cref="IsAvailable"/>.</summary>
    public static string? UnavailableReason => s_load.Value.Error;

    /// <summary>The library that was loaded (the name or path that worked), or null.</summary>
    public static string? LibraryName => s_load.Value.Name;

    /// <summary><c>mj_version()</c> of the loaded library (222), or 0 when none could be loaded.</summary>
    public static int Version => s_load.Value.Version;

    /// <summary>Throws <see cref="MuJoCoUnavailableException"/> with <see cref="UnavailableReason"/> unless available.</summary>
    public static void EnsureAvailable()
    {
        if (s_load.Value.Error is { } error)
            throw new MuJoCoUnavailableException(error);
    }

    internal static Native Api
    {
        get
        {
            EnsureAvailable();
            return s_load.Value.Api!;
        }
    }

    private sealed record LoadResult(string? Error, string? Name, int Version, Native? Api);

    private static LoadResult Load()
    {
        string install = $"Install MuJoCo 2.2.2 with `{InstallCommand}` (Debian 12 / Ubuntu packages), "
                       + $"or point {LibraryVariable} at a libmujoco.so.2.2.2.";
        if (IntPtr.Size != 8)
            return new($"MuJoCo binding needs a 64-bit process (the 2.2.2 field layout is the 64-bit one). {install}", null, 0, null);

        var tried = new List<string>();
        IntPtr handle = IntPtr.Zero;
        string? name = null;
        string? explicitPath = Environment.GetEnvironmentVariable(LibraryVariable);
        IEnumerable<string> candidates = string.IsNullOrWhiteSpace(explicitPath) ? s_names : [explicitPath];
        foreach (string candidate in candidates)
        {
            if (NativeLibrary.TryLoad(candidate, out handle))
            {
                name = candidate;
                break;
            }
            tried.Add(candidate);
        }
        if (handle == IntPtr.Zero)
            return new($"MuJoCo 2.2.2 was not found (tried {string.Join(", ", tried)}). {install}", null, 0, null);

        Native api;
        try
        {
            api = new Native(handle);
        }
        catch (EntryPointNotFoundException e)
        {
            return new($"'{name}' does not look like MuJoCo 2.2.2 ({e.Message}). {install}", name, 0, null);
        }

        int version = api.mj_version();
        if (version != RequiredVersion)
        {
            return new($"'{name}' is MuJoCo version {version}, but this binding reads mjModel/mjData at the offsets "
                     + $"of version {RequiredVersion} (2.2.2) and refuses any other. {install}", name, version, null);
        }
        return new(null, name, version, api);
    }
}

/// <summary>MuJoCo is not installed or not usable; the message says what to install.</summary>
public sealed class MuJoCoUnavailableException(string message) : InvalidOperationException(message);

/// <summary>An error reported by MuJoCo (for example a model that does not load), with MuJoCo's own message.</summary>
public sealed class MuJoCoException(string message) : Exception(message);

/// <summary>The MuJoCo C functions this binding calls, resolved once from the loaded library.</summary>
internal sealed unsafe class Native
{
    public readonly delegate* unmanaged[Cdecl]<int> mj_version;
    public readonly delegate* unmanaged[Cdecl]<byte*, void*, byte*, int, void*> mj_loadXML;
    public readonly delegate* unmanaged[Cdecl]<void*, void> mj_deleteModel;
    public readonly delegate* unmanaged[Cdecl]<void*, void*> mj_makeData;
    public readonly delegate* unmanaged[Cdecl]<void*, void> mj_deleteData;
    public readonly delegate* unmanaged[Cdecl]<void*, void*, void> mj_resetData;
    public readonly delegate* unmanaged[Cdecl]<void*, void*, void> mj_step;
    public readonly delegate* unmanaged[Cdecl]<void*, void*, void> mj_forward;
    public readonly delegate* unmanaged[Cdecl]<void*, int, byte*, int> mj_name2id;

    public Native(IntPtr library)
    {
        mj_version = (delegate* unmanaged[Cdecl]<int>)NativeLibrary.GetExport(library, "mj_version");
        mj_loadXML = (delegate* unmanaged[Cdecl]<byte*, void*, byte*, int, void*>)NativeLibrary.GetExport(library, "mj_loadXML");
        mj_deleteModel = (delegate* unmanaged[Cdecl]<void*, void>)NativeLibrary.GetExport(library, "mj_deleteModel");
        mj_makeData = (delegate* unmanaged[Cdecl]<void*, void*>)NativeLibrary.GetExport(library, "mj_makeData");
        mj_deleteData = (delegate* unmanaged[Cdecl]<void*, void>)NativeLibrary.GetExport(library, "mj_deleteData");
        mj_resetData = (delegate* unmanaged[Cdecl]<void*, void*, void>)NativeLibrary.GetExport(library, "mj_resetData");
        mj_step = (delegate* unmanaged[Cdecl]<void*, void*, void>)NativeLibrary.GetExport(library, "mj_step");
        mj_forward = (delegate* unmanaged[Cdecl]<void*, void*, void>)NativeLibrary.GetExport(library, "mj_forward");
        mj_name2id = (delegate* unmanaged[Cdecl]<void*, int, byte*, int>)NativeLibrary.GetExport(library, "mj_name2id");
    }
}
