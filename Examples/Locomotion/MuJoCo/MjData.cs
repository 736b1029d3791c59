namespace MLReward.Locomotion;

/// <summary>
/// Simulation state of one <see cref="MjModel"/> (<c>mjData*</c>). Spans returned by <see cref="Qpos"/>,
/// <see cref="Qvel"/>, <see cref="Ctrl"/>, ... point straight into MuJoCo's memory: writes are seen by the next
/// <see cref="Step()"/>, and the spans must not be used after <see cref="Dispose"/>. Not thread-safe; use one
/// <see cref="MjData"/> per thread (several may share a model).
/// </summary>
public sealed unsafe class MjData : IDisposable
{
    private byte* _ptr;
    private readonly double* _qpos, _qvel, _act, _ctrl, _xpos;

    /// <summary>Makes data for <paramref name="model"/> (<c>mj_makeData</c>), in the reference configuration.</summary>
    public MjData(MjModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        byte* m = model.Ptr;
        _ptr = (byte*)MuJoCo.Api.mj_makeData(m);
        if (_ptr == null)
            throw new MuJoCoException("mj_makeData returned null (out of memory?).");
        _qpos = *(double**)(_ptr + Layout222.DataQpos);
        _qvel = *(double**)(_ptr + Layout222.DataQvel);
        _act = *(double**)(_ptr + Layout222.DataAct);
        _ctrl = *(double**)(_ptr + Layout222.DataCtrl);
        _xpos = *(double**)(_ptr + Layout222.DataXpos);
        CheckLayout();
    }

    /// <summary>The model this data belongs to.</summary>
    public MjModel Model { get; }

    /// <summary>Generalized positions (<c>qpos</c>, length nq).</summary>
    public Span<double> Qpos => new(Checked(_qpos), Model.Nq);

    /// <summary>Generalized velocities (<c>qvel</c>, length nv).</summary>
    public Span<double> Qvel => new(Checked(_qvel), Model.Nv);

    /// <summary>Controls (<c>ctrl</c>, length nu), in the actuators' units (clamped to ctrlrange by MuJoCo when limited).</summary>
    public Span<double> Ctrl => new(Checked(_ctrl), Model.Nu);

    /// <summary>Actuator activations (<c>act</c>, length na).</summary>
    public Span<double> Act => new(Checked(_act), Model.Na);

    /// <summary>
    /// Body positions in the world frame (<c>xpos</c>, nbody x 3, row-major). They are computed from qpos by
    /// <see cref="Forward"/> and at the start of each <see cref="Step()"/>, so after a step they belong to the
    /// configuration before it; call <see cref="Forward"/> first for the current one.
    /// </summary>
    public ReadOnlySpan<double> XPos => new(Checked(_xpos), Model.NBody * 3);

    /// <summary>Simulation time in seconds.</summary>
    public double Time
    {
        get => *(double*)(Ptr + Layout222.DataTime);
        set => *(double*)(Ptr + Layout222.DataTime) = value;
    }

    /// <summary>The world position of body <paramref name="bodyId"/> (see <see cref="XPos"/> for when it is current).</summary>
    public (double X, double Y, double Z) BodyPosition(int bodyId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bodyId);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(bodyId, Model.NBody);
        ReadOnlySpan<double> x = XPos.Slice(bodyId * 3, 3);
        return (x[0], x[1], x[2]);
    }

    /// <summary>How many times MuJoCo raised warning <paramref name="kind"/> since the last reset.</summary>
    public int WarningCount(MjWarning kind)
    {
        if ((uint)kind >= Layout222.WarningCount)
            throw new ArgumentOutOfRangeException(nameof(kind));
        return *(int*)(Ptr + Layout222.DataWarning + (int)kind * Layout222.WarningStatSize + Layout222.WarningNumber);
    }

    /// <summary>Resets to the reference configuration qpos0, zero velocity, zero controls, time 0 (<c>mj_resetData</c>).</summary>
    public void Reset() => MuJoCo.Api.mj_resetData(ModelPtr, Ptr);

    /// <summary>Advances the simulation by one timestep (<c>mj_step</c>).</summary>
    public void Step() => MuJoCo.Api.mj_step(ModelPtr, Ptr);

    /// <summary>Advances the simulation by <paramref name="steps"/> timesteps with the current controls.</summary>
    public void Step(int steps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        var api = MuJoCo.Api;
        byte* m = ModelPtr, d = Ptr;
        for (int i = 0; i < steps; i++)
            api.mj_step(m, d);
    }

    /// <summary>Computes the derived quantities (positions, contacts, forces) without integrating (<c>mj_forward</c>).</summary>
    public void Forward() => MuJoCo.Api.mj_forward(ModelPtr, Ptr);

    /// <summary>Frees the data (<c>mj_deleteData</c>).</summary>
    public void Dispose()
    {
        if (_ptr == null)
            return;
        MuJoCo.Api.mj_deleteData(_ptr);
        _ptr = null;
    }

    private byte* Ptr
    {
        get
        {
            ObjectDisposedException.ThrowIf(_ptr == null, this);
            return _ptr;
        }
    }

    private byte* ModelPtr => Model.Ptr;

    private double* Checked(double* p)
    {
        _ = Ptr;
        _ = ModelPtr;
        return p;
    }

    /// <summary>Checks that the pointers read at the 2.2.2 offsets lie in mjData's buffer and qpos starts at qpos0.</summary>
    private void CheckLayout()
    {
        int nbuffer = *(int*)(_ptr + Layout222.DataNbuffer);
        byte* lo = *(byte**)(_ptr + Layout222.DataBuffer);
        byte* hi = lo + nbuffer;
        static bool Inside(byte* lo, byte* hi, double* p, long count) => count == 0 || ((byte*)p >= lo && (byte*)(p + count) <= hi);

        MjModel m = Model;
        bool ok = nbuffer > 0 && lo != null
               && Inside(lo, hi, _qpos, m.Nq) && Inside(lo, hi, _qvel, m.Nv) && Inside(lo, hi, _act, m.Na) && Inside(lo, hi, _ctrl, m.Nu)
               && Inside(lo, hi, _xpos, m.NBody * 3L) && Time == 0
               && new ReadOnlySpan<double>(_qpos, m.Nq).SequenceEqual(m.Qpos0);
        if (!ok)
        {
            MuJoCo.Api.mj_deleteData(_ptr);
            _ptr = null;
            throw new MuJoCoException(
                "mjData fields read at the MuJoCo 2.2.2 offsets are inconsistent (pointers outside mjData's buffer or qpos != qpos0); "
              + "the loaded library is not the 2.2.2 layout this binding was written for.");
        }
    }
}
