using System.Globalization;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The samples a trainer draws its batches from, held in a buffer of at most <see cref="BufferSize"/> rows. A batch is
/// <c>B</c> row indices drawn uniformly with replacement from the rows held (the first draw of a training step), gathered and
/// mapped through <see cref="Normalizer"/>. When the whole data set fits (<see cref="HoldsAll"/>), the buffer holds every row
/// in order, so batches are those of a tensor of all the data. When it does not, the buffer is a shuffle buffer: every drawn
/// row is replaced by the next row of the stream, which starts over at its end, so memory stays bounded and every row is
/// drawn about once per pass over the data: the objective is still the mean loss over all rows.
/// </summary>
public sealed class TrainingSamples : IDisposable
{
    /// <summary>The default buffer: 65,536 rows (a 32 x 11 locomotion window takes 92 MB of them).</summary>
    public const int DefaultBufferSize = 65_536;

    private readonly IEnumerable<ReadOnlyMemory<float>>? _stream;
    private readonly bool _ownsBuffer;
    private IEnumerator<ReadOnlyMemory<float>>? _reader;
    private bool _readerHasRow;
    private Tensor _buffer;

    private TrainingSamples(SampleShape shape, Tensor buffer, bool ownsBuffer, int bufferSize, IEnumerable<ReadOnlyMemory<float>>? stream)
    {
        Shape = shape;
        _buffer = buffer;
        _ownsBuffer = ownsBuffer;
        BufferSize = bufferSize;
        _stream = stream;
    }

    /// <summary>
    /// Wraps samples that are all in memory, [N, ...shape], on the CPU or on the training device; the caller keeps ownership
    /// of the tensor and must keep it alive while this is used.
    /// </summary>
    /// <param name="shape">The shape of one sample.</param>
    /// <param name="samples">The samples, as the trainer should see them unless <paramref name="normalizer"/> is given.</param>
    /// <param name="normalizer">Maps each drawn batch (see <see cref="Normalizer"/>); null = the samples are already normalised.</param>
    /// <exception cref="ArgumentException">The samples are not a non-empty batch of <paramref name="shape"/>.</exception>
    public static TrainingSamples InMemory(SampleShape shape, Tensor samples, Normalizer? normalizer = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(samples);
        shape.CheckBatch(samples, "training data");
        if (samples.shape[0] < 1)
            throw new ArgumentException("The training data hold no samples.", nameof(samples));
        return new TrainingSamples(shape, samples, ownsBuffer: false, (int)Math.Min(int.MaxValue, samples.shape[0]), stream: null)
        {
            ResidentRows = samples.shape[0],
            Normalizer = normalizer,
        };
    }

