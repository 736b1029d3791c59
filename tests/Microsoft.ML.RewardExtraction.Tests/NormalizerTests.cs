using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

public class NormalizerTests
{
    public NormalizerTests() => DiffusionModelTests.UseOneThread();

    private static readonly SampleShape Traj = SampleShape.Trajectory(3, 4);

    /// <summary>50 trajectories of 3 x 4; feature 2 is constant 7, the others span different ranges.</summary>
    private static float[] TrajectoryData(int n = 50, int seed = 1)
    {
        var random = new Random(seed);
        var data = new float[n * Traj.Length];
        for (int i = 0; i < data.Length; i++)
        {
            int f = i % 4;
            data[i] = f switch
            {
                0 => (float)(random.NextDouble() * 10 - 5),
                1 => (float)(random.NextDouble() * 0.01 + 100),
                2 => 7f,
                _ => (float)(random.NextDouble() * 2e3 - 1e3),
            };
        }
        return data;
    }

    [Fact]
    public void LimitsMapMinAndMaxToPlusMinusOne()
    {
        var data = TrajectoryData();
        var norm = LimitsNormalizer.Fit(Traj, data);
        var normalized = new float[data.Length];
        norm.Normalize(data, normalized);
        for (int f = 0; f < 4; f++)
        {
            var values = normalized.Where((_, i) => i % 4 == f).ToArray();
            if (f == 2)
            {
                Assert.All(values, v => Assert.Equal(0f, v));   // constant feature -> 0, never NaN
                continue;
            }
            Assert.Equal(-1f, values.Min());                    // exact: (min - min) * a - 1
            Assert.True(Math.Abs(values.Max() - 1f) <= 2.5e-7f, $"feature {f}: max maps to {values.Max()}");
            Assert.All(values, v => Assert.InRange(v, -1f, 1f + 2.5e-7f));
        }
        Assert.Equal(data.Where((_, i) => i % 4 == 3).Min(), norm.Minimums[3]);
        Assert.Equal(data.Where((_, i) => i % 4 == 3).Max(), norm.Maximums[3]);
    }

    [Theory]
    [InlineData(NormalizerKind.Limits)]
    [InlineData(NormalizerKind.Gaussian)]
    public void RoundTripIsExactToFloatPrecision(NormalizerKind kind)
    {
        var data = TrajectoryData();
        var norm = Normalizer.Fit(kind, Traj, data);
        var normalized = new float[data.Length];
        var back = new float[data.Length];
        norm.Normalize(data, normalized);
        norm.Denormalize(normalized, back);
        // Two float32 affine maps: the error is a few ulps of the feature's scale, |x| + (max - min) of that feature.
        // Measured: 9.9e-8 (limits) and 2.4e-8 (Gaussian) relative to that scale; the test allows 1e-6.
        var range = Enumerable.Range(0, 4).Select(f =>
        {
            var v = data.Where((_, i) => i % 4 == f).ToArray();
            return (double)v.Max() - v.Min();
        }).ToArray();
        double worst = 0;
        for (int i = 0; i < data.Length; i++)
        {
            double scale = Math.Abs(data[i]) + range[i % 4];
            worst = Math.Max(worst, Math.Abs(back[i] - data[i]) / scale);
        }
        Assert.True(worst <= 1e-6, $"relative round-trip error {worst}");
        Assert.Equal(7f, back[2]);   // the constant feature comes back exactly
    }

    [Theory]
    [InlineData(NormalizerKind.Limits)]
    [InlineData(NormalizerKind.Gaussian)]
    public void TensorAndSpanPathsAgreeBitForBit(NormalizerKind kind)
    {
        using var scope = NewDisposeScope();
        var data = TrajectoryData();
        var norm = Normalizer.Fit(kind, Traj, tensor(data).view(50, 3, 4));
        var span = new float[data.Length];
        norm.Normalize(data, span);
        var viaTensor = norm.Normalize(tensor(data).view(50, 3, 4));
        Assert.Equal(span, viaTensor.data<float>().ToArray());
        var backSpan = new float[data.Length];
        norm.Denormalize(span, backSpan);
        Assert.Equal(backSpan, norm.Denormalize(viaTensor).data<float>().ToArray());
    }

