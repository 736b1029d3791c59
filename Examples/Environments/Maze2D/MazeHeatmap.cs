namespace MLReward.Environments.Maze2D;

/// <summary>
/// Spatial bins for reward heat maps: <see cref="BinsPerUnit"/> bins per maze unit (10 by default), aligned with the
/// cells: the grid starts at the maze's lower corner (-0.7, -0.7), so cell (i, j) covers bins
/// [10 i, 10 i + 9] x [10 j, 10 j + 9]. Bin (bx, by) indexes the first (x) and second (y) coordinate.
/// </summary>
public sealed class MazeHeatmapGrid
{
    /// <summary>Creates the bins of a maze.</summary>
    public MazeHeatmapGrid(MazeLayout layout, int binsPerUnit = 10)
    {
        Layout = layout ?? throw new ArgumentNullException(nameof(layout));
        ArgumentOutOfRangeException.ThrowIfLessThan(binsPerUnit, 1);
        BinsPerUnit = binsPerUnit;
        BinsX = layout.Rows * binsPerUnit;
        BinsY = layout.Columns * binsPerUnit;
    }

    /// <summary>The maze.</summary>
    public MazeLayout Layout { get; }

    /// <summary>Bins per maze unit.</summary>
    public int BinsPerUnit { get; }

    /// <summary>Number of bins along x (rows x bins per unit).</summary>
    public int BinsX { get; }

    /// <summary>Number of bins along y (columns x bins per unit).</summary>
    public int BinsY { get; }

    /// <summary>Position of the lower corner of bin (0, 0).</summary>
    public static Vec2 Origin => MazeLayout.GridOrigin;

    /// <summary>Side length of a bin in maze units.</summary>
    public double BinSize => 1.0 / BinsPerUnit;

    /// <summary>The bin containing a position, or false when it lies outside the maze grid.</summary>
    public bool TryGetBin(Vec2 position, out int bx, out int by)
    {
        bx = (int)Math.Floor((position.X - Origin.X) * BinsPerUnit);
        by = (int)Math.Floor((position.Y - Origin.Y) * BinsPerUnit);
        return bx >= 0 && by >= 0 && bx < BinsX && by < BinsY;
    }

    /// <summary>The bin containing a position, clamped to the grid.</summary>
    public (int Bx, int By) GetBin(Vec2 position)
    {
        TryGetBin(position, out int bx, out int by);
        return (Math.Clamp(bx, 0, BinsX - 1), Math.Clamp(by, 0, BinsY - 1));
    }

    /// <summary>Centre of bin (bx, by) in position coordinates.</summary>
    public Vec2 BinCenter(int bx, int by) => new(Origin.X + (bx + 0.5) / BinsPerUnit, Origin.Y + (by + 0.5) / BinsPerUnit);

    /// <summary>The maze cell containing bin (bx, by).</summary>
    public GridCell CellOfBin(int bx, int by) => new(Math.DivRem(bx, BinsPerUnit).Quotient, Math.DivRem(by, BinsPerUnit).Quotient);

    /// <summary>Wall mask for plotting: [bx, by] is true where the bin lies in a wall cell.</summary>
    public bool[,] WallMask()
    {
        var mask = new bool[BinsX, BinsY];
        for (int bx = 0; bx < BinsX; bx++)
            for (int by = 0; by < BinsY; by++)
                mask[bx, by] = Layout.IsWall(bx / BinsPerUnit, by / BinsPerUnit);
        return mask;
    }

    /// <summary>
    /// Average of the sample values per bin of the sample positions; bins with fewer than
    /// <paramref name="minCount"/> samples (and wall bins) are NaN. Positions outside the grid are ignored.
    /// </summary>
    public double[,] Average(IEnumerable<(Vec2 Position, double Value)> samples, int minCount = 5)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var sum = new double[BinsX, BinsY];
        var count = new int[BinsX, BinsY];
        foreach (var (p, v) in samples)
        {
            if (!TryGetBin(p, out int bx, out int by) || double.IsNaN(v)) continue;
            sum[bx, by] += v;
            count[bx, by]++;
        }
        var avg = new double[BinsX, BinsY];
        for (int bx = 0; bx < BinsX; bx++)
            for (int by = 0; by < BinsY; by++)
                avg[bx, by] = count[bx, by] >= Math.Max(1, minCount) && !Layout.IsWall(bx / BinsPerUnit, by / BinsPerUnit)
                    ? sum[bx, by] / count[bx, by] : double.NaN;
        return avg;
    }

    /// <summary>
    /// Centre of the bin with the largest finite value; null if none. Ties (a winsorised map clamps its top states to one
    /// value, so many bins can share the maximum) go to the tied bin with the largest <paramref name="tieBreak"/> value,
    /// then to the first in row-major order.
    /// </summary>
    public Vec2? PeakPosition(double[,] map, double[,]? tieBreak = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (map.GetLength(0) != BinsX || map.GetLength(1) != BinsY) throw new ArgumentException("Map size does not match the grid.", nameof(map));
        if (tieBreak is not null && (tieBreak.GetLength(0) != BinsX || tieBreak.GetLength(1) != BinsY))
            throw new ArgumentException("Tie-break map size does not match the grid.", nameof(tieBreak));
        double best = double.NegativeInfinity, bestTie = double.NegativeInfinity;
        Vec2? peak = null;
        for (int bx = 0; bx < BinsX; bx++)
            for (int by = 0; by < BinsY; by++)
            {
                double value = map[bx, by];
                if (!double.IsFinite(value) || value < best) continue;
                double tie = tieBreak is null || !double.IsFinite(tieBreak[bx, by]) ? double.NegativeInfinity : tieBreak[bx, by];
                if (value > best || tie > bestTie)
                {
                    best = value;
                    bestTie = tie;
                    peak = BinCenter(bx, by);
                }
            }
        return peak;
    }
}

/// <summary>Evaluation metrics of the Maze2D experiment.</summary>
public static class MazeMetrics
{
    /// <summary>Distance for a "hit": the predicted goal lies within 1.0 maze unit of the true goal.</summary>
    public const double HitDistance = 1.0;

    /// <summary>Goal error: Euclidean distance between two points in maze units.</summary>
    public static double GoalError(Vec2 predicted, Vec2 goal) => predicted.DistanceTo(goal);

    /// <summary>Whether a goal error counts as a hit (inclusive).</summary>
    public static bool IsHit(double goalError, double hitDistance = HitDistance) => goalError <= hitDistance;
}
