using Microsoft.ML.Data;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Schema checks of the estimators, in ML.NET's wording.</summary>
internal static class EstimatorSchema
{
    /// <summary>Throws unless <paramref name="name"/> is a known-size Single vector (the size itself is checked by Fit
    /// and Transform, which see the full schema).</summary>
    public static void CheckVectorColumn(SchemaShape schema, string name, SampleShape shape, string? what = null)
    {
        string expected = $"Vector<Single, {shape.Length}> ({what ?? shape.ToString()})";
        if (!schema.TryFindColumn(name, out var column))
        {
            var names = schema.Select(c => $"'{c.Name}'").ToList();
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Could not find input column '{name}': expected {expected}. The input has columns {(names.Count == 0 ? "(none)" : string.Join(", ", names))}.");
        }
        if (column.Kind != SchemaShape.Column.VectorKind.Vector || column.ItemType != NumberDataViewType.Single)
        {
            string found = column.Kind == SchemaShape.Column.VectorKind.VariableVector
                ? $"a vector of unknown size (Vector<{column.ItemType}>)"
                : column.GetTypeString();
            throw new ArgumentOutOfRangeException(nameof(schema), $"Schema mismatch for input column '{name}': expected {expected}, got {found}.");
        }
    }
}
