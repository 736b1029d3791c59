namespace MLReward.Environments.Maze2D;

/// <summary>
/// The Maze2D point mass (a ball of radius 0.1 on two slide joints), reproducing the original MuJoCo model's update in
/// pure C#: timestep h = 0.01, mass m = 4.18879, joint damping 1, motor gear 100, control clipped to [-1, 1];
/// per axis <c>v' = (m v + h * 100 * u) / (m + h * 1)</c> then <c>x' = x + h v'</c>.
/// </summary>
/// <remarks>
/// Walls are the unit squares of the layout's wall cells (cell (i, j) centred at (i - 0.2, j - 0.2)). The ball centre
/// never comes closer than <see cref="Radius"/> to a wall square. Contact is inelastic: the move is split into
/// sub-steps of at most <see cref="MaxSubstep"/> (half the radius, so no wall, at least 1 unit thick, can be crossed at
/// any speed), and after each sub-step the centre is projected back onto the boundary of the nearest penetrated wall
/// (a square grown by the radius, rounded at corners) and the velocity component into that wall is zeroed (no bounce);
/// the tangential component is kept (frictionless sliding).
/// The terminal speed under full throttle is gear / damping = 100 units/s (1 unit per step), so sub-stepping matters
/// only for long straight runs; in the built-in mazes speeds stay far lower.
/// </remarks>
public sealed class PointMass
{
    /// <summary>Timestep h (frame skip 1).</summary>
    public const double TimeStep = 0.01;

    /// <summary>Mass of the ball: density 1000 x (4/3) pi 0.1^3.</summary>
    public const double Mass = 4.18879;

    /// <summary>Slide-joint damping.</summary>
    public const double Damping = 1.0;

    /// <summary>Motor gear (force per unit control).</summary>
    public const double Gear = 100.0;

    /// <summary>Ball radius.</summary>
    public const double Radius = 0.1;

    /// <summary>Largest sub-step displacement used by the collision resolution.</summary>
    public const double MaxSubstep = Radius / 2;

    /// <summary>Number of observation dimensions: [x, y, vx, vy].</summary>
    public const int ObservationSize = 4;

    /// <summary>Number of action dimensions: [ax, ay].</summary>
    public const int ActionSize = 2;

    private const int MaxProjections = 8;
    private const double ContactTolerance = 1e-12;

    /// <summary>Creates a point mass in the given maze, at rest at the first free cell's centre.</summary>
    public PointMass(MazeLayout layout)
    {
        Layout = layout ?? throw new ArgumentNullException(nameof(layout));
        Position = MazeLayout.CellCenter(layout.FreeCells[0]);
    }

    /// <summary>The maze.</summary>
    public MazeLayout Layout { get; }

    /// <summary>Ball centre in position coordinates.</summary>
    public Vec2 Position { get; private set; }

    /// <summary>Velocity.</summary>
    public Vec2 Velocity { get; private set; }

    /// <summary>Whether the last <see cref="Step(double, double)"/> touched a wall.</summary>
    public bool InContact { get; private set; }

    /// <summary>Sets the state. The position must lie in a free cell at least <see cref="Radius"/> (minus 1e-9) from every wall.</summary>
    public void SetState(Vec2 position, Vec2 velocity = default)
    {
        if (!double.IsFinite(position.X) || !double.IsFinite(position.Y) || !double.IsFinite(velocity.X) || !double.IsFinite(velocity.Y))
            throw new ArgumentException("State must be finite.");
        if (!Layout.IsValidPosition(position, Radius - 1e-9))
            throw new ArgumentException($"Position {position} is inside or within the ball radius of a wall of maze '{Layout.Name}'.", nameof(position));
        Position = position;
        Velocity = velocity;
        InContact = false;
    }

    /// <summary>Observation [x, y, vx, vy] as floats.</summary>
    public float[] Observation() => [(float)Position.X, (float)Position.Y, (float)Velocity.X, (float)Velocity.Y];

    /// <summary>Writes the observation [x, y, vx, vy] into <paramref name="destination"/>.</summary>
    public void WriteObservation(Span<float> destination)
    {
        destination[0] = (float)Position.X;
        destination[1] = (float)Position.Y;
        destination[2] = (float)Velocity.X;
        destination[3] = (float)Velocity.Y;
    }

    /// <summary>Clips a control to [-1, 1] (NaN becomes 0).</summary>
    public static double ClipControl(double u) => double.IsNaN(u) ? 0.0 : Math.Clamp(u, -1.0, 1.0);

    /// <summary>The free-space velocity update of one axis: <c>(m v + h * 100 * clip(u)) / (m + h * 1)</c>.</summary>
    public static double NextVelocity(double velocity, double control) =>
        (Mass * velocity + TimeStep * Gear * ClipControl(control)) / (Mass + TimeStep * Damping);

    /// <summary>Advances one timestep with action [ax, ay] (each clipped to [-1, 1]).</summary>
    public void Step(double ax, double ay)
    {
        var v = new Vec2(NextVelocity(Velocity.X, ax), NextVelocity(Velocity.Y, ay));
        var p = Position;
        double travel = TimeStep * v.Length;
        int substeps = travel <= MaxSubstep ? 1 : (int)Math.Ceiling(travel / MaxSubstep);
        double dt = TimeStep / substeps;
        bool contact = false;
        for (int s = 0; s < substeps; s++)
        {
            var before = p;
            p = new Vec2(p.X + dt * v.X, p.Y + dt * v.Y); // with one sub-step exactly x + h v'
            contact |= Resolve(ref p, ref v, before);
        }
        Position = p;
        Velocity = v;
        InContact = contact;
    }

    /// <summary>Convenience overload taking a 2-element action.</summary>
    public void Step(ReadOnlySpan<float> action)
    {
        if (action.Length != ActionSize) throw new ArgumentException($"Action must have {ActionSize} elements.", nameof(action));
        Step(action[0], action[1]);
    }

    // Projects p out of every wall square it is within Radius of (nearest first) and removes the inward velocity.
    private bool Resolve(ref Vec2 p, ref Vec2 v, Vec2 fallback)
    {
        bool contact = false;
        for (int k = 0; k < MaxProjections; k++)
        {
            double d = Layout.NearbyWallDistance(p, out var q);
            if (d >= Radius - ContactTolerance) return contact;
            contact = true;
            if (d <= 1e-12)
            {
                // Cannot happen with sub-steps of half the radius; stay put rather than guess a side.
                p = fallback;
                v = Vec2.Zero;
                return true;
            }
            var n = new Vec2((p.X - q.X) / d, (p.Y - q.Y) / d);
            p = new Vec2(q.X + Radius * n.X, q.Y + Radius * n.Y);
            double vn = v.X * n.X + v.Y * n.Y;
            if (vn < 0) v = new Vec2(v.X - vn * n.X, v.Y - vn * n.Y);
        }
        if (Layout.NearbyWallDistance(p, out _) < Radius - 1e-9)
        {
            p = fallback;
            v = Vec2.Zero;
        }
        return true;
    }
}
