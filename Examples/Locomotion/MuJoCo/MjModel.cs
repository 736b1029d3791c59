using System.Runtime.InteropServices;
using System.Text;

namespace MLReward.Locomotion;

/// <summary>A compiled MuJoCo model (<c>mjModel*</c>), loaded from MJCF. Dispose it after every <see cref="MjData"/> made from it.</summary>
public sealed unsafe class MjModel : IDisposable
{
    private const int ErrorBufferSize = 1000;
    private static readonly object s_loadLock = new();
    private byte* _ptr;

    private MjModel(byte* ptr)
    {
        _ptr = ptr;
        Nq = *(int*)(ptr + Layout222.ModelNq);
        Nv = *(int*)(ptr + Layout222.ModelNv);
        Nu = *(int*)(ptr + Layout222.ModelNu);
        Na = *(int*)(ptr + Layout222.ModelNa);
        NBody = *(int*)(ptr + Layout222.ModelNbody);
        NJoint = *(int*)(ptr + Layout222.ModelNjnt);
        CheckLayout();
    }

    /// <summary>Number of generalized coordinates (<c>nq</c>).</summary>
    public int Nq { get; }

    /// <summary>Number of degrees of freedom (<c>nv</c>).</summary>
    public int Nv { get; }

    /// <summary>Number of actuators / controls (<c>nu</c>).</summary>
    public int Nu { get; }

    /// <summary>Number of activation states (<c>na</c>).</summary>
    public int Na { get; }

    /// <summary>Number of bodies, the world body included (<c>nbody</c>).</summary>
    public int NBody { get; }

    /// <summary>Number of joints (<c>njnt</c>).</summary>
    public int NJoint { get; }

    /// <summary>Simulation timestep <c>opt.timestep</c> in seconds; settable.</summary>
    public double Timestep
    {
        get => *(double*)(Ptr + Layout222.ModelTimestep);
        set
        {
            if (!(value > 0) || !double.IsFinite(value))
                throw new ArgumentOutOfRangeException(nameof(value), value, "The timestep must be positive and finite.");
            *(double*)(Ptr + Layout222.ModelTimestep) = value;
        }
    }

    /// <summary>The reference configuration <c>qpos0</c> (what <see cref="MjData.Reset"/> restores).</summary>
    public ReadOnlySpan<double> Qpos0 => new(*(double**)(Ptr + Layout222.ModelQpos0), Nq);

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _ptr == null;

    internal byte* Ptr
    {
        get
        {
            ObjectDisposedException.ThrowIf(_ptr == null, this);
            return _ptr;
        }
    }

    /// <summary>Loads a model from an MJCF file (<c>mj_loadXML</c>); relative asset paths resolve next to it.</summary>
    /// <exception cref="MuJoCoException">MuJoCo could not load the model; the message is MuJoCo's.</exception>
    /// <exception cref="MuJoCoUnavailableException">MuJoCo 2.2.2 is not installed.</exception>
    public static MjModel FromXmlFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Native api = MuJoCo.Api;
        if (!File.Exists(path))
            throw new FileNotFoundException($"MJCF file '{path}' does not exist.", path);

        byte[] file = Encoding.UTF8.GetBytes(Path.GetFullPath(path) + "\0");
        byte* error = stackalloc byte[ErrorBufferSize];
        error[0] = 0;
        void* model;
        // mj_loadXML goes through MuJoCo's global parser state; one load at a time.
        lock (s_loadLock)
        {
            fixed (byte* f = file)
                model = api.mj_loadXML(f, null, error, ErrorBufferSize);
        }
        string message = Marshal.PtrToStringUTF8((IntPtr)error) ?? "";
        if (model == null)
        {
            throw new MuJoCoException(message.Length > 0
                ? $"MuJoCo could not load '{path}': {message.Trim()}"
                : $"MuJoCo could not load '{path}' (no message).");
        }
        return new MjModel((byte*)model);
    }

    /// <summary>Loads a model from MJCF text (written to a temporary file that is deleted right after loading).</summary>
    /// <exception cref="MuJoCoException">MuJoCo could not load the model; the message is MuJoCo's.</exception>
    /// <exception cref="MuJoCoUnavailableException">MuJoCo 2.2.2 is not installed.</exception>
    public static MjModel FromXmlString(string xml)
    {
        ArgumentNullException.ThrowIfNull(xml);
        MuJoCo.EnsureAvailable();
        string path = Path.Combine(Path.GetTempPath(), $"mlreward-mjcf-{Guid.NewGuid():N}.xml");
        File.WriteAllText(path, xml, new UTF8Encoding(false));
        try
        {
            return FromXmlFile(path);
        }
        catch (MuJoCoException e)
        {
            throw new MuJoCoException(e.Message.Replace($"'{path}'", "the MJCF text", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>The id of a named object (<c>mj_name2id</c>), or -1 when there is none.</summary>
    public int NameToId(MjObject kind, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        byte[] bytes = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* n = bytes)
            return MuJoCo.Api.mj_name2id(Ptr, (int)kind, n);
    }

    /// <summary>The id of a named body; throws when there is none.</summary>
    public int BodyId(string name)
    {
        int id = NameToId(MjObject.Body, name);
        return id >= 0 ? id : throw new ArgumentException($"The model has no body named '{name}'.", nameof(name));
    }

    /// <summary>Frees the model (<c>mj_deleteModel</c>).</summary>
    public void Dispose()
    {
        if (_ptr == null)
            return;
        MuJoCo.Api.mj_deleteModel(_ptr);
        _ptr = null;
    }

    /// <summary>Checks that the counts and pointers read at the 2.2.2 offsets are self-consistent.</summary>
    private void CheckLayout()
    {
        int nbuffer = *(int*)(_ptr + Layout222.ModelNbuffer);
        byte* buffer = *(byte**)(_ptr + Layout222.ModelBuffer);
        byte* qpos0 = *(byte**)(_ptr + Layout222.ModelQpos0);
        double dt = *(double*)(_ptr + Layout222.ModelTimestep);
        const int Huge = 1 << 24;
        bool ok = Nq is >= 0 and < Huge && Nv is >= 0 and < Huge && Nu is >= 0 and < Huge && Na is >= 0 and < Huge
               && NBody is >= 1 and < Huge && NJoint is >= 0 and < Huge && Nv <= Nq
               && nbuffer > 0 && buffer != null && double.IsFinite(dt) && dt > 0
               && (Nq == 0 || (qpos0 >= buffer && qpos0 + (long)Nq * sizeof(double) <= buffer + nbuffer));
        if (!ok)
        {
            MuJoCo.Api.mj_deleteModel(_ptr);
            _ptr = null;
            throw new MuJoCoException(
                $"mjModel fields read at the MuJoCo 2.2.2 offsets are inconsistent (nq={Nq}, nv={Nv}, nu={Nu}, nbody={NBody}, "
              + $"nbuffer={nbuffer}, timestep={dt}); the loaded library is not the 2.2.2 layout this binding was written for.");
        }
    }
}
