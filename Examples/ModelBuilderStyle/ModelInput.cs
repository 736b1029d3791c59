using Microsoft.ML.Data;

namespace MLReward.ModelBuilderStyle;

/// <summary>One trajectory window as the model takes it: 8 steps of (dx, dy, x, y), row-major by time.</summary>
public class ModelInput
{
    [ColumnName("Features"), VectorType(32)]
    public float[] Trajectory { get; set; } = new float[32];
}
