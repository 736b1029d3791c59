using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>One trajectory of <see cref="Synthetic.Horizon"/> 2-d points, row-major by time.</summary>
public sealed class TrajectoryRow
{
    [VectorType(Synthetic.Length)]
    public float[] Trajectory { get; set; } = new float[Synthetic.Length];
}

/// <summary>A trajectory split into its x and y coordinates (for a Concatenate in front of the reward).</summary>
public sealed class SplitRow
{
    [VectorType(Synthetic.Horizon)]
    public float[] X { get; set; } = new float[Synthetic.Horizon];

    [VectorType(Synthetic.Horizon)]
    public float[] Y { get; set; } = new float[Synthetic.Horizon];
}

/// <summary>A trajectory with a per-row seed.</summary>
public sealed class SeededRow
{
    public long Seed { get; set; }
}

/// <summary>A row asking for an inpainted sample: known values and a mask (1 = known).</summary>
public sealed class ConditionRow
{
    [VectorType(Synthetic.Length)]
    public float[] Condition { get; set; } = new float[Synthetic.Length];

    [VectorType(Synthetic.Length)]
    public float[] ConditionMask { get; set; } = new float[Synthetic.Length];

    public long Seed { get; set; }
}

/// <summary>What the reward adds, read back with CreateEnumerable or a PredictionEngine.</summary>
public sealed class RewardPrediction
{
    public float Reward { get; set; }
}

/// <summary>What the diffusion transformer adds.</summary>
public sealed class DenoisingPrediction
{
    public float DenoisingError { get; set; }
}

/// <summary>What guided sampling adds.</summary>
public sealed class SamplePrediction
{
    [VectorType(Synthetic.Length)]
    public float[] Sample { get; set; } = Array.Empty<float>();
}

/// <summary>
/// Synthetic 2-d navigation: the expert walks from a random start toward the goal (1, 1); the base behaviour is a random
/// walk. Trajectories of 8 points, 16 floats.
/// </summary>
public static class Synthetic
{
    public const int Horizon = 8;
    public const int Dimension = 2;
    public const int Length = Horizon * Dimension;

    public static readonly SampleShape Shape = SampleShape.Trajectory(Horizon, Dimension);

    /// <summary>Torch's intra-op threads only add contention on the shared 2-core machines (see the core tests).</summary>
    public static void UseOneThread()
    {
        if (torch.get_num_threads() != 1)
            torch.set_num_threads(1);
    }

    public static float[] Walk(Random random, bool expert)
    {
        var values = new float[Length];
        double x = random.NextDouble() * 2 - 1, y = random.NextDouble() * 2 - 1;
        for (int t = 0; t < Horizon; t++)
        {
            values[2 * t] = (float)x;
            values[2 * t + 1] = (float)y;
            if (expert)
            {
                x += 0.3 * (1 - x) + 0.03 * Gaussian(random);
                y += 0.3 * (1 - y) + 0.03 * Gaussian(random);
            }
            else
            {
                x += 0.2 * Gaussian(random);
                y += 0.2 * Gaussian(random);
            }
        }
        return values;
    }

    private static double Gaussian(Random random)
        => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    public static List<TrajectoryRow> Rows(int count, bool expert, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => new TrajectoryRow { Trajectory = Walk(random, expert) }).ToList();
    }

    /// <summary>Base and expert rows interleaved.</summary>
    public static List<TrajectoryRow> Mixed(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i => new TrajectoryRow { Trajectory = Walk(random, expert: i % 2 == 1) }).ToList();
    }

    public static DiffusionModelTrainer.Options DiffusionOptions(int seed = 1, int steps = 150) => new()
    {
        FeatureColumnName = "Trajectory",
        Shape = Shape,
        DiffusionSteps = 10,
        Network = DenoiserKind.Mlp,
        HiddenWidth = 32,
        HiddenLayers = 2,
        TimeEmbeddingDimension = 8,
        TrainingSteps = steps,
        BatchSize = 32,
        LearningRate = 2e-3,
        Seed = seed,
        ScoringBatchSize = 64,
        ScoringNoiseLevels = 4,
    };

    public static RelativeRewardTrainer.Options RewardOptions(int seed = 1, int steps = 150) => new()
    {
        FeatureColumnName = "Trajectory",
        HiddenSizes = new[] { 32, 32 },
        TrainingSteps = steps,
        BatchSize = 64,
        LearningRate = 2e-3,
        Seed = seed,
        ScoringBatchSize = 64,
    };
}

/// <summary>Base, expert and reward trained once per test class that asks for them (a second or two on one thread).</summary>
public sealed class TrainedModels : IDisposable
{
    public TrainedModels()
    {
        Synthetic.UseOneThread();
        Ml = new MLContext(seed: 1);
        var rx = Ml.RewardExtraction();
        BaseData = Ml.Data.LoadFromEnumerable(Synthetic.Rows(400, expert: false, seed: 1));
        ExpertData = Ml.Data.LoadFromEnumerable(Synthetic.Rows(400, expert: true, seed: 2));
        Base = rx.DiffusionModel(Synthetic.DiffusionOptions(seed: 1)).Fit(BaseData);
        var expertOptions = Synthetic.DiffusionOptions(seed: 2);
        expertOptions.NormalizeLike = Base;
        Expert = rx.DiffusionModel(expertOptions).Fit(ExpertData);
        MixedData = Ml.Data.LoadFromEnumerable(Synthetic.Mixed(400, seed: 3));
        Reward = rx.RelativeReward(Base, Expert, Synthetic.RewardOptions()).Fit(MixedData);
    }

    public MLContext Ml { get; }
    public IDataView BaseData { get; }
    public IDataView ExpertData { get; }
    public IDataView MixedData { get; }
    public DiffusionModelTransformer Base { get; }
    public DiffusionModelTransformer Expert { get; }
    public RelativeRewardTransformer Reward { get; }

    public void Dispose()
    {
        Reward.Dispose();
        Expert.Dispose();
        Base.Dispose();
    }
}

/// <summary>Test classes that share one <see cref="TrainedModels"/> (trained once, run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class TrainedCollection : ICollectionFixture<TrainedModels>
{
    public const string Name = "Trained models";
}
