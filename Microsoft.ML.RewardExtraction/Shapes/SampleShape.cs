namespace Microsoft.ML.RewardExtraction;

/// <summary>What one sample is: a trajectory (horizon x transition dimension, row-major by time) or an image
/// (channels x height x width). Every model and reward knows its shape, so a mismatch is caught before torch sees it.</summary>
public sealed class SampleShape : IEquatable<SampleShape>
{
    private readonly int[] _dimensions;

    private SampleShape(SampleShapeKind kind, params int[] dimensions)
    {
        foreach (var d in dimensions)
        {
            if (d <= 0)
                throw new ArgumentOutOfRangeException(nameof(dimensions), $"Every dimension of a {kind} shape must be positive; got ({string.Join(", ", dimensions)}).");
        }
        Kind = kind;
        _dimensions = dimensions;
        Length = checked(dimensions.Aggregate(1, (a, b) => a * b));
    }

    /// <summary>A trajectory of <paramref name="horizon"/> steps, each a vector of <paramref name="transitionDimension"/> floats.</summary>
    public static SampleShape Trajectory(int horizon, int transitionDimension) => new(SampleShapeKind.Trajectory, horizon, transitionDimension);

    /// <summary>An image of <paramref name="channels"/> x <paramref name="height"/> x <paramref name="width"/> floats.</summary>
    public static SampleShape Image(int channels, int height, int width) => new(SampleShapeKind.Image, channels, height, width);

    /// <summary>Trajectory or image.</summary>
    public SampleShapeKind Kind { get; }

    /// <summary>The dimensions of one sample: (horizon, transition) or (channels, height, width).</summary>
    public IReadOnlyList<int> Dimensions => _dimensions;

    /// <summary>Number of floats in one sample: the size of the vector column that holds it.</summary>
    public int Length { get; }

    /// <summary>Trajectory horizon (number of time steps). Throws for images.</summary>
    public int Horizon => Kind == SampleShapeKind.Trajectory ? _dimensions[0] : throw new InvalidOperationException("An image shape has no horizon.");

    /// <summary>Trajectory transition dimension (floats per time step). Throws for images.</summary>
    public int TransitionDimension => Kind == SampleShapeKind.Trajectory ? _dimensions[1] : throw new InvalidOperationException("An image shape has no transition dimension.");

    /// <summary>The tensor shape of a batch of <paramref name="batchSize"/> samples.</summary>
    public long[] BatchShape(long batchSize)
    {
        var shape = new long[_dimensions.Length + 1];
        shape[0] = batchSize;
        for (int i = 0; i < _dimensions.Length; i++)
            shape[i + 1] = _dimensions[i];
        return shape;
    }

    /// <summary>The per-feature size used by normalisers: the transition dimension for trajectories
    /// (normalised per dimension), the channel count for images (normalised per channel).</summary>
    public int FeatureCount => Kind == SampleShapeKind.Trajectory ? _dimensions[1] : _dimensions[0];

    /// <summary>Throws a clear exception if a batch tensor does not have this shape.</summary>
    internal void CheckBatch(TorchSharp.torch.Tensor batch, string what)
    {
        if (batch.dim() != _dimensions.Length + 1)
            throw new ArgumentException($"{what}: expected a batch of shape [B, {string.Join(", ", _dimensions)}], got [{string.Join(", ", batch.shape)}].");
        for (int i = 0; i < _dimensions.Length; i++)
        {
            if (batch.shape[i + 1] != _dimensions[i])
                throw new ArgumentException($"{what}: expected a batch of shape [B, {string.Join(", ", _dimensions)}], got [{string.Join(", ", batch.shape)}].");
        }
    }

    /// <summary>Writes the shape (kind, rank, dimensions).</summary>
    public void Save(BinaryWriter writer)
    {
        writer.Write((int)Kind);
        writer.Write(_dimensions.Length);
        foreach (var d in _dimensions)
            writer.Write(d);
    }

    /// <summary>Reads a shape written by <see cref="Save"/>.</summary>
    public static SampleShape Load(BinaryReader reader)
    {
        var kind = (SampleShapeKind)reader.ReadInt32();
        int rank = reader.ReadInt32();
        int expectedRank = kind switch
        {
            SampleShapeKind.Trajectory => 2,
            SampleShapeKind.Image => 3,
            _ => throw new InvalidDataException($"Unknown sample shape kind {(int)kind} in model data."),
        };
        if (rank != expectedRank)
            throw new InvalidDataException($"A {kind} shape has {expectedRank} dimensions; the model data says {rank}.");
        var dims = new int[rank];
        for (int i = 0; i < rank; i++)
            dims[i] = reader.ReadInt32();
        return new SampleShape(kind, dims);
    }

    /// <inheritdoc/>
    public bool Equals(SampleShape? other) => other is not null && other.Kind == Kind && other._dimensions.AsSpan().SequenceEqual(_dimensions);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as SampleShape);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Kind, Length, _dimensions[0]);

    /// <summary>"Trajectory(H=16, D=6)" or "Image(C=1, H=28, W=28)".</summary>
    public override string ToString() => Kind == SampleShapeKind.Trajectory
        ? $"Trajectory(H={_dimensions[0]}, D={_dimensions[1]})"
        : $"Image(C={_dimensions[0]}, H={_dimensions[1]}, W={_dimensions[2]})";
}

/// <summary>The two kinds of samples the method handles.</summary>
public enum SampleShapeKind
{
    /// <summary>Horizon x transition dimension.</summary>
    Trajectory = 0,
    /// <summary>Channels x height x width.</summary>
    Image = 1,
}
