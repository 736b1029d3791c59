using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Trains a relative reward network with <see cref="RelativeRewardObjective"/>: per step a batch of normalised clean
/// samples (drawn with replacement), uniform steps t and Gaussian noise, all from one generator seeded with
/// <see cref="RewardTrainingOptions.Seed"/>; Adam on the reward's parameters; an EMA copy of the reward (Diffuser's rule)
/// that becomes the returned model. Same options, data, models and initial weights give identical results.
/// </summary>
public sealed class RewardTrainer
{
    private const int AverageWindow = 100;

    /// <summary>Creates a trainer with <paramref name="options"/> (defaults when null).</summary>
    public RewardTrainer(RewardTrainingOptions? options = null)
    {
        Options = options ?? new RewardTrainingOptions();
    }

    /// <summary>The training settings.</summary>
    public RewardTrainingOptions Options { get; }

    /// <summary>
    /// Trains <paramref name="network"/> in place (it ends with the online weights) and returns a model holding a separate
    /// EMA copy of it, the models' schedule and the base model's normaliser.
    /// </summary>
    /// <param name="baseModel">The frozen base model (its forward process makes x_t; its normaliser is the data space).</param>
    /// <param name="expertModel">The frozen expert model: same shape and schedule as the base.</param>
    /// <param name="network">A built-in reward network (<see cref="StateReward"/>, <see cref="TrajectoryReward"/>,
    /// <see cref="ImageReward"/>) of the models' shape, typically freshly initialised.</param>
    /// <param name="normalizedData">Training samples [N, ...shape], normalised with the base model's normaliser.</param>
    /// <param name="progress">Receives a report after every step.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <exception cref="ArgumentException">Incompatible models or network, a wrong data shape, or NaN/Inf in the data (the
    /// message names the first bad sample).</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public RelativeRewardModel Train(DiffusionModel baseModel, DiffusionModel expertModel, RewardNetwork network, Tensor normalizedData,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(normalizedData);
        Options.Validate();
        RewardNetworkArchitecture.KindOf(network ?? throw new ArgumentNullException(nameof(network)));
        var objective = new RelativeRewardObjective(baseModel, expertModel, network, Options.GradientAt, Options.MagnitudePenalty);
        var data = PrepareData(baseModel.Shape, normalizedData, RewardNetworkArchitecture.ParameterType(network));
        try
        {
            return TrainCore(objective, network, data, progress, cancellationToken);
        }
        finally
        {
            if (!ReferenceEquals(data, normalizedData))
                data.Dispose();
        }
    }

    private RelativeRewardModel TrainCore(RelativeRewardObjective objective, RewardNetwork network, Tensor data,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var options = Options;
        var baseModel = objective.BaseModel;
        var device = baseModel.Diffusion.Device;
        var schedule = baseModel.Diffusion.Schedule;
        int steps = schedule.Steps;
        long count = data.shape[0];
        network.to(device);
        network.train();

        var shadow = RewardNetworkArchitecture.CreateLike(network);
        try
        {
            var ema = new ExponentialMovingAverage(network, shadow, options.EmaDecay, options.EmaUpdateEvery, options.EmaStartStep);
            ema.CopyFromOnline();
            var parameters = network.parameters().ToArray();
            using var optimizer = new Adam(parameters, options.LearningRate);
            using var generator = TorchRandom.Generator(options.Seed);

            string run = RunDescription(network, schedule, count);
            int firstStep = 0;
            var recent = new Queue<double>(AverageWindow);
            double recentSum = 0;
            var before = TimeSpan.Zero;
            if (options.ResumeFromCheckpoint && options.CheckpointPath is not null && File.Exists(options.CheckpointPath))
            {
                var state = TrainingCheckpoint.Load(options.CheckpointPath, run, generator, network, shadow, optimizer);
                firstStep = state.CompletedSteps;
                before = state.Elapsed;
                foreach (var loss in state.RecentLosses.TakeLast(AverageWindow))
                {
                    recent.Enqueue(loss);
                    recentSum += loss;
                }
            }

            var batchShape = baseModel.Shape.BatchShape(options.BatchSize);
            using var cache = options.TargetCachePoolSize > 0
                ? new TargetCache(objective, data, options.TargetCachePoolSize, options.TargetCacheRefreshEvery, options.Seed, device)
                : null;
            var clock = Stopwatch.StartNew();
            for (int step = firstStep; step < options.TrainingSteps; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double lossValue;
                cache?.Prepare(step);
                using (var scope = NewDisposeScope())
                {
                    Tensor loss;
                    if (cache is not null)
                    {
                        // Only the batch's pool rows are drawn from the batch generator; the pool has its own.
                        var rows = randint(0, cache.Size, new long[] { options.BatchSize }, dtype: ScalarType.Int64, generator: generator);
                        var (at, steps0, target) = cache.Batch(rows);
                        loss = objective.LossAt(at, steps0, target);
                    }
                    else
                    {
                        var index = randint(0, count, new long[] { options.BatchSize }, dtype: ScalarType.Int64, generator: generator);
                        var t = randint(0, steps, new long[] { options.BatchSize }, dtype: ScalarType.Int64, generator: generator);
                        var noise = randn(batchShape, dtype: data.dtype, generator: generator);
                        var start = data.index_select(0, index);
                        if (device.type != DeviceType.CPU)
                        {
                            start = start.to(device);
                            t = t.to(device);
                            noise = noise.to(device);
                        }
                        loss = objective.Loss(start, t, noise);
                    }
                    optimizer.zero_grad();
                    loss.backward();
                    if (options.GradientClipNorm > 0)
                    {
                        var withGradient = parameters.Where(p => p.grad is not null).ToArray();
                        if (withGradient.Length > 0)
                            nn.utils.clip_grad_norm_(withGradient, options.GradientClipNorm);
                    }
                    optimizer.step();
                    lossValue = loss.ToDouble();
                }
                ema.Step(step);
                if (!double.IsFinite(lossValue))
                    throw new InvalidOperationException($"The relative reward loss became {lossValue} at step {step + 1}; lower the learning rate or set a gradient clip norm.");

                if (recent.Count == AverageWindow)
                    recentSum -= recent.Dequeue();
                recent.Enqueue(lossValue);
                recentSum += lossValue;
                progress?.Report(new TrainingProgress(step + 1, options.TrainingSteps, lossValue, recentSum / recent.Count, before + clock.Elapsed));

                bool last = step + 1 == options.TrainingSteps;
                if (options.CheckpointPath is not null && (last || (options.CheckpointEvery > 0 && (step + 1) % options.CheckpointEvery == 0)))
                    TrainingCheckpoint.Save(options.CheckpointPath, run, new TrainingCheckpointState(step + 1, before + clock.Elapsed, recent.ToArray()),
                        generator, network, shadow, optimizer);
            }
            if (options.TrainingSteps - 1 < options.EmaStartStep)
                ema.CopyFromOnline();   // still in the plain-copy phase: return the final weights, not a copy up to 9 steps old
            return new RelativeRewardModel(shadow, schedule, baseModel.Normalizer);
        }
        catch
        {
            shadow.Dispose();
            throw;
        }
    }

    private static Tensor PrepareData(SampleShape shape, Tensor data, ScalarType dtype)
    {
        shape.CheckBatch(data, "Relative reward training data");
        if (data.shape[0] < 1)
            throw new ArgumentException("The relative reward training data is empty.", nameof(data));
        if (!data.is_floating_point())
            throw new ArgumentException($"The training data must be floating point; got {data.dtype}.", nameof(data));
        using (var scope = NewDisposeScope())
        {
            var finite = data.isfinite().reshape(data.shape[0], -1).all(1);
            if (!finite.all().ToBoolean())
            {
                long first = finite.logical_not().nonzero()[0, 0].ToInt64();
                throw new ArgumentException($"The relative reward training data contains NaN or infinite values (first in sample {first}).", nameof(data));
            }
        }
        var prepared = data.device.type == DeviceType.CPU ? data : data.cpu();
        if (prepared.dtype != dtype)
        {
            var converted = prepared.to_type(dtype);
            if (!ReferenceEquals(prepared, data))
                prepared.Dispose();
            prepared = converted;
        }
        return prepared;
    }

    /// <summary>What must match for a checkpoint to be resumed: everything but the total step count.</summary>
    private string RunDescription(RewardNetwork network, NoiseSchedule schedule, long count)
    {
        var o = Options;
        return FormattableString.Invariant(
            $"RelativeReward; network {RewardNetworkArchitecture.Describe(network)}; schedule {schedule}; data {count}; batch {o.BatchSize}; lr {o.LearningRate:R}; ") +
            FormattableString.Invariant(
            $"at {o.GradientAt}; lambda {o.MagnitudePenalty:R}; ema {o.EmaDecay:R}/{o.EmaUpdateEvery}/{o.EmaStartStep}; clip {o.GradientClipNorm:R}; seed {o.Seed}") +
            (o.TargetCachePoolSize > 0 ? FormattableString.Invariant($"; target cache {o.TargetCachePoolSize}/{o.TargetCacheRefreshEvery}") : "");
    }
}
