using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLReward.Experiments;

/// <summary>A row of input to a saved guided sampler: its seed, and the known values and mask of an inpainting condition
/// (all-zero mask: unconditioned). The experiments save their samplers with this input schema.</summary>
public sealed class SamplerInput
{
    /// <summary>The row's seed: the sample depends on it alone.</summary>
    public long Seed { get; set; }

    /// <summary>Known raw values (read where the mask is non-zero).</summary>
    public float[] Condition { get; set; } = [];

    /// <summary>1 where <see cref="Condition"/> holds a known value, else 0.</summary>
    public float[] ConditionMask { get; set; } = [];

    /// <summary>Rows as a view (the vectors' size, which ML.NET needs, from the first row).</summary>
    public static IDataView View(MLContext ml, IReadOnlyList<SamplerInput> rows)
    {
        ArgumentNullException.ThrowIfNull(ml);
        if (rows.Count == 0)
            throw new ArgumentException("At least one row is needed.", nameof(rows));
        int length = rows[0].Condition.Length;
        var schema = SchemaDefinition.Create(typeof(SamplerInput));
        schema[nameof(Condition)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, length);
        schema[nameof(ConditionMask)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, length);
        return ml.Data.LoadFromEnumerable(rows, schema);
    }
}
