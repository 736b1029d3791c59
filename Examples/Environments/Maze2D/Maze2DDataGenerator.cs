using System.Diagnostics;

namespace MLReward.Environments.Maze2D;

/// <summary>Settings of the paper's Maze2D data generator (defaults = the paper's values where it states them).</summary>
public sealed class Maze2DGeneratorOptions
{
    /// <summary>Default minimum distance of starts, goals and trajectories from every wall (0.26).</summary>
    public const double DefaultWallClearance = 0.26;

    /// <summary>Half-width of the uniform per-path waypoint offset (0.24).</summary>
    public double WaypointOffset { get; set; } = 0.24;

    /// <summary>Proportional gain (3).</summary>
    public double ProportionalGain { get; set; } = 3.0;

    /// <summary>Derivative gain on velocity (sqrt(0.3)).</summary>
    public double DerivativeGain { get; set; } = Math.Sqrt(0.3);

    /// <summary>Waypoint switch radius (0.3, inclusive).</summary>
    public double WaypointSwitchRadius { get; set; } = 0.3;

    /// <summary>
    /// An episode ends ("reaching the goal", then reset) when the ball centre after a step is within this distance of
    /// the target (inclusive). Default 0.1 (our choice: the paper says only "on reaching the goal"; 0.1 keeps the
    /// decelerating approach in the data, so the expert density peaks on the goal). Use 0.5 for the sparse-reward radius.
    /// </summary>
    public double GoalReachedRadius { get; set; } = 0.1;

    /// <summary>Starts and goals are drawn at least this far from walls; episodes whose ball centre comes closer are discarded (0.26).</summary>
    public double WallClearance { get; set; } = DefaultWallClearance;

    /// <summary>Whether episodes that come within <see cref="WallClearance"/> of a wall are discarded (true).</summary>
    public bool DiscardNearWall { get; set; } = true;

    /// <summary>Episode length cap (1000 steps); an episode that reaches it without reaching the goal is kept, truncated.</summary>
    public int MaxEpisodeSteps { get; set; } = 1000;

    /// <summary>
    /// An episode whose first waypoint has not been reached (within the switch radius) after this many steps is
    /// discarded. Default 1000 = the episode cap, i.e. the literal rule "discard episodes that time out on the first waypoint".
    /// </summary>
    public int FirstWaypointTimeoutSteps { get; set; } = 1000;

    /// <summary>Starts closer than this to the goal are re-drawn (0.5, so that no episode starts inside the reward radius).</summary>
    public double MinStartGoalDistance { get; set; } = 0.5;

    /// <summary>Give up (throw) after this many consecutive episodes without a kept one.</summary>
    public int MaxConsecutiveDiscards { get; set; } = 10_000;

    internal void Validate()
    {
        if (!(WaypointOffset >= 0)) throw new ArgumentOutOfRangeException(nameof(WaypointOffset));
        if (!(WaypointSwitchRadius >= 0)) throw new ArgumentOutOfRangeException(nameof(WaypointSwitchRadius));
        if (!(GoalReachedRadius > 0)) throw new ArgumentOutOfRangeException(nameof(GoalReachedRadius));
        if (!(WallClearance >= PointMass.Radius) || WallClearance >= 0.5)
            throw new ArgumentOutOfRangeException(nameof(WallClearance), "Wall clearance must be in [0.1, 0.5).");
        if (MaxEpisodeSteps < 1) throw new ArgumentOutOfRangeException(nameof(MaxEpisodeSteps));
        if (FirstWaypointTimeoutSteps < 1) throw new ArgumentOutOfRangeException(nameof(FirstWaypointTimeoutSteps));
        if (MinStartGoalDistance < 0) throw new ArgumentOutOfRangeException(nameof(MinStartGoalDistance));
        if (MaxConsecutiveDiscards < 1) throw new ArgumentOutOfRangeException(nameof(MaxConsecutiveDiscards));
    }
}

