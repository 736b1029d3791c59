// MLReward quick start: extract a reward function from two behaviours logged as transitions.
//
//   dotnet run --project Examples/QuickStart [OUTPUT_FOLDER] [--gpu N]      (default out/quickstart, the CPU)
//
// --gpu N trains on CUDA device N (MLContext.GpuDeviceId; needs the CUDA build, -p:TorchBackend=cuda).
//
// 1. Writes transitions.csv: a point on a plane, one row per step. "Expert" episodes head for the goal (0.8, 0.8);
//    "base" episodes are random walks. IsExpert labels each episode.
// 2. Splits the episodes into training and test episodes, and cuts them into windows of 8 steps x (dx, dy, x, y) that
//    carry the episode's label.
// 3. One estimator trains the base diffusion model on the random walks, the expert one on the goal-directed episodes,
//    and their relative reward; Evaluate says how well the reward tells the test episodes' windows apart.
// 4. Writes scored.csv and reward-model.zip (load the zip with Examples/ModelBuilderStyle, or any ML.NET app).
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;

// Before any torch call: oneDNN picks its kernels when libtorch loads (see OneDnnWorkaround).
Microsoft.ML.RewardExtraction.OneDnnWorkaround.Apply();

int? gpu = null;
var positional = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--gpu" && i + 1 < args.Length)
    {
        gpu = int.Parse(args[++i], CultureInfo.InvariantCulture);
        continue;
    }
    positional.Add(args[i]);
}
string folder = positional.Count > 0 ? positional[0] : Path.Combine("out", "quickstart");
Directory.CreateDirectory(folder);
var clock = Stopwatch.StartNew();
TorchSharp.torch.set_num_threads(1);   // tiny models: one thread is fastest

// 1. A small synthetic log of transitions.
string csv = Path.Combine(folder, "transitions.csv");
Transitions.Write(csv, episodesPerBehaviour: 80, steps: 24, seed: 1);

var ml = new MLContext(seed: 1) { GpuDeviceId = gpu };
var rx = ml.RewardExtraction();
var transitions = ml.Data.LoadFromTextFile<Transition>(csv, hasHeader: true, separatorChar: ',');

// 2. Episodes never straddle the split; windows of 8 consecutive steps of one episode, in the column "Features".
var split = rx.TrainTestSplitByEpisode(transitions, "Episode", testFraction: 0.25, seed: 1);
var windows = rx.TrajectoryWindows(new TrajectoryWindowEstimator.Options
{
    EpisodeColumnName = "Episode", FeatureColumnNames = new[] { "Dx", "Dy", "X", "Y" }, Horizon = 8, Stride = 4, LabelColumnName = "IsExpert",
}).Fit(transitions);
IDataView train = windows.Transform(split.TrainSet), test = windows.Transform(split.TestSet);

// 3. Base model (IsExpert false), expert model (IsExpert true, warm-started from the base) and the relative reward.
DiffusionModelTrainer.Options Diffusion(int steps) => new()
{
    DiffusionSteps = 10, Network = DenoiserKind.Mlp, HiddenWidth = 64, HiddenLayers = 2, TrainingSteps = steps, BatchSize = 64, LearningRate = 1e-3,
};
using var model = rx.ExtractRelativeReward(new RelativeRewardExtractor.Options
{
    Shape = SampleShape.Trajectory(horizon: 8, transitionDimension: 4),
    LabelColumnName = "IsExpert",
    BaseModel = Diffusion(steps: 400),
    ExpertModel = Diffusion(steps: 300),
    Reward = new RelativeRewardTrainer.Options { HiddenSizes = new[] { 64, 64 }, TrainingSteps = 400, LearningRate = 1e-3 },
}).Fit(train);
var metrics = rx.Evaluate(model.Transform(test), labelColumnName: "IsExpert");

// 4. Score every window of the log and save the model: one zip holding base, expert and reward.
var scored = model.Transform(windows.Transform(transitions));
string scoredCsv = Path.Combine(folder, "scored.csv");
using (var file = File.Create(scoredCsv))
{
    var columns = ml.Transforms.SelectColumns("Episode", "StartStep", "IsExpert", "BaseDenoisingError", "Reward").Fit(scored).Transform(scored);
    ml.Data.SaveAsText(columns, file, separatorChar: ',', headerRow: true, schema: false);
}
string zip = Path.Combine(folder, "reward-model.zip");
SafeModelSave.Save(ml, model, train.Schema, zip);

Console.WriteLine($"Device: {(gpu is int g ? $"cuda:{g}" : "cpu")}.");
Console.WriteLine($"Held-out windows: {metrics}.");
Console.WriteLine($"Wrote {csv}, {scoredCsv} and {zip} in {clock.Elapsed.TotalSeconds:F1} s.");
Console.WriteLine($"Try: dotnet run --project Examples/ModelBuilderStyle -- {zip}");

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

/// <summary>The synthetic log: random walks (episodes 0, 1, ...) and goal-directed episodes (1000, 1001, ...).</summary>
public static class Transitions
{
    public const int FirstExpertEpisode = 1000;

    public static void Write(string path, int episodesPerBehaviour, int steps, int seed)
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
                        $"{(expert ? FirstExpertEpisode : 0) + e},{(expert ? "true" : "false")},{x:F4},{y:F4},{dx:F4},{dy:F4}"));
                    x += dx;
                    y += dy;
                }
            }
        }
    }
}
