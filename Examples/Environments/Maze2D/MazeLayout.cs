using System.Text;

namespace MLReward.Environments.Maze2D;

/// <summary>A grid cell of a maze layout: <see cref="I"/> is the row (first coordinate x), <see cref="J"/> the column (second coordinate y).</summary>
/// <param name="I">Row index (first coordinate).</param>
/// <param name="J">Column index (second coordinate).</param>
public readonly record struct GridCell(int I, int J)
{
    /// <inheritdoc />
    public override string ToString() => $"({I}, {J})";
}

/// <summary>
/// A Maze2D layout: a rectangular grid of wall (<c>#</c>) and free (<c>O</c>, or <c>G</c> for the default goal) cells.
/// Rows are the first coordinate x, columns the second coordinate y.
/// </summary>
/// <remarks>
/// Geometry (the original MuJoCo model has a 0.2 offset between ball body and maze): cell (i, j) is the unit square
/// centred at (i - 0.2, j - 0.2) in position coordinates, i.e. [i - 0.7, i + 0.3] x [j - 0.7, j + 0.3].
/// Everything outside the grid counts as wall. Goals are points in position coordinates; the paper's goal lists use
/// cell indices as positions, e.g. goal (1, 1) is the point (1, 1), which lies in cell (1, 1), 0.3 from its +x and +y sides.
/// </remarks>
public sealed class MazeLayout
{
    /// <summary>Offset between a cell's index and its centre in position coordinates (centre = index - 0.2).</summary>
    public const double CellCenterOffset = 0.2;

    private readonly bool[] _free; // row-major, Rows x Columns
    private readonly GridCell[] _freeCells;
    private readonly Vec2[] _standardGoals;

    private MazeLayout(string name, int rows, int columns, bool[] free, GridCell? goalCell, Vec2[] standardGoals)
    {
        Name = name;
        Rows = rows;
        Columns = columns;
        _free = free;
        GoalCell = goalCell;
        var cells = new List<GridCell>();
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                if (free[i * columns + j]) cells.Add(new GridCell(i, j));
        _freeCells = cells.ToArray();
        _standardGoals = standardGoals;
    }

    /// <summary>Layout name ("umaze", "medium", "large", "open", "open-d4rl" or the name given when parsing).</summary>
    public string Name { get; }

    /// <summary>Number of rows (extent of the first coordinate x).</summary>
    public int Rows { get; }

    /// <summary>Number of columns (extent of the second coordinate y).</summary>
    public int Columns { get; }

    /// <summary>The cell marked <c>G</c>, if any.</summary>
    public GridCell? GoalCell { get; }

    /// <summary>All free cells in row-major order.</summary>
    public IReadOnlyList<GridCell> FreeCells => _freeCells;

    /// <summary>The 8 evaluation goals of a built-in maze (docs/EXPERIMENTS.md section 1); for a parsed layout the goals given to <see cref="Parse"/> (possibly none).</summary>
    public IReadOnlyList<Vec2> StandardGoals => _standardGoals;

    /// <summary>
    /// The default goal: the <c>G</c> cell's indices used as a position (the paper's convention), else the first standard
    /// goal, else the first free cell's indices.
    /// </summary>
    public Vec2 DefaultGoal =>
        GoalCell is { } g ? new Vec2(g.I, g.J)
        : _standardGoals.Length > 0 ? _standardGoals[0]
        : _freeCells.Length > 0 ? new Vec2(_freeCells[0].I, _freeCells[0].J)
        : throw new InvalidOperationException("The layout has no free cell.");

    /// <summary>Whether (i, j) is inside the grid and free. Cells outside the grid are walls.</summary>
    public bool IsFree(int i, int j) => i >= 0 && j >= 0 && i < Rows && j < Columns && _free[i * Columns + j];

    /// <summary>Whether (i, j) is a wall (cells outside the grid are walls).</summary>
    public bool IsWall(int i, int j) => !IsFree(i, j);

    /// <summary>Whether the cell is free.</summary>
    public bool IsFree(GridCell cell) => IsFree(cell.I, cell.J);

    /// <summary>Centre of cell (i, j) in position coordinates: (i - 0.2, j - 0.2).</summary>
    public static Vec2 CellCenter(int i, int j) => new(i - CellCenterOffset, j - CellCenterOffset);

    /// <summary>Centre of a cell in position coordinates.</summary>
    public static Vec2 CellCenter(GridCell cell) => CellCenter(cell.I, cell.J);

    /// <summary>The cell whose square [i - 0.7, i + 0.3) x [j - 0.7, j + 0.3) contains the position.</summary>
    public static GridCell CellOf(Vec2 position) =>
        new((int)Math.Floor(position.X + 0.5 + CellCenterOffset), (int)Math.Floor(position.Y + 0.5 + CellCenterOffset));

    /// <summary>Lower corner of cell (i, j)'s square in position coordinates.</summary>
    public static Vec2 CellMin(int i, int j) => new(i - 0.5 - CellCenterOffset, j - 0.5 - CellCenterOffset);

    /// <summary>Upper corner of cell (i, j)'s square in position coordinates.</summary>
    public static Vec2 CellMax(int i, int j) => new(i + 0.5 - CellCenterOffset, j + 0.5 - CellCenterOffset);

