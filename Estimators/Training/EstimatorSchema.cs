using Microsoft.ML.Data;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Schema checks of the estimators, in ML.NET's wording.</summary>
internal static class EstimatorSchema
{
    /// <summary>Throws unless <paramref name="name"/> is a known-size Single vector of <paramref name="shape"/>'s length.</summary>
    public static void CheckVectorColumn(SchemaShape schema, string name, SampleShape shape)
    {
        if (!schema.TryFindColumn(name, out var column))
            throw new ArgumentOutOfRangeException(nameof(schema), $"Could not find input column '{name}'.");
        if (column.Kind != SchemaShape.Column.VectorKind.Vector || column.ItemType != NumberDataViewType.Single)
        {
            string found = column.Kind == SchemaShape.Column.VectorKind.VariableVector ? $"a vector of unknown size of {column.ItemType}" : column.GetTypeString();
            throw new ArgumentOutOfRangeException(nameof(schema), $"Schema mismatch for input column '{name}': expected Vector<Single, {shape.Length}> for {shape}, got {found}.");
        }
    }
}
