namespace MLReward.Environments.Maze2D;

/// <summary>
/// The paper's waypoint-following PD controller: <c>a = clip(kp (wp - pos) - kd vel, -1, 1)</c> per axis with
/// kp = 3 and kd = sqrt(0.3); the current waypoint advances to the next one when the ball is within the switch radius
/// (0.3, inclusive) of it. The last waypoint (the target) is never passed.
/// </summary>
public sealed class WaypointController
{
    private IReadOnlyList<Vec2> _waypoints = [];

    /// <summary>Creates a controller.</summary>
    public WaypointController(double proportionalGain = 3.0, double derivativeGain = 0.5477225575051661, double switchRadius = 0.3)
    {
        ProportionalGain = proportionalGain;
        DerivativeGain = derivativeGain;
        SwitchRadius = switchRadius;
    }

    /// <summary>Proportional gain kp (3).</summary>
    public double ProportionalGain { get; }

    /// <summary>Derivative gain kd (sqrt(0.3)); the action uses <c>-kd * vel</c>.</summary>
    public double DerivativeGain { get; }

    /// <summary>Distance at which the next waypoint is taken (0.3).</summary>
    public double SwitchRadius { get; }

    /// <summary>The waypoints being followed.</summary>
    public IReadOnlyList<Vec2> Waypoints => _waypoints;

    /// <summary>Index of the current waypoint.</summary>
    public int Index { get; private set; }

    /// <summary>The current waypoint.</summary>
    public Vec2 Current => _waypoints[Index];

    /// <summary>Starts following new waypoints (at least one).</summary>
    public void Reset(IReadOnlyList<Vec2> waypoints)
    {
        ArgumentNullException.ThrowIfNull(waypoints);
        if (waypoints.Count == 0) throw new ArgumentException("At least one waypoint is needed.", nameof(waypoints));
        _waypoints = waypoints;
        Index = 0;
    }

    /// <summary>Advances past every waypoint (except the last) within the switch radius of <paramref name="position"/>.</summary>
    public void Advance(Vec2 position)
    {
        while (Index < _waypoints.Count - 1 && position.DistanceTo(_waypoints[Index]) <= SwitchRadius) Index++;
    }

    /// <summary>Advances the waypoint if needed and returns the clipped action for the given state.</summary>
    public (double Ax, double Ay) Act(Vec2 position, Vec2 velocity)
    {
        Advance(position);
        var wp = _waypoints[Index];
        return (Math.Clamp(ProportionalGain * (wp.X - position.X) - DerivativeGain * velocity.X, -1.0, 1.0),
                Math.Clamp(ProportionalGain * (wp.Y - position.Y) - DerivativeGain * velocity.Y, -1.0, 1.0));
    }

    /// <summary>
    /// Waypoints of a cell path: the centres (i - 0.2, j - 0.2) of all path cells except the last, each shifted by the
    /// same <paramref name="offset"/>, followed by the exact <paramref name="target"/> (which replaces the goal cell's centre).
    /// </summary>
    public static Vec2[] BuildWaypoints(IReadOnlyList<GridCell> path, Vec2 target, Vec2 offset)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Count == 0) throw new ArgumentException("The path is empty.", nameof(path));
        var wps = new Vec2[path.Count];
        for (int k = 0; k < path.Count - 1; k++) wps[k] = MazeLayout.CellCenter(path[k]) + offset;
        wps[^1] = target;
        return wps;
    }
}
