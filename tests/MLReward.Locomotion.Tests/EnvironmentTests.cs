namespace MLReward.Locomotion.Tests;

public class EnvironmentTests
{
    private static float[] RandomAction(Random random, int size) =>
        Enumerable.Range(0, size).Select(_ => (float)(2 * random.NextDouble() - 1)).ToArray();

    public static TheoryData<string> Names => new() { "cheetah", "hopper", "walker" };

    private static PlanarLocomotionEnv Make(string name) => name switch
    {
        "cheetah" => new CheetahEnv(),
        "hopper" => new HopperEnv(),
        "walker" => new WalkerEnv(),
        _ => throw new ArgumentException(name),
    };

    [SkippableTheory]
    [MemberData(nameof(Names))]
    public void SizesFollowGymConventions(string name)
    {
        RequireMuJoCo.OrSkip();
        using var env = Make(name);
        var (obs, act, dt) = name switch { "cheetah" => (17, 6, 0.05), "hopper" => (11, 3, 0.008), _ => (17, 6, 0.008) };
        Assert.Equal(obs, env.ObservationSize);
        Assert.Equal(act, env.ActionSize);
        Assert.Equal(dt, env.ControlTimestep, 12);
        Assert.Equal(1000, env.MaxEpisodeSteps);
        Assert.Equal(obs, env.Reset(0).Length);
    }

    [SkippableTheory]
    [MemberData(nameof(Names))]
    public void SameSeedAndActionsGiveIdenticalObservations(string name)
    {
        RequireMuJoCo.OrSkip();
        float[][] Rollout()
        {
            using var env = Make(name);
            var actions = new Random(7);
            var observations = new List<float[]> { env.Reset(123) };
            for (int t = 0; t < 100; t++)
            {
                // Gentle actions, so that the hopper does not fall within a few steps.
                var step = env.Step(RandomAction(actions, env.ActionSize).Select(x => 0.3f * x).ToArray());
                observations.Add(step.Observation);
                if (step.Done)
                    break;
            }
            return observations.ToArray();
        }

        float[][] a = Rollout(), b = Rollout();
        Assert.True(a.Length > 30, $"only {a.Length - 1} steps before the episode ended");
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.Equal(a[i], b[i]);

        using var other = Make(name);
        Assert.NotEqual(a[0], other.Reset(124));
    }

    [SkippableFact]
    public void HopperStandsStillWithZeroAction()
    {
        RequireMuJoCo.OrSkip();
        using var env = new HopperEnv();
        var zero = new float[env.ActionSize];
        for (int seed = 0; seed < 5; seed++)
        {
            env.Reset(seed);
            for (int t = 0; t < 300; t++)
            {
                var step = env.Step(zero);
                Assert.False(step.Terminated, $"seed {seed}: the hopper fell at step {t} (height {env.Data.Qpos[1]:F3}, pitch {env.Data.Qpos[2]:F3})");
                Assert.InRange(step.Reward, 0.9, 1.1);   // alive bonus, no motion
            }
            Assert.InRange(env.Data.Qpos[1], 1.1, 1.3);
            Assert.InRange(Math.Abs(env.Data.Qpos[2]), 0, 0.05);
            Assert.InRange(Math.Abs(env.Data.Qpos[0]), 0, 0.05);
        }
    }

    [SkippableFact]
    public void HopperTerminatesWhenTipped()
    {
        RequireMuJoCo.OrSkip();
        using var env = new HopperEnv();
        env.Reset(0);
        Assert.True(env.IsHealthy);
        double[] qpos = env.Data.Qpos.ToArray(), qvel = new double[env.Model.Nv];
        qpos[2] = 0.35;   // leaning past the healthy pitch
        env.SetState(qpos, qvel);
        var step = env.Step(new float[env.ActionSize]);
        Assert.True(step.Terminated);
        Assert.False(step.Truncated);
        Assert.Throws<InvalidOperationException>(() => env.Step(new float[env.ActionSize]));
    }