/// <summary>How an episode ended.</summary>
public enum EpisodeOutcome
{
    /// <summary>Reached the goal (kept).</summary>
    Reached,
    /// <summary>Hit the step cap without reaching the goal (kept, truncated).</summary>
    Capped,
    /// <summary>Came within the wall clearance of a wall (discarded).</summary>
    DiscardedNearWall,
    /// <summary>Did not reach its first waypoint in time (discarded).</summary>
    DiscardedFirstWaypointTimeout,
    /// <summary>Start and goal lie in disconnected parts of the maze (discarded, not simulated).</summary>
    DiscardedUnreachable,
}

/// <summary>One kept episode.</summary>
/// <param name="EpisodeId">Id in the transition log.</param>
/// <param name="Start">Start position (velocity 0).</param>
/// <param name="Goal">Target position.</param>
/// <param name="Offset">The path's waypoint offset.</param>
/// <param name="Steps">Number of transitions.</param>
/// <param name="Outcome"><see cref="EpisodeOutcome.Reached"/> or <see cref="EpisodeOutcome.Capped"/>.</param>
/// <param name="FinalPosition">Ball position after the last step.</param>
public sealed record EpisodeSummary(int EpisodeId, Vec2 Start, Vec2 Goal, Vec2 Offset, int Steps, EpisodeOutcome Outcome, Vec2 FinalPosition);

/// <summary>Counters of one generation run.</summary>
public sealed class GenerationStatistics
{
    /// <summary>Episodes simulated or rejected (all outcomes).</summary>
    public int EpisodesAttempted { get; internal set; }
    /// <summary>Kept episodes that reached the goal.</summary>
    public int EpisodesReached { get; internal set; }
    /// <summary>Kept episodes truncated at the step cap.</summary>
    public int EpisodesCapped { get; internal set; }
    /// <summary>Discarded for coming within the wall clearance.</summary>
    public int DiscardedNearWall { get; internal set; }
    /// <summary>Discarded for a first-waypoint timeout.</summary>
    public int DiscardedFirstWaypointTimeout { get; internal set; }
    /// <summary>Discarded because the goal was unreachable from the start.</summary>
    public int DiscardedUnreachable { get; internal set; }
    /// <summary>Kept episodes.</summary>
    public int EpisodesKept => EpisodesReached + EpisodesCapped;
    /// <summary>Transitions kept.</summary>
    public long Transitions { get; internal set; }
    /// <summary>Steps simulated, including discarded episodes.</summary>
    public long StepsSimulated { get; internal set; }
    /// <summary>Wall-clock time of the run.</summary>
    public TimeSpan Elapsed { get; internal set; }
    /// <summary>Kept transitions per second.</summary>
    public double TransitionsPerSecond => Elapsed.TotalSeconds > 0 ? Transitions / Elapsed.TotalSeconds : double.PositiveInfinity;

    /// <inheritdoc />
    public override string ToString() =>
        $"{EpisodesKept} episodes kept ({EpisodesReached} reached, {EpisodesCapped} capped) of {EpisodesAttempted}; discarded: " +
        $"{DiscardedNearWall} near wall, {DiscardedFirstWaypointTimeout} first-waypoint timeout, {DiscardedUnreachable} unreachable; " +
        $"{Transitions} transitions ({StepsSimulated} steps simulated) in {Elapsed.TotalSeconds:F2} s";
}

/// <summary>A generated data set.</summary>
/// <param name="Layout">The maze.</param>
/// <param name="Log">The transitions.</param>
/// <param name="Episodes">One summary per kept episode, in log order.</param>
/// <param name="Statistics">Counters.</param>
/// <param name="Goal">The fixed goal of an expert data set; null for base data.</param>
public sealed record Maze2DDataset(MazeLayout Layout, TransitionLog Log, IReadOnlyList<EpisodeSummary> Episodes, GenerationStatistics Statistics, Vec2? Goal);

