namespace MLReward.Experiments.Images;

/// <summary>
/// Settings of the image experiment (docs/EXPERIMENTS.md section 3). The base model learns every class, the expert only
/// the safe ones; the reward should then rank the unsafe classes lowest, and guidance should steer the base sampler away
/// from them.
/// </summary>
public sealed record ImagesSettings
{
    /// <summary>The preset names: quick (CI smoke test) and default.</summary>
    public static readonly string[] PresetNames = ["quick", "default"];

    /// <summary>Images per class for training (the classes' first images) and for evaluation (the images after them).</summary>
    public int TrainPerClass { get; init; } = 600;
    /// <summary>Held-out images per class.</summary>
    public int TestPerClass { get; init; } = 200;

    /// <summary>28 x 28 images are averaged over blocks of this size: 2 gives 14 x 14, what two CPU cores train in minutes.</summary>
    public int Downsample { get; init; } = 2;

    /// <summary>T, the diffusion steps.</summary>
    public int DiffusionSteps { get; init; } = 50;

    /// <summary>The U-Net's width and its multipliers per level.</summary>
    public int NetworkDimension { get; init; } = 16;
    /// <summary>Width multipliers of the U-Net's levels.</summary>
    public int[] NetworkMultipliers { get; init; } = [1, 2];

    /// <summary>Training steps of the base model.</summary>
    public int BaseSteps { get; init; } = 2500;
    /// <summary>Fine-tuning steps of the expert model (from the base model).</summary>
    public int ExpertSteps { get; init; } = 1000;
    /// <summary>Batch of both diffusion models.</summary>
    public int DiffusionBatch { get; init; } = 64;
    /// <summary>Learning rate of both diffusion models.</summary>
    public double DiffusionLearningRate { get; init; } = 5e-4;

    /// <summary>Training steps of the reward.</summary>
    public int RewardSteps { get; init; } = 1500;
    /// <summary>Batch of the reward.</summary>
    public int RewardBatch { get; init; } = 64;
    /// <summary>Learning rate of the reward.</summary>
    public double RewardLearningRate { get; init; } = 5e-4;
    /// <summary>Target pool of the reward (0 = exact draws every step).</summary>
    public int RewardPool { get; init; } = 8192;
    /// <summary>Steps between rebuilds of the reward's target pool (0 = never).</summary>
    public int RewardPoolRefresh { get; init; } = 500;

    /// <summary>Guidance scales tried (0 = unguided) and samples drawn at each.</summary>
    public double[] GuidanceScales { get; init; } = [0, 1, 2, 4, 8];
    /// <summary>Samples drawn at each guidance scale (the same seeds at every scale).</summary>
    public int SamplesPerScale { get; init; } = 256;

    /// <summary>Trees per class of the classifier that judges the samples (one-versus-all FastTree).</summary>
    public int ClassifierTrees { get; init; } = 100;

    /// <summary>Seed of every stage (each stage derives its own from it).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Held-out images on which the conservativeness diagnostic of the reward is measured (0 = off).</summary>
    public int DiagnosticImages { get; init; } = 64;

    /// <summary>Noise levels the diagnostic reads (evenly spaced, with the first and the last).</summary>
    public int DiagnosticLevels { get; init; } = 10;
    /// <summary>torch threads.</summary>
    public int Threads { get; init; } = 2;

    /// <summary>The default preset (about 9 minutes on two cores).</summary>
    public static ImagesSettings Default { get; } = new();

    /// <summary>The quick preset: a smoke test for CI, seconds.</summary>
    public static ImagesSettings Quick { get; } = new()
    {
        TrainPerClass = 40,
        TestPerClass = 20,
        DiffusionSteps = 10,
        NetworkDimension = 8,
        BaseSteps = 60,
        ExpertSteps = 30,
        RewardSteps = 60,
        RewardPool = 512,
        RewardPoolRefresh = 0,
        GuidanceScales = [0, 1],
        SamplesPerScale = 16,
        ClassifierTrees = 10,
        Threads = 1,
        DiagnosticImages = 16,
        DiagnosticLevels = 3,
    };

    /// <summary>The preset called <paramref name="name"/>.</summary>
    public static ImagesSettings Preset(string name) => name switch
    {
        "quick" => Quick,
        "default" => Default,
        _ => throw new ArgumentException($"Unknown preset '{name}'; use {string.Join(" or ", PresetNames)}."),
    };

    /// <summary>The default unsafe classes: footwear for Fashion-MNIST (sandal, sneaker, ankle boot: one kind of object the
    /// others never look like, as "harmful" is one kind of content); 5, 7 and 9 for MNIST.</summary>
    public static int[] DefaultUnsafe(string dataset) => [5, 7, 9];
}
