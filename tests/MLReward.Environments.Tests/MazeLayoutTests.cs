using MLReward.Environments.Maze2D;

namespace MLReward.Environments.Tests;

public class MazeLayoutTests
{
    [Theory]
    [InlineData("umaze", 5, 5, 7, 1, 1)]
    [InlineData("medium", 8, 8, 26, 6, 6)]
    [InlineData("large", 9, 12, 46, 7, 9)]
    [InlineData("open", 7, 9, 35, 2, 3)]
    [InlineData("open-d4rl", 5, 7, 15, 2, 3)]
    public void BuiltInLayoutsHaveTheSpecifiedShape(string name, int rows, int columns, int freeCells, int gi, int gj)
    {
        var m = MazeLayout.FromName(name);
        Assert.Equal(name, m.Name);
        Assert.Equal(rows, m.Rows);
        Assert.Equal(columns, m.Columns);
        Assert.Equal(freeCells, m.FreeCells.Count);
        Assert.Equal(new GridCell(gi, gj), m.GoalCell);
        Assert.Equal(new Vec2(gi, gj), m.DefaultGoal);
        // Walls all around.
        for (int i = 0; i < rows; i++) Assert.True(m.IsWall(i, 0) && m.IsWall(i, columns - 1));
        for (int j = 0; j < columns; j++) Assert.True(m.IsWall(0, j) && m.IsWall(rows - 1, j));
    }

    [Fact]
    public void BuiltInTextsAreTheSpecifiedStrings()
    {
        Assert.Equal("#####\n#GOO#\n###O#\n#OOO#\n#####\n", MazeLayout.UMaze.ToText());
        Assert.Equal(string.Join("\n", "########", "#OO##OO#", "#OO#OOO#", "##OOO###", "#OO#OOO#", "#O#OO#O#", "#OOO#OG#", "########") + "\n",
            MazeLayout.Medium.ToText());
        Assert.Equal(string.Join("\n", "############", "#OOOO#OOOOO#", "#O##O#O#O#O#", "#OOOOOO#OOO#", "#O####O###O#", "#OO#O#OOOOO#",
            "##O#O#O#O###", "#OO#OOO#OGO#", "############") + "\n", MazeLayout.Large.ToText());
        var open = MazeLayout.Open;
        for (int i = 1; i <= 5; i++)
            for (int j = 1; j <= 7; j++)
                Assert.True(open.IsFree(i, j));
    }

    public static TheoryData<string> Names => new() { "umaze", "medium", "large", "open", "open-d4rl" };

    [Theory]
    [MemberData(nameof(Names))]
    public void StandardGoalsAreEightPointsClearOfWalls(string name)
    {
        var m = MazeLayout.FromName(name);
        Assert.Equal(8, m.StandardGoals.Count);
        Assert.Equal(8, m.StandardGoals.Distinct().Count());
        foreach (var g in m.StandardGoals)
            Assert.True(m.DistanceToNearestWall(g) >= 0.3 - 1e-12, $"{name} goal {g}");
    }

    [Fact]
    public void StandardGoalListsAreTheSpecifiedOnes()
    {
        Assert.Equal(new Vec2[] { (1, 1), (1, 2), (1, 3), (1.3, 2.7), (2, 3), (3, 1), (3, 2), (3, 3) }, MazeLayout.UMaze.StandardGoals);
        Assert.Equal(new Vec2[] { (1, 1), (1, 6), (2, 2), (4, 4), (4, 6), (5, 3), (6, 1), (6, 6) }, MazeLayout.Medium.StandardGoals);
        Assert.Equal(new Vec2[] { (1, 1), (1, 10), (3, 6), (3, 8), (5, 2), (5, 4), (7, 1), (7, 10) }, MazeLayout.Large.StandardGoals);
        Assert.Equal(new Vec2[] { (1, 1), (1, 5), (1.3, 1.7), (2, 3), (2.3, 4.3), (2.7, 3.1), (3, 1), (3, 5) }, MazeLayout.Open.StandardGoals);
    }

    [Fact]
    public void ParsesACustomGrid()
    {
        var m = MazeLayout.Parse("""

              ######
              #OO#O#
              #O#OG#
              ######

            """, "mine");
        Assert.Equal("mine", m.Name);
        Assert.Equal(4, m.Rows);
        Assert.Equal(6, m.Columns);
        Assert.Equal(new[] { new GridCell(1, 1), new GridCell(1, 2), new GridCell(1, 4), new GridCell(2, 1), new GridCell(2, 3), new GridCell(2, 4) }, m.FreeCells);
        Assert.True(m.IsFree(2, 4));
        Assert.False(m.IsFree(1, 3));
        Assert.False(m.IsFree(-1, 0));
        Assert.False(m.IsFree(4, 1));
        Assert.False(m.IsFree(1, 6));
        Assert.Equal(new GridCell(2, 4), m.GoalCell);
        Assert.Equal(new Vec2(2, 4), m.DefaultGoal);
        Assert.Empty(m.StandardGoals);
        Assert.Equal("######\n#OO#O#\n#O#OG#\n######\n", m.ToText());
    }

