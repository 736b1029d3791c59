using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Reads a float vector column of an IDataView as training samples: streamed row by row, or into one tensor.</summary>
internal static class TrainingRows
{
    /// <summary>
    /// Checks that <paramref name="columnName"/> is a <c>Vector&lt;Single, shape.Length&gt;</c> column and returns its rows,
    /// read through a cursor each time they are enumerated (one pass per enumeration, in the view's order). NaN/Inf rows throw
    /// (naming the column and row) or are left out and counted.
    /// </summary>
    public static RowStream Stream(IHost host, IDataView data, string columnName, SampleShape shape, InvalidRowHandling invalidRows)
    {
        host.CheckValue(data, nameof(data));
        CheckColumn(data.Schema, columnName, shape);
        return new RowStream(host, data, columnName, shape, invalidRows);
    }

    /// <summary>
    /// Reads every row of <see cref="Stream"/> into a [N, ...shape] tensor. NaN/Inf rows throw (naming the column and row)
    /// or are left out.
    /// </summary>
    public static Tensor Read(IHost host, IDataView data, string columnName, SampleShape shape, InvalidRowHandling invalidRows, out long skipped)
    {
        var rows = Stream(host, data, columnName, shape, invalidRows);
        var values = new List<float>();
        foreach (var row in rows)
            values.AddRange(row.Span);
        skipped = rows.Skipped ?? 0;
        return tensor(values.ToArray(), shape.BatchShape(values.Count / shape.Length));
    }

    /// <summary>The valid rows of a column; enumerating it again reads the data again.</summary>
    internal sealed class RowStream : IEnumerable<ReadOnlyMemory<float>>
    {
        private readonly IHost _host;
        private readonly IDataView _data;
        private readonly string _columnName;
        private readonly SampleShape _shape;
        private readonly InvalidRowHandling _invalidRows;

        public RowStream(IHost host, IDataView data, string columnName, SampleShape shape, InvalidRowHandling invalidRows)
        {
            _host = host;
            _data = data;
            _columnName = columnName;
            _shape = shape;
            _invalidRows = invalidRows;
        }

        /// <summary>The valid rows of the first complete pass; null until one completes.</summary>
        public long? Rows { get; private set; }

        /// <summary>The rows left out for NaN or infinity in the first complete pass; null until one completes.</summary>
        public long? Skipped { get; private set; }

        public IEnumerator<ReadOnlyMemory<float>> GetEnumerator() => Read().GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        private IEnumerable<ReadOnlyMemory<float>> Read()
        {
            var column = _data.Schema[_columnName];
            // One array per pass, overwritten row after row: consumers copy what they keep.
            var row = new float[_shape.Length];
            long skipped = 0, count = 0;
            using (var cursor = _data.GetRowCursor(new[] { column }))
            {
                var getter = cursor.GetGetter<VBuffer<float>>(column);
                VBuffer<float> buffer = default;
                while (cursor.MoveNext())
                {
                    _host.CheckAlive();
                    getter(ref buffer);
                    if (buffer.Length != _shape.Length)
                        throw _host.Except($"Column '{_columnName}' holds a vector of {buffer.Length} values at row {cursor.Position}; expected Vector<Single, {_shape.Length}> ({_shape}).");
                    buffer.CopyTo(row);
                    int bad = Array.FindIndex(row, v => !float.IsFinite(v));
                    if (bad >= 0)
                    {
                        if (_invalidRows == InvalidRowHandling.Error)
                            throw _host.Except($"Column '{_columnName}' holds {row[bad].ToString(System.Globalization.CultureInfo.InvariantCulture)} at row {cursor.Position} (slot {bad}); expected finite values. Remove or repair such rows, or set InvalidValues = Skip to leave them out of training.");
                        skipped++;
                        continue;
                    }
                    count++;
                    yield return row;
                }
            }
            if (count == 0)
                throw _host.Except($"Column '{_columnName}' has no usable rows to train on{(skipped > 0 ? $" ({skipped} rows held NaN or infinity)" : "")}.");
            Rows ??= count;
            Skipped ??= skipped;
        }
    }

    /// <summary>Throws ML.NET's schema-mismatch errors unless the column exists as Vector&lt;Single, shape.Length&gt;.</summary>
    public static void CheckColumn(DataViewSchema schema, string columnName, SampleShape shape)
    {
        string expected = $"Vector<Single, {shape.Length}> ({shape})";
        var column = schema.GetColumnOrNull(columnName)
            ?? throw new ArgumentOutOfRangeException(nameof(schema),
                $"Could not find input column '{columnName}': expected {expected}. The input has columns {BatchedTransformerBase.DescribeColumns(schema)}.");
        if (column.Type is not VectorDataViewType vector || vector.ItemType != NumberDataViewType.Single || vector.Size != shape.Length)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Schema mismatch for input column '{columnName}': expected {expected}, got {BatchedTransformerBase.DescribeType(column.Type)}.");
    }
}