    [SkippableTheory]
    [MemberData(nameof(Names))]
    public void ForwardRootVelocityGivesPositiveReward(string name)
    {
        RequireMuJoCo.OrSkip();
        using var env = Make(name);
        env.Reset(0);
        double[] qpos = env.Data.Qpos.ToArray(), qvel = new double[env.Model.Nv];
        var zero = new float[env.ActionSize];

        qvel[0] = 2.0;
        env.SetState(qpos, qvel);
        var forward = env.Step(zero);
        Assert.True(forward.ForwardVelocity > 0.5, $"forward velocity {forward.ForwardVelocity}");

        qvel[0] = -2.0;
        env.SetState(qpos, qvel);
        var backward = env.Step(zero);
        Assert.True(backward.ForwardVelocity < -0.5, $"backward velocity {backward.ForwardVelocity}");

        double alive = name == "cheetah" ? 0 : 1;
        Assert.True(forward.Reward - alive > 0, $"forward reward {forward.Reward}");
        Assert.True(backward.Reward - alive < 0, $"backward reward {backward.Reward}");
        Assert.Equal(forward.ForwardVelocity + alive, forward.Reward, 12);
    }

    [SkippableTheory]
    [MemberData(nameof(Names))]
    public void ActionsAreClippedAndCharged(string name)
    {
        RequireMuJoCo.OrSkip();
        using var a = Make(name);
        using var b = Make(name);
        a.Reset(3);
        b.Reset(3);
        var big = Enumerable.Repeat(5f, a.ActionSize).ToArray();
        var one = Enumerable.Repeat(1f, a.ActionSize).ToArray();
        var sa = a.Step(big);
        var sb = b.Step(one);
        Assert.Equal(sb.Observation, sa.Observation);
        Assert.Equal(sb.Reward, sa.Reward);
        double weight = name == "cheetah" ? 0.1 : 0.001, alive = name == "cheetah" ? 0 : 1;
        Assert.Equal(sa.ForwardVelocity + alive - weight * a.ActionSize, sa.Reward, 12);

        Assert.Throws<ArgumentException>(() => a.Step(new float[a.ActionSize + 1]));
        var nan = new float[a.ActionSize];
        nan[0] = float.NaN;
        Assert.Throws<ArgumentException>(() => a.Step(nan));
    }

    [SkippableFact]
    public void WalkerStandsStillWithZeroAction()
    {
        RequireMuJoCo.OrSkip();
        using var env = new WalkerEnv();
        var zero = new float[env.ActionSize];
        for (int seed = 0; seed < 5; seed++)
        {
            env.Reset(seed);
            for (int t = 0; t < 1000; t++)
            {
                var step = env.Step(zero);
                Assert.False(step.Terminated, $"seed {seed}: the walker fell at step {t} (height {env.Data.Qpos[1]:F3}, pitch {env.Data.Qpos[2]:F3})");
                Assert.InRange(step.Reward, 0.9, 1.1);   // alive bonus, no motion
                Assert.Equal(t == 999, step.Truncated);
            }
            // Settled on its springs: torso 4 cm below the reference height, upright, where it started.
            Assert.InRange(env.Data.Qpos[1], 1.15, 1.3);
            Assert.InRange(Math.Abs(env.Data.Qpos[2]), 0, 0.05);
            Assert.InRange(Math.Abs(env.Data.Qpos[0]), 0, 0.05);
        }
    }

    [SkippableTheory]
    [InlineData(1, 0.79)]    // torso too low
    [InlineData(1, 2.01)]    // torso too high
    [InlineData(2, 1.01)]    // leaning forward past 1 rad
    [InlineData(2, -1.01)]   // leaning back
    [InlineData(3, 100.5)]   // a joint angle out of bounds
    public void WalkerTerminatesWhenUnhealthy(int index, double value)
    {
        RequireMuJoCo.OrSkip();
        using var env = new WalkerEnv();
        env.Reset(0);
        Assert.True(env.IsHealthy);
        double[] qpos = env.Data.Qpos.ToArray(), qvel = new double[env.Model.Nv];
        qpos[index] = value;
        env.SetState(qpos, qvel);
        Assert.False(env.IsHealthy);
        // A torso put below 0.8 on straight legs puts the feet into the floor, whose contact lifts it back within the
        // step, so that bound is checked through IsHealthy alone.
        if (!(index == 1 && value < 1))
        {
            var step = env.Step(new float[env.ActionSize]);
            Assert.True(step.Terminated);
            Assert.False(step.Truncated);
            Assert.Throws<InvalidOperationException>(() => env.Step(new float[env.ActionSize]));
        }

        // Just inside the same bound: healthy.
        qpos[index] = index == 1 ? (value < 1 ? 0.81 : 1.99) : index == 2 ? Math.Sign(value) * 0.99 : 0.1;
        env.SetState(qpos, qvel);
        Assert.True(env.IsHealthy);
    }

