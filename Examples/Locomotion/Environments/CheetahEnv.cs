namespace MLReward.Locomotion;

/// <summary>
/// Planar cheetah-like runner. Observation (17): qpos[1:] (rootz, rooty, 6 joint angles) then qvel (9).
/// Reward: x velocity of the root over the step minus 0.1 |a|^2. Never terminates; truncated after 1000 steps.
/// Physics: RK4, dt 0.01, frame skip 5 (0.05 s per step). Reset noise: uniform +-0.1 on qpos and qvel.
/// </summary>
public sealed class CheetahEnv : PlanarLocomotionEnv
{
    /// <summary>Loads the project's cheetah model, or <paramref name="xml"/> (nq = nv = 9, nu = 6).</summary>
    public CheetahEnv(string? xml = null, int frameSkip = 5)
        : base(xml ?? LocomotionModels.CheetahXml, frameSkip, expectedNq: 9, expectedNu: 6)
    {
    }

    /// <inheritdoc />
    public override string Name => "cheetah";

    /// <inheritdoc />
    public override int ObservationSize => 17;

    /// <inheritdoc />
    protected override double PositionNoise => 0.1;

    /// <inheritdoc />
    protected override double VelocityNoise => 0.1;

    /// <inheritdoc />
    protected override double ControlCostWeight => 0.1;

    /// <inheritdoc />
    public override float[] Observe()
    {
        ReadOnlySpan<double> qpos = Data.Qpos, qvel = Data.Qvel;
        var obs = new float[ObservationSize];
        for (int i = 1; i < qpos.Length; i++)
            obs[i - 1] = (float)qpos[i];
        for (int i = 0; i < qvel.Length; i++)
            obs[qpos.Length - 1 + i] = (float)qvel[i];
        return obs;
    }
}
