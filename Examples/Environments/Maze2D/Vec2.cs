using System.Globalization;

namespace MLReward.Environments.Maze2D;

/// <summary>A point or vector in the maze's position coordinates (double precision).</summary>
/// <param name="X">First coordinate (the layout's row direction).</param>
/// <param name="Y">Second coordinate (the layout's column direction).</param>
public readonly record struct Vec2(double X, double Y)
{
    /// <summary>The zero vector.</summary>
    public static Vec2 Zero => default;

    /// <summary>Euclidean length.</summary>
    public double Length => Math.Sqrt(X * X + Y * Y);

    /// <summary>Euclidean distance to <paramref name="other"/>.</summary>
    public double DistanceTo(Vec2 other) => (this - other).Length;

    /// <summary>Dot product.</summary>
    public double Dot(Vec2 other) => X * other.X + Y * other.Y;

    /// <summary>Component-wise sum.</summary>
    public static Vec2 operator +(Vec2 a, Vec2 b) => new(a.X + b.X, a.Y + b.Y);

    /// <summary>Component-wise difference.</summary>
    public static Vec2 operator -(Vec2 a, Vec2 b) => new(a.X - b.X, a.Y - b.Y);

    /// <summary>Negation.</summary>
    public static Vec2 operator -(Vec2 a) => new(-a.X, -a.Y);

    /// <summary>Scaling.</summary>
    public static Vec2 operator *(double s, Vec2 a) => new(s * a.X, s * a.Y);

    /// <summary>Scaling.</summary>
    public static Vec2 operator *(Vec2 a, double s) => new(s * a.X, s * a.Y);

    /// <summary>Converts a tuple.</summary>
    public static implicit operator Vec2((double X, double Y) t) => new(t.X, t.Y);

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"({X:R}, {Y:R})");
}
