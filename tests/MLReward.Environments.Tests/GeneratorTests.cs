using MLReward.Environments.Maze2D;

namespace MLReward.Environments.Tests;

public class GeneratorTests
{
    private static void CheckEpisodeStructure(Maze2DDataset d)
    {
        var log = d.Log;
        var ranges = log.Episodes().ToArray();
        Assert.Equal(d.Episodes.Count, ranges.Length);
        Assert.Equal(d.Episodes.Count, log.EpisodeCount);
        Assert.Equal(d.Statistics.EpisodesKept, d.Episodes.Count);
        Assert.Equal(log.Count, d.Statistics.Transitions);
        for (int e = 0; e < ranges.Length; e++)
        {
            var (id, start, length) = ranges[e];
            var summary = d.Episodes[e];
            Assert.Equal(e, id);
            Assert.Equal(summary.Steps, length);
            for (int t = 0; t < length; t++) Assert.Equal(t, log.GetStep(start + t));
            var o0 = log.GetObservation(start);
            Assert.Equal((float)summary.Start.X, o0[0]);
            Assert.Equal((float)summary.Start.Y, o0[1]);
            Assert.Equal(0f, o0[2]);
            Assert.Equal(0f, o0[3]);
            Assert.True(d.Layout.DistanceToNearestWall(summary.Start) >= 0.26);
            Assert.True(d.Layout.DistanceToNearestWall(summary.Goal) >= 0.26 || d.Goal is not null);
            Assert.True(summary.Start.DistanceTo(summary.Goal) >= 0.5);
            // Rewards: 1 exactly when the position after the step is within 0.5 of the goal.
            for (int t = 0; t < length; t++)
            {
                Vec2 next = t + 1 < length ? Pos(log, start + t + 1) : summary.FinalPosition;
                double dist = next.DistanceTo(summary.Goal);
                if (Math.Abs(dist - 0.5) > 1e-5) Assert.Equal(dist <= 0.5 ? 1f : 0f, log.GetReward(start + t));
            }
        }
    }

    private static Vec2 Pos(TransitionLog log, int i) => new(log.GetObservation(i)[0], log.GetObservation(i)[1]);

    [Theory]
    [InlineData("umaze")]
    [InlineData("medium")]
    [InlineData("large")]
    [InlineData("open")]
    public void ExpertEpisodesAllEndAtTheGoalAndStayClearOfWalls(string name)
    {
        var m = MazeLayout.FromName(name);
        var gen = new Maze2DDataGenerator(m);
        var goal = m.StandardGoals[3];
        var d = gen.GenerateExpert(goal, 20_000, seed: 11);
        Assert.Equal(goal, d.Goal);
        Assert.True(d.Log.Count >= 20_000);
        Assert.True(d.Log.Count - d.Episodes[^1].Steps < 20_000); // stops after the episode that crosses the target
        CheckEpisodeStructure(d);
        foreach (var e in d.Episodes)
        {
            Assert.Equal(goal, e.Goal);
            Assert.Equal(EpisodeOutcome.Reached, e.Outcome);
            Assert.True(e.FinalPosition.DistanceTo(goal) <= 0.1);
            Assert.True(e.Steps <= 1000);
        }
        for (int i = 0; i < d.Log.Count; i++)
            Assert.True(m.DistanceToNearestWall(Pos(d.Log, i)) >= 0.26 - 1e-6);
        Assert.Equal(0, d.Statistics.DiscardedUnreachable);
        Assert.Equal(d.Statistics.EpisodesAttempted, d.Statistics.EpisodesKept + d.Statistics.DiscardedNearWall + d.Statistics.DiscardedFirstWaypointTimeout);
    }

    [Fact]
    public void NearWallRuleDiscardsEpisodesThatWouldBeKeptOtherwise()
    {
        var strict = new Maze2DDataGenerator(MazeLayout.Medium).GenerateBase(20_000, seed: 4);
        Assert.True(strict.Statistics.DiscardedNearWall > 0);
        Assert.Equal(strict.Statistics.DiscardedNearWall, strict.Statistics.EpisodesAttempted - strict.Statistics.EpisodesKept);
        var lax = new Maze2DDataGenerator(MazeLayout.Medium, new Maze2DGeneratorOptions { DiscardNearWall = false }).GenerateBase(20_000, seed: 4);
        Assert.Equal(0, lax.Statistics.DiscardedNearWall);
        Assert.Equal(lax.Statistics.EpisodesAttempted, lax.Statistics.EpisodesKept);
        double closest = Enumerable.Range(0, lax.Log.Count).Min(i => MazeLayout.Medium.DistanceToNearestWall(Pos(lax.Log, i)));
        Assert.True(closest < 0.26);
    }

