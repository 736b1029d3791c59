using Microsoft.ML;

namespace MLReward.ModelBuilderStyle;

/// <summary>Loads the model zip once and predicts one window at a time, as Model Builder's generated code does.</summary>
public static class ConsumeModel
{
    public static string ModelPath { get; set; } = Path.Combine("out", "quickstart", "reward-model.zip");

    private static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictionEngine = new(CreatePredictionEngine);

    public static ModelOutput Predict(ModelInput input) => PredictionEngine.Value.Predict(input);

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictionEngine()
    {
        var mlContext = new MLContext();
        ITransformer model = mlContext.Model.Load(ModelPath, out _);
        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
    }
}
