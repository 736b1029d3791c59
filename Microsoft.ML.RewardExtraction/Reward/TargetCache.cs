using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The pool behind <see cref="RewardTrainingOptions.TargetCachePoolSize"/>: for P triples (x0, t, eps) it holds t, the point
/// u where the reward's gradient is taken and the target mu_expert - mu_base, computed once by the frozen models
/// (<see cref="RelativeRewardObjective.Targets"/>). Pool number r is drawn from a generator of its own seeded with the
/// training seed and r, so a resumed run on data held in memory rebuilds exactly the pool an uninterrupted run had. Its x0
/// are drawn from the training samples like a batch, so with streamed data they come from the shuffle buffer (and are
/// replaced there by fresh rows).
/// </summary>
internal sealed class TargetCache : IDisposable
{
    /// <summary>Rows per frozen forward while the pool is built.</summary>
    private const int BuildChunk = 256;

    private readonly RelativeRewardObjective _objective;
    private readonly TrainingSamples _samples;
    private readonly ScalarType _dtype;
    private readonly int _size;
    private readonly int _refreshEvery;
    private readonly long _seed;
    private readonly Device _device;
    private Tensor? _at;
    private Tensor? _target;
    private Tensor? _steps;
    private Tensor? _stepWeights;
    private long _pool = -1;
    private readonly bool _ownsSamples;

    /// <summary>A pool over normalised samples held in <paramref name="data"/> [N, ...shape] (kept alive by the caller), of
    /// their dtype; see the other constructor.</summary>
    public TargetCache(RelativeRewardObjective objective, Tensor data, int size, int refreshEvery, long seed, Device device, bool balanceSteps = false)
        : this(objective, TrainingSamples.InMemory(objective.BaseModel.Shape, data), data.dtype, size, refreshEvery, seed, device, balanceSteps)
    {
        _ownsSamples = true;
    }

    /// <summary>A pool of <paramref name="size"/> draws from <paramref name="samples"/> (converted to <paramref name="dtype"/>),
    /// rebuilt every <paramref name="refreshEvery"/> steps (0 = never), its draws seeded from <paramref name="seed"/>, its tensors
    /// on <paramref name="device"/>; with <paramref name="balanceSteps"/> batches also carry noise-level weights
    /// (<see cref="RewardTrainingOptions.BalanceNoiseLevels"/>).</summary>
    public TargetCache(RelativeRewardObjective objective, TrainingSamples samples, ScalarType dtype, int size, int refreshEvery, long seed, Device device, bool balanceSteps = false)
    {
        BalanceSteps = balanceSteps;
        _objective = objective;
        _samples = samples;
        _dtype = dtype;
        _size = size;
        _refreshEvery = refreshEvery;
        _seed = seed;
        _device = device;
    }

    /// <summary>Whether batches carry noise-level weights.</summary>
    public bool BalanceSteps { get; }

    /// <summary>Pool size P.</summary>
    public int Size => _size;

    /// <summary>Makes sure the pool for <paramref name="step"/> (0-based) is the current one, building it if needed.</summary>
    public void Prepare(int step)
    {
        long pool = _refreshEvery > 0 ? step / _refreshEvery : 0;
        if (pool == _pool)
            return;
        Build(pool);
        _pool = pool;
    }

    /// <summary>Rows <paramref name="index"/> ([B] int64 in 0..P-1) of the pool: (u, t, target, weight), fresh tensors of the
    /// caller's scope; weight is null unless <see cref="BalanceSteps"/>.</summary>
    public (Tensor At, Tensor T, Tensor Target, Tensor? Weight) Batch(Tensor index)
    {
        if (_at is null || _target is null || _steps is null)
            throw new InvalidOperationException("The target cache has not been built.");
        if (index.device != _device)
            index = index.to(_device);
        var steps = _steps.index_select(0, index);
        return (_at.index_select(0, index), steps, _target.index_select(0, index), _stepWeights?.index_select(0, steps));
    }

    /// <summary>
    /// Noise-level weights [T]: per step t, 1 / the pool's mean squared target at t (over the loss mask's entries), scaled so
    /// that the mean weight over the pool's samples is 1. Steps the pool never drew get the largest weight.
    /// </summary>
    internal static Tensor StepWeights(Tensor steps, Tensor target, Tensor? lossMask, int stepCount)
    {
        using var scope = NewDisposeScope();
        var perSample = RelativeRewardObjective.PerSampleMean(target.square(), lossMask).to(ScalarType.Float64).cpu();
        var stepsCpu = steps.cpu();
        var sum = zeros(stepCount, ScalarType.Float64).index_add_(0, stepsCpu, perSample, 1.0);
        var count = zeros(stepCount, ScalarType.Float64).index_add_(0, stepsCpu, ones_like(perSample), 1.0);
        var meanSquare = sum / count.clamp_min(1);
        var positive = meanSquare[meanSquare.gt(0)];
        double floor = positive.numel() > 0 ? positive.min().ToDouble() : 1.0;
        var weight = 1.0 / meanSquare.clamp_min(floor);
        weight = weight / weight.index_select(0, stepsCpu).mean();
        return weight.to(target.dtype).to(target.device).MoveToOuterDisposeScope();
    }

    /// <summary>Seed of pool number <paramref name="pool"/>: the training seed and r mixed, so pools differ from each other
    /// and from the batch generator's stream.</summary>
    internal static long PoolSeed(long seed, long pool) => unchecked(seed * 1_000_003 + 0x5DEECE66DL * (pool + 1));

    private void Build(long pool)
    {
        Release();
        var baseModel = _objective.BaseModel;
        int steps = baseModel.Diffusion.Steps;
        var shape = baseModel.Shape.BatchShape(_size);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var generator = TorchRandom.Generator(PoolSeed(_seed, pool));
        var clean = _samples.Draw(_size, generator);
        var t = randint(0, steps, new long[] { _size }, dtype: ScalarType.Int64, generator: generator);
        var noise = randn(shape, dtype: _dtype, generator: generator);
        if (clean.dtype != _dtype)
            clean = clean.to_type(_dtype);
        var at = empty(shape, _dtype, _device);
        var target = empty(shape, _dtype, _device);
        var onDevice = t.to(_device);
        for (long first = 0; first < _size; first += BuildChunk)
        {
            using var chunkScope = NewDisposeScope();
            long rows = Math.Min(BuildChunk, _size - first);
            var start = clean.narrow(0, first, rows);
            var eps = noise.narrow(0, first, rows);
            var steps0 = t.narrow(0, first, rows);
            if (_device.type != DeviceType.CPU)
            {
                start = start.to(_device);
                eps = eps.to(_device);
                steps0 = steps0.to(_device);
            }
            var (u, y) = _objective.Targets(start, steps0, eps);
            at.narrow(0, first, rows).copy_(u);
            target.narrow(0, first, rows).copy_(y);
        }
        if (BalanceSteps)
            _stepWeights = StepWeights(onDevice, target, _objective.LossMask, steps).DetachFromDisposeScope();
        _at = at.DetachFromDisposeScope();
        _target = target.DetachFromDisposeScope();
        _steps = onDevice.DetachFromDisposeScope();
    }

    private void Release()
    {
        _at?.Dispose();
        _target?.Dispose();
        _steps?.Dispose();
        _stepWeights?.Dispose();
        _at = _target = _steps = _stepWeights = null;
    }

    public void Dispose()
    {
        Release();
        if (_ownsSamples)
            _samples.Dispose();
    }
}
