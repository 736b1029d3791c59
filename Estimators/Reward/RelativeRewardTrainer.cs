using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Which reward network <see cref="RelativeRewardTrainer"/> trains.</summary>
public enum RewardNetworkKind
{
    /// <summary>From the shape: <see cref="State"/> for trajectories, <see cref="Image"/> for images.</summary>
    Auto = 0,
    /// <summary>A per-state (or per-window) MLP, averaged over the trajectory (navigation).</summary>
    State = 1,
    /// <summary>Diffuser's value encoder over the whole trajectory (locomotion).</summary>
    Trajectory = 2,
    /// <summary>A small convolutional encoder (images).</summary>
    Image = 3,
}

/// <summary>
/// Extracts the relative reward of two diffusion models (Nuti et al., NeurIPS 2023): trains R(x, t) so that its
/// input gradient matches the difference of the expert's and the base model's reverse means, on the samples of the
/// input's feature column, and returns a <see cref="RelativeRewardTransformer"/> that adds <c>Reward</c>.
/// </summary>
public sealed class RelativeRewardTrainer : IEstimator<RelativeRewardTransformer>
{
    /// <summary>Options of <see cref="RelativeRewardTrainer"/>. The reward trains on the device of the diffusion models it is
    /// given; <see cref="TrainerOptionsBase.Device"/>, when set, must name that device.</summary>
    public sealed class Options : TrainerOptionsBase
    {
        /// <summary>Creates the default options: output "Reward", 1000 steps of 64, scoring batch 1024.</summary>
        public Options() : base(outputColumnName: "Reward", trainingSteps: 1000, batchSize: 64, scoringBatchSize: 1024)
        {
        }

        /// <summary>The reward network. Default chosen from the shape. Ignored when <see cref="CustomNetwork"/> is set.</summary>
        public RewardNetworkKind Network { get; set; } = RewardNetworkKind.Auto;

        /// <summary>Builds a reward network of your own for the models' sample shape (called once, under the seed); it saves
        /// and loads like the built-in ones (see <see cref="RewardNetwork"/>). Default null.</summary>
        public Func<SampleShape, RewardNetwork>? CustomNetwork { get; set; }

        /// <summary>States per window of the state reward (1 = per state). Default 1.</summary>
        public int Window { get; set; } = 1;

        /// <summary>Hidden widths of the state reward's MLP. Default 128, 128.</summary>
        public int[] HiddenSizes { get; set; } = new[] { 128, 128 };

        /// <summary>Where the reward's gradient is taken. Default at the base model's reverse mean (docs/METHOD.md section 3).</summary>
        public GradientLocation GradientAt { get; set; } = GradientLocation.BaseMean;

        /// <summary>Weight of the penalty mean(R^2) that pins the free constant of the reward. Default 0.</summary>
        public double MagnitudePenalty { get; set; }

        /// <summary>The features the reward reads and is fitted on, one flag per feature of a transition (or per image
        /// channel); e.g. position only. Default null: all (see <see cref="RewardTrainingOptions.FeatureMask"/>).</summary>
        public bool[]? FeatureMask { get; set; }

        /// <summary>Entries known when sampling (one flag per entry of a sample), inpainted into x_t and both models' means as
        /// the planner does. Default null (see <see cref="RewardTrainingOptions.ConditionMask"/>).</summary>
        public bool[]? ConditionMask { get; set; }

        /// <summary>The entries whose gradient is fitted (one flag per entry of a sample), e.g. the last steps of a window
        /// (<see cref="RewardTrainingOptions.LastStepsMask"/>). Default null: every entry (see
        /// <see cref="RewardTrainingOptions.LossMask"/>).</summary>
        public bool[]? LossMask { get; set; }

        /// <summary>Weigh each noise level alike (needs <see cref="TargetCachePoolSize"/> &gt; 0). Default false
        /// (see <see cref="RewardTrainingOptions.BalanceNoiseLevels"/>).</summary>
        public bool BalanceNoiseLevels { get; set; }

        /// <summary>Target pool: the number of (x0, t, noise) draws whose regression targets are computed once by the frozen
        /// models and reused (see <see cref="RewardTrainingOptions.TargetCachePoolSize"/>). 0 (the default) = off: the exact
        /// method, fresh draws and two diffusion-model forwards every step.</summary>
        public int TargetCachePoolSize { get; set; }

        /// <summary>Steps between rebuilds of the target pool (0 = build it once). Default 1000.</summary>
        public int TargetCacheRefreshEvery { get; set; } = 1000;

        /// <summary>A model used in place of the base model in the difference, e.g. the base model fine-tuned on base data
        /// with the expert's settings (the paired reference of docs/METHOD.md section 5). Same shape, schedule and normaliser as the
        /// base; the reward still lives in the base model's space. Default null (the base model).</summary>
        public DiffusionModelTransformer? ReferenceModel { get; set; }