    [SkippableFact]
    public void WalkerTerminatesWhenItFalls()
    {
        RequireMuJoCo.OrSkip();
        using var env = new WalkerEnv();
        env.Reset(0);
        double[] qpos = env.Data.Qpos.ToArray(), qvel = new double[env.Model.Nv];
        qpos[2] = 0.8;   // leaning 0.8 rad and pitching further at 2 rad/s: the springs cannot catch it
        qvel[2] = 2;
        env.SetState(qpos, qvel);
        var zero = new float[env.ActionSize];
        LocomotionStep step = default;
        int t = 0;
        while (!step.Done && t < 1000)
        {
            step = env.Step(zero);
            t++;
        }
        Assert.True(step.Terminated, $"still standing after {t} steps");
        Assert.True(t < 200, $"took {t} steps to fall");
        Assert.False(env.IsHealthy);
    }

    [SkippableFact]
    public void WalkerRewardIsDisplacementOverTheStepPlusAliveMinusControlCost()
    {
        RequireMuJoCo.OrSkip();
        using var env = new WalkerEnv();
        env.Reset(5);
        var random = new Random(5);
        for (int t = 0; t < 50; t++)
        {
            float[] action = RandomAction(random, env.ActionSize);
            double x0 = env.Data.Qpos[0];
            var step = env.Step(action);
            double dx = env.Data.Qpos[0] - x0, squares = action.Sum(a => (double)a * a);
            Assert.Equal(dx / 0.008, step.ForwardVelocity, 9);
            Assert.Equal(dx / 0.008 + 1 - 0.001 * squares, step.Reward, 9);
            if (step.Done)
                break;
        }
    }

    [SkippableFact]
    public void WalkerObservationIsPositionsWithoutXThenClippedVelocities()
    {
        RequireMuJoCo.OrSkip();
        using var env = new WalkerEnv();
        env.Reset(0);
        double[] qpos = [0.7, 1.2, 0.1, -0.2, -0.3, 0.4, -0.5, -0.6, 0.7];
        double[] qvel = [20, -20, 3, -4, 5, -6, 7, 11, -0.5];
        float[] obs = env.SetState(qpos, qvel);
        Assert.Equal(qpos[1..].Select(v => (float)v).Concat(qvel.Select(v => (float)Math.Clamp(v, -10, 10))), obs);
    }

    [SkippableFact]
    public void EpisodesAreTruncatedAtMaxSteps()
    {
        RequireMuJoCo.OrSkip();
        using var env = new CheetahEnv { MaxEpisodeSteps = 20 };
        Assert.Throws<InvalidOperationException>(() => env.Step(new float[6]));
        env.Reset(1);
        LocomotionStep step = default;
        for (int t = 0; t < 20; t++)
            step = env.Step(new float[6]);
        Assert.True(step.Truncated);
        Assert.False(step.Terminated);
        Assert.Equal(20, env.StepCount);
    }

    [SkippableFact]
    public void CheetahStaysUprightUnderRandomActions()
    {
        RequireMuJoCo.OrSkip();
        using var env = new CheetahEnv();
        var random = new Random(11);
        env.Reset(11);
        for (int t = 0; t < 200; t++)
        {
            var step = env.Step(RandomAction(random, env.ActionSize));
            Assert.False(step.Terminated);
            Assert.All(step.Observation, v => Assert.True(float.IsFinite(v)));
        }
        Assert.InRange(env.Data.Qpos[1], -0.6, 0.6);   // rootz displacement: neither sunk into the floor nor flying
    }
}
