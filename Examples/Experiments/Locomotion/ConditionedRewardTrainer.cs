using Microsoft.ML.RewardExtraction;
using TorchSharp;
using static TorchSharp.torch;

namespace MLReward.Experiments.Locomotion;

/// <summary>
/// The relative reward objective of docs/METHOD.md section 3 (the core <see cref="RelativeRewardObjective"/>'s differentiable half,
/// <see cref="RelativeRewardObjective.LossAt"/>), with its regression points conditioned the way the planner's samples
/// are: the diffusion models were trained (Diffuser-style) with the first observation inpainted on the noisy input, and the
/// planner inpaints it on every reverse step, so here too x_t gets the sample's clean first observation before
/// mu_base(x_t, t) and mu_expert(x_t, t) are computed. The inpainted entries of u = mu_base and of the target
/// mu_expert - mu_base are set to those known values (target 0 there), as guidance overwrites them anyway.
/// Targets are computed under no_grad for a pool of draws (x0, t, eps) and reused for
/// <see cref="RefreshEvery"/> steps; Adam on the reward's parameters; Diffuser's EMA rule; the EMA copy is returned.
/// </summary>
internal sealed class ConditionedRewardTrainer
{
    private const int TargetChunk = 1024;

    public required int TrainingSteps { get; init; }
    public required int BatchSize { get; init; }
    public required double LearningRate { get; init; }
    public required int PoolSize { get; init; }
    /// <summary>Steps between pool rebuilds; 0 = one pool for the whole run.</summary>
    public required int RefreshEvery { get; init; }
    public required int EmaStartStep { get; init; }
    public int EmaUpdateEvery { get; init; } = 10;
    public required long Seed { get; init; }

    /// <summary>Trains <paramref name="network"/> (online weights) and returns the EMA copy as a reward model.</summary>
    /// <param name="baseModel">Frozen base model (its normaliser defines the space).</param>
    /// <param name="expertModel">Frozen expert model.</param>
    /// <param name="network">Fresh trajectory reward.</param>
    /// <param name="shadow">A second network of the same architecture for the EMA weights (owned by the result).</param>
    /// <param name="data">Normalised windows [N, H, D].</param>
    /// <param name="mask">[1, H, D] boolean, true on the entries known when planning.</param>
    /// <param name="progress">(step, total, running loss).</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    public RelativeRewardModel Train(DiffusionModel baseModel, DiffusionModel expertModel, RewardNetwork network, RewardNetwork shadow,
        Tensor data, Tensor mask, Action<int, int, double>? progress, CancellationToken cancellationToken)
    {
        var objective = new RelativeRewardObjective(baseModel, expertModel, network, GradientLocation.BaseMean, 0);
        long count = data.shape[0];
        int steps = baseModel.Diffusion.Steps;
        network.train();
        var ema = new ExponentialMovingAverage(network, shadow, 0.995, EmaUpdateEvery, EmaStartStep);
        ema.CopyFromOnline();
        var parameters = network.parameters().ToArray();
        using var optimizer = optim.Adam(parameters, LearningRate);
        using var generator = TorchRandom.Generator(Seed);
        Tensor? at = null, poolT = null, target = null;
        double running = double.NaN;
        try
        {
            for (int step = 0; step < TrainingSteps; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (at is null || (RefreshEvery > 0 && step % RefreshEvery == 0))
                {
                    at?.Dispose(); poolT?.Dispose(); target?.Dispose();
                    (at, poolT, target) = BuildPool(baseModel, expertModel, data, mask, count, steps, generator);
                }
                double lossValue;
                using (var scope = NewDisposeScope())
                {
                    var index = randint(0, PoolSize, new long[] { BatchSize }, ScalarType.Int64, generator: generator);
                    var loss = objective.LossAt(at.index_select(0, index), poolT!.index_select(0, index), target!.index_select(0, index));
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();
                    lossValue = loss.item<float>();
                }
                if (!double.IsFinite(lossValue))
                    throw new InvalidOperationException($"The relative reward loss became {lossValue} at step {step + 1}.");
                ema.Step(step);
                running = double.IsNaN(running) ? lossValue : 0.98 * running + 0.02 * lossValue;
                progress?.Invoke(step + 1, TrainingSteps, running);
            }
            if (TrainingSteps - 1 < EmaStartStep)
                ema.CopyFromOnline();
        }
        finally
        {
            at?.Dispose(); poolT?.Dispose(); target?.Dispose();
        }
        return new RelativeRewardModel(shadow, baseModel.Diffusion.Schedule, baseModel.Normalizer);
    }

    private (Tensor At, Tensor T, Tensor Target) BuildPool(DiffusionModel baseModel, DiffusionModel expertModel, Tensor data, Tensor mask,
        long count, int steps, Generator generator)
    {
        var shape = baseModel.Shape.BatchShape(PoolSize);
        var at = empty(shape, ScalarType.Float32);
        var target = empty(shape, ScalarType.Float32);
        var t = randint(0, steps, new long[] { PoolSize }, ScalarType.Int64, generator: generator);
        for (int first = 0; first < PoolSize; first += TargetChunk)
        {
            int n = Math.Min(TargetChunk, PoolSize - first);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var index = randint(0, count, new long[] { n }, ScalarType.Int64, generator: generator);
            var noise = randn(baseModel.Shape.BatchShape(n), ScalarType.Float32, generator: generator);
            var start = data.index_select(0, index);
            var tt = t.narrow(0, first, n);
            var current = where(mask, start, baseModel.Diffusion.QSample(start, tt, noise));
            var baseMean = where(mask, start, baseModel.ReverseMean(current, tt));
            var expertMean = where(mask, start, expertModel.ReverseMean(current, tt));
            at.narrow(0, first, n).copy_(baseMean);
            target.narrow(0, first, n).copy_(expertMean.sub_(baseMean));
        }
        return (at, t, target);
    }
}
