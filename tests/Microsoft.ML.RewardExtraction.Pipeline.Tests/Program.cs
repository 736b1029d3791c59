using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>
/// Entry point of the test assembly when it is run as a program (the test runner never calls it). It loads a model
/// in a process that has not touched MLReward, with no registration call:
/// <c>dotnet Microsoft.ML.RewardExtraction.Pipeline.Tests.dll load-windows MODEL.zip</c> prints the windows of the
/// standard data; <c>... score-reward MODEL.zip</c> prints the rewards of <see cref="ModelPersistenceTests.FreshProcessRows"/>,
/// through Transform and through a PredictionEngine.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length != 2 || (args[0] != "load-windows" && args[0] != "score-reward"))
        {
            Console.Error.WriteLine("usage: load-windows MODEL.zip | score-reward MODEL.zip");
            return 2;
        }

        // Nothing before the load names an MLReward type: ML.NET must find the loader from the assembly name in the zip.
        bool loadedBefore = AppDomain.CurrentDomain.GetAssemblies()
            .Any(a => a.GetName().Name == "Microsoft.ML.RewardExtraction.Transforms");
        Console.WriteLine($"transforms-loaded-before={loadedBefore}");

        var ml = new MLContext(seed: 1);
        ITransformer model = ml.Model.Load(args[1], out _);
        Console.WriteLine($"model-type={model.GetType().FullName}");
        if (args[0] == "load-windows")
        {
            var data = ml.Data.LoadFromEnumerable(TestData.Standard());
            Console.Write(TestData.Format(ml, model.Transform(data)));
            return 0;
        }

        TorchSharp.torch.set_num_threads(1);   // as in the tests: the same kernels, so the same bits
        if (model is IEnumerable<ITransformer> stages)
            Console.WriteLine($"stages={string.Join(",", stages.Select(s => s.GetType().Name))}");
        var rows = ModelPersistenceTests.FreshProcessRows();
        Console.Write("---\n" + ModelPersistenceTests.FormatRewards(model.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("Reward")));
        using var engine = ml.Model.CreatePredictionEngine<TrajectoryRow, RewardPrediction>(model);
        Console.Write("---\n" + ModelPersistenceTests.FormatRewards(rows.Select(r => engine.Predict(r).Reward)));
        (model as IDisposable)?.Dispose();
        return 0;
    }
}
