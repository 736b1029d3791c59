using Microsoft.ML;
using Microsoft.ML.RewardExtraction;
using MLReward.Environments.Maze2D;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// What every stage of a Maze2D run shares: the ML.NET context, settings, layout and seed streams, and the three model stores
/// (the run's output folder, the cache, and an earlier run's models given with --models). A model is taken from the models
/// folder, else from the cache, else trained; the run's output folder always receives it.
/// </summary>
internal sealed class Maze2DRunContext
{
    public Maze2DRunContext(MazeLayout layout, Maze2DSettings settings, string outputDirectory, string? cacheDirectory, string? modelsDirectory,
        CancellationToken cancellationToken)
    {
        Layout = layout;
        Settings = settings;
        Ml = new MLContext(settings.Seed);
        Ml.Log += (_, _) => { };
        Seeds = new SeedStreams(settings.Seed);
        Output = new ModelStore(Ml, outputDirectory, hashedNames: false);
        Cache = cacheDirectory is null ? null : new ModelStore(Ml, cacheDirectory, hashedNames: true);
        Models = modelsDirectory is null ? null : new ModelStore(Ml, modelsDirectory, hashedNames: false);
        CancellationToken = cancellationToken;
        WindowSchema = MazeWindows.View(Ml, [new MazeWindow { Features = new float[settings.Horizon * MazeWindows.StepDimension] }]).Schema;
    }

    public MLContext Ml { get; }
    public MazeLayout Layout { get; }
    public Maze2DSettings Settings { get; }
    public SeedStreams Seeds { get; }
    public ModelStore Output { get; }
    public ModelStore? Cache { get; }
    public ModelStore? Models { get; }
    public CancellationToken CancellationToken { get; }

    /// <summary>The schema of window rows, saved with every model as its input schema.</summary>
    public DataViewSchema WindowSchema { get; }

    public SampleShape Shape => MazeWindows.Shape(Settings.Horizon);

    public RewardExtractionCatalog Rx => Ml.RewardExtraction();

    /// <summary>The key of the model of <paramref name="role"/>: its settings, the layout, and <paramref name="parts"/> (a goal).</summary>
    public string Key(string role, params object[] parts) => ModelStore.Key(Settings, role, [Layout.ToText(), .. parts]);

    /// <summary>
    /// The model <paramref name="name"/> with key <paramref name="key"/>: from the models folder, the cache, or
    /// <paramref name="train"/> (null: it must be stored already, as in a worker). With <paramref name="export"/> it is
    /// also written to the output folder. <paramref name="reused"/> tells whether it was loaded.
    /// </summary>
    public T Obtain<T>(string name, string key, Func<T>? train, bool export, out bool reused) where T : class, ITransformer
    {
        T? model = Models?.Load<T>(name, key) ?? Cache?.TryLoad<T>(name, key);
        reused = model is not null;
        if (model is null)
        {
            if (train is null)
                throw new InvalidOperationException($"The model '{name}' is not in the cache ({Cache?.PathOf(name, key) ?? "no cache"}).");
            model = train();
            Cache?.Save(model, WindowSchema, name, key);
        }
        if (export && !(Models is not null && Models.Directory == Output.Directory))
            Output.Save(model, WindowSchema, name, key);
        return model;
    }

    /// <summary>The options of a diffusion model of this run (the base model's and, with other step counts, the experts').</summary>
    public DiffusionModelTrainer.Options DiffusionOptions(int steps, int batch, double learningRate, int emaStartStep, int seed,
        IProgress<TrainingProgress> progress, DiffusionModelTransformer? normalizeLike = null, DiffusionModelTransformer? initialModel = null) => new()
    {
        Shape = Shape,
        DiffusionSteps = Settings.DiffusionSteps,
        Prediction = Settings.PredictNoise ? PredictionTarget.Noise : PredictionTarget.Start,
        ClipDenoised = Settings.ClipDenoised,
        Network = DenoiserKind.TemporalUNet,
        NetworkDimension = Settings.NetworkDimension,
        DimensionMultipliers = Settings.NetworkMultipliers,
        Normalization = NormalizerKind.Limits,
        NormalizeLike = normalizeLike,
        InitialModel = initialModel,
        TrainingSteps = steps,
        BatchSize = batch,
        LearningRate = learningRate,
        EmaStartStep = emaStartStep,
        Seed = seed,
        Progress = progress,
        CancellationToken = CancellationToken,
    };
}

/// <summary>Reports training progress at most five times a second (and at the last step).</summary>
internal sealed class ThrottledProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
{
    private long _lastReport;

    public TrainingProgress Last { get; private set; }

    public void Report(TrainingProgress value)
    {
        Last = value;
        long now = Environment.TickCount64;
        if (now - _lastReport >= 200 || value.Step == value.TotalSteps)
        {
            _lastReport = now;
            report(value);
        }
    }
}
