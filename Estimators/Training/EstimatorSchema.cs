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

/// <summary>Checks of the models an estimator is given, in ML.NET's wording.</summary>
internal static class ModelArguments
{
    /// <summary>Throws ML.NET's argument error naming <paramref name="name"/> when <paramref name="model"/> has been disposed:
    /// its torch module is gone, and using it would fail deep inside TorchSharp ("empty handle").</summary>
    public static void CheckAlive(Microsoft.ML.Runtime.IHost host, BatchedTransformerBase? model, string name)
    {
        if (model is not null && model.IsDisposed)
        {
            throw Microsoft.ML.Runtime.Contracts.ExceptParam(host, name, $"The {name} ({model.GetType().Name}) has been disposed, so its network is gone. " +
                "Pass a model that is still in use: a TransformerChain or a PredictionEngine disposes the transformers it owns.");
        }
    }
}
