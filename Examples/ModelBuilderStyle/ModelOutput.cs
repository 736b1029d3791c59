using Microsoft.ML.Data;

namespace MLReward.ModelBuilderStyle;

/// <summary>What the model adds: the denoising error under the base model and the extracted reward.</summary>
public class ModelOutput
{
    [ColumnName("BaseDenoisingError")]
    public float DenoisingError { get; set; }

    [ColumnName("Reward")]
    public float Reward { get; set; }
}
