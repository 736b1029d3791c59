namespace MLReward.Environments.Maze2D;

/// <summary>
/// Shortest paths over the free cells of a maze (breadth-first search, 4-connected) towards one goal cell. Equal to the
/// paper's Q-iteration planner (25 iterations, gamma 0.99) with its tie order: from each cell the first move in the
/// order UP (0, -1), DOWN (0, +1), LEFT (-1, 0), RIGHT (+1, 0) that decreases the distance to the goal is taken.
/// </summary>
public sealed class GridPlanner
{
    /// <summary>Moves in tie-breaking order: UP (0, -1), DOWN (0, +1), LEFT (-1, 0), RIGHT (+1, 0), as (di, dj).</summary>
    public static IReadOnlyList<GridCell> Moves { get; } = [new(0, -1), new(0, 1), new(-1, 0), new(1, 0)];

    private readonly int[] _distance; // row-major, -1 = unreachable or wall

    /// <summary>Computes the distance field to <paramref name="goal"/> (a free cell).</summary>
    public GridPlanner(MazeLayout layout, GridCell goal)
    {
        Layout = layout ?? throw new ArgumentNullException(nameof(layout));
        if (!layout.IsFree(goal)) throw new ArgumentException($"Goal cell {goal} is not a free cell of maze '{layout.Name}'.", nameof(goal));
        Goal = goal;
        _distance = new int[layout.Rows * layout.Columns];
        Array.Fill(_distance, -1);
        var queue = new Queue<GridCell>();
        _distance[goal.I * layout.Columns + goal.J] = 0;
        queue.Enqueue(goal);
        while (queue.Count > 0)
        {
            var c = queue.Dequeue();
            int d = _distance[c.I * layout.Columns + c.J];
            foreach (var m in Moves)
            {
                int i = c.I + m.I, j = c.J + m.J;
                if (!layout.IsFree(i, j) || _distance[i * layout.Columns + j] >= 0) continue;
                _distance[i * layout.Columns + j] = d + 1;
                queue.Enqueue(new GridCell(i, j));
            }
        }
    }

    /// <summary>The maze.</summary>
    public MazeLayout Layout { get; }

    /// <summary>The goal cell.</summary>
    public GridCell Goal { get; }

    /// <summary>Number of moves from (i, j) to the goal; -1 for walls and unreachable cells.</summary>
    public int Distance(int i, int j) => Layout.IsFree(i, j) ? _distance[i * Layout.Columns + j] : -1;

    /// <summary>The cell sequence from <paramref name="start"/> to the goal, both included; empty if unreachable.</summary>
    public IReadOnlyList<GridCell> PathFrom(GridCell start)
    {
        int d = Distance(start.I, start.J);
        if (d < 0) return [];
        var path = new List<GridCell>(d + 1) { start };
        var c = start;
        while (d > 0)
        {
            foreach (var m in Moves)
            {
                int i = c.I + m.I, j = c.J + m.J;
                if (Distance(i, j) == d - 1) { c = new GridCell(i, j); break; }
            }
            d--;
            path.Add(c);
        }
        return path;
    }

    /// <summary>Shortest path between two free cells (both included); empty if unreachable.</summary>
    public static IReadOnlyList<GridCell> ShortestPath(MazeLayout layout, GridCell start, GridCell goal) =>
        new GridPlanner(layout, goal).PathFrom(start);
}