    /// <summary>
    /// Reads raw samples from <paramref name="rows"/> until <paramref name="bufferSize"/> are held or the rows end. Rows beyond
    /// the buffer are read while training: <paramref name="rows"/> is enumerated again from the start at each of its ends
    /// (each enumeration is one pass over the data, in the same order), and the open enumerator is disposed with this object.
    /// </summary>
    /// <param name="shape">The shape of one sample.</param>
    /// <param name="rows">Raw samples, <see cref="SampleShape.Length"/> floats each, row-major, finite (invalid rows are the
    /// source's to report or leave out). A row's memory need only stay valid until the next row is read.</param>
    /// <param name="bufferSize">The most rows held in memory at once (at least 1).</param>
    /// <exception cref="ArgumentException">No rows, or a row of the wrong length.</exception>
    public static TrainingSamples Load(SampleShape shape, IEnumerable<ReadOnlyMemory<float>> rows, int bufferSize = DefaultBufferSize)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, 1);
        var samples = new TrainingSamples(shape, empty(shape.BatchShape(Math.Min(bufferSize, 1024)), ScalarType.Float32).DetachFromDisposeScope(), ownsBuffer: true, bufferSize, rows);
        try
        {
            samples.Fill();
            return samples;
        }
        catch
        {
            samples.Dispose();
            throw;
        }
    }

    /// <summary>The shape of one sample.</summary>
    public SampleShape Shape { get; }

    /// <summary>The most rows held at once.</summary>
    public int BufferSize { get; }

    /// <summary>The rows held now (the data set's size when <see cref="HoldsAll"/>).</summary>
    public long ResidentRows { get; private set; }

    /// <summary>Whether the buffer holds the whole data set, so that nothing more is read.</summary>
    public bool HoldsAll => _reader is null;

    /// <summary>Rows taken from the stream so far, the first fill and every replacement (0 for <see cref="InMemory"/>).</summary>
    public long RowsRead { get; private set; }

    /// <summary>Completed passes over the stream (restarts at its end) while replacing drawn rows.</summary>
    public int Restarts { get; private set; }

    /// <summary>Maps every drawn batch from the held (raw) values to the trainer's space; null = none (the held values are
    /// already normalised). Set it once the normaliser is known, e.g. after fitting it on <see cref="Resident"/>.</summary>
    public Normalizer? Normalizer { get; set; }

    /// <summary>The rows held now, [<see cref="ResidentRows"/>, ...shape], as read (before <see cref="Normalizer"/>): all the
    /// data when <see cref="HoldsAll"/>. A view that changes as rows are replaced; do not dispose it.</summary>
    public Tensor Resident => _buffer.narrow(0, 0, ResidentRows);

    /// <summary>What a checkpoint records of the data: the row count when all are held, else the buffer (a stream's rows are
    /// not counted before training).</summary>
    internal string Description => HoldsAll
        ? ResidentRows.ToString(CultureInfo.InvariantCulture)
        : string.Create(CultureInfo.InvariantCulture, $"stream through a buffer of {BufferSize}");

    /// <summary>
    /// Draws <paramref name="count"/> row indices uniformly from the rows held (with replacement, from
    /// <paramref name="generator"/> on the CPU, the draw a tensor of all the data gets) and returns those rows, normalised,
    /// on the buffer's device; then, for a stream, replaces each drawn row with the next one read.
    /// </summary>
    public Tensor Draw(long count, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var index = randint(0, ResidentRows, new long[] { count }, ScalarType.Int64, CPU, generator: generator);
        var rows = _buffer.index_select(0, _buffer.device_type == TorchSharp.DeviceType.CPU ? index : index.to(_buffer.device));
        if (Normalizer is { } normalizer)
            rows = normalizer.Normalize(rows);
        if (!HoldsAll)
            Replace(index);
        return rows;
    }

    private void Fill()
    {
        _reader = _stream!.GetEnumerator();
        while (ResidentRows < BufferSize && _reader.MoveNext())
        {
            if (ResidentRows == _buffer.shape[0])
                Grow();
            Write(ResidentRows++, _reader.Current.Span);
        }
        if (ResidentRows == 0)
            throw new ArgumentException("The training data hold no samples.", "rows");
        _readerHasRow = ResidentRows == BufferSize && _reader.MoveNext();
        if (!_readerHasRow)
        {
            _reader.Dispose();
            _reader = null;
        }
        if (ResidentRows < _buffer.shape[0])
            Resize(ResidentRows);
    }

    private void Replace(Tensor drawn)
    {
        // A row drawn twice in one batch is replaced once: it was held once.
        var slots = drawn.data<long>().ToArray();
        Array.Sort(slots);
        long previous = -1;
        foreach (long slot in slots)
        {
            if (slot == previous)
                continue;
            previous = slot;
            if (!_readerHasRow)
            {
                _reader!.Dispose();
                _reader = _stream!.GetEnumerator();
                Restarts++;
                if (!_reader.MoveNext())
                    throw new InvalidOperationException("The training data ended before the first row when read again; the data must give the same rows on every pass.");
            }
            Write(slot, _reader!.Current.Span);
            _readerHasRow = _reader.MoveNext();
        }
    }

    private unsafe void Write(long slot, ReadOnlySpan<float> row)
    {
        if (row.Length != Shape.Length)
            throw new ArgumentException($"Row {RowsRead} of the training data holds {row.Length} values; a sample of {Shape} has {Shape.Length}.", "rows");
        var destination = new Span<float>(FusedKernels.Data(_buffer) + slot * Shape.Length, Shape.Length);
        row.CopyTo(destination);
        RowsRead++;
    }

    private void Grow() => Resize(Math.Min(BufferSize, 2 * _buffer.shape[0]));

    private void Resize(long rows)
    {
        var resized = empty(Shape.BatchShape(rows), ScalarType.Float32).DetachFromDisposeScope();
        long kept = Math.Min(rows, ResidentRows);
        if (kept > 0)
        {
            using var to = resized.narrow(0, 0, kept);
            using var from = _buffer.narrow(0, 0, kept);
            to.copy_(from);
        }
        _buffer.Dispose();
        _buffer = resized;
    }

    /// <summary>Rows the buffer has room for now: it grows while filling, up to <see cref="BufferSize"/>, so small data
    /// never cost a whole buffer.</summary>
    internal long AllocatedRows => _buffer.shape[0];

    /// <summary>Closes the stream and frees the buffer (not a tensor passed to <see cref="InMemory"/>).</summary>
    public void Dispose()
    {
        _reader?.Dispose();
        _reader = null;
        if (_ownsBuffer)
            _buffer.Dispose();
    }
}
