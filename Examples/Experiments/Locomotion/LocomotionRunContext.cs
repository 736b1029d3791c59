using System.Globalization;
using System.Security.Cryptography;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;

namespace MLReward.Experiments.Locomotion;

/// <summary>
/// What every stage of a locomotion run shares: the ML.NET context, settings, seed streams, the model stores (output folder,
/// cache, an earlier run's models), the observer and the cancellation token.
/// </summary>
internal sealed class LocomotionRunContext
{
    public LocomotionRunContext(LocomotionSettings settings, LocomotionRunOptions options, IReadOnlyDictionary<string, string> policyPaths,
        int actionSize, int observationSize, CancellationToken cancellationToken)
    {
        Settings = settings;
        Ml = new MLContext(settings.Seed);
        Ml.Log += (_, _) => { };
        ExperimentDevice.Apply(Ml, options.Device);
        Seeds = new SeedStreams(settings.Seed);
        Observer = options.Observer ?? NullObserver.Instance;
        Stores = new RunModelStores(Ml, options.OutputDirectory, options.CacheDirectory, options.ModelsDirectory, Observer.Message);
        CancellationToken = cancellationToken;
        ActionSize = actionSize;
        Shape = SampleShape.Trajectory(settings.Horizon, actionSize + observationSize);
        // The policies that made the data are part of what determines every model.
        _policyHashes = policyPaths.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => $"{p.Key}={Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(p.Value)))}").ToArray();
    }

    private readonly string[] _policyHashes;

    public MLContext Ml { get; }
    public LocomotionSettings Settings { get; }
    public SeedStreams Seeds { get; }
    public RunModelStores Stores { get; }
    public IExperimentObserver Observer { get; }
    public CancellationToken CancellationToken { get; }
    public int ActionSize { get; }
    public SampleShape Shape { get; }

    /// <summary>The input schema models are saved with: the training windows' (set by the data stage).</summary>
    public DataViewSchema? WindowSchema { get; set; }

    public RewardExtractionCatalog Rx => Ml.RewardExtraction();

    public void Log(string line) => Observer.Message(line);

    /// <summary>The key of a model: the settings (without the evaluation-only ones), the policies, and its role.</summary>
    public string Key(string role) => ModelStore.Key(Settings, role, _policyHashes);

    /// <summary>The model <paramref name="name"/> (see <see cref="RunModelStores.Obtain"/>), written to the output folder.</summary>
    public T Obtain<T>(string name, Func<T> train, out bool reused) where T : class, ITransformer =>
        Stores.Obtain(name, Key(name), train, WindowSchema, export: true, out reused);

    /// <summary>Reports a training's progress to the observer as task <paramref name="key"/>, and keeps its last loss.</summary>
    public TrainingTask Training(string key, string description, int steps)
    {
        Observer.Started(key, description, steps);
        return new TrainingTask(Observer, key);
    }

    /// <summary>The progress of one training, and its last average loss (NaN when nothing was trained).</summary>
    public sealed class TrainingTask(IExperimentObserver observer, string key) : IProgress<TrainingProgress>
    {
        public double LastLoss { get; private set; } = double.NaN;

        public void Report(TrainingProgress value)
        {
            LastLoss = value.AverageLoss;
            observer.Progress(key, value.Step, string.Create(CultureInfo.InvariantCulture, $"loss {value.AverageLoss:G4}"));
        }

        public void Finish(bool reused) => observer.Finished(key, reused ? "loaded" : string.Create(CultureInfo.InvariantCulture, $"loss {LastLoss:G4}"));
    }
}
