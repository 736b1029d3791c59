using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Reads a float vector column of an IDataView into one dense tensor of samples for training.</summary>
internal static class TrainingRows
{
    /// <summary>
    /// Checks that <paramref name="columnName"/> is a <c>Vector&lt;Single, shape.Length&gt;</c> column and reads every
    /// row into a [N, ...shape] tensor. NaN/Inf rows throw (naming the column and row) or are left out.
    /// </summary>
    public static Tensor Read(IHost host, IDataView data, string columnName, SampleShape shape, InvalidRowHandling invalidRows, out long skipped)
    {
        host.CheckValue(data, nameof(data));
        CheckColumn(data.Schema, columnName, shape);
        var column = data.Schema[columnName];
        var values = new List<float>();
        var row = new float[shape.Length];
        skipped = 0;
        long count = 0;
        using (var cursor = data.GetRowCursor(new[] { column }))
        {
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> buffer = default;
            while (cursor.MoveNext())
            {
                host.CheckAlive();
                getter(ref buffer);
                if (buffer.Length != shape.Length)
                    throw host.Except($"Column '{columnName}' holds a vector of {buffer.Length} values at row {cursor.Position}; expected Vector<Single, {shape.Length}> ({shape}).");
                buffer.CopyTo(row);
                int bad = Array.FindIndex(row, v => !float.IsFinite(v));
                if (bad >= 0)
                {
                    if (invalidRows == InvalidRowHandling.Error)
                        throw host.Except($"Column '{columnName}' holds {row[bad].ToString(System.Globalization.CultureInfo.InvariantCulture)} at row {cursor.Position} (slot {bad}); expected finite values. Remove or repair such rows, or set InvalidValues = Skip to leave them out of training.");
                    skipped++;
                    continue;
                }
                values.AddRange(row);
                count++;
            }
        }
        if (count == 0)
            throw host.Except($"Column '{columnName}' has no usable rows to train on{(skipped > 0 ? $" ({skipped} rows held NaN or infinity)" : "")}.");
        return tensor(values.ToArray(), shape.BatchShape(count));
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