/// <summary>
/// The paper's Maze2D data generator (not D4RL's): BFS cell path, waypoints at the path's cell centres shifted by one
/// uniform offset per path (last waypoint = exact target), PD control, starts and goals uniform over the free area at
/// least 0.26 from walls, velocity 0 at reset, episodes capped at 1000 steps, episodes that come within 0.26 of a
/// wall (or time out on their first waypoint) discarded. Deterministic for a seed (<see cref="System.Random"/>).
/// </summary>
/// <remarks>
/// Per episode, in this order: draw the goal (base data only), draw the start (re-drawn while closer than
/// <see cref="Maze2DGeneratorOptions.MinStartGoalDistance"/> to the goal), draw the offset (x then y, each uniform in
/// [-0.24, 0.24]). Each logged transition t holds the observation before the step, the clipped action, and the sparse
/// reward of the position after the step (1 within 0.5 of the goal). An instance caches planners and is not
/// thread-safe: use one generator per thread.
/// </remarks>
public sealed class Maze2DDataGenerator
{
    private readonly Maze2DGeneratorOptions _options;
    private readonly Dictionary<GridCell, GridPlanner> _planners = new();

    /// <summary>Creates a generator for a maze.</summary>
    public Maze2DDataGenerator(MazeLayout layout, Maze2DGeneratorOptions? options = null)
    {
        Layout = layout ?? throw new ArgumentNullException(nameof(layout));
        _options = options ?? new Maze2DGeneratorOptions();
        _options.Validate();
    }

    /// <summary>The maze.</summary>
    public MazeLayout Layout { get; }

    /// <summary>The settings.</summary>
    public Maze2DGeneratorOptions Options => _options;

    /// <summary>
    /// Expert data for one fixed goal: random start every episode, episode ends (reset) on reaching the goal.
    /// Generates whole episodes until at least <paramref name="minTransitions"/> transitions are kept.
    /// </summary>
    public Maze2DDataset GenerateExpert(Vec2 goal, int minTransitions, int seed, CancellationToken cancellationToken = default)
    {
        ValidateGoal(goal);
        return Generate(goal, minTransitions, seed, cancellationToken);
    }

    /// <summary>Expert data for the goal cell (i, j), i.e. the point (i, j) in the paper's goal convention.</summary>
    public Maze2DDataset GenerateExpert(GridCell goalCell, int minTransitions, int seed, CancellationToken cancellationToken = default) =>
        GenerateExpert(new Vec2(goalCell.I, goalCell.J), minTransitions, seed, cancellationToken);

    /// <summary>Base ("general") data: random start and random goal every episode.</summary>
    public Maze2DDataset GenerateBase(int minTransitions, int seed, CancellationToken cancellationToken = default) =>
        Generate(null, minTransitions, seed, cancellationToken);

    private void ValidateGoal(Vec2 goal)
    {
        if (!double.IsFinite(goal.X) || !double.IsFinite(goal.Y) || !Layout.IsValidPosition(goal, PointMass.Radius))
            throw new ArgumentException($"Goal {goal} is not a reachable position of maze '{Layout.Name}' (it must lie in a free cell, at least {PointMass.Radius} from walls).", nameof(goal));
    }

