using MLReward.Environments.Maze2D;

namespace MLReward.Environments.Tests;

public class PointMassTests
{
    private const double M = 4.18879, H = 0.01;
    private const double R = M / (M + H); // velocity retention per step

    [Fact]
    public void OneStepFromRestMatchesHandComputation()
    {
        var b = new PointMass(MazeLayout.Open);
        b.SetState((2.8, 3.8));
        b.Step(1.0, -0.5);
        // v' = (m*0 + 0.01*100*u) / (m + 0.01) = u / 4.19879; x' = x + 0.01 v'.
        Assert.Equal(1.0 / 4.19879, b.Velocity.X, 1e-15);
        Assert.Equal(-0.5 / 4.19879, b.Velocity.Y, 1e-15);
        Assert.Equal(2.8 + 0.01 / 4.19879, b.Position.X, 1e-15);
        Assert.Equal(3.8 - 0.005 / 4.19879, b.Position.Y, 1e-15);
        Assert.False(b.InContact);
        // Second step, by hand: v2 = (m v1 + 1) / (m + 0.01).
        b.Step(1.0, -0.5);
        double v2 = (M / 4.19879 + 1.0) / 4.19879;
        Assert.Equal(v2, b.Velocity.X, 1e-15);
        Assert.Equal(2.8 + 0.01 / 4.19879 + 0.01 * v2, b.Position.X, 1e-15);
    }

    [Fact]
    public void ConstantControlMatchesClosedForm()
    {
        // From rest under constant u: v_n = 100 u (1 - r^n), x_n = x_0 + h 100 u (n - r (1 - r^n) / (1 - r)), r = m / (m + h).
        var b = new PointMass(MazeLayout.Open);
        var x0 = new Vec2(2.8, 3.8);
        b.SetState(x0);
        double ux = 0.3, uy = -0.2;
        for (int n = 1; n <= 25; n++)
        {
            b.Step(ux, uy);
            double rn = Math.Pow(R, n);
            double sum = n - R * (1 - rn) / (1 - R);
            Assert.Equal(100 * ux * (1 - rn), b.Velocity.X, 1e-12);
            Assert.Equal(100 * uy * (1 - rn), b.Velocity.Y, 1e-12);
            Assert.Equal(x0.X + H * 100 * ux * sum, b.Position.X, 1e-12);
            Assert.Equal(x0.Y + H * 100 * uy * sum, b.Position.Y, 1e-12);
        }
    }

    [Fact]
    public void DampingDecaysVelocityGeometrically()
    {
        var b = new PointMass(MazeLayout.Open);
        b.SetState((1.0, 1.0), (2.0, -1.0));
        double x = 1.0;
        for (int n = 1; n <= 30; n++)
        {
            b.Step(0, 0);
            x += H * 2.0 * Math.Pow(R, n);
            Assert.Equal(2.0 * Math.Pow(R, n), b.Velocity.X, 1e-13);
            Assert.Equal(-1.0 * Math.Pow(R, n), b.Velocity.Y, 1e-13);
        }
        Assert.Equal(x, b.Position.X, 1e-12);
    }

    [Fact]
    public void ControlIsClipped()
    {
        Assert.Equal(PointMass.NextVelocity(0.7, 1), PointMass.NextVelocity(0.7, 5));
        Assert.Equal(PointMass.NextVelocity(0.7, -1), PointMass.NextVelocity(0.7, -7));
        Assert.Equal(PointMass.NextVelocity(0.7, 0), PointMass.NextVelocity(0.7, double.NaN));
        Assert.Equal((4.18879 * 0.7 + 0.01 * 100 * 0.25) / (4.18879 + 0.01), PointMass.NextVelocity(0.7, 0.25));
        // Terminal speed under full throttle is gear / damping = 100.
        Assert.Equal(100.0, PointMass.NextVelocity(100.0, 1.0), 1e-12);
    }

    [Fact]
    public void FlatWallStopsTheNormalComponentAndKeepsTheTangentialOne()
    {
        // umaze: walls (2,1) and (2,2) form the face x = 1.3 for y in [0.3, 2.3]; the ball stops at x = 1.2.
        var b = new PointMass(MazeLayout.UMaze);
        b.SetState((1.0, 0.8));
        double vy = 0, y = 0.8;
        bool touched = false;
        for (int n = 0; n < 40; n++)
        {
            b.Step(1.0, 0.5);
            vy = PointMass.NextVelocity(vy, 0.5);
            y += H * vy;
            Assert.True(b.Position.X <= 1.2 + 1e-12);
            Assert.Equal(vy, b.Velocity.Y, 1e-12); // frictionless sliding, also across the seam at y = 1.3
            Assert.Equal(y, b.Position.Y, 1e-12);
            if (b.InContact)
            {
                touched = true;
                Assert.Equal(1.2, b.Position.X, 1e-12);
                Assert.Equal(0.0, b.Velocity.X); // inelastic: no bounce
            }
        }
        Assert.True(touched);
        Assert.True(b.Position.Y > 1.3);
    }

    [Fact]
    public void ConcaveCornerHoldsTheBallAtRest()
    {
        var b = new PointMass(MazeLayout.UMaze);
        b.SetState((1.0, 1.0));
        for (int n = 0; n < 300; n++) b.Step(-1, -1);
        Assert.Equal(0.4, b.Position.X, 1e-12);
        Assert.Equal(0.4, b.Position.Y, 1e-12);
        Assert.Equal(0.0, b.Velocity.X);
        Assert.Equal(0.0, b.Velocity.Y);
    }