    [Fact]
    public void BaseDataCoverAllFreeCellsWithVaryingGoals()
    {
        foreach (var m in new[] { MazeLayout.Medium, MazeLayout.Large })
        {
            var d = new Maze2DDataGenerator(m).GenerateBase(60_000, seed: 9);
            Assert.Null(d.Goal);
            CheckEpisodeStructure(d);
            var visited = new HashSet<GridCell>();
            for (int i = 0; i < d.Log.Count; i++) visited.Add(MazeLayout.CellOf(Pos(d.Log, i)));
            Assert.Equal(m.FreeCells.ToHashSet(), visited);
            var goalCells = d.Episodes.Select(e => MazeLayout.CellOf(e.Goal)).ToHashSet();
            Assert.True(goalCells.Count > m.FreeCells.Count * 3 / 4);
            Assert.All(d.Episodes, e => Assert.True(e.Outcome == EpisodeOutcome.Reached && e.FinalPosition.DistanceTo(e.Goal) <= 0.1));
            Assert.All(d.Episodes, e => Assert.True(Math.Abs(e.Offset.X) <= 0.24 && Math.Abs(e.Offset.Y) <= 0.24));
        }
    }

    [Fact]
    public void TransitionsFollowTheDynamics()
    {
        var m = MazeLayout.UMaze;
        var d = new Maze2DDataGenerator(m).GenerateBase(3_000, seed: 2);
        var body = new PointMass(m);
        foreach (var (id, start, length) in d.Log.Episodes())
        {
            body.SetState(d.Episodes[id].Start);
            for (int t = 0; t < length; t++)
            {
                var o = d.Log.GetObservation(start + t);
                Assert.Equal(body.Position.X, o[0], 1e-4);
                Assert.Equal(body.Position.Y, o[1], 1e-4);
                Assert.Equal(body.Velocity.X, o[2], 1e-3);
                Assert.Equal(body.Velocity.Y, o[3], 1e-3);
                var a = d.Log.GetAction(start + t);
                Assert.InRange(a[0], -1f, 1f);
                Assert.InRange(a[1], -1f, 1f);
                body.Step(a);
            }
        }
    }

    [Fact]
    public void ActionsAreThePdControllerOnTheWaypoints()
    {
        var m = MazeLayout.Large;
        var gen = new Maze2DDataGenerator(m);
        var d = gen.GenerateExpert(m.DefaultGoal, 2_000, seed: 8);
        var e = d.Episodes[0];
        var c = new WaypointController();
        c.Reset(gen.PlanWaypoints(e.Start, e.Goal, e.Offset));
        Assert.True(c.Waypoints.Count >= 2);
        Assert.Equal(e.Goal, c.Waypoints[^1]);
        for (int t = 0; t < e.Steps; t++)
        {
            var o = d.Log.GetObservation(t);
            var (ax, ay) = c.Act((o[0], o[1]), (o[2], o[3]));
            Assert.Equal(ax, d.Log.GetAction(t)[0], 1e-4);
            Assert.Equal(ay, d.Log.GetAction(t)[1], 1e-4);
        }
        Assert.Equal(c.Waypoints.Count - 1, c.Index);
    }

    [Fact]
    public void SameSeedGivesIdenticalDataAndOtherSeedsDiffer()
    {
        var gen = new Maze2DDataGenerator(MazeLayout.Medium);
        var a = gen.GenerateBase(5_000, seed: 42);
        var b = new Maze2DDataGenerator(MazeLayout.Medium).GenerateBase(5_000, seed: 42);
        var c = gen.GenerateBase(5_000, seed: 43);
        Assert.Equal(a.Log.Count, b.Log.Count);
        Assert.True(a.Log.Observations.SequenceEqual(b.Log.Observations));
        Assert.True(a.Log.Actions.SequenceEqual(b.Log.Actions));
        Assert.True(a.Log.Rewards.SequenceEqual(b.Log.Rewards));
        Assert.Equal(a.Episodes, b.Episodes);
        Assert.False(a.Log.Observations.SequenceEqual(c.Log.Observations));
        var e1 = gen.GenerateExpert(MazeLayout.Medium.DefaultGoal, 3_000, seed: 5);
        var e2 = gen.GenerateExpert(new GridCell(6, 6), 3_000, seed: 5);
        Assert.True(e1.Log.Observations.SequenceEqual(e2.Log.Observations));
    }

