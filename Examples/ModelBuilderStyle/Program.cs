// Consumes a model zip written by Examples/QuickStart the way Model Builder's generated code does: load, then
// PredictionEngine<ModelInput, ModelOutput>. Nothing here calls MLReward: ML.NET finds the transformers from the zip.
//
//   dotnet run --project Examples/ModelBuilderStyle [MODEL.zip]        (default out/quickstart/reward-model.zip)
using MLReward.ModelBuilderStyle;

if (args.Length > 0)
    ConsumeModel.ModelPath = args[0];
if (!File.Exists(ConsumeModel.ModelPath))
{
    Console.Error.WriteLine($"No model at '{ConsumeModel.ModelPath}': run Examples/QuickStart first, or pass the zip's path.");
    return 1;
}

// Two windows of 8 steps of (dx, dy, x, y): one heading for the goal (0.8, 0.8) like the expert, one wandering.
var toGoal = Window((-0.6f, -0.4f), (x, y, t) => (0.25f * (0.8f - x), 0.25f * (0.8f - y)));
var wandering = Window((0.3f, -0.5f), (x, y, t) => (0.15f * MathF.Sin(3 * t), -0.12f * MathF.Cos(2 * t)));

foreach (var (name, input) in new[] { ("heading for the goal", toGoal), ("wandering", wandering) })
{
    ModelOutput output = ConsumeModel.Predict(input);
    Console.WriteLine($"{name,-22} reward {output.Reward,8:F3}   denoising error under the base model {output.DenoisingError:F4}");
}
return 0;

static ModelInput Window((float X, float Y) start, Func<float, float, int, (float Dx, float Dy)> policy)
{
    var values = new float[32];
    var (x, y) = start;
    for (int t = 0; t < 8; t++)
    {
        var (dx, dy) = policy(x, y, t);
        values[4 * t] = dx;
        values[4 * t + 1] = dy;
        values[4 * t + 2] = x;
        values[4 * t + 3] = y;
        x += dx;
        y += dy;
    }
    return new ModelInput { Trajectory = values };
}