    [Fact]
    public void ConvexCornerKeepsTheRadius()
    {
        // Slide past the convex corner (1.3, 2.3) of wall (2,2) in umaze, moving +y while pushing +x.
        var b = new PointMass(MazeLayout.UMaze);
        b.SetState((1.15, 1.8));
        double closest = double.PositiveInfinity;
        for (int n = 0; n < 60; n++)
        {
            b.Step(1.0, 0.6);
            closest = Math.Min(closest, MazeLayout.UMaze.DistanceToNearestWall(b.Position));
        }
        Assert.True(closest >= 0.1 - 1e-9);
        Assert.True(b.Position.X > 1.3); // went round the corner into cell (2,3)
    }

    [Fact]
    public void NoTunnellingAtAnySpeed()
    {
        // A single wall cell separates two free cells.
        var m = MazeLayout.Parse("#####\n#O#O#\n#####");
        var b = new PointMass(m);
        foreach (var v in new Vec2[] { (0, 500), (0, 100), (0, 80), (3, 250), (-1e4, 2e4) })
        {
            b.SetState(MazeLayout.CellCenter(1, 1), v);
            for (int n = 0; n < 5; n++)
            {
                b.Step(0, 1);
                Assert.Equal(new GridCell(1, 1), MazeLayout.CellOf(b.Position));
                Assert.True(m.DistanceToNearestWall(b.Position) >= 0.1 - 1e-9);
            }
            Assert.Equal(1.2, b.Position.Y, 1e-12);
            Assert.Equal(0.0, b.Velocity.Y);
        }
    }

    [Fact]
    public void RejectsStatesInsideWalls()
    {
        var b = new PointMass(MazeLayout.UMaze);
        Assert.Throws<ArgumentException>(() => b.SetState((2, 2)));
        Assert.Throws<ArgumentException>(() => b.SetState((1.25, 1.0)));
        Assert.Throws<ArgumentException>(() => b.SetState((double.NaN, 1.0)));
    }

    public static TheoryData<string> Mazes => new() { "umaze", "medium", "large", "open", "corridor" };

    private static MazeLayout Get(string name) => name == "corridor"
        ? MazeLayout.Parse(new string('#', 152) + "\n#" + new string('O', 150) + "#\n#" + new string('O', 75) + "#" + new string('O', 74) + "#\n" + new string('#', 152), "corridor")
        : MazeLayout.FromName(name);

    [Theory]
    [MemberData(nameof(Mazes))]
    public void FullThrottleIntoWallsNeverEntersOrCrossesAWall(string name)
    {
        var m = Get(name);
        var rng = new Random(name.Length * 7919);
        var b = new PointMass(m);
        for (int start = 0; start < 24; start++)
        {
            b.SetState(Maze2DDataGenerator.SamplePosition(m, rng, 0.1));
            int dx = rng.Next(3) - 1, dy = rng.Next(3) - 1;
            if (dx == 0 && dy == 0) dx = 1;
            var prev = b.Position;
            for (int n = 0; n < 1000; n++)
            {
                if (n % 250 == 249) { dx = rng.Next(3) - 1; dy = rng.Next(3) - 1; } // change direction now and then
                b.Step(dx, dy);
                var p = b.Position;
                Assert.True(m.DistanceToNearestWall(p) >= 0.1 - 1e-9, $"{name}: ball inside a wall at {p}");
                Assert.True(m.IsFree(MazeLayout.CellOf(p)));
                Assert.False(SegmentHitsWall(m, prev, p), $"{name}: tunnelled from {prev} to {p}");
                prev = p;
            }
        }
    }

    [Fact]
    public void LongCorridorReachesHighSpeedAndStopsAtTheEnd()
    {
        var m = Get("corridor");
        var b = new PointMass(m);
        b.SetState(MazeLayout.CellCenter(1, 1));
        double maxSpeed = 0;
        for (int n = 0; n < 1000; n++)
        {
            b.Step(0, 1);
            maxSpeed = Math.Max(maxSpeed, b.Velocity.Length);
        }
        Assert.True(maxSpeed > 40, $"max speed {maxSpeed}");
        Assert.Equal(150.2, b.Position.Y, 1e-9); // last free cell (1,150) ends at y = 150.3
    }

    internal static bool SegmentHitsWall(MazeLayout m, Vec2 a, Vec2 b)
    {
        int i0 = (int)Math.Floor(Math.Min(a.X, b.X) + 0.7) - 1, i1 = (int)Math.Floor(Math.Max(a.X, b.X) + 0.7) + 1;
        int j0 = (int)Math.Floor(Math.Min(a.Y, b.Y) + 0.7) - 1, j1 = (int)Math.Floor(Math.Max(a.Y, b.Y) + 0.7) + 1;
        for (int i = i0; i <= i1; i++)
            for (int j = j0; j <= j1; j++)
                if (m.IsWall(i, j) && SegmentIntersectsBox(a, b, MazeLayout.CellMin(i, j), MazeLayout.CellMax(i, j))) return true;
        return false;
    }

    // Liang-Barsky clipping: does the closed segment a-b meet the closed box [lo, hi]?
    private static bool SegmentIntersectsBox(Vec2 a, Vec2 b, Vec2 lo, Vec2 hi)
    {
        double t0 = 0, t1 = 1;
        var d = b - a;
        return Clip(-d.X, a.X - lo.X, ref t0, ref t1) && Clip(d.X, hi.X - a.X, ref t0, ref t1)
            && Clip(-d.Y, a.Y - lo.Y, ref t0, ref t1) && Clip(d.Y, hi.Y - a.Y, ref t0, ref t1);

        static bool Clip(double p, double q, ref double t0, ref double t1)
        {
            if (p == 0) return q >= 0;
            double r = q / p;
            if (p < 0) { if (r > t1) return false; if (r > t0) t0 = r; }
            else { if (r < t0) return false; if (r < t1) t1 = r; }
            return true;
        }
    }
}
