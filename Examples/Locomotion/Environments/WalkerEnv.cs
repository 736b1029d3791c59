namespace MLReward.Locomotion;

/// <summary>
/// Planar two-legged walker. Observation (17): qpos[1:] (height, pitch, right thigh, leg, foot, left thigh, leg, foot)
/// then qvel clipped to [-10, 10] (9). Reward: x velocity of the root over the step + 1 (alive bonus) - 0.001 |a|^2.
/// Terminates when unhealthy: height outside (0.8, 2.0) or |pitch| &gt;= 1.0 (Gym's Walker2d rule; the torso stands at
/// 1.25 as in Gym's model, so its numbers apply unchanged), or any of qpos[2:], qvel outside (-100, 100).
/// Physics: RK4, dt 0.004, frame skip 2 (0.008 s per step, Gym's walker control interval). Reset noise: uniform +-0.005.
/// </summary>
public sealed class WalkerEnv : PlanarLocomotionEnv
{
    /// <summary>Lowest healthy torso height (exclusive).</summary>
    public const double MinHeight = 0.8;

    /// <summary>Highest healthy torso height (exclusive).</summary>
    public const double MaxHeight = 2.0;

    /// <summary>Largest healthy |pitch| in radians (exclusive).</summary>
    public const double MaxPitch = 1.0;

    /// <summary>Bound on |qpos[2:]| and |qvel| of a healthy state (exclusive).</summary>
    public const double StateBound = 100;

    /// <summary>Loads the project's walker model, or <paramref name="xml"/> (nq = nv = 9, nu = 6).</summary>
    public WalkerEnv(string? xml = null, int frameSkip = 2)
        : base(xml ?? LocomotionModels.WalkerXml, frameSkip, expectedNq: 9, expectedNu: 6)
    {
    }

    /// <inheritdoc />
    public override string Name => "walker";

    /// <inheritdoc />
    public override int ObservationSize => 17;

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
            if (!(height > MinHeight && height < MaxHeight) || !(Math.Abs(pitch) < MaxPitch))
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