    [Fact]
    public void GaussianStandardisesEachFeature()
    {
        var data = TrajectoryData(200);
        var norm = GaussianNormalizer.Fit(Traj, data);
        var normalized = new float[data.Length];
        norm.Normalize(data, normalized);
        // Feature 1 is 100 + U(0, 0.01): float32 resolves 100 only to 7.6e-6, which is 2.6e-3 of its std, so its
        // normalised mean can only be that close to 0. The other features reach 1e-5.
        foreach (var (f, tolerance) in new[] { (0, 1e-5), (1, 5e-3), (3, 1e-5) })
        {
            var values = normalized.Where((_, i) => i % 4 == f).Select(v => (double)v).ToArray();
            double mean = values.Average();
            double std = Math.Sqrt(values.Select(v => (v - mean) * (v - mean)).Average());
            Assert.True(Math.Abs(mean) < tolerance, $"feature {f}: mean {mean}");
            Assert.True(Math.Abs(std - 1) < tolerance, $"feature {f}: std {std}");
        }
        Assert.Equal(0f, norm.StandardDeviations[2]);
        Assert.All(normalized.Where((_, i) => i % 4 == 2), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void ImagesAreNormalisedPerChannel()
    {
        var shape = SampleShape.Image(2, 2, 2);
        // Two images; channel 0 holds 0..3 and 10..13, channel 1 holds -1 and 1 everywhere.
        var data = new float[] { 0, 1, 2, 3, -1, -1, -1, -1, 10, 11, 12, 13, 1, 1, 1, 1 };
        var norm = LimitsNormalizer.Fit(shape, data);
        Assert.Equal(new[] { 0f, -1f }, norm.Minimums);
        Assert.Equal(new[] { 13f, 1f }, norm.Maximums);
        var gaussian = GaussianNormalizer.Fit(shape, data);
        Assert.Equal(6.5f, gaussian.Means[0], 5);
        Assert.Equal(0f, gaussian.Means[1], 6);
        Assert.Equal(1f, gaussian.StandardDeviations[1], 6);
    }

    [Theory]
    [InlineData(NormalizerKind.Identity)]
    [InlineData(NormalizerKind.Limits)]
    [InlineData(NormalizerKind.Gaussian)]
    public void SaveAndLoadDispatchOnTheKindTag(NormalizerKind kind)
    {
        var data = TrajectoryData();
        var norm = Normalizer.Fit(kind, Traj, data);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, true))
            norm.Save(writer);
        stream.Position = 0;
        using var reader = new BinaryReader(stream);
        var loaded = Normalizer.Load(reader);
        Assert.Equal(norm.GetType(), loaded.GetType());
        Assert.Equal(Traj, loaded.Shape);
        var a = new float[data.Length];
        var b = new float[data.Length];
        norm.Normalize(data, a);
        loaded.Normalize(data, b);
        Assert.Equal(a, b);
        Assert.Equal(stream.Length, stream.Position);
    }

    [Fact]
    public void LoadRejectsUnknownKindsAndTruncation()
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, true))
        {
            writer.Write(42);
            Traj.Save(writer);
        }
        stream.Position = 0;
        var e = Assert.Throws<InvalidDataException>(() => Normalizer.Load(new BinaryReader(stream)));
        Assert.Contains("42", e.Message);

        var norm = LimitsNormalizer.Fit(Traj, TrajectoryData());
        using var full = new MemoryStream();
        using (var writer = new BinaryWriter(full, System.Text.Encoding.UTF8, true))
            norm.Save(writer);
        var cut = new MemoryStream(full.ToArray()[..^3]);
        Assert.Throws<InvalidDataException>(() => Normalizer.Load(new BinaryReader(cut)));
    }

    [Fact]
    public void FitRejectsNonFiniteDataNamingTheSample()
    {
        var data = TrajectoryData(10);
        data[3 * Traj.Length + 5] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => LimitsNormalizer.Fit(Traj, data));
        Assert.Contains("Sample 3", e.Message);
        data[3 * Traj.Length + 5] = float.PositiveInfinity;
        e = Assert.Throws<ArgumentException>(() => GaussianNormalizer.Fit(Traj, data));
        Assert.Contains("Sample 3", e.Message);
        Assert.Throws<ArgumentException>(() => LimitsNormalizer.Fit(Traj, new float[Traj.Length + 1]));
        Assert.Throws<ArgumentException>(() => LimitsNormalizer.Fit(Traj, ReadOnlySpan<float>.Empty));
    }

    [Fact]
    public void WrongShapesAreRejected()
    {
        using var scope = NewDisposeScope();
        var norm = LimitsNormalizer.Fit(Traj, TrajectoryData());
        Assert.Throws<ArgumentException>(() => norm.Normalize(zeros(2, 4, 3)));
        Assert.Throws<ArgumentException>(() => norm.Normalize(new float[13], new float[13]));
        Assert.Throws<ArgumentException>(() => LimitsNormalizer.Fit(Traj, zeros(5, 3, 5)));
    }
}