    [Fact]
    public void ParsesD4RLBackslashStringsAndGridsWithoutBorder()
    {
        var m = MazeLayout.Parse(@"#####\#GOO#\###O#\#OOO#\#####");
        Assert.Equal(MazeLayout.UMaze.ToText(), m.ToText());
        var bare = MazeLayout.Parse("OO\nOO");
        Assert.Equal(4, bare.FreeCells.Count);
        Assert.Null(bare.GoalCell);
        Assert.Equal(new Vec2(0, 0), bare.DefaultGoal);
        // Outside the grid counts as wall: cell (0,0) spans [-0.7, 0.3]^2.
        Assert.Equal(0.5, bare.DistanceToNearestWall(MazeLayout.CellCenter(0, 0)), 12);
    }

    [Theory]
    [InlineData("###\n#O\n###", "same length")]
    [InlineData("###\n#X#\n###", "Unknown maze character")]
    [InlineData("####\n#GG#\n####", "more than one goal")]
    [InlineData("###\n###", "no free cell")]
    [InlineData("  \n ", "empty")]
    public void RejectsBadGrids(string text, string message)
    {
        var e = Assert.Throws<FormatException>(() => MazeLayout.Parse(text));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void RejectsGoalsInWalls() =>
        Assert.Throws<ArgumentException>(() => MazeLayout.Parse("###\n#O#\n###", standardGoals: [(2, 2)]));

    [Fact]
    public void LoadsAndSavesTextFiles()
    {
        var path = Path.Combine(Path.GetTempPath(), $"maze-{Guid.NewGuid():N}.txt");
        try
        {
            MazeLayout.Medium.Save(path);
            var m = MazeLayout.Load(path, [(1, 1)]);
            Assert.Equal(MazeLayout.Medium.ToText(), m.ToText());
            Assert.Equal(Path.GetFileNameWithoutExtension(path), m.Name);
            Assert.Equal(new Vec2[] { (1, 1) }, m.StandardGoals);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void FromNameAcceptsVariantsAndRejectsUnknown()
    {
        Assert.Same(MazeLayout.UMaze, MazeLayout.FromName("maze2d-umaze"));
        Assert.Same(MazeLayout.Large, MazeLayout.FromName(" Large "));
        Assert.Throws<ArgumentException>(() => MazeLayout.FromName("huge"));
    }

    [Fact]
    public void CellGeometryFollowsThePointTwoOffset()
    {
        Assert.Equal(new Vec2(0.8, 2.8), MazeLayout.CellCenter(1, 3));
        Assert.Equal(new GridCell(1, 3), MazeLayout.CellOf((0.31, 3.29)));
        Assert.Equal(new GridCell(0, 3), MazeLayout.CellOf((0.29, 3.0)));
        Assert.Equal(new GridCell(1, 4), MazeLayout.CellOf((1.0, 3.31)));
        var u = MazeLayout.UMaze;
        Assert.Equal(0.3, u.DistanceToNearestWall((1, 1)), 12);   // wall (2,1) starts at x = 1.3
        Assert.Equal(0.5, u.DistanceToNearestWall((0.8, 0.8)), 12); // centre of an enclosed corner cell
        Assert.Equal(0.0, u.DistanceToNearestWall((2, 2)));         // inside wall (2,2)
        // Convex corner of wall (2,2) at (1.3, 2.3): diagonal distance.
        Assert.Equal(Math.Sqrt(0.02), u.DistanceToNearestWall((1.2, 2.4)), 12);
        Assert.True(u.IsValidPosition((1.2, 1.0)));
        Assert.False(u.IsValidPosition((1.21, 1.0)));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void DistanceToNearestWallMatchesBruteForce(string name)
    {
        var m = MazeLayout.FromName(name);
        var rng = new Random(5);
        for (int n = 0; n < 2000; n++)
        {
            var p = new Vec2(-0.7 + rng.NextDouble() * m.Rows, -0.7 + rng.NextDouble() * m.Columns);
            double brute = double.PositiveInfinity;
            for (int i = 0; i < m.Rows; i++)
                for (int j = 0; j < m.Columns; j++)
                    if (m.IsWall(i, j)) brute = Math.Min(brute, MazeLayout.DistanceToCell(p, i, j, out _));
            Assert.Equal(brute, m.DistanceToNearestWall(p));
        }
    }
}