    /// <summary>Lower corner of the whole grid in position coordinates (-0.7, -0.7).</summary>
    public static Vec2 GridOrigin => CellMin(0, 0);

    /// <summary>Euclidean distance from a point to the square of cell (i, j) (0 inside), and the nearest point of it.</summary>
    public static double DistanceToCell(Vec2 p, int i, int j, out Vec2 nearest)
    {
        double loX = i - 0.5 - CellCenterOffset, hiX = i + 0.5 - CellCenterOffset;
        double loY = j - 0.5 - CellCenterOffset, hiY = j + 0.5 - CellCenterOffset;
        double qx = p.X < loX ? loX : p.X > hiX ? hiX : p.X;
        double qy = p.Y < loY ? loY : p.Y > hiY ? hiY : p.Y;
        nearest = new Vec2(qx, qy);
        double dx = p.X - qx, dy = p.Y - qy;
        return Math.Sqrt(dx * dx + dy * dy);
    }

    /// <summary>
    /// Exact Euclidean distance from a position to the nearest wall square (0 when the position is inside a wall or
    /// outside the grid).
    /// </summary>
    public double DistanceToNearestWall(Vec2 position) => DistanceToNearestWall(position, out _);

    /// <summary>Exact distance to the nearest wall square and the nearest wall point.</summary>
    public double DistanceToNearestWall(Vec2 position, out Vec2 nearestWallPoint)
    {
        var c = CellOf(position);
        double best = double.PositiveInfinity;
        nearestWallPoint = position;
        for (int k = 0; ; k++)
        {
            // A cell at Chebyshev ring k+1 around the containing cell is at least k units away.
            for (int i = c.I - k; i <= c.I + k; i++)
            {
                bool edgeRow = i == c.I - k || i == c.I + k;
                for (int j = c.J - k; j <= c.J + k; j += edgeRow || k == 0 ? 1 : 2 * k)
                {
                    if (!IsWall(i, j)) continue;
                    double d = DistanceToCell(position, i, j, out var q);
                    if (d < best) { best = d; nearestWallPoint = q; }
                }
            }
            if (best <= k) return best;
        }
    }

    /// <summary>
    /// Distance to the nearest wall square among the 3 x 3 cells around the position; exact whenever the true distance
    /// is below 0.5 (otherwise a value >= 0.5 is returned). Fast path used by the simulator and the generator.
    /// </summary>
    internal double NearbyWallDistance(Vec2 p, out Vec2 nearest)
    {
        var c = CellOf(p);
        double best = double.PositiveInfinity;
        nearest = p;
        for (int i = c.I - 1; i <= c.I + 1; i++)
            for (int j = c.J - 1; j <= c.J + 1; j++)
            {
                if (!IsWall(i, j)) continue;
                double d = DistanceToCell(p, i, j, out var q);
                if (d < best) { best = d; nearest = q; }
            }
        return best;
    }

    /// <summary>Whether the position lies in a free cell at distance >= <paramref name="clearance"/> from every wall.</summary>
    public bool IsValidPosition(Vec2 position, double clearance = PointMass.Radius) =>
        IsFree(CellOf(position)) && DistanceToNearestWall(position) >= clearance;