        /// <summary>The diffusion step at which the transformer scores rows. Default 0 (clean data).</summary>
        public int ScoringStep { get; set; }

        /// <summary>A shallow copy (arrays and models are shared).</summary>
        internal Options Copy() => CopyAs<Options>();

        /// <summary>The core training settings these options describe, with <paramref name="seed"/>.</summary>
        internal RewardTrainingOptions ToTrainingOptions(int seed)
        {
            var core = Fill(new RewardTrainingOptions(), seed);
            core.GradientAt = GradientAt;
            core.MagnitudePenalty = MagnitudePenalty;
            core.FeatureMask = FeatureMask;
            core.ConditionMask = ConditionMask;
            core.LossMask = LossMask;
            core.BalanceNoiseLevels = BalanceNoiseLevels;
            core.TargetCachePoolSize = TargetCachePoolSize;
            core.TargetCacheRefreshEvery = TargetCacheRefreshEvery;
            return core;
        }

        /// <summary>Checks every setting in ML.NET's wording against the models' <paramref name="shape"/>; returns the
        /// core settings with the seed resolved (the MLContext's when <see cref="TrainerOptionsBase.Seed"/> is unset).</summary>
        internal RewardTrainingOptions Check(IHost host, SampleShape shape)
        {
            var core = Validated(host, ToTrainingOptions(CheckShared(host)));
            try
            {
                core.CheckShape(shape);
            }
            catch (ArgumentException e)
            {
                throw host.ExceptUserArg(e.ParamName ?? "options", WithoutParameterSuffix(e));
            }
            if (CustomNetwork is null)
                CheckNetwork(host, shape);
            return core;
        }

        private void CheckNetwork(IHost host, SampleShape shape)
        {
            host.CheckUserArg(Enum.IsDefined(Network), nameof(Network), "is not a defined RewardNetworkKind");
            var kind = Kind(shape);
            if (shape.Kind == SampleShapeKind.Image && kind != RewardNetworkKind.Image)
                throw host.ExceptUserArg(nameof(Network), $"A {kind} reward needs trajectories; the models sample {shape}.");
            if (shape.Kind == SampleShapeKind.Trajectory && kind == RewardNetworkKind.Image)
                throw host.ExceptUserArg(nameof(Network), $"An image reward needs images; the models sample {shape}.");
            if (kind != RewardNetworkKind.State)
                return;
            host.CheckUserArg(Window >= 1 && Window <= shape.Horizon, nameof(Window), $"must lie in 1..{shape.Horizon} (the horizon)");
            host.CheckUserArg(HiddenSizes is { Length: > 0 } && HiddenSizes.All(h => h >= 1), nameof(HiddenSizes), "must hold at least one width, each at least 1");
        }

        /// <summary>The network kind for <paramref name="shape"/>, <see cref="RewardNetworkKind.Auto"/> resolved.</summary>
        internal RewardNetworkKind Kind(SampleShape shape) => Network != RewardNetworkKind.Auto ? Network
            : shape.Kind == SampleShapeKind.Image ? RewardNetworkKind.Image : RewardNetworkKind.State;
    }

    private readonly IHost _host;
    private readonly Options _options;
    private readonly RewardTrainingOptions _training;
    private readonly DiffusionModelTransformer _base;
    private readonly DiffusionModelTransformer _expert;

    private readonly IHostEnvironment _env;

    internal RelativeRewardTrainer(IHostEnvironment env, DiffusionModelTransformer baseModel, DiffusionModelTransformer expertModel, Options options)
    {
        Contracts.CheckValue(env, nameof(env));
        _env = env;
        _host = env.Register(nameof(RelativeRewardTrainer));
        _host.CheckValue(baseModel, nameof(baseModel));
        _host.CheckValue(expertModel, nameof(expertModel));
        _host.CheckValue(options, nameof(options));
        ModelArguments.CheckAlive(_host, baseModel, nameof(baseModel));
        ModelArguments.CheckAlive(_host, expertModel, nameof(expertModel));
        ModelArguments.CheckAlive(_host, options.ReferenceModel, nameof(Options.ReferenceModel));
        CheckPair(baseModel.Model, expertModel.Model);
        _training = options.Check(_host, baseModel.Shape);
        _host.CheckUserArg(options.ScoringStep >= 0 && options.ScoringStep < baseModel.Model.Diffusion.Steps, nameof(Options.ScoringStep),
            $"must lie in 0..{baseModel.Model.Diffusion.Steps - 1}");
        if (options.ReferenceModel is { } reference)
        {
            try
            {
                RelativeRewardObjective.CheckCompatible(baseModel.Model, reference.Model, "reference");
            }
            catch (ArgumentException e)
            {
                throw _host.ExceptUserArg(nameof(Options.ReferenceModel), TrainerOptionsBase.WithoutParameterSuffix(e));
            }
            if (!Normalizer.SameMapping(baseModel.Model.Normalizer, reference.Model.Normalizer))
                throw _host.ExceptUserArg(nameof(Options.ReferenceModel), "The reference model normalises its data differently from the base model; train it from the base model (InitialModel = the base model).");
        }
        _base = baseModel;
        _expert = expertModel;
        _options = options;
    }

