using MLReward.Environments.Maze2D;

namespace MLReward.Environments.Tests;

public class PlannerAndControllerTests
{
    [Fact]
    public void MovesAreInTheSpecifiedTieOrder() =>
        Assert.Equal(new[] { new GridCell(0, -1), new GridCell(0, 1), new GridCell(-1, 0), new GridCell(1, 0) }, GridPlanner.Moves);

    [Fact]
    public void UMazePathGoesRoundTheBend()
    {
        var path = GridPlanner.ShortestPath(MazeLayout.UMaze, new GridCell(3, 1), new GridCell(1, 1));
        Assert.Equal(new GridCell[] { new(3, 1), new(3, 2), new(3, 3), new(2, 3), new(1, 3), new(1, 2), new(1, 1) }, path);
    }

    [Fact]
    public void TiesAreBrokenUpDownLeftRight()
    {
        var open = MazeLayout.Open;
        Assert.Equal(new GridCell[] { new(1, 1), new(1, 2), new(1, 3), new(2, 3), new(3, 3) },
            GridPlanner.ShortestPath(open, new GridCell(1, 1), new GridCell(3, 3)));
        Assert.Equal(new GridCell[] { new(3, 3), new(3, 2), new(3, 1), new(2, 1), new(1, 1) },
            GridPlanner.ShortestPath(open, new GridCell(3, 3), new GridCell(1, 1)));
        Assert.Equal(new GridCell[] { new(2, 2) }, GridPlanner.ShortestPath(open, new GridCell(2, 2), new GridCell(2, 2)));
    }

    [Fact]
    public void PathsAreShortestAndConnected()
    {
        var m = MazeLayout.Large;
        var rng = new Random(3);
        for (int n = 0; n < 200; n++)
        {
            var s = m.FreeCells[rng.Next(m.FreeCells.Count)];
            var g = m.FreeCells[rng.Next(m.FreeCells.Count)];
            var planner = new GridPlanner(m, g);
            var path = planner.PathFrom(s);
            Assert.Equal(planner.Distance(s.I, s.J) + 1, path.Count);
            Assert.Equal(s, path[0]);
            Assert.Equal(g, path[^1]);
            for (int k = 1; k < path.Count; k++)
            {
                Assert.True(m.IsFree(path[k]));
                Assert.Equal(1, Math.Abs(path[k].I - path[k - 1].I) + Math.Abs(path[k].J - path[k - 1].J));
            }
        }
        // Brute-check one distance: the two far corners of the large maze.
        Assert.True(new GridPlanner(m, new GridCell(7, 10)).Distance(1, 1) >= 15);
    }

    [Fact]
    public void UnreachableGoalsGiveEmptyPaths()
    {
        var m = MazeLayout.Parse("#####\n#O#O#\n#####");
        Assert.Empty(GridPlanner.ShortestPath(m, new GridCell(1, 1), new GridCell(1, 3)));
        Assert.Equal(-1, new GridPlanner(m, new GridCell(1, 3)).Distance(1, 1));
        Assert.Throws<ArgumentException>(() => new GridPlanner(m, new GridCell(1, 2)));
    }

    [Fact]
    public void WaypointsAreShiftedCellCentresEndingAtTheExactTarget()
    {
        var path = new GridCell[] { new(3, 1), new(3, 2), new(3, 3) };
        var wps = WaypointController.BuildWaypoints(path, (3.1, 2.9), (0.1, -0.2));
        Assert.Equal(3, wps.Length);
        Assert.Equal(2.8 + 0.1, wps[0].X, 15);
        Assert.Equal(0.8 - 0.2, wps[0].Y, 15);
        Assert.Equal(2.8 + 0.1, wps[1].X, 15);
        Assert.Equal(1.8 - 0.2, wps[1].Y, 15);
        Assert.Equal(new Vec2(3.1, 2.9), wps[2]);
    }

    [Fact]
    public void PdActionMatchesTheFormula()
    {
        var c = new WaypointController();
        Assert.Equal(Math.Sqrt(0.3), c.DerivativeGain, 15);
        c.Reset([(1.0, 1.0), (2.0, 2.0)]);
        // Far from the first waypoint: a = clip(3 (wp - pos) - sqrt(0.3) vel).
        var (ax, ay) = c.Act((0.9, 0.5), (0.1, 0.2));
        Assert.Equal(0, c.Index);
        Assert.Equal(3 * 0.1 - Math.Sqrt(0.3) * 0.1, ax, 15);
        Assert.Equal(1.0, ay); // 3 * 0.5 - 0.11 > 1, clipped
        (ax, ay) = c.Act((0.5, 0.9), (-0.4, 3.0));
        Assert.Equal(1.0, ax);
        Assert.Equal(Math.Max(-1, 3 * 0.1 - Math.Sqrt(0.3) * 3.0), ay, 15);
        // Within 0.3 (inclusive) of the first waypoint: switch to the second.
        (ax, ay) = c.Act((1.0, 1.29), Vec2.Zero);
        Assert.Equal(1, c.Index);
        Assert.Equal(1.0, ax);
        Assert.Equal(1.0, ay);
        // The last waypoint is never passed.
        c.Act((2.0, 2.0), Vec2.Zero);
        Assert.Equal(1, c.Index);
        var (bx, by) = c.Act((2.1, 1.9), (0, 0));
        Assert.Equal(-0.3, bx, 12);
        Assert.Equal(0.3, by, 12);
    }

    public static TheoryData<string, int> MazesAndSeeds()
    {
        var data = new TheoryData<string, int>();
        foreach (var m in new[] { "umaze", "medium", "large", "open" })
            foreach (var s in new[] { 1, 2, 3 })
                data.Add(m, s);
        return data;
    }

    [Theory]
    [MemberData(nameof(MazesAndSeeds))]
    public void ControllerReachesEveryStandardGoalFromRandomStarts(string name, int seed)
    {
        var m = MazeLayout.FromName(name);
        var gen = new Maze2DDataGenerator(m, new Maze2DGeneratorOptions { DiscardNearWall = false });
        var rng = new Random(seed);
        foreach (var goal in m.StandardGoals)
        {
            for (int k = 0; k < 4; k++)
            {
                var start = Maze2DDataGenerator.SamplePosition(m, rng);
                var offset = new Vec2((2 * rng.NextDouble() - 1) * 0.24, (2 * rng.NextDouble() - 1) * 0.24);
                var (outcome, traj) = gen.RunEpisode(start, goal, offset);
                Assert.True(outcome == EpisodeOutcome.Reached, $"{name} goal {goal} from {start}: {outcome} after {traj.Count} steps");
                Assert.True(traj.Count <= 1000);
                Assert.Equal(1f, traj.GetReward(traj.Count - 1));
            }
        }
    }
}
