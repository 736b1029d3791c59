using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

public class TrainingSamplesTests
{
    public TrainingSamplesTests() => DiffusionModelTests.UseOneThread();

    private static readonly SampleShape Traj = SampleShape.Trajectory(4, 3);

    /// <summary>Row <paramref name="row"/> of a data set that exists only as a formula: every value says which row it is
    /// (entry 0 is the row number), the others vary smoothly and far from 0, so a running mean meets cancellation.</summary>
    private static void Synthesise(long row, float[] values)
    {
        values[0] = row;
        for (int i = 1; i < values.Length; i++)
            values[i] = (float)(1e4 + Math.Sin(row * 0.37 + i) * (i + 1));
    }

    /// <summary>A lazily generated stream of <paramref name="count"/> rows that counts how many were produced and how many
    /// passes were started; nothing is ever materialised.</summary>
    private sealed class LazyRows(long count, int length) : IEnumerable<ReadOnlyMemory<float>>
    {
        public long Produced { get; private set; }
        public int Passes { get; private set; }

        public IEnumerator<ReadOnlyMemory<float>> GetEnumerator()
        {
            Passes++;
            var values = new float[length];
            for (long row = 0; row < count; row++)
            {
                Synthesise(row, values);
                Produced++;
                yield return values;
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static float[] Materialise(long count, int length)
    {
        var all = new float[count * length];
        var row = new float[length];
        for (long r = 0; r < count; r++)
        {
            Synthesise(r, row);
            row.CopyTo(all, r * length);
        }
        return all;
    }

    [Theory]
    [InlineData(NormalizerKind.Limits, false)]
    [InlineData(NormalizerKind.Gaussian, false)]
    [InlineData(NormalizerKind.Limits, true)]
    [InlineData(NormalizerKind.Gaussian, true)]
    public void NormalizerFittedInOneStreamingPass_EqualsTheFitOnTheWholeArray_BitForBit(NormalizerKind kind, bool image)
    {
        var shape = image ? SampleShape.Image(2, 3, 3) : Traj;
        const int rows = 5000;
        var rowsStream = new LazyRows(rows, shape.Length);
        var streamed = Normalizer.Fit(kind, shape, rowsStream);
        var inMemory = Normalizer.Fit(kind, shape, Materialise(rows, shape.Length));
        Assert.Equal(1, rowsStream.Passes);
        Assert.True(Normalizer.SameMapping(streamed, inMemory));

        // And both are the textbook statistics (two passes in float64), to float precision.
        var data = Materialise(rows, shape.Length);
        int block = image ? 9 : 1, features = shape.FeatureCount;
        for (int f = 0; f < features; f++)
        {
            var values = Enumerable.Range(0, data.Length).Where(i => (i / block) % features == f).Select(i => (double)data[i]).ToArray();
            double mean = values.Average(), std = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Length);
            if (streamed is GaussianNormalizer gaussian)
            {
                Assert.Equal((float)mean, gaussian.Means[f]);
                Assert.Equal((float)std, gaussian.StandardDeviations[f], (float)(std * 1e-6));
            }
            else
            {
                var limits = (LimitsNormalizer)streamed;
                Assert.Equal((float)values.Min(), limits.Minimums[f]);
                Assert.Equal((float)values.Max(), limits.Maximums[f]);
            }
        }
    }

    [Fact]
    public void StreamingNormalizerFit_NamesTheBadSample_CountedOverTheWholeStream()
    {
        IEnumerable<ReadOnlyMemory<float>> Rows()
        {
            for (int r = 0; r < 10; r++)
            {
                var row = new float[Traj.Length];
                if (r == 7)
                    row[5] = float.NaN;
                yield return row;
            }
        }
        var e = Assert.Throws<ArgumentException>(() => Normalizer.Fit(NormalizerKind.Limits, Traj, Rows()));
        Assert.Contains("Sample 7 contains a non-finite value (NaN) at position 5", e.Message);
        Assert.Throws<ArgumentException>(() => Normalizer.Fit(NormalizerKind.Gaussian, Traj, Array.Empty<ReadOnlyMemory<float>>()));
    }

    [Theory]
    [InlineData(300, 300)]
    [InlineData(300, 301)]
    [InlineData(300, TrainingSamples.DefaultBufferSize)]
    public void ABufferHoldingEveryRow_DrawsTheBatchesOfTheTensor(int rows, int bufferSize)
    {
        using var scope = NewDisposeScope();
        var source = new LazyRows(rows, Traj.Length);
        using var streamed = TrainingSamples.Load(Traj, source, bufferSize);
        var all = tensor(Materialise(rows, Traj.Length), Traj.BatchShape(rows));
        using var inMemory = TrainingSamples.InMemory(Traj, all);
        Assert.True(streamed.HoldsAll);
        Assert.Equal(rows, streamed.ResidentRows);
        Assert.Equal(rows, streamed.AllocatedRows);
        Assert.Equal(1, source.Passes);
        Assert.True(Same(streamed.Resident, all));

        using var a = TorchRandom.Generator(7);
        using var b = TorchRandom.Generator(7);
        for (int step = 0; step < 20; step++)
            Assert.True(Same(streamed.Draw(32, a), inMemory.Draw(32, b)));
        Assert.Equal(rows, source.Produced);
    }

    [Fact]
    public void AStreamLargerThanTheBuffer_HoldsNoMoreThanTheBuffer_AndUsesEveryRowAboutOncePerPass()
    {
        using var scope = NewDisposeScope();
        const int rows = 2000, buffer = 256, batch = 64;
        var source = new LazyRows(rows, Traj.Length);
        using var samples = TrainingSamples.Load(Traj, source, buffer);
        Assert.False(samples.HoldsAll);
        Assert.Equal(buffer, samples.ResidentRows);
        var uses = new int[rows];
        using var generator = TorchRandom.Generator(3);
        int steps = 3 * rows / batch;
        for (int step = 0; step < steps; step++)
        {
            // Entry 0 of a row is its row number.
            var drawn = samples.Draw(batch, generator);
            foreach (float row in drawn.select(2, 0).select(1, 0).contiguous().data<float>())
                uses[(int)row]++;
            Assert.True(samples.AllocatedRows <= buffer);
            Assert.Equal(buffer, samples.ResidentRows);
        }
        // Three passes' worth of draws: each row drawn about three times (a row stays in the buffer until it is drawn).
        Assert.InRange(samples.Restarts, 2, 3);
        Assert.All(uses, u => Assert.InRange(u, 1, 9));
        Assert.InRange(uses.Average(), 2.9, 3.1);
        // The stream was read a row ahead of the buffer, never more.
        Assert.InRange(source.Produced - samples.RowsRead, 0, 1);

        // The same seed draws the same batches again.
        using var again = TrainingSamples.Load(Traj, new LazyRows(rows, Traj.Length), buffer);
        using var g1 = TorchRandom.Generator(11);
        using var g2 = TorchRandom.Generator(11);
        using var first = TrainingSamples.Load(Traj, new LazyRows(rows, Traj.Length), buffer);
        for (int step = 0; step < 50; step++)
            Assert.True(Same(first.Draw(batch, g1), again.Draw(batch, g2)));
    }

    [Fact]
    public void AMillionRowStream_TrainsADiffusionModel_ThroughABufferOf4096Rows()
    {
        var source = new LazyRows(1_000_000, Traj.Length);
        using var samples = TrainingSamples.Load(Traj, source, 4096);
        samples.Normalizer = Normalizer.Fit(NormalizerKind.Limits, Traj, source);
        using var model = DiffusionModel.Create(new DiffusionModelOptions
        {
            Shape = Traj,
            DiffusionSteps = 5,
            Denoiser = new DenoiserOptions { Kind = DenoiserKind.Mlp, HiddenWidth = 16, HiddenLayers = 1, TimeEmbeddingDimension = 8 },
            Seed = 1,
        }, samples.Normalizer);
        var result = new DiffusionTrainer(new DiffusionTrainingOptions { TrainingSteps = 5, BatchSize = 32, Seed = 1 }).Train(model, samples);
        Assert.Equal(5, result.CompletedSteps);
        Assert.True(double.IsFinite(result.AverageLoss));
        Assert.Equal(4096, samples.AllocatedRows);
        Assert.Equal(2, source.Passes);
        // The normaliser's pass read every row; the buffer read only its fill, one row ahead and the replacements.
        Assert.InRange(source.Produced - 1_000_000, 4096, 4096 + 1 + 5 * 32);
    }

    [Fact]
    public void InvalidArguments_AreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TrainingSamples.Load(Traj, new LazyRows(5, Traj.Length), 0));
        Assert.Throws<ArgumentException>(() => TrainingSamples.Load(Traj, new LazyRows(0, Traj.Length)));
        var e = Assert.Throws<ArgumentException>(() => TrainingSamples.Load(Traj, new LazyRows(5, Traj.Length + 1)));
        Assert.Contains("holds 13 values", e.Message);
        using var wrong = zeros(4, 2, 3);
        Assert.ThrowsAny<ArgumentException>(() => TrainingSamples.InMemory(Traj, wrong));
    }
}
