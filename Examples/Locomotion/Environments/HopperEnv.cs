namespace MLReward.Locomotion;

/// <summary>
/// Planar one-legged hopper. Observation (11): qpos[1:] (height, pitch, thigh, leg, foot) then qvel clipped to
/// [-10, 10] (6). Reward: x velocity of the root over the step + 1 (alive bonus) - 0.001 |a|^2. Terminates when
/// unhealthy: height &lt;= 0.7, |pitch| &gt;= 0.2, or any of qpos[2:], qvel outside (-100, 100).
/// Physics: RK4, dt 0.004, frame skip 2 (0.008 s per step, Gym's hopper control interval). Reset noise: uniform +-0.005.
/// </summary>
public sealed class HopperEnv : PlanarLocomotionEnv
{
    /// <summary>Lowest healthy torso height (exclusive).</summary>
    public const double MinHeight = 0.7;

    /// <summary>Largest healthy |pitch| in radians (exclusive).</summary>
    public const double MaxPitch = 0.2;

    /// <summary>Bound on |qpos[2:]| and |qvel| of a healthy state (exclusive).</summary>
    public const double StateBound = 100;

    /// <summary>Loads the project's hopper model, or <paramref name="xml"/> (nq = nv = 6, nu = 3).</summary>
    public HopperEnv(string? xml = null, int frameSkip = 2)
        : base(xml ?? LocomotionModels.HopperXml, frameSkip, expectedNq: 6, expectedNu: 3)
    {
    }

    /// <inheritdoc />
    public override string Name => "hopper";

    /// <inheritdoc />
    public override int ObservationSize => 11;

    /// <inheritdoc />
    protected override double PositionNoise => 0.005;

    /// <inheritdoc />
    protected override double VelocityNoise => 0.005;

    /// <inheritdoc />
    protected override double ControlCostWeight => 0.001;

    /// <inheritdoc />
    protected override double AliveBonus => 1.0;

    /// <summary>Whether the current state is in the healthy range (see the class summary).</summary>
    public bool IsHealthy
    {
        get
        {
            ReadOnlySpan<double> qpos = Data.Qpos, qvel = Data.Qvel;
            double height = qpos[1], pitch = qpos[2];
            if (!(height > MinHeight) || !(Math.Abs(pitch) < MaxPitch))
                return false;
            for (int i = 2; i < qpos.Length; i++)
                if (!(Math.Abs(qpos[i]) < StateBound))
                    return false;
            for (int i = 0; i < qvel.Length; i++)
                if (!(Math.Abs(qvel[i]) < StateBound))
                    return false;
            return true;
        }
    }

    /// <inheritdoc />
    protected override bool IsTerminal() => !IsHealthy;

    /// <inheritdoc />
    public override float[] Observe()
    {
        ReadOnlySpan<double> qpos = Data.Qpos, qvel = Data.Qvel;
        var obs = new float[ObservationSize];
        for (int i = 1; i < qpos.Length; i++)
            obs[i - 1] = (float)qpos[i];
        for (int i = 0; i < qvel.Length; i++)
            obs[qpos.Length - 1 + i] = (float)Math.Clamp(qvel[i], -10.0, 10.0);
        return obs;
    }
}
