using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction;

/// <summary>What training and scoring do with a row whose input vector holds NaN or infinity.</summary>
public enum InvalidRowHandling
{
    /// <summary>Throw, naming the column and the row (the default: no silent garbage).</summary>
    Error = 0,
    /// <summary>Training leaves the row out; scoring gives the row a NaN output.</summary>
    Skip = 1,
}

/// <summary>One input a batched transformer reads: a float vector of known size (what it holds, e.g. the sample
/// shape, for error messages), or an integer seed.</summary>
internal sealed record BatchInput(string ColumnName, int Length, bool IsSeed = false, string? Description = null)
{
    /// <summary>"Vector&lt;Single, 16&gt; (Trajectory(H=8, D=2))" or "an integer seed (Int32, Int64, UInt32 or UInt64)".</summary>
    public string Expected => IsSeed ? "an integer seed (Int32, Int64, UInt32 or UInt64)"
        : $"Vector<Single, {Length}>{(Description is null ? "" : $" ({Description})")}";
}

/// <summary>The rows of one batch as the torch side sees them: dense float inputs, seeds, row positions, outputs.</summary>
internal sealed class RowBatch
{
    public RowBatch(IReadOnlyList<BatchInput> inputs, int capacity, int outputLength)
    {
        Capacity = capacity;
        Inputs = inputs.Select(i => i.IsSeed ? Array.Empty<float>() : new float[capacity * i.Length]).ToArray();
        Seeds = new long[capacity];
        HasSeed = new bool[capacity];
        Positions = new long[capacity];
        Invalid = new bool[capacity];
        Outputs = new float[capacity * outputLength];
    }

    public int Capacity { get; }
    public int Count { get; set; }
    public float[][] Inputs { get; }
    public long[] Seeds { get; }
    public bool[] HasSeed { get; }
    public long[] Positions { get; }
    public bool[] Invalid { get; }
    public float[] Outputs { get; }
}

/// <summary>
/// Shared machinery of the torch-backed transformers: schema checks, a lazy IDataView whose cursor reads N rows
/// ahead and runs one forward per batch, and a row-to-row mapper for PredictionEngine (batch of one).
/// Pass-through columns come from a second cursor over the same input that moves in step with the scored rows,
/// so no input value is buffered or copied.
/// </summary>
/// <remarks>
/// These transformers hold torch modules: dispose them when done. A <c>TransformerChain</c> disposes the transformers
/// it holds, and so does a <c>PredictionEngine</c> created with ML.NET's defaults (it owns its transformer unless
/// <c>PredictionEngineOptions.OwnsTransformer</c> is false).
/// </remarks>
public abstract class BatchedTransformerBase : ITransformer, IDisposable
{
    private protected BatchedTransformerBase(IHostEnvironment env, string name, string outputColumnName, int batchSize, InvalidRowHandling invalidValues)
    {
        if (env == null)
            throw new ArgumentNullException(nameof(env));
        Host = env.Register(name);
        if (string.IsNullOrWhiteSpace(outputColumnName))
            throw new ArgumentException("The output column name must not be empty.", nameof(outputColumnName));
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The scoring batch size must be at least 1.");
        OutputColumnName = outputColumnName;
        BatchSize = batchSize;
        InvalidValues = invalidValues;
    }

    private protected IHost Host { get; }

    /// <summary>The column this transformer adds.</summary>
    public string OutputColumnName { get; }

    /// <summary>How many rows the cursor reads ahead and scores in one forward pass.</summary>
    public int BatchSize { get; }

    /// <summary>What scoring does with NaN or infinite inputs.</summary>
    public InvalidRowHandling InvalidValues { get; }

    /// <summary>The type of the added column.</summary>
    private protected abstract DataViewType OutputType { get; }

    /// <summary>Floats per output value (1 for a scalar column).</summary>
    private protected int OutputLength => OutputType is VectorDataViewType v ? v.Size : 1;

    /// <summary>The columns read from the input; missing optional inputs are not listed.</summary>
    private protected abstract IReadOnlyList<BatchInput> Inputs { get; }

    /// <summary>Fills <see cref="RowBatch.Outputs"/> for the first <see cref="RowBatch.Count"/> rows.</summary>
    private protected abstract void ComputeBatch(RowBatch batch);

