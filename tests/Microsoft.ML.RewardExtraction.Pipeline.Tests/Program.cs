using Microsoft.ML;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>
/// Entry point of the test assembly when it is run as a program (the test runner never calls it).
/// <c>dotnet Microsoft.ML.RewardExtraction.Pipeline.Tests.dll load-windows MODEL.zip</c> loads the model in a
/// process that has not touched MLReward, with no registration call, and prints the windows of the standard data.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length != 2 || args[0] != "load-windows")
        {
            Console.Error.WriteLine("usage: load-windows MODEL.zip");
            return 2;
        }

        // Nothing here names an MLReward type: ML.NET must find the loader from the assembly name in the zip.
        bool loadedBefore = AppDomain.CurrentDomain.GetAssemblies()
            .Any(a => a.GetName().Name == "Microsoft.ML.RewardExtraction.Transforms");
        Console.WriteLine($"transforms-loaded-before={loadedBefore}");

        var ml = new MLContext(seed: 1);
        ITransformer model = ml.Model.Load(args[1], out _);
        Console.WriteLine($"model-type={model.GetType().FullName}");
        var data = ml.Data.LoadFromEnumerable(TestData.Standard());
        Console.Write(TestData.Format(ml, model.Transform(data)));
        return 0;
    }
}
