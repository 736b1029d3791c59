using Microsoft.ML.RewardExtraction;
using TorchSharp;
using static TorchSharp.torch;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Trains a <see cref="PerStateReward"/> with the relative reward objective of docs/METHOD.md section 3: for x0 from the training samples,
/// t uniform in 0..T-1 and eps ~ N(0, I), x_t = q_sample(x0, t, eps), u = mu_base(x_t, t) and the target
/// mu_expert(x_t, t) - mu_base(x_t, t) (both under no_grad); r = R(u, t), g = d(sum r)/du (double backward),
/// loss = mean((g - target)^2) over the features the reward reads; Adam; the EMA rule of the core trainer.
/// <para>
/// With <see cref="PoolSize"/> &gt; 0 the (u, t, target) triples of a pool of P draws are computed once, in large batches
/// (where the two U-Nets cost a fraction per sample of what they cost at the training batch size), and every step draws its
/// minibatch from the pool: the same objective with its Monte-Carlo draws reused. With 0, every step draws fresh
/// triples (the exact method, as the core <see cref="RewardTrainer"/> does).
/// </para>
/// </summary>
internal sealed class CachedTargetRewardTrainer
{
    private const int TargetBatch = 512;

    public required int PoolSize { get; init; }
    public required int TrainingSteps { get; init; }
    public required int BatchSize { get; init; }
    public required double LearningRate { get; init; }
    public required long Seed { get; init; }
    public double EmaDecay { get; init; } = 0.995;
    public int EmaUpdateEvery { get; init; } = 10;
    public int EmaStartStep { get; init; } = 2000;

    /// <summary>
    /// When true (pool only), each sample's squared error is divided by the mean square of the pool's targets at its step t
    /// (weights normalised to mean 1), so that every noise level counts alike. Per t the minimiser is unchanged.
    /// </summary>
    public bool BalanceSteps { get; init; }

    /// <summary>The pool of (u, t, target) triples.</summary>
    public sealed class Pool(Tensor at, Tensor steps, Tensor target) : IDisposable
    {
        public Tensor At { get; } = at;
        public Tensor Steps { get; } = steps;
        public Tensor Target { get; } = target;

        public void Dispose()
        {
            At.Dispose();
            Steps.Dispose();
            Target.Dispose();
        }
    }

