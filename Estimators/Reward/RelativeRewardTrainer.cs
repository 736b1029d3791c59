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
    /// <summary>Options of <see cref="RelativeRewardTrainer"/>.</summary>
    public sealed class Options
    {
        /// <summary>The input column: <c>Vector&lt;Single, Shape.Length&gt;</c>, raw values. Default "Features".</summary>
        public string FeatureColumnName { get; set; } = "Features";

        /// <summary>The column the transformer adds. Default "Reward".</summary>
        public string OutputColumnName { get; set; } = "Reward";

        /// <summary>The reward network. Default chosen from the shape.</summary>
        public RewardNetworkKind Network { get; set; } = RewardNetworkKind.Auto;

        /// <summary>States per window of the state reward (1 = per state). Default 1.</summary>
        public int Window { get; set; } = 1;

        /// <summary>Hidden widths of the state reward's MLP. Default 128, 128.</summary>
        public int[] HiddenSizes { get; set; } = new[] { 128, 128 };

        /// <summary>Optimiser steps. Default 1000.</summary>
        public int TrainingSteps { get; set; } = 1000;

        /// <summary>Samples per step. Default 64.</summary>
        public int BatchSize { get; set; } = 64;

        /// <summary>Adam's learning rate. Default 2e-4 (the paper's locomotion setting).</summary>
        public double LearningRate { get; set; } = 2e-4;

        /// <summary>Where the reward's gradient is taken. Default at the base model's reverse mean (METHOD.md).</summary>
        public GradientLocation GradientAt { get; set; } = GradientLocation.BaseMean;

        /// <summary>Weight of the penalty mean(R^2) that pins the free constant of the reward. Default 0.</summary>
        public double MagnitudePenalty { get; set; }

        /// <summary>Gradient norm clip; 0 = off. Default 0.</summary>
        public double GradientClipNorm { get; set; }

        /// <summary>EMA decay. Default 0.995.</summary>
        public double EmaDecay { get; set; } = 0.995;

        /// <summary>Steps between EMA updates. Default 10.</summary>
        public int EmaUpdateEvery { get; set; } = 10;

        /// <summary>Before this step the EMA weights are a plain copy. Default 2000.</summary>
        public int EmaStartStep { get; set; } = 2000;

        /// <summary>Seed of the initial weights and of all training randomness. Default 0.</summary>
        public int Seed { get; set; }

        /// <summary>What training does with rows holding NaN or infinity. Default <see cref="InvalidRowHandling.Error"/>.</summary>
        public InvalidRowHandling InvalidValues { get; set; } = InvalidRowHandling.Error;

        /// <summary>Checkpoint file; training resumes from it when it exists. Default null.</summary>
        public string? CheckpointPath { get; set; }

        /// <summary>Steps between checkpoints. Default 1000.</summary>
        public int CheckpointEvery { get; set; } = 1000;

        /// <summary>Target cache: the number of (x0, t, noise) draws whose regression targets are computed once by the frozen
        /// base and expert models and reused (see <see cref="RewardTrainingOptions.TargetCachePoolSize"/>). 0 (the default)
        /// = off: the exact method, fresh draws and two diffusion-model forwards every step.</summary>
        public int TargetCachePoolSize { get; set; }

        /// <summary>Steps between rebuilds of the target cache's pool (0 = build it once). Ignored when
        /// <see cref="TargetCachePoolSize"/> is 0. Default 1000.</summary>
        public int TargetCacheRefreshEvery { get; set; } = 1000;

        /// <summary>Rows read ahead and scored per forward by the transformer. Default 1024.</summary>
        public int ScoringBatchSize { get; set; } = 1024;

        /// <summary>The diffusion step at which the transformer scores rows. Default 0 (clean data).</summary>
        public int ScoringStep { get; set; }

        /// <summary>Receives one report per training step (besides ML.NET's progress channel). Default null.</summary>
        public IProgress<TrainingProgress>? Progress { get; set; }

        /// <summary>Cancels training. Default none.</summary>
        public CancellationToken CancellationToken { get; set; }
    }

    private readonly IHost _host;
    private readonly Options _options;
    private readonly DiffusionModelTransformer _base;
    private readonly DiffusionModelTransformer _expert;

    internal RelativeRewardTrainer(IHostEnvironment env, DiffusionModelTransformer baseModel, DiffusionModelTransformer expertModel, Options options)
    {
        Contracts.CheckValue(env, nameof(env));
        _host = env.Register(nameof(RelativeRewardTrainer));
        _host.CheckValue(baseModel, nameof(baseModel));
        _host.CheckValue(expertModel, nameof(expertModel));
        _host.CheckValue(options, nameof(options));
        _host.CheckNonEmpty(options.FeatureColumnName, nameof(Options.FeatureColumnName));
        _host.CheckNonEmpty(options.OutputColumnName, nameof(Options.OutputColumnName));
        _host.CheckUserArg(options.TrainingSteps >= 0, nameof(Options.TrainingSteps), "must not be negative");
        _host.CheckUserArg(options.BatchSize >= 1, nameof(Options.BatchSize), "must be at least 1");
        _host.CheckUserArg(options.ScoringBatchSize >= 1, nameof(Options.ScoringBatchSize), "must be at least 1");
        CheckPair(baseModel.Model, expertModel.Model);
        _host.CheckUserArg(options.ScoringStep >= 0 && options.ScoringStep < baseModel.Model.Diffusion.Steps, nameof(Options.ScoringStep),
            $"must lie in 0..{baseModel.Model.Diffusion.Steps - 1}");
        _base = baseModel;
        _expert = expertModel;
        _options = options;
    }

    /// <summary>Throws unless the base and expert models share shape, schedule and normaliser.</summary>
    internal static void CheckPair(DiffusionModel baseModel, DiffusionModel expertModel)
    {
        RelativeRewardObjective.CheckCompatible(baseModel, expertModel);
        if (!SameNormalizer(baseModel.Normalizer, expertModel.Normalizer))
            throw new ArgumentException("The base and expert models normalise their data differently, so their outputs live in different spaces. " +
                "Train the expert with DiffusionModelTrainer.Options.NormalizeLike = the base model (or InitialModel = the base model).");
    }

    internal static bool SameNormalizer(Normalizer a, Normalizer b)
    {
        if (ReferenceEquals(a, b))
            return true;
        static byte[] Bytes(Normalizer n)
        {
            using var stream = new MemoryStream();
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
                n.Save(writer);
            return stream.ToArray();
        }
        return Bytes(a).AsSpan().SequenceEqual(Bytes(b));
    }

    /// <summary>Trains the reward on the feature column of <paramref name="input"/>.</summary>
    public RelativeRewardTransformer Fit(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        var o = _options;
        var baseModel = _base.Model;
        var shape = baseModel.Shape;
        RelativeRewardModel? reward = null;
        try
        {
            using var reporter = new TrainingReporter(_host, "Extracting the relative reward", o.Progress);
            using (var scope = torch.NewDisposeScope())
            {
                var raw = TrainingRows.Read(_host, input, o.FeatureColumnName, shape, o.InvalidValues, out long skipped);
                if (skipped > 0)
                    reporter.Channel.Warning($"Left {skipped} rows holding NaN or infinity in column '{o.FeatureColumnName}' out of training.");
                var normalized = baseModel.Normalizer.Normalize(raw);
                var network = TorchRandom.Initialize(o.Seed, () => CreateNetwork(shape));
                reporter.Channel.Info($"Extracting a relative reward ({network.GetType().Name}) from {normalized.shape[0]} samples of {shape}: {o.TrainingSteps} steps of {o.BatchSize}.");
                reward = new RewardTrainer(new RewardTrainingOptions
                {
                    TrainingSteps = o.TrainingSteps,
                    BatchSize = o.BatchSize,
                    LearningRate = o.LearningRate,
                    GradientAt = o.GradientAt,
                    MagnitudePenalty = o.MagnitudePenalty,
                    GradientClipNorm = o.GradientClipNorm,
                    EmaDecay = o.EmaDecay,
                    EmaUpdateEvery = o.EmaUpdateEvery,
                    EmaStartStep = o.EmaStartStep,
                    Seed = o.Seed,
                    CheckpointPath = o.CheckpointPath,
                    CheckpointEvery = o.CheckpointEvery,
                    ResumeFromCheckpoint = o.CheckpointPath is not null,
                    TargetCachePoolSize = o.TargetCachePoolSize,
                    TargetCacheRefreshEvery = o.TargetCacheRefreshEvery,
                }).Train(baseModel, _expert.Model, network, normalized, reporter, o.CancellationToken);
            }
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
        var kind = _options.Network == RewardNetworkKind.Auto
            ? (shape.Kind == SampleShapeKind.Image ? RewardNetworkKind.Image : RewardNetworkKind.State)
            : _options.Network;
        if (shape.Kind == SampleShapeKind.Image && kind != RewardNetworkKind.Image)
            throw _host.ExceptUserArg(nameof(Options.Network), $"A {kind} reward needs trajectories; the models sample {shape}.");
        if (shape.Kind == SampleShapeKind.Trajectory && kind == RewardNetworkKind.Image)
            throw _host.ExceptUserArg(nameof(Options.Network), $"An image reward needs images; the models sample {shape}.");
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
