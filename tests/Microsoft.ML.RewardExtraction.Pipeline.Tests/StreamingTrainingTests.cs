using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>
/// An IDataView of <paramref name="rowCount"/> trajectories that exist only as a formula of the row number: every cursor
/// synthesises its rows as it moves, nothing is held. Counts the rows its cursors delivered. <paramref name="invalidRow"/>,
/// when set, holds a NaN.
/// </summary>
public sealed class LazyTrajectoryView(long rowCount, long invalidRow = -1) : IDataView
{
    private long _rowsRead;

    public long RowsRead => Interlocked.Read(ref _rowsRead);
    public bool CanShuffle => false;
    public DataViewSchema Schema { get; } = MakeSchema();
    public long? GetRowCount() => _rowCount;

    private static DataViewSchema MakeSchema()
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumn("Trajectory", new VectorDataViewType(NumberDataViewType.Single, Synthetic.Length));
        return builder.ToSchema();
    }

    /// <summary>Row <paramref name="row"/>: a smooth 2-d path whose start and heading depend on the row.</summary>
    public static void Synthesise(long row, Span<float> values)
    {
        double x = Math.Sin(row * 0.61), y = Math.Cos(row * 0.29), heading = row * 0.017;
        for (int t = 0; t < Synthetic.Horizon; t++)
        {
            values[2 * t] = (float)(x + 0.1 * t * Math.Cos(heading));
            values[2 * t + 1] = (float)(y + 0.1 * t * Math.Sin(heading));
        }
    }

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor(LazyTrajectoryView owner) : DataViewRowCursor
    {
        private long _position = -1;

        public override DataViewSchema Schema => owner.Schema;
        public override long Position => _position;
        public override long Batch => 0;
        public override bool IsColumnActive(DataViewSchema.Column column) => true;
        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> value) =>
            {
                var editor = VBufferEditor.Create(ref value, Synthetic.Length);
                Synthesise(_position, editor.Values);
                if (_position == owner._invalidRow)
                    editor.Values[5] = float.NaN;
                value = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)getter;
        }

        public override bool MoveNext()
        {
            if (_position + 1 >= owner._rowCount)
                return false;
            _position++;
            Interlocked.Increment(ref owner._rowsRead);
            return true;
        }
    }

    private readonly long _rowCount = rowCount;
    private readonly long _invalidRow = invalidRow;
}

public class StreamingTrainingTests
{
    private const int Rows = 300;

    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public StreamingTrainingTests(Xunit.Abstractions.ITestOutputHelper output)
    {
        Synthetic.UseOneThread();
        _output = output;
    }

    private static bool SameWeights(nn.Module a, nn.Module b)
    {
        var x = a.parameters().ToArray();
        var y = b.parameters().ToArray();
        return x.Length == y.Length && x.Zip(y).All(p => p.First.shape.SequenceEqual(p.Second.shape) && p.First.eq(p.Second).all().item<bool>());
    }

    private static Tensor RawTensor(IEnumerable<TrajectoryRow> rows)
    {
        var values = rows.SelectMany(r => r.Trajectory).ToArray();
        return tensor(values, Synthetic.Shape.BatchShape(values.Length / Synthetic.Length));
    }

    /// <summary>The core in-memory path the estimator used to take: all rows in one tensor, the normaliser fitted on it, the
    /// trainer drawing from the normalised tensor.</summary>
    private static DiffusionModel InMemoryDiffusion(DiffusionModelTrainer.Options o, int seed, Tensor raw) =>
        new DiffusionTrainer(o.ToTrainingOptions(seed)).Fit(new DiffusionModelOptions
        {
            Shape = o.Shape,
            DiffusionSteps = o.DiffusionSteps,
            Schedule = o.Schedule,
            Target = o.Prediction,
            ClipDenoised = o.ClipDenoised,
            Denoiser = new DenoiserOptions
            {
                Kind = o.Network,
                Dimension = o.NetworkDimension,
                Multipliers = o.DimensionMultipliers,
                HiddenWidth = o.HiddenWidth,
                HiddenLayers = o.HiddenLayers,
                TimeEmbeddingDimension = o.TimeEmbeddingDimension,
            },
            Seed = seed,
        }, raw, o.Normalization);

