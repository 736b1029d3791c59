using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Trains a denoising diffusion model (DDPM, Diffuser's settings by default) on a float vector column holding
/// trajectories or images, and returns a <see cref="DiffusionModelTransformer"/>. Train one on ordinary behaviour
/// (the base model) and one on expert behaviour (the expert model), then extract their relative reward with
/// <c>mlContext.RewardExtraction().RelativeReward(...)</c>.
/// </summary>
public sealed class DiffusionModelTrainer : IEstimator<DiffusionModelTransformer>
{
    /// <summary>Options of <see cref="DiffusionModelTrainer"/>.</summary>
    public sealed class Options : TrainerOptionsBase
    {
        /// <summary>Creates the default options: output "DenoisingError", 1000 steps of 32 (Diffuser's batch), scoring batch 256.</summary>
        public Options() : base(outputColumnName: "DenoisingError", trainingSteps: 1000, batchSize: 32, scoringBatchSize: 256)
        {
        }

        /// <summary>The shape of one sample. Required.</summary>
        public SampleShape? Shape { get; set; }

        /// <summary>T, the number of diffusion steps. Default 20 (the paper's locomotion setting).</summary>
        public int DiffusionSteps { get; set; } = 20;

        /// <summary>The beta schedule. Default cosine.</summary>
        public NoiseScheduleKind Schedule { get; set; } = NoiseScheduleKind.Cosine;

        /// <summary>What the network predicts. Default the clean sample x0 (Diffuser's).</summary>
        public PredictionTarget Prediction { get; set; } = PredictionTarget.Start;

        /// <summary>Whether x0 estimates are clamped to [-1, 1]. Default true.</summary>
        public bool ClipDenoised { get; set; } = true;

        /// <summary>The network. Default: chosen from the shape (temporal U-Net for trajectories, U-Net for images).</summary>
        public DenoiserKind Network { get; set; } = DenoiserKind.Auto;

        /// <summary>Base width of the network (channels of the first U-Net level). Default 32.</summary>
        public int NetworkDimension { get; set; } = 32;

        /// <summary>Width multipliers per U-Net level; null = the network's default (1, 2, 4 for trajectories).</summary>
        public int[]? DimensionMultipliers { get; set; }

        /// <summary>Hidden width of the MLP denoiser (<see cref="DenoiserKind.Mlp"/>). Default 256.</summary>
        public int HiddenWidth { get; set; } = 256;

        /// <summary>Hidden layers of the MLP denoiser (<see cref="DenoiserKind.Mlp"/>). Default 3.</summary>
        public int HiddenLayers { get; set; } = 3;

        /// <summary>Width of the MLP denoiser's sinusoidal time embedding (<see cref="DenoiserKind.Mlp"/>). Default 32.</summary>
        public int TimeEmbeddingDimension { get; set; } = 32;

        /// <summary>How raw data are mapped to [-1, 1]. Default per-feature limits (Diffuser's). Ignored when <see cref="NormalizeLike"/> is set.</summary>
        public NormalizerKind Normalization { get; set; } = NormalizerKind.Limits;

        /// <summary>Reuse this model's normaliser instead of fitting one: train the expert model with the base model's
        /// normaliser so both live in one space (required by the relative reward). Default null.</summary>
        public DiffusionModelTransformer? NormalizeLike { get; set; }

        /// <summary>Start from this model's weights (same shape and network); e.g. warm-start an expert from the base
        /// model. Its normaliser is used too unless <see cref="NormalizeLike"/> says otherwise. Default null.</summary>
        public DiffusionModelTransformer? InitialModel { get; set; }

        /// <summary>Noise levels averaged by <c>DenoisingError</c>. Default 8.</summary>
        public int ScoringNoiseLevels { get; set; } = 8;

        /// <summary>A weight per sample entry (Shape.Length of them, finite, at least 0) on the denoising loss, e.g.
        /// <see cref="DiffusionTrainingOptions.TrajectoryLossWeights"/> to weight the first action as Diffuser does for
        /// planning. Default null (uniform).</summary>
        public float[]? LossWeights { get; set; }

        /// <summary>The entries known when sampling (Shape.Length flags, row-major), e.g.
        /// <see cref="RewardTrainingOptions.FirstObservationCondition"/>: during training they are replaced by the sample's clean
        /// values on the noisy input, as the sampler inpaints them (Diffuser's conditioning). Default null (none).</summary>
        public bool[]? ConditionMask { get; set; }

        /// <summary>A shallow copy (arrays and models are shared).</summary>
        internal Options Copy() => CopyAs<Options>();

        /// <summary>The core training settings these options describe, with <paramref name="seed"/>.</summary>
        internal DiffusionTrainingOptions ToTrainingOptions(int seed)
        {
            var core = Fill(new DiffusionTrainingOptions(), seed);
            core.LossWeights = LossWeights;
            return core;
        }

        /// <summary>Checks every setting in ML.NET's wording; returns the seed (the MLContext's when <see cref="TrainerOptionsBase.Seed"/> is unset).</summary>
        internal int Check(IHost host)
        {
            int seed = CheckShared(host);
            Validated(host, ToTrainingOptions(seed));
            return seed;
        }
    }

    private readonly IHostEnvironment _env;
    private readonly IHost _host;
    private readonly Options _options;
    private readonly int _seed;

    internal DiffusionModelTrainer(IHostEnvironment env, Options options)
    {
        Contracts.CheckValue(env, nameof(env));
        _env = env;
        _host = env.Register(nameof(DiffusionModelTrainer));
        _host.CheckValue(options, nameof(options));
        _host.CheckUserArg(options.Shape is not null, nameof(Options.Shape), "The sample shape is required: SampleShape.Trajectory(horizon, dimension) or SampleShape.Image(c, h, w).");
        _host.CheckUserArg(options.DiffusionSteps >= 1, nameof(Options.DiffusionSteps), "must be at least 1");
        _host.CheckUserArg(options.ScoringNoiseLevels >= 1, nameof(Options.ScoringNoiseLevels), "must be at least 1");
        _seed = options.Check(_host);
        int length = options.Shape!.Length;
        _host.CheckUserArg(options.LossWeights is null || options.LossWeights.Length == length, nameof(Options.LossWeights),
            $"has {options.LossWeights?.Length} entries but a sample of {options.Shape} has {length}");
        _host.CheckUserArg(options.ConditionMask is null || options.ConditionMask.Length == length, nameof(Options.ConditionMask),
            $"has {options.ConditionMask?.Length} entries but a sample of {options.Shape} has {length}");
        foreach (var (other, name) in new[] { (options.NormalizeLike, nameof(Options.NormalizeLike)), (options.InitialModel, nameof(Options.InitialModel)) })
        {
            ModelArguments.CheckAlive(_host, other, name);
            if (other is not null && !other.Shape.Equals(options.Shape))
                throw _host.ExceptUserArg(name, $"That model samples {other.Shape} but this one is declared {options.Shape}.");
        }
        _options = options;
    }

    /// <summary>The shape this trainer is set up for.</summary>
    public SampleShape Shape => _options.Shape!;

    /// <summary>Trains the model on the feature column of <paramref name="input"/>.</summary>
    public DiffusionModelTransformer Fit(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        ModelArguments.CheckAlive(_host, _options.NormalizeLike, nameof(Options.NormalizeLike));
        ModelArguments.CheckAlive(_host, _options.InitialModel, nameof(Options.InitialModel));
        var o = _options;
        var shape = o.Shape!;
        var device = o.ResolveDevice(_env, _host);
        DiffusionModel? model = null;
        try
        {
            using var reporter = new TrainingReporter(_host, "Training diffusion model", o.Progress);
            using (var scope = torch.NewDisposeScope())
            {
                using var data = TrainingData.Open(_host, input, o, shape);
                var normalizer = (o.NormalizeLike ?? o.InitialModel)?.Model.Normalizer ?? data.FitNormalizer(o.Normalization);
                data.ReportSkipped(reporter.Channel);
                model = DiffusionModel.Create(new DiffusionModelOptions
                {
                    Shape = shape,
                    DiffusionSteps = o.DiffusionSteps,
                    Schedule = o.Schedule,
                    Target = o.Prediction,
                    ClipDenoised = o.ClipDenoised,
                    Denoiser = new DenoiserOptions
                    {
                        Kind = o.Network,
                        Dimension = o.NetworkDimension,
                        Multipliers = o.DimensionMultipliers,
                        HiddenWidth = o.HiddenWidth,
                        HiddenLayers = o.HiddenLayers,
                        TimeEmbeddingDimension = o.TimeEmbeddingDimension,
                    },
                    Seed = _seed,
                }, normalizer, device);
                if (o.InitialModel is not null)
                    CopyWeights(o.InitialModel.Model, model);
                data.Samples.Normalizer = normalizer;
                reporter.Channel.Info($"Training a diffusion model on {data.Describe()} of {shape} on {ComputeDevice.Describe(device)}: T = {o.DiffusionSteps}, {o.TrainingSteps} steps of {o.BatchSize}.");
                var condition = o.ConditionMask is null ? null
                    : new InpaintingCondition(torch.zeros(shape.BatchShape(1)), torch.tensor(o.ConditionMask).reshape(shape.BatchShape(1)));
                new DiffusionTrainer(o.ToTrainingOptions(_seed)).Train(model, data.Samples, reporter, o.CancellationToken, condition);
                data.ReportSkipped(reporter.Channel);
            }
            NativeHeap.ReturnFreedMemory();
            return new DiffusionModelTransformer(_host, model, o.FeatureColumnName, o.OutputColumnName, o.ScoringBatchSize,
                o.InvalidValues, o.ScoringNoiseLevels, _seed);
        }
        catch
        {
            model?.Dispose();
            throw;
        }
    }

    private void CopyWeights(DiffusionModel from, DiffusionModel to)
    {
        if (!from.Diffusion.Schedule.Equals(to.Diffusion.Schedule))
            throw _host.ExceptUserArg(nameof(Options.InitialModel), $"The initial model uses {from.Diffusion.Schedule} but this one is set up for {to.Diffusion.Schedule}.");
        var source = from.Denoiser.parameters().ToArray();
        var target = to.Denoiser.parameters().ToArray();
        string a = DenoiserOptions.From(from.Denoiser).ToString(), b = DenoiserOptions.From(to.Denoiser).ToString();
        if (source.Length != target.Length || a != b || source.Zip(target).Any(p => !p.First.shape.SequenceEqual(p.Second.shape)))
            throw _host.ExceptUserArg(nameof(Options.InitialModel), $"The initial model's network ({a}) differs from this one's ({b}).");
        using var _ = torch.no_grad();
        foreach (var (s, t) in source.Zip(target))
            t.copy_(s);
    }

    /// <summary>Checks the input schema and returns the output schema (the input plus <c>DenoisingError</c>).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _host.CheckValue(inputSchema, nameof(inputSchema));
        EstimatorSchema.CheckVectorColumn(inputSchema, _options.FeatureColumnName, Shape);
        var result = inputSchema.ToDictionary(c => c.Name);
        result[_options.OutputColumnName] = new SchemaShape.Column(_options.OutputColumnName, SchemaShape.Column.VectorKind.Scalar,
            NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }
}
