using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Trains a relative reward network with <see cref="RelativeRewardObjective"/> (docs/METHOD.md section 3): per step a batch of
/// normalised clean samples (drawn with replacement), uniform steps t and Gaussian noise, all from one generator seeded
/// with <see cref="OptimizationOptions.Seed"/> (or a batch of the target pool); Adam on the reward's parameters; an EMA
/// copy of the reward (Diffuser's rule) that becomes the returned model. The options add a feature mask, conditioning,
/// noise-level balancing and the target pool; a reference model can stand in for the base model in the difference.
/// Same options, data, models and initial weights give identical results.
/// </summary>
public sealed class RewardTrainer
{
    /// <summary>Creates a trainer with <paramref name="options"/> (defaults when null), validated now.</summary>
    public RewardTrainer(RewardTrainingOptions? options = null)
    {
        Options = options ?? new RewardTrainingOptions();
        Options.Validate();
    }

    /// <summary>The training settings.</summary>
    public RewardTrainingOptions Options { get; }

    /// <summary>
    /// Trains <paramref name="network"/> in place (it ends with the online weights) and returns a model holding a separate
    /// EMA copy of it, the models' schedule and the base model's normaliser. With a <see cref="RewardTrainingOptions.FeatureMask"/>
    /// the returned model's network is a <see cref="FeatureMaskedReward"/> around that copy.
    /// </summary>
    /// <param name="baseModel">The frozen base model (its normaliser is the data space of the data and of the returned reward).</param>
    /// <param name="expertModel">The frozen expert model: same shape and schedule as the base.</param>
    /// <param name="network">A reward network of the models' shape, typically freshly initialised; any
    /// <see cref="RewardNetwork"/> whose architecture <see cref="RewardNetworkRegistry"/> can rebuild (for the EMA copy).</param>
    /// <param name="normalizedData">Training samples [N, ...shape], normalised with the base model's normaliser.</param>
    /// <param name="progress">Receives a report after every step.</param>
    /// <param name="cancellationToken">Checked before every step; on cancellation a checkpoint is written when a path is set.</param>
    /// <param name="referenceModel">Used in place of the base model in the difference (x_t, u = mu_ref, target mu_expert - mu_ref),
    /// e.g. the base model fine-tuned on base data with the expert's settings, so that the difference reflects the data and not
    /// the fine-tuning (docs/METHOD.md section 5). Same shape and schedule as the base and, like the expert, trained in the base
    /// model's normalised space; null = the base model.</param>
    /// <exception cref="ArgumentException">Incompatible models or network, masks of the wrong size, a wrong data shape, or
    /// NaN/Inf in the data (the message names the first bad sample).</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public RelativeRewardModel Train(DiffusionModel baseModel, DiffusionModel expertModel, RewardNetwork network, Tensor normalizedData,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default, DiffusionModel? referenceModel = null)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(normalizedData);
        Options.CheckShape(baseModel.Shape);
        CheckData(baseModel.Shape, normalizedData);
        using var scope = NewDisposeScope();
        using var samples = TrainingSamples.InMemory(baseModel.Shape, normalizedData.device.type == DeviceType.CPU ? normalizedData : normalizedData.cpu());
        return Train(baseModel, expertModel, network, samples, progress, cancellationToken, referenceModel);
    }

    /// <summary>
    /// Trains <paramref name="network"/> on <paramref name="samples"/>, which may stream data larger than memory through a
    /// bounded buffer (<see cref="TrainingSamples.Load"/>): batches, and the target pool's clean samples, are drawn from the rows
    /// the buffer holds. With all the data held, the same as the tensor overload on them, bit for bit. A checkpoint of a
    /// streamed run resumes with the stream read from its start again, so it continues the same objective but not the same
    /// batches.
    /// </summary>
    /// <param name="baseModel">The frozen base model (see the tensor overload).</param>
    /// <param name="expertModel">The frozen expert model.</param>
    /// <param name="network">The reward network to train (see the tensor overload).</param>
    /// <param name="samples">Training samples whose batches (after <see cref="TrainingSamples.Normalizer"/>) lie in the base
    /// model's normalised space.</param>
    /// <param name="progress">Receives a report after every step.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <param name="referenceModel">Stands in for the base model in the difference (see the tensor overload).</param>
    public RelativeRewardModel Train(DiffusionModel baseModel, DiffusionModel expertModel, RewardNetwork network, TrainingSamples samples,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default, DiffusionModel? referenceModel = null)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(samples);
        Options.CheckShape(baseModel.Shape);
        if (!samples.Shape.Equals(baseModel.Shape))
            throw new ArgumentException($"The training samples have shape {samples.Shape} but the models sample {baseModel.Shape}.", nameof(samples));
        var difference = referenceModel ?? baseModel;
        if (referenceModel is not null)
            RelativeRewardObjective.CheckCompatible(baseModel, referenceModel, "reference");
        var trained = Options.FeatureMask is { } features && features.Any(f => !f) ? new FeatureMaskedReward(network, features) : network;
        using var lossMask = FittedEntries(baseModel.Shape, trained);
        using var conditionMask = Options.ConditionMask is { } condition ? tensor(condition).reshape(baseModel.Shape.BatchShape(1)) : null;
        var objective = new RelativeRewardObjective(difference, expertModel, trained, Options.GradientAt, Options.MagnitudePenalty, lossMask, conditionMask);
        var shadow = RewardNetworkArchitecture.CreateLike(trained);
        try
        {
            TrainCore(objective, trained, shadow, samples, RewardNetworkArchitecture.ParameterType(network), progress, cancellationToken);
            return new RelativeRewardModel(shadow, baseModel.Diffusion.Schedule, baseModel.Normalizer);
        }
        catch
        {
            shadow.Dispose();
            throw;
        }
    }

    private void TrainCore(RelativeRewardObjective objective, RewardNetwork network, RewardNetwork shadow, TrainingSamples samples, ScalarType dtype,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var options = Options;
        var baseModel = objective.BaseModel;
        var device = baseModel.Diffusion.Device;
        int steps = baseModel.Diffusion.Steps;
        network.to(device);
        network.train();
        var batchShape = baseModel.Shape.BatchShape(options.BatchSize);
        using var cache = options.TargetCachePoolSize > 0
            ? new TargetCache(objective, samples, dtype, options.TargetCachePoolSize, options.TargetCacheRefreshEvery, options.Seed, device, options.BalanceNoiseLevels)
            : null;
        Tensor StepLoss(int step, torch.Generator generator)
        {
            if (cache is not null)
            {
                cache.Prepare(step);
                // Only the batch's pool rows are drawn from the batch generator; the pool has its own.
                var rows = randint(0, cache.Size, new long[] { options.BatchSize }, dtype: ScalarType.Int64, generator: generator);
                var (at, steps0, target, weight) = cache.Batch(rows);
                return objective.LossAt(at, steps0, target, weight);
            }
            var start = samples.Draw(options.BatchSize, generator);
            var t = randint(0, steps, new long[] { options.BatchSize }, dtype: ScalarType.Int64, generator: generator);
            var noise = randn(batchShape, dtype: dtype, generator: generator);
            if (start.dtype != dtype)
                start = start.to_type(dtype);
            if (device.type != DeviceType.CPU)
            {
                start = start.to(device);
                t = t.to(device);
                noise = noise.to(device);
            }
            return objective.Loss(start, t, noise);
        }

        OptimizationLoop.Run(options, RunDescription(network, baseModel.Diffusion.Schedule, samples.Description), network, shadow, StepLoss,
            "relative reward", progress, cancellationToken);
        shadow.eval();
    }

    private static void CheckData(SampleShape shape, Tensor data)
    {
        shape.CheckBatch(data, "Relative reward training data");
        if (data.shape[0] < 1)
            throw new ArgumentException("The relative reward training data is empty.", nameof(data));
        if (!data.is_floating_point())
            throw new ArgumentException($"The training data must be floating point; got {data.dtype}.", nameof(data));
        using var scope = NewDisposeScope();
        var finite = data.isfinite().reshape(data.shape[0], -1).all(1);
        if (!finite.all().ToBoolean())
        {
            long first = finite.logical_not().nonzero()[0, 0].ToInt64();
            throw new ArgumentException($"The relative reward training data contains NaN or infinite values (first in sample {first}).", nameof(data));
        }
    }

    /// <summary>The entries the loss fits, [1, ...shape]: those the reward reads (the feature wrapper's mask spread over a
    /// whole sample) and <see cref="RewardTrainingOptions.LossMask"/> selects; null when that is every entry.</summary>
    internal Tensor? FittedEntries(SampleShape shape, RewardNetwork trained)
    {
        Tensor? mask = trained is FeatureMaskedReward masked ? ones(shape.BatchShape(1)).mul_(masked.Mask) : null;
        if (Options.LossMask is { } fitted)
        {
            using var entries = tensor(fitted).reshape(shape.BatchShape(1)).to(ScalarType.Float32);
            mask = mask is null ? entries.clone() : mask.mul_(entries);
        }
        return mask;
    }

    /// <summary>What must match for a checkpoint to be resumed: everything but the total step count.</summary>
    private string RunDescription(RewardNetwork network, NoiseSchedule schedule, string samples)
    {
        var o = Options;
        static string Flags(bool[]? flags) => flags is null ? "" : string.Concat(flags.Select(f => f ? '1' : '0'));
        return FormattableString.Invariant(
            $"RelativeReward; network {RewardNetworkArchitecture.Describe(network)}; schedule {schedule}; data {samples}; batch {o.BatchSize}; lr {o.LearningRate:R}; ") +
            FormattableString.Invariant(
            $"at {o.GradientAt}; lambda {o.MagnitudePenalty:R}; ema {o.EmaDecay:R}/{o.EmaUpdateEvery}/{o.EmaStartStep}; clip {o.GradientClipNorm:R}; seed {o.Seed}") +
            (o.TargetCachePoolSize > 0 ? FormattableString.Invariant($"; target cache {o.TargetCachePoolSize}/{o.TargetCacheRefreshEvery}") : "") +
            (o.BalanceNoiseLevels ? "; balanced" : "") +
            (o.ConditionMask is null ? "" : $"; condition {Flags(o.ConditionMask)}") +
            (o.LossMask is null ? "" : $"; fitted {Flags(o.LossMask)}");
    }
}