    /// <summary>
    /// When true, every forward pass runs on exactly <see cref="BatchSize"/> rows: a partial batch (the last one of a
    /// cursor, or a PredictionEngine's single row) is padded. CPU matrix kernels round differently for different row
    /// counts, so this is what makes a row's output bit-identical whatever batch it arrives in.
    /// <see cref="ComputeBatch"/> then sees <see cref="RowBatch.Count"/> = capacity, padding rows last, with zero inputs,
    /// no seed and negative positions.
    /// </summary>
    private protected virtual bool PadsBatches => false;

    /// <summary>Whether <see cref="InvalidRowHandling.Skip"/> is offered for this transformer (error messages only).</summary>
    private protected virtual bool CanSkipInvalidRows => true;

    /// <summary>Number of forward passes run so far (tests check that scoring is batched).</summary>
    internal long ForwardPasses => Interlocked.Read(ref _forwardPasses);

    private long _forwardPasses;

    /// <inheritdoc/>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        if (inputSchema == null)
            throw new ArgumentNullException(nameof(inputSchema));
        CheckInputSchema(inputSchema);
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        builder.AddColumn(OutputColumnName, OutputType);
        return builder.ToSchema();
    }

    /// <inheritdoc/>
    public IDataView Transform(IDataView input)
    {
        if (input == null)
            throw new ArgumentNullException(nameof(input));
        return new ScoredDataView(this, input, GetOutputSchema(input.Schema));
    }

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema, GetOutputSchema(inputSchema));

    /// <summary>Checks that every input column exists with the expected type, in ML.NET's wording plus what was expected.</summary>
    private protected void CheckInputSchema(DataViewSchema schema)
    {
        foreach (var input in Inputs)
        {
            var column = schema.GetColumnOrNull(input.ColumnName);
            if (column is null)
            {
                throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Could not find input column '{input.ColumnName}': expected {input.Expected}. The input has columns {DescribeColumns(schema)}.");
            }
            if (input.IsSeed)
            {
                if (!IsIntegerType(column.Value.Type))
                    throw new ArgumentOutOfRangeException(nameof(schema), $"Schema mismatch for input column '{input.ColumnName}': expected {input.Expected}, got {column.Value.Type}.");
            }
            else if (column.Value.Type is not VectorDataViewType vector || vector.ItemType != NumberDataViewType.Single || vector.Size != input.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(schema), $"Schema mismatch for input column '{input.ColumnName}': expected {input.Expected}, got {DescribeType(column.Value.Type)}.");
            }
        }
    }

    /// <summary>A column type as users see it; vectors of unknown size are named as such.</summary>
    internal static string DescribeType(DataViewType type) => type is VectorDataViewType { Size: 0 } v
        ? $"a vector of unknown size (Vector<{v.ItemType}>)"
        : type.ToString() ?? type.GetType().Name;

    /// <summary>"'A' (Single), 'B' (Vector&lt;Single, 4&gt;)" for the visible columns of a schema.</summary>
    internal static string DescribeColumns(DataViewSchema schema)
    {
        var visible = schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}' ({c.Type})").ToList();
        return visible.Count == 0 ? "(none)" : string.Join(", ", visible);
    }

    private static bool IsIntegerType(DataViewType type)
        => type == NumberDataViewType.Int32 || type == NumberDataViewType.Int64 || type == NumberDataViewType.UInt32 || type == NumberDataViewType.UInt64;

    /// <summary>Reads the current row of a cursor or row into a slot of a batch.</summary>
    private sealed class RowReader
    {
        private readonly BatchedTransformerBase _parent;
        private readonly DataViewRow _row;
        private readonly ValueGetter<VBuffer<float>>?[] _vectors;
        private readonly Func<long>?[] _seeds;
        private VBuffer<float> _buffer;

        public RowReader(BatchedTransformerBase parent, DataViewRow row)
        {
            _parent = parent;
            _row = row;
            var inputs = parent.Inputs;
            _vectors = new ValueGetter<VBuffer<float>>?[inputs.Count];
            _seeds = new Func<long>?[inputs.Count];
            for (int i = 0; i < inputs.Count; i++)
            {
                var column = row.Schema[inputs[i].ColumnName];
                if (inputs[i].IsSeed)
                    _seeds[i] = MakeSeedGetter(row, column);
                else
                    _vectors[i] = row.GetGetter<VBuffer<float>>(column);
            }
        }

        public void Read(RowBatch batch, int slot)
        {
            var inputs = _parent.Inputs;
            batch.Positions[slot] = _row.Position;
            batch.Invalid[slot] = false;
            batch.HasSeed[slot] = false;
            for (int i = 0; i < inputs.Count; i++)
            {
                if (_seeds[i] is { } seed)
                {
                    batch.Seeds[slot] = seed();
                    batch.HasSeed[slot] = true;
                    continue;
                }
                _vectors[i]!(ref _buffer);
                int length = inputs[i].Length;
                if (_buffer.Length != length)
                    throw new InvalidOperationException($"Column '{inputs[i].ColumnName}' holds a vector of {_buffer.Length} values at row {_row.Position}; expected {inputs[i].Expected}.");
                var target = batch.Inputs[i].AsSpan(slot * length, length);
                _buffer.CopyTo(target);
                for (int j = 0; j < target.Length; j++)
                {
                    float value = target[j];
                    if (float.IsFinite(value))
                        continue;
                    if (_parent.InvalidValues == InvalidRowHandling.Error)
                    {
                        throw new InvalidOperationException(
                            $"Column '{inputs[i].ColumnName}' holds {value.ToString(System.Globalization.CultureInfo.InvariantCulture)} at row {_row.Position} (slot {j}); expected finite values. " +
                            $"Remove or repair such rows{(_parent.CanSkipInvalidRows ? $", or set InvalidValues = {nameof(InvalidRowHandling.Skip)} to give them a NaN {_parent.OutputColumnName}" : "")}.");
                    }
                    batch.Invalid[slot] = true;
                    target.Clear();   // the row still goes through the network, with harmless zeros
                    break;
                }
            }
        }

        private static Func<long> MakeSeedGetter(DataViewRow row, DataViewSchema.Column column)
        {
            if (column.Type == NumberDataViewType.Int32) { var g = row.GetGetter<int>(column); return () => { int v = 0; g(ref v); return v; }; }
            if (column.Type == NumberDataViewType.Int64) { var g = row.GetGetter<long>(column); return () => { long v = 0; g(ref v); return v; }; }
            if (column.Type == NumberDataViewType.UInt32) { var g = row.GetGetter<uint>(column); return () => { uint v = 0; g(ref v); return v; }; }
            var u = row.GetGetter<ulong>(column);
            return () => { ulong v = 0; u(ref v); return unchecked((long)v); };
        }
    }

    private void Compute(RowBatch batch)
    {
        Interlocked.Increment(ref _forwardPasses);
        int count = batch.Count;
        if (PadsBatches && count < batch.Capacity)
        {
            for (int slot = count; slot < batch.Capacity; slot++)
            {
                for (int i = 0; i < batch.Inputs.Length; i++)
                {
                    int length = batch.Inputs[i].Length / batch.Capacity;
                    batch.Inputs[i].AsSpan(slot * length, length).Clear();
                }
                batch.HasSeed[slot] = false;
                batch.Invalid[slot] = false;
                batch.Positions[slot] = -1 - (slot - count);
            }
            batch.Count = batch.Capacity;
            try
            {
                ComputeBatch(batch);
            }
            finally
            {
                batch.Count = count;
            }
        }
        else
        {
            ComputeBatch(batch);
        }
        MarkInvalid(batch);
    }

    /// <summary>Rows with invalid inputs get NaN outputs. A row with finite inputs whose output is not finite (inputs so large
    /// that float32 arithmetic overflows, e.g. |x| ~ 1e38) is treated like an invalid input row: an error naming the row, or,
    /// with <see cref="InvalidRowHandling.Skip"/>, a NaN output and a warning that counts such rows.</summary>
    private void MarkInvalid(RowBatch batch)
    {
        int length = OutputLength, overflowed = 0;
        for (int slot = 0; slot < batch.Count; slot++)
        {
            var output = batch.Outputs.AsSpan(slot * length, length);
            if (batch.Invalid[slot])
            {
                output.Fill(float.NaN);
                continue;
            }
            int bad = FirstNonFinite(output);
            if (bad < 0)
                continue;
            if (InvalidValues == InvalidRowHandling.Error || !CanSkipInvalidRows)
            {
                throw new InvalidOperationException(
                    $"Column '{OutputColumnName}' came out {output[bad].ToString(System.Globalization.CultureInfo.InvariantCulture)} at row {batch.Positions[slot]} from finite inputs: " +
                    "they are too large for the network's float32 arithmetic. Remove or repair such rows" +
                    (CanSkipInvalidRows ? $", or set InvalidValues = {nameof(InvalidRowHandling.Skip)} to give them a NaN {OutputColumnName}." : "."));
            }
            output.Fill(float.NaN);
            overflowed++;
        }
        if (overflowed > 0)
        {
            using var channel = Host.Start(OutputColumnName);
            channel.Warning($"{overflowed} row(s) with finite but overflowing inputs got a NaN {OutputColumnName}.");
        }
    }

    private static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
                return i;
        }
        return -1;
    }

    private ValueGetter<T> MakeOutputGetter<T>(RowBatch batch, Func<int> slot)
    {
        int length = OutputLength;
        if (OutputType is VectorDataViewType)
        {
            ValueGetter<VBuffer<float>> vector = (ref VBuffer<float> value) =>
            {
                var editor = VBufferEditor.Create(ref value, length);
                batch.Outputs.AsSpan(slot() * length, length).CopyTo(editor.Values);
                value = editor.Commit();
            };
            return vector as ValueGetter<T> ?? throw new InvalidOperationException($"Column '{OutputColumnName}' is a {OutputType}; it cannot be read as {typeof(T).Name}.");
        }
        ValueGetter<float> scalar = (ref float value) => value = batch.Outputs[slot()];
        return scalar as ValueGetter<T> ?? throw new InvalidOperationException($"Column '{OutputColumnName}' is a {OutputType}; it cannot be read as {typeof(T).Name}.");
    }

    private IEnumerable<DataViewSchema.Column> InputColumnsOf(DataViewSchema schema) => Inputs.Select(i => schema[i.ColumnName]);

    private sealed class ScoredDataView : IDataView
    {
        private readonly BatchedTransformerBase _parent;
        private readonly IDataView _input;

        public ScoredDataView(BatchedTransformerBase parent, IDataView input, DataViewSchema schema)
        {
            _parent = parent;
            _input = input;
            Schema = schema;
        }

        public bool CanShuffle => false;
        public DataViewSchema Schema { get; }
        public long? GetRowCount() => _input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var needed = columnsNeeded.ToArray();
            int outputIndex = _input.Schema.Count;
            bool scoring = needed.Any(c => c.Index == outputIndex);
            var passThrough = needed.Where(c => c.Index < outputIndex).Select(c => _input.Schema[c.Index]).ToArray();
            var main = _input.GetRowCursor(passThrough);
            var ahead = scoring ? _input.GetRowCursor(_parent.InputColumnsOf(_input.Schema)) : null;
            return new Cursor(_parent, Schema, main, ahead);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
            => new[] { GetRowCursor(columnsNeeded, rand) };
    }

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly BatchedTransformerBase _parent;
        private readonly DataViewRowCursor _main;
        private readonly DataViewRowCursor? _ahead;
        private readonly RowReader? _reader;
        private readonly RowBatch? _batch;
        private readonly int _outputIndex;
        private long _batchStart;
        private bool _disposed;

        public Cursor(BatchedTransformerBase parent, DataViewSchema schema, DataViewRowCursor main, DataViewRowCursor? ahead)
        {
            _parent = parent;
            Schema = schema;
            _main = main;
            _ahead = ahead;
            _outputIndex = main.Schema.Count;
            if (ahead != null)
            {
                _reader = new RowReader(parent, ahead);
                _batch = new RowBatch(parent.Inputs, parent.BatchSize, parent.OutputLength);
            }
        }

        public override DataViewSchema Schema { get; }
        public override long Position => _main.Position;
        public override long Batch => 0;

        public override bool IsColumnActive(DataViewSchema.Column column)
            => column.Index == _outputIndex ? _ahead != null : _main.IsColumnActive(_main.Schema[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _outputIndex)
                return _main.GetGetter<TValue>(_main.Schema[column.Index]);
            if (_batch == null)
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when this cursor was created.");
            return _parent.MakeOutputGetter<TValue>(_batch, () => checked((int)(_main.Position - _batchStart)));
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();

        public override bool MoveNext()
        {
            if (!_main.MoveNext())
                return false;
            if (_batch != null && _main.Position >= _batchStart + _batch.Count)
            {
                _parent.Host.CheckAlive();
                _batch.Count = 0;
                _batchStart = _main.Position;
                while (_batch.Count < _batch.Capacity && _ahead!.MoveNext())
                    _reader!.Read(_batch, _batch.Count++);
                if (_batch.Count == 0)
                    throw new InvalidOperationException("The input produced fewer rows on a second pass than on the first; batched scoring needs a repeatable input.");
                _parent.Compute(_batch);
            }
            return true;
        }

        protected override void Dispose(bool disposing)
        {
            if (_disposed)
                return;
            if (disposing)
            {
                _main.Dispose();
                _ahead?.Dispose();
            }
            _disposed = true;
            base.Dispose(disposing);
        }
    }

    private sealed class Mapper : IRowToRowMapper
    {
        private readonly BatchedTransformerBase _parent;

        public Mapper(BatchedTransformerBase parent, DataViewSchema inputSchema, DataViewSchema outputSchema)
        {
            _parent = parent;
            InputSchema = inputSchema;
            OutputSchema = outputSchema;
        }

        public DataViewSchema InputSchema { get; }
        public DataViewSchema OutputSchema { get; }

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
        {
            // Pass-through columns depend on themselves; the output depends on the transformer's inputs.
            var needed = dependingColumns.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]);
            if (dependingColumns.Any(c => c.Index == InputSchema.Count))
                needed = needed.Concat(_parent.InputColumnsOf(InputSchema));
            return needed.GroupBy(c => c.Index).Select(g => g.First()).ToArray();
        }

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
            => new MappedRow(_parent, input, OutputSchema, activeColumns.Any(c => c.Index == InputSchema.Count));
    }

    /// <summary>One row scored on demand (batch of one), cached per input position.</summary>
    private sealed class MappedRow : DataViewRow
    {
        private readonly BatchedTransformerBase _parent;
        private readonly DataViewRow _input;
        private readonly RowReader? _reader;
        private readonly RowBatch? _batch;
        private long _scoredPosition = -1;

        public MappedRow(BatchedTransformerBase parent, DataViewRow input, DataViewSchema schema, bool scoring)
        {
            _parent = parent;
            _input = input;
            Schema = schema;
            if (scoring)
            {
                _reader = new RowReader(parent, input);
                _batch = new RowBatch(parent.Inputs, parent.PadsBatches ? parent.BatchSize : 1, parent.OutputLength);
            }
        }

        public override DataViewSchema Schema { get; }
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column)
            => column.Index == _input.Schema.Count ? _batch != null : _input.IsColumnActive(_input.Schema[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _input.Schema.Count)
                return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            if (_batch == null)
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when this row was created.");
            var inner = _parent.MakeOutputGetter<TValue>(_batch, () => 0);
            return (ref TValue value) =>
            {
                // A PredictionEngine reuses one row object; a new input is seen as a new position (or -1 each time).
                if (_scoredPosition != _input.Position || _input.Position < 0)
                {
                    _batch.Count = 0;
                    _reader!.Read(_batch, _batch.Count++);
                    _parent.Compute(_batch);
                    _scoredPosition = _input.Position;
                }
                inner(ref value);
            };
        }
    }

    /// <inheritdoc/>
    public abstract void Dispose();

    /// <summary>Whether <see cref="Dispose"/> has run (its torch modules are released).</summary>
    internal abstract bool IsDisposed { get; }

    /// <inheritdoc/>
    void ICanSaveModel.Save(ModelSaveContext ctx) => SaveModel(ctx);

    /// <summary>Writes this transformer to an ML.NET model context.</summary>
    private protected abstract void SaveModel(ModelSaveContext ctx);
}

