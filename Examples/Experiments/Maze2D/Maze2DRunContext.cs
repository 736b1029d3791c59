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
        CancellationToken cancellationToken, Action<string>? warn = null, string? device = null)
    {
        Layout = layout;
        Settings = settings;
        Ml = new MLContext(settings.Seed);
        Ml.Log += (_, _) => { };
        ExperimentDevice.Apply(Ml, device);
        Seeds = new SeedStreams(settings.Seed);
        Stores = new RunModelStores(Ml, outputDirectory, cacheDirectory, modelsDirectory, warn);
        CancellationToken = cancellationToken;
        WindowSchema = MazeWindows.View(Ml, [new MazeWindow { Features = new float[settings.Horizon * MazeWindows.StepDimension] }]).Schema;
    }

    public MLContext Ml { get; }
    public MazeLayout Layout { get; }
    public Maze2DSettings Settings { get; }
    public SeedStreams Seeds { get; }
    public RunModelStores Stores { get; }
    public CancellationToken CancellationToken { get; }

    /// <summary>The schema of window rows, saved with every model as its input schema.</summary>
    public DataViewSchema WindowSchema { get; }

    public SampleShape Shape => MazeWindows.Shape(Settings.Horizon);

    public RewardExtractionCatalog Rx => Ml.RewardExtraction();

    /// <summary>The key of the model of <paramref name="role"/>: its settings, the layout, and <paramref name="parts"/> (a goal).</summary>
    public string Key(string role, params object[] parts) => ModelStore.Key(Settings, role, [Layout.ToText(), .. parts]);

    /// <summary>The model <paramref name="name"/> (see <see cref="RunModelStores.Obtain"/>), saved with the window schema.</summary>
    public T Obtain<T>(string name, string key, Func<T>? train, bool export, out bool reused) where T : class, ITransformer =>
        Stores.Obtain(name, key, train, WindowSchema, export, out reused);

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
