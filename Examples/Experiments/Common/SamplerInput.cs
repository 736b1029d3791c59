using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;

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

    /// <summary>The sampler the experiments save: <paramref name="baseModel"/> guided by <paramref name="reward"/> as
    /// <paramref name="guidance"/> says, reading this class's columns and writing "Sample"; <paramref name="inputSchema"/>
    /// is the schema to save it with.</summary>
    public static GuidedSamplingTransformer Sampler(MLContext ml, DiffusionModelTransformer baseModel, RelativeRewardTransformer reward,
        GuidanceOptions guidance, out DataViewSchema inputSchema)
    {
        int length = baseModel.Shape.Length;
        var input = View(ml, [new SamplerInput { Condition = new float[length], ConditionMask = new float[length] }]);
        inputSchema = input.Schema;
        return ml.RewardExtraction().GuidedSampling(baseModel, reward, new GuidedSamplingEstimator.Options
        {
            GuidanceScale = guidance.Scale,
            StopGradientBelow = guidance.StopGradientBelow,
            GuideSteps = guidance.GuideSteps,
            SeedColumnName = nameof(Seed),
            ConditionColumnName = nameof(Condition),
            ConditionMaskColumnName = nameof(ConditionMask),
            OutputColumnName = "Sample",
        }).Fit(input);
    }
}