internal static class RowBatchTensors
{
    /// <summary>The first <see cref="RowBatch.Count"/> rows of input <paramref name="input"/> as a [count, ...shape] tensor.</summary>
    public static TorchSharp.torch.Tensor Input(RowBatch batch, int input, SampleShape shape)
    {
        var all = TorchSharp.torch.tensor(batch.Inputs[input], shape.BatchShape(batch.Capacity));
        return batch.Count == batch.Capacity ? all : all.narrow(0, 0, batch.Count);
    }

    /// <summary>
    /// Input <paramref name="input"/> mapped into the model's space by <paramref name="normalizer"/>, as a [count, ...shape]
    /// tensor. Affine and identity normalisers work on the batch's floats in place (their span path is bit-identical to
    /// the tensor path and saves a few torch calls per batch, which is what a PredictionEngine's single row pays for).
    /// </summary>
    public static TorchSharp.torch.Tensor NormalizedInput(RowBatch batch, int input, SampleShape shape, Normalizer normalizer)
    {
        if (normalizer is AffineNormalizer or IdentityNormalizer)
        {
            var values = batch.Inputs[input].AsSpan(0, batch.Count * shape.Length);
            normalizer.Normalize(values, values);
            return Input(batch, input, shape);
        }
        return normalizer.Normalize(Input(batch, input, shape));
    }

    /// <summary>Copies a [count, ...] float tensor into the batch's outputs.</summary>
    public static void Output(RowBatch batch, TorchSharp.torch.Tensor result)
    {
        using var cpu = result.detach().to(TorchSharp.torch.CPU).contiguous();
        cpu.data<float>().CopyTo(batch.Outputs, 0);
    }
}
