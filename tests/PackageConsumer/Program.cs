// A user's app on the MLReward packages, run twice by .ci/consumer-test.sh:
//
//   PackageConsumer train DIR   writes DIR/transitions.csv, trains a tiny base and expert diffusion model and their
//                               relative reward through mlContext.RewardExtraction(), saves the windowing + reward chain
//                               with mlContext.Model.Save to DIR/model.zip and the reward of every window to DIR/scores.txt
//   PackageConsumer score DIR   in a fresh process: mlContext.Model.Load(DIR/model.zip), scores DIR/transitions.csv and
//                               compares with DIR/scores.txt bit for bit
//
// Each prints "ml.net=VERSION" (the Microsoft.ML that really loaded) and ends with one "ok: ..." line; any failed
// expectation exits non-zero.
using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;

if (args.Length != 2 || (args[0] != "train" && args[0] != "score"))
{
    Console.Error.WriteLine("usage: PackageConsumer train|score DIR");
    return 2;
}
string dir = args[1], csv = Path.Combine(dir, "transitions.csv"), zip = Path.Combine(dir, "model.zip"), scoresFile = Path.Combine(dir, "scores.txt");

// Before any torch call (docs/PLATFORM.md section 2); one thread, so both processes run the same kernels.
OneDnnWorkaround.Apply();
TorchSharp.torch.set_num_threads(1);
Console.WriteLine("ml.net=" + typeof(MLContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0]);

return args[0] == "train" ? Train(new MLContext(seed: 1)) : Score(new MLContext(seed: 1));

// Separate methods: the JIT loads the assemblies a method names when it compiles it, and Score must name no MLReward type.
int Train(MLContext ml)
{
    Directory.CreateDirectory(dir);
    Transitions.Write(csv);
    var transitions = Transitions.Load(ml, csv);
    var rx = ml.RewardExtraction();
    var windows = rx.TrajectoryWindows(new TrajectoryWindowEstimator.Options
    {
        EpisodeColumnName = "Episode", FeatureColumnNames = ["Dx", "Dy", "X", "Y"], Horizon = 4, Stride = 2, LabelColumnName = "IsExpert",
    }).Fit(transitions);
    var windowed = windows.Transform(transitions);

    DiffusionModelTrainer.Options Diffusion(int steps) => new()
    {
        DiffusionSteps = 10, Network = DenoiserKind.Mlp, HiddenWidth = 32, HiddenLayers = 2, TrainingSteps = steps, BatchSize = 64, LearningRate = 1e-3,
    };
    using var reward = rx.ExtractRelativeReward(new RelativeRewardExtractor.Options
    {
        Shape = SampleShape.Trajectory(horizon: 4, transitionDimension: 4),
        LabelColumnName = "IsExpert",
        BaseModel = Diffusion(steps: 400),
        ExpertModel = Diffusion(steps: 300),
        Reward = new RelativeRewardTrainer.Options { HiddenSizes = [32, 32], TrainingSteps = 400, LearningRate = 1e-3 },
    }).Fit(windowed);

    // The reward must tell the behaviours apart (expert windows head for a goal, base ones walk at random).
    var metrics = rx.Evaluate(reward.Transform(windowed), labelColumnName: "IsExpert");
    Console.WriteLine($"metrics: {metrics}");
    if (metrics.AreaUnderRocCurve < 0.9)
        return Fail($"AUC {metrics.AreaUnderRocCurve:F3} < 0.9: the extracted reward does not separate expert from base windows");

    // One model from raw transitions to rewards, saved the ML.NET way.
    var model = new TransformerChain<ITransformer>(windows, reward);
    ml.Model.Save(model, transitions.Schema, zip);
    float[] scores = model.Transform(transitions).GetColumn<float>("Reward").ToArray();
    File.WriteAllLines(scoresFile, scores.Select(s => s.ToString("R", CultureInfo.InvariantCulture)));
    Console.WriteLine($"ok: trained, saved {zip} ({new FileInfo(zip).Length} bytes) and {scores.Length} scores");
    return 0;
}

int Score(MLContext ml)
{
    // Nothing of MLReward has run in this process: ML.NET finds the loaders from the assembly names in the zip.
    bool loadedBefore = AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "Microsoft.ML.RewardExtraction.Transforms");
    if (loadedBefore) return Fail("the Transforms assembly was loaded before the model");
    ITransformer model = ml.Model.Load(zip, out var inputSchema);
    string stages = model is IEnumerable<ITransformer> chain ? string.Join(",", Flatten(chain).Select(t => t.GetType().Name)) : model.GetType().Name;
    Console.WriteLine($"stages={stages}");

    float[] scores = model.Transform(Transitions.Load(ml, csv)).GetColumn<float>("Reward").ToArray();
    float[] expected = File.ReadAllLines(scoresFile).Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
    if (scores.Length != expected.Length || scores.Length == 0)
        return Fail($"{scores.Length} scores, the training process wrote {expected.Length}");
    int differing = scores.Zip(expected).Count(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
    if (differing > 0)
        return Fail($"{differing} of {scores.Length} scores differ from the training process's (largest difference "
            + $"{scores.Zip(expected).Max(p => Math.Abs(p.First - p.Second))})");
    Console.WriteLine($"ok: loaded {zip} (input columns {string.Join(",", inputSchema.Select(c => c.Name))}); {scores.Length} scores identical to the training process's");
    (model as IDisposable)?.Dispose();
    return 0;
}

static int Fail(string message)
{
    Console.Error.WriteLine("FAILED: " + message);
    return 1;
}

static IEnumerable<ITransformer> Flatten(IEnumerable<ITransformer> chain) =>
    chain.SelectMany(t => t is IEnumerable<ITransformer> inner ? Flatten(inner) : [t]);

/// <summary>One row of transitions.csv.</summary>
public sealed class Transition
{
    [LoadColumn(0)] public int Episode { get; set; }
    [LoadColumn(1)] public bool IsExpert { get; set; }
    [LoadColumn(2)] public float X { get; set; }
    [LoadColumn(3)] public float Y { get; set; }
    [LoadColumn(4)] public float Dx { get; set; }
    [LoadColumn(5)] public float Dy { get; set; }
}

/// <summary>A small synthetic log: random walks (episodes 0, 1, ...) and goal-directed episodes (1000, 1001, ...).</summary>
public static class Transitions
{
    public static void Write(string path, int episodesPerBehaviour = 40, int steps = 12, int seed = 1)
    {
        var random = new Random(seed);
        double Noise(double scale) => scale * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        using var writer = new StreamWriter(path);
        writer.WriteLine("Episode,IsExpert,X,Y,Dx,Dy");
        foreach (bool expert in new[] { false, true })
        {
            for (int e = 0; e < episodesPerBehaviour; e++)
            {
                double x = random.NextDouble() * 2 - 1, y = random.NextDouble() * 2 - 1;
                for (int t = 0; t < steps; t++)
                {
                    // Expert: a quarter of the way to the goal (0.8, 0.8) plus a little noise. Base: a random step.
                    double dx = expert ? 0.25 * (0.8 - x) + Noise(0.02) : Noise(0.15);
                    double dy = expert ? 0.25 * (0.8 - y) + Noise(0.02) : Noise(0.15);
                    writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{(expert ? 1000 : 0) + e},{(expert ? "true" : "false")},{x:F4},{y:F4},{dx:F4},{dy:F4}"));
                    x += dx;
                    y += dy;
                }
            }
        }
    }

    public static IDataView Load(MLContext ml, string path) =>
        ml.Data.LoadFromTextFile<Transition>(path, hasHeader: true, separatorChar: ',');
}
