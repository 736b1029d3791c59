namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Per-feature minimum, maximum, mean and population standard deviation, accumulated one sample at a time (Welford's
/// update, in float64), so that a normaliser can be fitted in one pass over data that never sit in memory together.
/// Every value updates its feature in the order the samples arrive, however they are split into calls, so a fit on a
/// whole array and a fit on the same rows streamed agree bit for bit.
/// </summary>
internal sealed class FeatureStatistics
{
    private readonly SampleShape _shape;
    private readonly int _block;
    private readonly double[] _min;
    private readonly double[] _max;
    private readonly double[] _mean;
    private readonly double[] _squares;
    private long _values;

    public FeatureStatistics(SampleShape shape)
    {
        _shape = shape ?? throw new ArgumentNullException(nameof(shape));
        int features = shape.FeatureCount;
        // Trajectories: the feature is the last axis (stride 1). Images: the channel, one block of H*W per channel.
        _block = shape.Kind == SampleShapeKind.Trajectory ? 1 : shape.Length / features;
        _min = new double[features];
        _max = new double[features];
        _mean = new double[features];
        _squares = new double[features];
        Array.Fill(_min, double.PositiveInfinity);
        Array.Fill(_max, double.NegativeInfinity);
    }

    /// <summary>Samples added so far.</summary>
    public long Samples { get; private set; }

    /// <summary>Adds whole samples held row-major in <paramref name="samples"/>.</summary>
    /// <exception cref="ArgumentException">A partial sample, or a non-finite value (the message names the sample, counted
    /// over everything added).</exception>
    public void Add(ReadOnlySpan<float> samples)
    {
        if (samples.Length % _shape.Length != 0)
            throw new ArgumentException($"Expected a whole number of {_shape} samples ({_shape.Length} floats each); got {samples.Length} floats.", nameof(samples));
        for (int i = 0; i < samples.Length; i++)
        {
            if (!float.IsFinite(samples[i]))
                throw new ArgumentException($"Sample {Samples + i / _shape.Length} contains a non-finite value ({samples[i]}) at position {i % _shape.Length}.", nameof(samples));
        }
        int features = _min.Length;
        for (int i = 0; i < samples.Length;)
        {
            // One transition (or one image) per round: every feature has received as many values, so they share the count.
            long seen = _values;
            for (int f = 0; f < features; f++, i += _block)
            {
                double lo = _min[f], hi = _max[f], mean = _mean[f], squares = _squares[f];
                long n = seen;
                for (int k = 0; k < _block; k++)
                {
                    double v = samples[i + k];
                    if (v < lo) lo = v;
                    if (v > hi) hi = v;
                    double delta = v - mean;
                    mean += delta / ++n;
                    squares += delta * (v - mean);
                }
                _min[f] = lo;
                _max[f] = hi;
                _mean[f] = mean;
                _squares[f] = squares;
            }
            _values = seen + _block;
        }
        Samples += samples.Length / _shape.Length;
    }

    /// <summary>The minimum per feature.</summary>
    public float[] Minimums => Checked(_min);

    /// <summary>The maximum per feature.</summary>
    public float[] Maximums => Checked(_max);

    /// <summary>The mean per feature.</summary>
    public float[] Means => Checked(_mean);

    /// <summary>The population standard deviation per feature.</summary>
    public float[] StandardDeviations => Checked(_squares.Select(s => Math.Sqrt(s / _values)).ToArray());

    private float[] Checked(double[] values)
    {
        if (Samples == 0)
            throw new ArgumentException("A normaliser cannot be fitted on no data.");
        return values.Select(v => (float)v).ToArray();
    }
}