    private Maze2DDataset Generate(Vec2? fixedGoal, int minTransitions, int seed, CancellationToken ct)
    {
        if (minTransitions < 1 || minTransitions > 200_000_000)
            throw new ArgumentOutOfRangeException(nameof(minTransitions), "Between 1 and 200,000,000 transitions per data set.");
        var sw = Stopwatch.StartNew();
        var rng = new Random(seed);
        var log = new TransitionLog(minTransitions + _options.MaxEpisodeSteps);
        var episodes = new List<EpisodeSummary>();
        var stats = new GenerationStatistics();
        var buffer = new EpisodeBuffer(_options.MaxEpisodeSteps);
        int consecutiveDiscards = 0;
        while (log.Count < minTransitions)
        {
            ct.ThrowIfCancellationRequested();
            var goal = fixedGoal ?? SamplePosition(Layout, rng, _options.WallClearance);
            Vec2 start;
            int draws = 0;
            do
            {
                if (++draws > 100_000)
                    throw new InvalidOperationException($"Maze '{Layout.Name}': no start at least {_options.MinStartGoalDistance} from goal {goal} could be drawn.");
                start = SamplePosition(Layout, rng, _options.WallClearance);
            }
            while (start.DistanceTo(goal) < _options.MinStartGoalDistance);
            var offset = new Vec2((2 * rng.NextDouble() - 1) * _options.WaypointOffset, (2 * rng.NextDouble() - 1) * _options.WaypointOffset);

            var outcome = RunEpisode(start, goal, offset, buffer);
            stats.EpisodesAttempted++;
            stats.StepsSimulated += buffer.Count;
            switch (outcome)
            {
                case EpisodeOutcome.Reached: stats.EpisodesReached++; break;
                case EpisodeOutcome.Capped: stats.EpisodesCapped++; break;
                case EpisodeOutcome.DiscardedNearWall: stats.DiscardedNearWall++; break;
                case EpisodeOutcome.DiscardedFirstWaypointTimeout: stats.DiscardedFirstWaypointTimeout++; break;
                case EpisodeOutcome.DiscardedUnreachable: stats.DiscardedUnreachable++; break;
            }
            if (outcome is EpisodeOutcome.Reached or EpisodeOutcome.Capped)
            {
                int id = episodes.Count;
                for (int t = 0; t < buffer.Count; t++)
                    log.Add(id, t, buffer.Actions.AsSpan(2 * t, 2), buffer.Observations.AsSpan(4 * t, 4), buffer.Rewards[t]);
                episodes.Add(new EpisodeSummary(id, start, goal, offset, buffer.Count, outcome, buffer.FinalPosition));
                consecutiveDiscards = 0;
            }
            else if (++consecutiveDiscards >= _options.MaxConsecutiveDiscards)
            {
                throw new InvalidOperationException(
                    $"Maze '{Layout.Name}': {consecutiveDiscards} consecutive episodes were discarded ({stats}). Check the goal and the generator options.");
            }
        }
        stats.Transitions = log.Count;
        stats.Elapsed = sw.Elapsed;
        return new Maze2DDataset(Layout, log, episodes, stats, fixedGoal);
    }

    /// <summary>Runs one episode from <paramref name="start"/> (at rest) to <paramref name="goal"/> with the given waypoint offset, without discarding; returns the outcome and the trajectory.</summary>
    public (EpisodeOutcome Outcome, TransitionLog Trajectory) RunEpisode(Vec2 start, Vec2 goal, Vec2 offset)
    {
        var buffer = new EpisodeBuffer(_options.MaxEpisodeSteps);
        var outcome = RunEpisode(start, goal, offset, buffer);
        var log = new TransitionLog(buffer.Count);
        for (int t = 0; t < buffer.Count; t++)
            log.Add(0, t, buffer.Actions.AsSpan(2 * t, 2), buffer.Observations.AsSpan(4 * t, 4), buffer.Rewards[t]);
        return (outcome, log);
    }

    /// <summary>Waypoints for an episode from <paramref name="start"/> to <paramref name="goal"/> (empty if unreachable).</summary>
    public Vec2[] PlanWaypoints(Vec2 start, Vec2 goal, Vec2 offset)
    {
        var goalCell = ResolveCell(goal);
        if (!_planners.TryGetValue(goalCell, out var planner))
        {
            if (_planners.Count > 4096) _planners.Clear();
            _planners[goalCell] = planner = new GridPlanner(Layout, goalCell);
        }
        var path = planner.PathFrom(ResolveCell(start));
        return path.Count == 0 ? [] : WaypointController.BuildWaypoints(path, goal, offset);
    }