    /// <summary>Throws unless the base and expert models share shape, schedule and normaliser.</summary>
    internal static void CheckPair(DiffusionModel baseModel, DiffusionModel expertModel)
    {
        RelativeRewardObjective.CheckCompatible(baseModel, expertModel);
        if (!Normalizer.SameMapping(baseModel.Normalizer, expertModel.Normalizer))
            throw new ArgumentException("The base and expert models normalise their data differently, so their outputs live in different spaces. " +
                "Train the expert with DiffusionModelTrainer.Options.NormalizeLike = the base model (or InitialModel = the base model).");
    }

    /// <summary>Trains the reward on the feature column of <paramref name="input"/>.</summary>
    public RelativeRewardTransformer Fit(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        ModelArguments.CheckAlive(_host, _base, "baseModel");
        ModelArguments.CheckAlive(_host, _expert, "expertModel");
        ModelArguments.CheckAlive(_host, _options.ReferenceModel, nameof(Options.ReferenceModel));
        var o = _options;
        var baseModel = _base.Model;
        var shape = baseModel.Shape;
        if (o.Device is not null)
        {
            var device = o.ResolveDevice(_env, _host);
            if (!ComputeDevice.Same(device, baseModel.Diffusion.Device))
                throw _host.ExceptUserArg(nameof(Options.Device), $"The reward trains where the diffusion models are, on {ComputeDevice.Describe(baseModel.Diffusion.Device)}, but Device resolves to {ComputeDevice.Describe(device)}; train or load the diffusion models on that device, or leave Device unset.");
        }
        RelativeRewardModel? reward = null;
        try
        {
            using var reporter = new TrainingReporter(_host, "Extracting the relative reward", o.Progress);
            using (var scope = torch.NewDisposeScope())
            {
                using var data = TrainingData.Open(_host, input, o, shape);
                data.ReportSkipped(reporter.Channel);
                data.Samples.Normalizer = baseModel.Normalizer;
                var network = TorchRandom.Initialize(_training.Seed, () => CreateNetwork(shape));
                reporter.Channel.Info($"Extracting a relative reward ({network.ArchitectureName}) from {data.Describe()} of {shape}: {o.TrainingSteps} steps of {o.BatchSize}.");
                reward = new RewardTrainer(_training).Train(baseModel, _expert.Model, network, data.Samples, reporter, o.CancellationToken, o.ReferenceModel?.Model);
                data.ReportSkipped(reporter.Channel);
            }
            NativeHeap.ReturnFreedMemory();
            return new RelativeRewardTransformer(_host, reward, baseModel.Normalizer, o.FeatureColumnName, o.OutputColumnName,
                o.ScoringBatchSize, o.InvalidValues, o.ScoringStep);
        }
        catch
        {
            reward?.Dispose();
            throw;
        }
    }

    private RewardNetwork CreateNetwork(SampleShape shape)
    {
        if (_options.CustomNetwork is { } create)
        {
            var custom = create(shape) ?? throw _host.ExceptUserArg(nameof(Options.CustomNetwork), "returned null");
            if (!custom.Shape.Equals(shape))
            {
                custom.Dispose();
                throw _host.ExceptUserArg(nameof(Options.CustomNetwork), $"built a network for {custom.Shape}, but the diffusion models sample {shape}");
            }
            return custom;
        }
        var kind = _options.Kind(shape);
        return kind switch
        {
            RewardNetworkKind.State => new StateReward(shape, new StateRewardOptions { Window = _options.Window, HiddenSizes = _options.HiddenSizes }),
            RewardNetworkKind.Trajectory => new TrajectoryReward(shape),
            _ => new ImageReward(shape),
        };
    }

    /// <summary>Checks the input schema and returns the output schema (the input plus <c>Reward</c>).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _host.CheckValue(inputSchema, nameof(inputSchema));
        EstimatorSchema.CheckVectorColumn(inputSchema, _options.FeatureColumnName, _base.Shape);
        var result = inputSchema.ToDictionary(c => c.Name);
        result[_options.OutputColumnName] = new SchemaShape.Column(_options.OutputColumnName, SchemaShape.Column.VectorKind.Scalar,
            NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }
}