    [Fact]
    public void FirstWaypointTimeoutAndCapAreApplied()
    {
        var m = MazeLayout.Large;
        var tight = new Maze2DDataGenerator(m, new Maze2DGeneratorOptions { FirstWaypointTimeoutSteps = 3 });
        var d = tight.GenerateBase(5_000, seed: 1);
        Assert.True(d.Statistics.DiscardedFirstWaypointTimeout > 0);
        foreach (var e in d.Episodes)
        {
            // Kept episodes reached their first waypoint within 3 steps.
            var wp0 = tight.PlanWaypoints(e.Start, e.Goal, e.Offset)[0];
            var start = d.Log.Episodes().First(r => r.EpisodeId == e.EpisodeId).Start;
            bool reached = Enumerable.Range(0, Math.Min(4, e.Steps)).Any(t => Pos(d.Log, start + t).DistanceTo(wp0) <= 0.3 + 1e-6)
                || (e.Steps < 4 && e.FinalPosition.DistanceTo(wp0) <= 0.3 + 1e-6);
            Assert.True(reached);
        }

        var capped = new Maze2DDataGenerator(m, new Maze2DGeneratorOptions { MaxEpisodeSteps = 40 }).GenerateBase(3_000, seed: 1);
        Assert.True(capped.Statistics.EpisodesCapped > 0);
        Assert.All(capped.Episodes, e => Assert.True(e.Steps <= 40));
        Assert.All(capped.Episodes.Where(e => e.Outcome == EpisodeOutcome.Capped), e => Assert.Equal(40, e.Steps));
    }

    [Fact]
    public void StartsAndGoalsAreUniformOverTheClearArea()
    {
        // open maze: the clear area is the box [0.56, 5.04] x [0.56, 7.04]; check the mean and the bounds.
        var rng = new Random(1);
        double sx = 0, sy = 0;
        const int n = 20_000;
        for (int k = 0; k < n; k++)
        {
            var p = Maze2DDataGenerator.SamplePosition(MazeLayout.Open, rng);
            Assert.InRange(p.X, 0.56 - 1e-12, 5.04 + 1e-12);
            Assert.InRange(p.Y, 0.56 - 1e-12, 7.04 + 1e-12);
            sx += p.X; sy += p.Y;
        }
        Assert.Equal(2.8, sx / n, 1);
        Assert.Equal(3.8, sy / n, 1);
    }

    [Fact]
    public void InvalidArgumentsAreRejected()
    {
        var gen = new Maze2DDataGenerator(MazeLayout.UMaze);
        Assert.Throws<ArgumentException>(() => gen.GenerateExpert(new Vec2(2, 2), 100, 1));       // in a wall
        Assert.Throws<ArgumentException>(() => gen.GenerateExpert(new Vec2(1.25, 1.0), 100, 1));  // closer than the radius
        Assert.Throws<ArgumentOutOfRangeException>(() => gen.GenerateBase(0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Maze2DDataGenerator(MazeLayout.UMaze, new Maze2DGeneratorOptions { WallClearance = 0.6 }));
        var split = new Maze2DDataGenerator(MazeLayout.Parse("#####\n#O#O#\n#####"), new Maze2DGeneratorOptions { WallClearance = 0.2, MaxConsecutiveDiscards = 50 });
        Assert.Throws<InvalidOperationException>(() => split.GenerateExpert(MazeLayout.CellCenter(1, 3), 100, 1)); // half the starts cannot reach
    }

    [Fact]
    public void EnvironmentGivesSparseReward()
    {
        var env = new Maze2DEnvironment(MazeLayout.Open, (3, 5));
        var o = env.Reset((3, 4.45));
        Assert.Equal(new float[] { 3f, 4.45f, 0f, 0f }, o);
        var (_, r) = env.Step(0, 1);
        Assert.Equal(0f, r);
        for (int t = 0; t < 7; t++) (_, r) = env.Step(0, 1);
        Assert.Equal(1f, r);
        Assert.Equal(1f, Maze2DEnvironment.SparseReward((3, 5.5), (3, 5)));
        Assert.Equal(0f, Maze2DEnvironment.SparseReward((3, 5.51), (3, 5)));
        var random = env.Reset(new Random(1));
        Assert.True(MazeLayout.Open.DistanceToNearestWall((random[0], random[1])) >= 0.26 - 1e-6);
    }
}