    private EpisodeOutcome RunEpisode(Vec2 start, Vec2 goal, Vec2 offset, EpisodeBuffer buffer)
    {
        buffer.Clear();
        var waypoints = PlanWaypoints(start, goal, offset);
        if (waypoints.Length == 0) return EpisodeOutcome.DiscardedUnreachable;
        var controller = new WaypointController(_options.ProportionalGain, _options.DerivativeGain, _options.WaypointSwitchRadius);
        controller.Reset(waypoints);
        var body = new PointMass(Layout);
        body.SetState(start);
        var o = new float[PointMass.ObservationSize];
        var a = new float[PointMass.ActionSize];
        double clearance = _options.WallClearance, reached = _options.GoalReachedRadius;
        for (int t = 0; t < _options.MaxEpisodeSteps; t++)
        {
            var (ax, ay) = controller.Act(body.Position, body.Velocity);
            if (controller.Index == 0 && t >= _options.FirstWaypointTimeoutSteps)
                return EpisodeOutcome.DiscardedFirstWaypointTimeout;
            body.WriteObservation(o);
            a[0] = (float)ax;
            a[1] = (float)ay;
            body.Step(ax, ay);
            var p = body.Position;
            buffer.Add(a, o, Maze2DEnvironment.SparseReward(p, goal), p);
            if (_options.DiscardNearWall && Layout.NearbyWallDistance(p, out _) < clearance) return EpisodeOutcome.DiscardedNearWall;
            if (p.DistanceTo(goal) <= reached) return EpisodeOutcome.Reached;
        }
        // Capped. Still heading to the first waypoint at the cap = "timed out on the first waypoint".
        controller.Advance(body.Position);
        if (controller.Index == 0) return EpisodeOutcome.DiscardedFirstWaypointTimeout;
        return EpisodeOutcome.Capped;
    }

    /// <summary>The free cell containing a point; for a point on a cell boundary the first free cell whose closed square contains it.</summary>
    public GridCell ResolveCell(Vec2 point)
    {
        var c = MazeLayout.CellOf(point);
        if (Layout.IsFree(c)) return c;
        for (int i = c.I - 1; i <= c.I + 1; i++)
            for (int j = c.J - 1; j <= c.J + 1; j++)
                if (Layout.IsFree(i, j) && MazeLayout.DistanceToCell(point, i, j, out _) == 0) return new GridCell(i, j);
        throw new ArgumentException($"Point {point} is not in a free cell of maze '{Layout.Name}'.", nameof(point));
    }

    /// <summary>
    /// A position uniform over the free area of the maze at least <paramref name="clearance"/> from every wall
    /// (uniform free cell, uniform point in it, rejected and re-drawn when too close to a wall).
    /// </summary>
    public static Vec2 SamplePosition(MazeLayout layout, Random random, double clearance = Maze2DGeneratorOptions.DefaultWallClearance)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(random);
        var cells = layout.FreeCells;
        for (int attempt = 0; attempt < 1_000_000; attempt++)
        {
            var c = cells[random.Next(cells.Count)];
            var lo = MazeLayout.CellMin(c.I, c.J);
            var p = new Vec2(lo.X + random.NextDouble(), lo.Y + random.NextDouble());
            if (layout.NearbyWallDistance(p, out _) >= clearance) return p;
        }
        throw new InvalidOperationException($"No position of maze '{layout.Name}' is {clearance} away from the walls.");
    }

    private sealed class EpisodeBuffer(int capacity)
    {
        public readonly float[] Actions = new float[2 * capacity];
        public readonly float[] Observations = new float[4 * capacity];
        public readonly float[] Rewards = new float[capacity];
        public int Count;
        public Vec2 FinalPosition;

        public void Clear() => Count = 0;

        public void Add(float[] a, float[] o, float r, Vec2 p)
        {
            a.CopyTo(Actions, 2 * Count);
            o.CopyTo(Observations, 4 * Count);
            Rewards[Count++] = r;
            FinalPosition = p;
        }
    }
}
