namespace MLReward.Environments.Maze2D;

/// <summary>
/// Gym-style Maze2D task: a <see cref="PointMass"/> in a maze with a target point. Observation [x, y, vx, vy],
/// action [ax, ay]; the sparse reward is 1 when the ball centre (after the step) is within <see cref="RewardRadius"/>
/// of the target, else 0.
/// </summary>
public sealed class Maze2DEnvironment
{
    /// <summary>Radius of the sparse reward around the target.</summary>
    public const double RewardRadius = 0.5;

    /// <summary>Creates the task.</summary>
    public Maze2DEnvironment(MazeLayout layout, Vec2 target)
    {
        Body = new PointMass(layout);
        Target = target;
    }

    /// <summary>The simulated ball.</summary>
    public PointMass Body { get; }

    /// <summary>The maze.</summary>
    public MazeLayout Layout => Body.Layout;

    /// <summary>The target point.</summary>
    public Vec2 Target { get; set; }

    /// <summary>Sparse reward of a position: 1 within <see cref="RewardRadius"/> of the target (inclusive), else 0.</summary>
    public static float SparseReward(Vec2 position, Vec2 target) => position.DistanceTo(target) <= RewardRadius ? 1f : 0f;

    /// <summary>Puts the ball at rest at <paramref name="position"/> and returns the observation.</summary>
    public float[] Reset(Vec2 position)
    {
        Body.SetState(position, Vec2.Zero);
        return Body.Observation();
    }

    /// <summary>Puts the ball at rest at a uniformly random position at least <paramref name="clearance"/> from every wall.</summary>
    public float[] Reset(Random random, double clearance = Maze2DGeneratorOptions.DefaultWallClearance) =>
        Reset(Maze2DDataGenerator.SamplePosition(Layout, random, clearance));

    /// <summary>Applies an action for one timestep; returns the new observation and the sparse reward.</summary>
    public (float[] Observation, float Reward) Step(double ax, double ay)
    {
        Body.Step(ax, ay);
        return (Body.Observation(), SparseReward(Body.Position, Target));
    }
}