    /// <summary>Computes the pool of targets (reports 0..1 through <paramref name="progress"/>).</summary>
    public Pool ComputeTargets(DiffusionModel baseModel, DiffusionModel expertModel, Tensor normalizedData,
        Action<double>? progress, CancellationToken cancellationToken)
    {
        RelativeRewardObjective.CheckCompatible(baseModel, expertModel);
        using var generator = TorchRandom.Generator(Seed);
        var shape = baseModel.Shape.BatchShape(PoolSize);
        var at = empty(shape, ScalarType.Float32);
        var target = empty(shape, ScalarType.Float32);
        var t = empty(new long[] { PoolSize }, ScalarType.Int64);
        try
        {
            for (int first = 0; first < PoolSize; first += TargetBatch)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = Math.Min(TargetBatch, PoolSize - first);
                using var scope = NewDisposeScope();
                var (u, steps, difference) = Draw(baseModel, expertModel, normalizedData, n, generator);
                at.narrow(0, first, n).copy_(u);
                t.narrow(0, first, n).copy_(steps);
                target.narrow(0, first, n).copy_(difference);
                progress?.Invoke((double)(first + n) / PoolSize);
            }
            return new Pool(at, t, target);
        }
        catch
        {
            at.Dispose();
            target.Dispose();
            t.Dispose();
            throw;
        }
    }

    /// <summary>n fresh triples: x0 drawn uniformly from the data, t uniform, eps normal; u = mu_base, target = mu_expert - mu_base.</summary>
    private static (Tensor At, Tensor Steps, Tensor Target) Draw(DiffusionModel baseModel, DiffusionModel expertModel, Tensor data, int n, torch.Generator generator)
    {
        using var noGrad = no_grad();
        var index = randint(0, data.shape[0], new long[] { n }, ScalarType.Int64, generator: generator);
        var steps = randint(0, baseModel.Diffusion.Steps, new long[] { n }, ScalarType.Int64, generator: generator);
        var noise = randn(baseModel.Shape.BatchShape(n), ScalarType.Float32, generator: generator);
        var current = baseModel.Diffusion.QSample(data.index_select(0, index), steps, noise);
        var baseMean = baseModel.ReverseMean(current, steps);
        var expertMean = expertModel.ReverseMean(current, steps);
        return (baseMean, steps, expertMean.sub_(baseMean));
    }

    /// <summary>Per step t: 1 / mean(target^2) over the pool's samples at t, scaled so that the pool's mean weight is 1.</summary>
    private static Tensor StepWeights(Tensor steps, Tensor target, int stepCount)
    {
        using var scope = NewDisposeScope();
        var perSample = target.square().flatten(1).mean(new long[] { 1 }).to(ScalarType.Float64);
        var sum = zeros(stepCount, ScalarType.Float64).index_add_(0, steps, perSample, 1.0);
        var count = zeros(stepCount, ScalarType.Float64).index_add_(0, steps, ones_like(perSample), 1.0);
        var meanSquare = sum / count.clamp_min(1);
        var positive = meanSquare[meanSquare.gt(0)];
        double floor = positive.numel() > 0 ? positive.min().ToDouble() : 1.0;
        var weight = 1.0 / meanSquare.clamp_min(floor);
        weight = weight / weight.index_select(0, steps).mean();
        return weight.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Trains <paramref name="network"/> (in place; it ends with the online weights) and returns a model holding the EMA copy made
    /// by <paramref name="createShadow"/>. Batches come from <paramref name="pool"/> when given, otherwise they are drawn fresh from
    /// <paramref name="normalizedData"/> with the two models.
    /// </summary>
    public (RelativeRewardModel Model, double AverageLoss) Train(PerStateReward network, Func<PerStateReward> createShadow,
        DiffusionModel baseModel, DiffusionModel expertModel, Tensor normalizedData, Pool? pool,
        Action<int, double>? progress, CancellationToken cancellationToken)
    {
        var shadow = createShadow();
        try
        {
            network.train();
            var ema = new ExponentialMovingAverage(network, shadow, EmaDecay, EmaUpdateEvery, EmaStartStep);
            ema.CopyFromOnline();
            var parameters = network.parameters().ToArray();
            using var optimizer = optim.Adam(parameters, LearningRate);
            using var generator = TorchRandom.Generator(Seed + 1);
            using var weights = BalanceSteps && pool is not null ? StepWeights(pool.Steps, pool.Target * network.Mask, baseModel.Diffusion.Steps) : null;
            double denominator = network.Mask.sum().ToDouble() * network.Shape.Horizon;
            var recent = new Queue<double>();
            double sum = 0;
            for (int step = 0; step < TrainingSteps; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double lossValue;
                using (var scope = NewDisposeScope())
                {
                    Tensor at, t, target;
                    if (pool is not null)
                    {
                        var index = randint(0, pool.At.shape[0], new long[] { BatchSize }, ScalarType.Int64, generator: generator);
                        (at, t, target) = (pool.At.index_select(0, index), pool.Steps.index_select(0, index), pool.Target.index_select(0, index));
                    }
                    else
                    {
                        (at, t, target) = Draw(baseModel, expertModel, normalizedData, BatchSize, generator);
                    }
                    at.requires_grad_(true);
                    var reward = network.call(at, t);
                    var gradient = torch.autograd.grad(new[] { reward.sum() }, new[] { at }, retain_graph: true, create_graph: true)[0];
                    // Squared error over the features the reward reads (its gradient is zero in the others by construction).
                    var perSample = (gradient - target).square().mul_(network.Mask).flatten(1).sum(1).div_(denominator);
                    var loss = weights is null ? perSample.mean() : (perSample * weights.index_select(0, t)).mean();
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();
                    lossValue = loss.ToDouble();
                }
                ema.Step(step);
                if (!double.IsFinite(lossValue))
                    throw new InvalidOperationException($"The relative reward loss became {lossValue} at step {step + 1}; lower the reward learning rate.");
                recent.Enqueue(lossValue);
                sum += lossValue;
                if (recent.Count > 100)
                    sum -= recent.Dequeue();
                progress?.Invoke(step + 1, sum / recent.Count);
            }
            if (TrainingSteps - 1 < EmaStartStep)
                ema.CopyFromOnline();
            shadow.eval();
            return (new RelativeRewardModel(shadow, baseModel.Diffusion.Schedule, baseModel.Normalizer), recent.Count > 0 ? sum / recent.Count : double.NaN);
        }
        catch
        {
            shadow.Dispose();
            throw;
        }
    }
}
