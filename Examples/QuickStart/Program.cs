// MLReward quick start: extract a reward function from two behaviours logged as transitions.
//
//   dotnet run --project Examples/QuickStart [OUTPUT_FOLDER]        (default out/quickstart)
//
// 1. Writes transitions.csv: a point on a plane, one row per step. "Expert" episodes head for the goal (0.8, 0.8);
//    "base" episodes are random walks.
// 2. Cuts the episodes into trajectory windows of 8 steps x (dx, dy, x, y).
// 3. Trains a base diffusion model on the random walks and an expert one on the goal-directed episodes.
// 4. Extracts their relative reward, scores every window, and writes scored.csv and reward-model.zip
//    (load the zip with Examples/ModelBuilderStyle, or any ML.NET app).
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;

// Before any torch call: oneDNN picks its kernels when libtorch loads (see OneDnnWorkaround).
Microsoft.ML.RewardExtraction.OneDnnWorkaround.Apply();

string folder = args.Length > 0 ? args[0] : Path.Combine("out", "quickstart");
Directory.CreateDirectory(folder);
var clock = Stopwatch.StartNew();
TorchSharp.torch.set_num_threads(1);   // tiny models: one thread is fastest

// 1. A small synthetic log of transitions.
string csv = Path.Combine(folder, "transitions.csv");
Transitions.Write(csv, episodesPerBehaviour: 80, steps: 24, seed: 1);

var ml = new MLContext(seed: 1);
var rx = ml.RewardExtraction();
var transitions = ml.Data.LoadFromTextFile<Transition>(csv, hasHeader: true, separatorChar: ',');
var baseSteps = ml.Data.FilterRowsByColumn(transitions, nameof(Transition.IsExpert), upperBound: 0.5);
var expertSteps = ml.Data.FilterRowsByColumn(transitions, nameof(Transition.IsExpert), lowerBound: 0.5);

// 2. Trajectory windows: 8 consecutive steps of one episode, (dx, dy, x, y) each -> a vector of 32 floats.
var shape = SampleShape.Trajectory(horizon: 8, transitionDimension: 4);
var windows = rx.TrajectoryWindows("Trajectory", "Episode", new[] { "Dx", "Dy", "X", "Y" }, horizon: 8, stride: 4).Fit(transitions);
IDataView baseWindows = windows.Transform(baseSteps), expertWindows = windows.Transform(expertSteps), allWindows = windows.Transform(transitions);

// 3. Base and expert diffusion models (the expert reuses the base model's normaliser: one data space for both).
DiffusionModelTrainer.Options DiffusionOptions(int seed) => new()
{
    FeatureColumnName = "Trajectory", Shape = shape, DiffusionSteps = 10, Network = DenoiserKind.Mlp,
    HiddenWidth = 64, HiddenLayers = 2, TrainingSteps = 400, BatchSize = 64, LearningRate = 1e-3, Seed = seed,
};
using var baseModel = rx.DiffusionModel(DiffusionOptions(seed: 1)).Fit(baseWindows);
var expertOptions = DiffusionOptions(seed: 2);
expertOptions.NormalizeLike = baseModel;
using var expertModel = rx.DiffusionModel(expertOptions).Fit(expertWindows);

// 4. The relative reward, trained on windows of both behaviours.
using var reward = rx.RelativeReward(baseModel, expertModel, new RelativeRewardTrainer.Options
{
    FeatureColumnName = "Trajectory", OutputColumnName = "Reward", HiddenSizes = new[] { 64, 64 },
    TrainingSteps = 400, BatchSize = 64, LearningRate = 1e-3, Seed = 1,
}).Fit(allWindows);

// Score every window: DenoisingError under the base model, then the reward.
var model = baseModel.Append(reward);
var scored = model.Transform(allWindows);
string scoredCsv = Path.Combine(folder, "scored.csv");
using (var file = File.Create(scoredCsv))
{
    var columns = ml.Transforms.SelectColumns("Episode", "StartStep", "DenoisingError", "Reward").Fit(scored).Transform(scored);
    ml.Data.SaveAsText(columns, file, separatorChar: ',', headerRow: true, schema: false);
}
string zip = Path.Combine(folder, "reward-model.zip");
SafeModelSave.Save(ml, model, allWindows.Schema, zip);

var rows = ml.Data.CreateEnumerable<ScoredWindow>(scored, reuseRowObject: false).ToList();
double Mean(bool expert) => rows.Where(r => r.Episode >= Transitions.FirstExpertEpisode == expert).Average(r => r.Reward);
Console.WriteLine($"{rows.Count} windows scored: mean reward {Mean(expert: true):F3} for expert windows, {Mean(expert: false):F3} for random walks.");
Console.WriteLine($"Wrote {csv}, {scoredCsv} and {zip} in {clock.Elapsed.TotalSeconds:F1} s.");
Console.WriteLine($"Try: dotnet run --project Examples/ModelBuilderStyle -- {zip}");

/// <summary>One row of transitions.csv.</summary>
public sealed class Transition
{
    [LoadColumn(0)] public int Episode { get; set; }
    [LoadColumn(1)] public float IsExpert { get; set; }
    [LoadColumn(2)] public float X { get; set; }
    [LoadColumn(3)] public float Y { get; set; }
    [LoadColumn(4)] public float Dx { get; set; }
    [LoadColumn(5)] public float Dy { get; set; }
}

/// <summary>What is read back from the scored windows.</summary>
public sealed class ScoredWindow
{
    public int Episode { get; set; }
    public float Reward { get; set; }
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
                        $"{(expert ? FirstExpertEpisode : 0) + e},{(expert ? 1 : 0)},{x:F4},{y:F4},{dx:F4},{dy:F4}"));
                    x += dx;
                    y += dy;
                }
            }
        }
    }
}
