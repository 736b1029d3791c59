namespace MLReward.Locomotion;

/// <summary>
/// Byte offsets of the <c>mjModel</c> and <c>mjData</c> fields this binding reads, for MuJoCo 2.2.2 on a 64-bit
/// platform (taken with <c>offsetof</c> from the 2.2.2 headers; <c>LayoutTests</c> recompiles that check whenever
/// gcc and the headers are present). They are used only after <c>mj_version() == 222</c>, and every model and data
/// object is additionally sanity-checked against them when it is created (see <see cref="MjModel"/>, <see cref="MjData"/>).
/// </summary>
internal static class Layout222
{
    // mjModel (sizeof 3280)
    public const int ModelNq = 0;            // int nq
    public const int ModelNv = 4;            // int nv
    public const int ModelNu = 8;            // int nu
    public const int ModelNa = 12;           // int na
    public const int ModelNbody = 16;        // int nbody
    public const int ModelNjnt = 20;         // int njnt
    public const int ModelNbuffer = 228;     // int nbuffer
    public const int ModelTimestep = 232;    // mjOption opt; opt.timestep is its first field (mjtNum)
    public const int ModelBuffer = 1088;     // void* buffer
    public const int ModelQpos0 = 1096;      // mjtNum* qpos0 (nq)

    // mjData (sizeof 41176)
    public const int DataNbuffer = 4;        // int nbuffer
    public const int DataWarning = 24;       // mjWarningStat warning[mjNWARNING]; each {int lastinfo; int number;}
    public const int WarningStatSize = 8;
    public const int WarningNumber = 4;      // offset of 'number' inside mjWarningStat
    public const int WarningCount = 8;       // mjNWARNING
    public const int DataTime = 40336;       // mjtNum time
    public const int DataBuffer = 40360;     // void* buffer
    public const int DataQpos = 40376;       // mjtNum* qpos (nq)
    public const int DataQvel = 40384;       // mjtNum* qvel (nv)
    public const int DataAct = 40392;        // mjtNum* act (na)
    public const int DataCtrl = 40408;       // mjtNum* ctrl (nu)
    public const int DataXpos = 40480;       // mjtNum* xpos (nbody x 3)

    /// <summary>(field, offset) pairs, for the test that compares them with <c>offsetof</c> from the headers.</summary>
    internal static IReadOnlyList<(string CExpression, int Offset)> All { get; } =
    [
        ("offsetof(mjModel, nq)", ModelNq),
        ("offsetof(mjModel, nv)", ModelNv),
        ("offsetof(mjModel, nu)", ModelNu),
        ("offsetof(mjModel, na)", ModelNa),
        ("offsetof(mjModel, nbody)", ModelNbody),
        ("offsetof(mjModel, njnt)", ModelNjnt),
        ("offsetof(mjModel, nbuffer)", ModelNbuffer),
        ("offsetof(mjModel, opt.timestep)", ModelTimestep),
        ("offsetof(mjModel, buffer)", ModelBuffer),
        ("offsetof(mjModel, qpos0)", ModelQpos0),
        ("offsetof(mjData, nbuffer)", DataNbuffer),
        ("offsetof(mjData, warning)", DataWarning),
        ("sizeof(mjWarningStat)", WarningStatSize),
        ("offsetof(mjWarningStat, number)", WarningNumber),
        ("mjNWARNING", WarningCount),
        ("offsetof(mjData, time)", DataTime),
        ("offsetof(mjData, buffer)", DataBuffer),
        ("offsetof(mjData, qpos)", DataQpos),
        ("offsetof(mjData, qvel)", DataQvel),
        ("offsetof(mjData, act)", DataAct),
        ("offsetof(mjData, ctrl)", DataCtrl),
        ("offsetof(mjData, xpos)", DataXpos),
        ("mjWARN_BADQACC", (int)MjWarning.BadQacc),
        ("mjOBJ_BODY", (int)MjObject.Body),
        ("mjOBJ_JOINT", (int)MjObject.Joint),
        ("mjOBJ_ACTUATOR", (int)MjObject.Actuator),
    ];
}

/// <summary>MuJoCo's warning kinds (<c>mjtWarning</c>); <see cref="MjData.WarningCount"/> counts them.</summary>
public enum MjWarning
{
    /// <summary>(Near) singular inertia matrix.</summary>
    Inertia = 0,
    /// <summary>Too many contacts.</summary>
    ContactFull,
    /// <summary>Too many constraints.</summary>
    ConstraintFull,
    /// <summary>Too many visual geoms.</summary>
    VisualGeomFull,
    /// <summary>Bad number in qpos.</summary>
    BadQpos,
    /// <summary>Bad number in qvel.</summary>
    BadQvel,
    /// <summary>Bad number in qacc: the simulation diverged and MuJoCo reset the data.</summary>
    BadQacc,
    /// <summary>Bad number in ctrl.</summary>
    BadCtrl,
}

/// <summary>The MuJoCo object kinds this binding looks names up for (<c>mjtObj</c> values).</summary>
public enum MjObject
{
    /// <summary>A body (<c>mjOBJ_BODY</c>).</summary>
    Body = 1,
    /// <summary>A joint (<c>mjOBJ_JOINT</c>).</summary>
    Joint = 3,
    /// <summary>An actuator (<c>mjOBJ_ACTUATOR</c>).</summary>
    Actuator = 18,
}