    /// <summary>The layout as text, one row per line (<c>#</c>, <c>O</c>, <c>G</c>).</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < Rows; i++)
        {
            for (int j = 0; j < Columns; j++)
                sb.Append(!IsFree(i, j) ? '#' : GoalCell is { } g && g.I == i && g.J == j ? 'G' : 'O');
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Rows}x{Columns})";

    /// <summary>
    /// Parses a text grid: one row per line (or rows separated by <c>\</c> as in D4RL's strings); <c>#</c> wall,
    /// <c>O</c> free, <c>G</c> default goal (free; at most one). Blank lines and surrounding whitespace are ignored.
    /// </summary>
    /// <param name="text">The grid.</param>
    /// <param name="name">Name of the layout.</param>
    /// <param name="standardGoals">Optional evaluation goals (positions); each must lie in a free cell.</param>
    public static MazeLayout Parse(string text, string name = "custom", IEnumerable<Vec2>? standardGoals = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var rows = text.Replace("\r", "").Split('\n', '\\')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0)
            .ToArray();
        if (rows.Length == 0) throw new FormatException("The maze layout is empty.");
        int columns = rows[0].Length;
        var free = new bool[rows.Length * columns];
        GridCell? goal = null;
        for (int i = 0; i < rows.Length; i++)
        {
            if (rows[i].Length != columns)
                throw new FormatException($"Maze row {i} has {rows[i].Length} cells; row 0 has {columns}. All rows must have the same length.");
            for (int j = 0; j < columns; j++)
            {
                switch (rows[i][j])
                {
                    case '#': break;
                    case 'O': case 'o': free[i * columns + j] = true; break;
                    case 'G': case 'g':
                        if (goal is not null)
                            throw new FormatException($"Maze has more than one goal cell 'G' ({goal} and ({i}, {j})).");
                        free[i * columns + j] = true;
                        goal = new GridCell(i, j);
                        break;
                    default:
                        throw new FormatException($"Unknown maze character '{rows[i][j]}' at ({i}, {j}); use '#' (wall), 'O' (free) or 'G' (goal).");
                }
            }
        }
        if (!free.Any(f => f)) throw new FormatException("The maze layout has no free cell.");
        var layout = new MazeLayout(name, rows.Length, columns, free, goal, standardGoals?.ToArray() ?? []);
        foreach (var g in layout._standardGoals)
            if (!layout.IsValidPosition(g, PointMass.Radius))
                throw new ArgumentException($"Goal {g} is not a reachable position of maze '{name}'.", nameof(standardGoals));
        return layout;
    }

    /// <summary>Loads a layout from a text file (see <see cref="Parse"/>); the name is the file name without extension.</summary>
    public static MazeLayout Load(string path, IEnumerable<Vec2>? standardGoals = null) =>
        Parse(File.ReadAllText(path), Path.GetFileNameWithoutExtension(path), standardGoals);

    /// <summary>Saves the layout as text.</summary>
    public void Save(string path) => File.WriteAllText(path, ToText());

    /// <summary>Text of the D4RL "umaze" layout (5 x 5).</summary>
    public const string UMazeText = "#####\n#GOO#\n###O#\n#OOO#\n#####\n";

    /// <summary>Text of the D4RL "medium" layout (8 x 8).</summary>
    public const string MediumText = "########\n#OO##OO#\n#OO#OOO#\n##OOO###\n#OO#OOO#\n#O#OO#O#\n#OOO#OG#\n########\n";

    /// <summary>Text of the D4RL "large" layout (9 x 12).</summary>
    public const string LargeText =
        "############\n#OOOO#OOOOO#\n#O##O#O#O#O#\n#OOOOOO#OOO#\n#O####O###O#\n#OO#O#OOOOO#\n##O#O#O#O###\n#OO#OOO#OGO#\n############\n";

    /// <summary>Text of the "open" layout as specified for this project: a 5 x 7 box of free cells with walls around (7 x 9 grid); G at (2, 3).</summary>
    public const string OpenText = "#########\n#OOOOOOO#\n#OOGOOOO#\n#OOOOOOO#\n#OOOOOOO#\n#OOOOOOO#\n#########\n";

    /// <summary>Text of D4RL's own "open" layout (5 x 7 grid, 3 x 5 free cells, G at (2, 3)); the 8 open goals also fit it.</summary>
    public const string OpenD4RLText = "#######\n#OOOOO#\n#OOGOO#\n#OOOOO#\n#######\n";

    private static readonly Vec2[] UMazeGoals = [(1, 1), (1, 2), (1, 3), (1.3, 2.7), (2, 3), (3, 1), (3, 2), (3, 3)];
    private static readonly Vec2[] MediumGoals = [(1, 1), (1, 6), (2, 2), (4, 4), (4, 6), (5, 3), (6, 1), (6, 6)];
    private static readonly Vec2[] LargeGoals = [(1, 1), (1, 10), (3, 6), (3, 8), (5, 2), (5, 4), (7, 1), (7, 10)];
    private static readonly Vec2[] OpenGoals = [(1, 1), (1, 5), (1.3, 1.7), (2, 3), (2.3, 4.3), (2.7, 3.1), (3, 1), (3, 5)];

    /// <summary>The umaze layout with its 8 goals.</summary>
    public static MazeLayout UMaze { get; } = Parse(UMazeText, "umaze", UMazeGoals);

    /// <summary>The medium layout with its 8 goals.</summary>
    public static MazeLayout Medium { get; } = Parse(MediumText, "medium", MediumGoals);

    /// <summary>The large layout with its 8 goals.</summary>
    public static MazeLayout Large { get; } = Parse(LargeText, "large", LargeGoals);

    /// <summary>The open layout (5 x 7 free cells) with its 8 goals.</summary>
    public static MazeLayout Open { get; } = Parse(OpenText, "open", OpenGoals);

    /// <summary>D4RL's open layout (3 x 5 free cells) with the same 8 goals.</summary>
    public static MazeLayout OpenD4RL { get; } = Parse(OpenD4RLText, "open-d4rl", OpenGoals);

    /// <summary>Names accepted by <see cref="FromName"/>.</summary>
    public static IReadOnlyList<string> BuiltInNames { get; } = ["umaze", "medium", "large", "open", "open-d4rl"];

    /// <summary>A built-in layout by name (case-insensitive; "u-maze" and "maze2d-umaze" style names accepted).</summary>
    public static MazeLayout FromName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var n = name.Trim().ToLowerInvariant();
        if (n.StartsWith("maze2d-", StringComparison.Ordinal)) n = n["maze2d-".Length..];
        return n switch
        {
            "umaze" or "u-maze" => UMaze,
            "medium" => Medium,
            "large" => Large,
            "open" => Open,
            "open-d4rl" or "opend4rl" => OpenD4RL,
            _ => throw new ArgumentException($"Unknown maze '{name}'. Built-in mazes: {string.Join(", ", BuiltInNames)}.", nameof(name)),
        };
    }
}