    [Theory]
    [InlineData(NormalizerKind.Limits)]
    [InlineData(NormalizerKind.Gaussian)]
    public void StreamingFit_WithTheBufferHoldingEveryRow_GivesTheInMemoryWeights_AndAStreamedOneTheSameNormaliser(NormalizerKind kind)
    {
        var ml = new MLContext(seed: 1);
        var rx = ml.RewardExtraction();
        var rows = Synthetic.Rows(Rows, expert: false, seed: 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        using var scope = NewDisposeScope();
        var raw = RawTensor(rows);
        var options = Synthetic.DiffusionOptions(seed: 1, steps: 20);
        options.Normalization = kind;
        using var reference = InMemoryDiffusion(options, 1, raw);

        foreach (int buffer in new[] { Rows, Rows + 1, TrainingSamples.DefaultBufferSize })
        {
            options.ShuffleBufferSize = buffer;
            using var fitted = rx.DiffusionModel(options).Fit(data);
            Assert.True(Normalizer.SameMapping(reference.Normalizer, fitted.Model.Normalizer), $"normaliser, buffer {buffer}");
            Assert.True(SameWeights(reference.Denoiser, fitted.Model.Denoiser), $"weights, buffer {buffer}");
        }

        // A buffer smaller than the data: the normaliser comes from one streaming pass and still equals the in-memory one;
        // the batches differ (they come from a buffer), so the weights do.
        options.ShuffleBufferSize = Rows / 4;
        using var streamed = rx.DiffusionModel(options).Fit(data);
        Assert.True(Normalizer.SameMapping(reference.Normalizer, streamed.Model.Normalizer));
        Assert.False(SameWeights(reference.Denoiser, streamed.Model.Denoiser));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    public void StreamingRewardFit_WithTheBufferHoldingEveryRow_GivesTheInMemoryWeights(int targetPool)
    {
        var ml = new MLContext(seed: 1);
        var rx = ml.RewardExtraction();
        using var baseModel = rx.DiffusionModel(Synthetic.DiffusionOptions(seed: 1, steps: 10)).Fit(ml.Data.LoadFromEnumerable(Synthetic.Rows(Rows, expert: false, seed: 1)));
        var expertOptions = Synthetic.DiffusionOptions(seed: 2, steps: 10);
        expertOptions.NormalizeLike = baseModel;
        using var expert = rx.DiffusionModel(expertOptions).Fit(ml.Data.LoadFromEnumerable(Synthetic.Rows(Rows, expert: true, seed: 2)));
        var rows = Synthetic.Mixed(Rows, seed: 3);
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = Synthetic.RewardOptions(seed: 1, steps: 20);
        options.TargetCachePoolSize = targetPool;
        options.TargetCacheRefreshEvery = 7;

        using var scope = NewDisposeScope();
        var network = TorchRandom.Initialize(1, () => new StateReward(Synthetic.Shape, new StateRewardOptions { HiddenSizes = options.HiddenSizes }));
        using var reference = new RewardTrainer(options.ToTrainingOptions(1))
            .Train(baseModel.Model, expert.Model, network, baseModel.Model.Normalizer.Normalize(RawTensor(rows)));

        foreach (int buffer in new[] { Rows, TrainingSamples.DefaultBufferSize })
        {
            options.ShuffleBufferSize = buffer;
            using var fitted = rx.RelativeReward(baseModel, expert, options).Fit(data);
            Assert.True(SameWeights(reference.Network, fitted.Model.Network), $"buffer {buffer}");
        }
        options.ShuffleBufferSize = Rows / 4;
        using var streamed = rx.RelativeReward(baseModel, expert, options).Fit(data);
        Assert.False(SameWeights(reference.Network, streamed.Model.Network));
        Assert.All(streamed.Transform(data).GetColumn<float>("Reward"), r => Assert.True(float.IsFinite(r)));
    }

    [Fact]
    public void AMillionLazilyGeneratedRows_TrainThroughA4096RowBuffer_InBoundedMemory()
    {
        const long rows = 1_000_000;
        const int buffer = 4096, steps = 5;
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        var rx = ml.RewardExtraction();
        var view = new LazyTrajectoryView(rows);
        // Held at once, the rows would take 64 MB of floats (and the old reader's list twice that): the managed memory this
        // thread allocates while fitting must stay far below.
        const long bounded = 16L << 20;

        var options = Synthetic.DiffusionOptions(seed: 1, steps: steps);
        options.ShuffleBufferSize = buffer;
        long before = GC.GetAllocatedBytesForCurrentThread();
        using var baseModel = rx.DiffusionModel(options).Fit(view);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        _output.WriteLine($"diffusion fit: {allocated} bytes allocated, {view.RowsRead} rows read");
        Assert.True(allocated < bounded, $"{allocated} bytes allocated");
        // One streaming pass for the normaliser; the buffer then read its fill, one row ahead, and one row per drawn row.
        Assert.InRange(view.RowsRead - rows, buffer, buffer + 1 + steps * options.BatchSize);
        Assert.Contains(log, l => l.Contains($"1000000 samples streamed through a shuffle buffer of {buffer}"));

        // The reward, with a target pool drawn from the buffer: no normaliser pass, so only the buffer's rows are read.
        var expertOptions = Synthetic.DiffusionOptions(seed: 2, steps: 2);
        expertOptions.ShuffleBufferSize = buffer;
        expertOptions.NormalizeLike = baseModel;
        using var expert = rx.DiffusionModel(expertOptions).Fit(new LazyTrajectoryView(rows));
        var rewardOptions = Synthetic.RewardOptions(seed: 1, steps: steps);
        rewardOptions.ShuffleBufferSize = buffer;
        rewardOptions.TargetCachePoolSize = 256;
        rewardOptions.TargetCacheRefreshEvery = 2;
        var rewardView = new LazyTrajectoryView(rows);
        before = GC.GetAllocatedBytesForCurrentThread();
        using var reward = rx.RelativeReward(baseModel, expert, rewardOptions).Fit(rewardView);
        allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        _output.WriteLine($"reward fit: {allocated} bytes allocated, {rewardView.RowsRead} rows read");
        Assert.True(allocated < bounded, $"{allocated} bytes allocated");
        Assert.InRange(rewardView.RowsRead, buffer, buffer + 1 + 3 * 256);
        Assert.Contains(log, l => l.Contains($"more samples than the buffer holds streamed through a shuffle buffer of {buffer}"));
    }

    [Fact]
    public void InvalidRows_WhileStreaming_AreAnErrorNamingTheRow_OrLeftOutAndCounted()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        var rx = ml.RewardExtraction();
        var options = Synthetic.DiffusionOptions(seed: 1, steps: 8);
        options.ShuffleBufferSize = 100;
        var e = Assert.ThrowsAny<InvalidOperationException>(() => rx.DiffusionModel(options).Fit(new LazyTrajectoryView(Rows, invalidRow: 250)));
        Assert.Contains("Column 'Trajectory' holds NaN at row 250 (slot 5); expected finite values.", e.Message);

        options.InvalidValues = InvalidRowHandling.Skip;
        using var baseModel = rx.DiffusionModel(options).Fit(new LazyTrajectoryView(Rows, invalidRow: 250));
        Assert.Contains(log, l => l.Contains("Left 1 rows holding NaN or infinity in column 'Trajectory' out of training."));

        // The reward reads no normalising pass: the bad row is met while training, when the buffer's refills reach it.
        var rewardOptions = Synthetic.RewardOptions(seed: 1, steps: 8);
        rewardOptions.ShuffleBufferSize = 100;
        e = Assert.ThrowsAny<InvalidOperationException>(() => rx.RelativeReward(baseModel, baseModel, rewardOptions).Fit(new LazyTrajectoryView(Rows, invalidRow: 250)));
        Assert.Contains("Column 'Trajectory' holds NaN at row 250 (slot 5)", e.Message);
        log.Clear();
        rewardOptions.InvalidValues = InvalidRowHandling.Skip;
        using var reward = rx.RelativeReward(baseModel, baseModel, rewardOptions).Fit(new LazyTrajectoryView(Rows, invalidRow: 250));
        Assert.Contains(log, l => l.Contains("Left 1 rows holding NaN or infinity in column 'Trajectory' out of training."));
    }
}
