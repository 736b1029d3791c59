using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

public sealed partial class DiffusionModel
{
    /// <summary>Rows of the expanded (levels x batch) batch that <see cref="DenoisingError"/> sends through the network at once.</summary>
    private const int DenoisingChunkRows = 256;

    /// <summary>Builds an untrained model: the schedule, the process and a freshly initialised network (seeded with
    /// <see cref="DiffusionModelOptions.Seed"/>).</summary>
    /// <param name="options">Shape, T, schedule, target, clamp, network and seed.</param>
    /// <param name="normalizer">The normaliser of the training data; the identity when null.</param>
    /// <param name="device">Where the network and the schedule's tables live; the CPU when null. The weights are
    /// initialised on the CPU and then moved, so a seed gives the same initial weights on every device.</param>
    /// <exception cref="ArgumentException">Missing shape, invalid step count, a network that cannot be built for the
    /// shape, or a normaliser for another shape.</exception>
    public static DiffusionModel Create(DiffusionModelOptions options, Normalizer? normalizer = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var shape = options.Shape ?? throw new ArgumentException($"{nameof(DiffusionModelOptions)}.{nameof(DiffusionModelOptions.Shape)} is required.", nameof(options));
        if (options.DiffusionSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.DiffusionSteps, "DiffusionSteps must be at least 1.");
        if (!Enum.IsDefined(options.Target))
            throw new ArgumentOutOfRangeException(nameof(options), options.Target, "Unknown prediction target.");
        normalizer ??= new IdentityNormalizer(shape);
        if (!normalizer.Shape.Equals(shape))
            throw new ArgumentException($"The normaliser is fitted for {normalizer.Shape} but the model's shape is {shape}.", nameof(normalizer));
        var networkOptions = (options.Denoiser ?? new DenoiserOptions()).Resolve(shape);
        var denoiser = TorchRandom.Initialize(options.Seed, () => networkOptions.Create(shape));
        MoveTo(denoiser, device);
        var diffusion = new GaussianDiffusion(NoiseSchedule.Create(options.Schedule, options.DiffusionSteps), options.Target, options.ClipDenoised, device);
        return new DiffusionModel(shape, diffusion, denoiser, normalizer);
    }

    /// <summary>Moves a network built (and seeded or loaded) on the CPU to <paramref name="device"/>; null or the CPU leaves it.</summary>
    private static void MoveTo(Denoiser denoiser, Device? device)
    {
        if (device is not null && device.type != DeviceType.CPU)
            denoiser.to(device);
    }

    /// <summary>The options that rebuild this model's architecture (not its weights or normaliser).</summary>
    /// <exception cref="NotSupportedException">The denoiser is not one of the library's networks.</exception>
    public DiffusionModelOptions GetOptions(int seed = 0) => new()
    {
        Shape = Shape,
        DiffusionSteps = Diffusion.Steps,
        Schedule = Diffusion.Schedule.Kind,
        Target = Diffusion.Target,
        ClipDenoised = Diffusion.ClipDenoised,
        Denoiser = DenoiserOptions.From(Denoiser),
        Seed = seed,
    };

    /// <summary>
    /// Unguided ancestral sampling in normalised space: x_T ~ N(0, I), then for t = T-1 .. 0
    /// <c>x &lt;- mu(x, t) + std_t z</c> (no noise at t = 0); the condition, when given, is applied to x_T and after
    /// every step. All randomness comes from <paramref name="generator"/>.
    /// </summary>
    /// <param name="count">Number of samples.</param>
    /// <param name="generator">The random source (e.g. <see cref="TorchRandom.Generator"/>).</param>
    /// <param name="condition">Known entries, broadcastable to [count, ...shape].</param>
    /// <returns>[count, ...shape] normalised samples (registered in the caller's dispose scope, if any).</returns>
    public Tensor Sample(int count, torch.Generator generator, InpaintingCondition? condition = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentNullException.ThrowIfNull(generator);
        var shape = Shape.BatchShape(count);
        CheckCondition(condition, shape);
        var schedule = Diffusion.Schedule;
        using var outer = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(shape, ScalarType.Float32, Diffusion.Device, generator: generator);
        if (condition is not null)
            x = condition.Apply(x);
        using var steps = empty(count, ScalarType.Int64, Diffusion.Device);
        for (int t = Diffusion.Steps - 1; t >= 0; t--)
        {
            using var scope = NewDisposeScope();
            steps.fill_(t);
            var next = ReverseMean(x, steps);
            if (t > 0)
            {
                double std = Math.Exp(0.5 * schedule.PosteriorLogVarianceClipped[t]);
                var noise = randn(shape, ScalarType.Float32, Diffusion.Device, generator: generator);
                next.add_(noise, alpha: std);
            }
            if (condition is not null)
                next = condition.Apply(next);
            next.MoveToOuterDisposeScope();
            x.Dispose();
            x = next;
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Unguided sampling with a fresh generator seeded with <paramref name="seed"/>.</summary>
    public Tensor Sample(int count, long seed, InpaintingCondition? condition = null)
    {
        using var generator = TorchRandom.Generator(seed);
        return Sample(count, generator, condition);
    }

    /// <summary>
    /// The denoising error of each sample: the mean squared x0 reconstruction error <c>mean((x0hat(x_t, t) - x0)^2)</c>
    /// averaged over <paramref name="noiseLevels"/> fixed steps <c>t_k = floor((k + 1/2) T / K)</c>, where
    /// <c>x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps_k</c> and <c>eps_k</c> is one noise tensor of the sample shape per
    /// level, drawn once from <paramref name="seed"/>. Every row meets the same noise, so a row's score does not depend
    /// on the batch it arrives in (up to float rounding in batched kernels). Low = typical under this model.
    /// </summary>
    /// <param name="normalizedBatch">[B, ...shape], already normalised with <see cref="Normalizer"/>.</param>
    /// <param name="noiseLevels">K, the number of steps averaged (capped at T).</param>
    /// <param name="seed">Seeds the per-level noise.</param>
    /// <returns>[B] float32 scores.</returns>
    public Tensor DenoisingError(Tensor normalizedBatch, int noiseLevels = 8, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(normalizedBatch);
        Shape.CheckBatch(normalizedBatch, nameof(DenoisingError));
        ArgumentOutOfRangeException.ThrowIfLessThan(noiseLevels, 1);
        var levels = DenoisingLevels(Diffusion.Steps, noiseLevels);
        int k = levels.Length;
        long b = normalizedBatch.shape[0];
        using var outer = NewDisposeScope();
        using var noGrad = no_grad();
        var x0 = normalizedBatch.to(ScalarType.Float32).to(Diffusion.Device);
        Tensor noise;
        using (var generator = TorchRandom.Generator(seed))
            noise = randn(Shape.BatchShape(k), ScalarType.Float32, Diffusion.Device, generator: generator);
        var levelSteps = tensor(levels.Select(l => (long)l).ToArray(), device: Diffusion.Device);
        var total = zeros(b, ScalarType.Float32, Diffusion.Device);
        long rows = k * b;
        for (long start = 0; start < rows; start += DenoisingChunkRows)
        {
            using var scope = NewDisposeScope();
            long end = Math.Min(rows, start + DenoisingChunkRows);
            var index = arange(start, end, ScalarType.Int64, Diffusion.Device);
            var level = index.div(b, RoundingMode.floor);
            var row = index.remainder(b);
            var start0 = x0.index_select(0, row);
            var t = levelSteps.index_select(0, level);
            var current = Diffusion.QSample(start0, t, noise.index_select(0, level));
            var estimate = Diffusion.EstimateStart(Denoiser.call(current, t), current, t);
            var error = estimate.sub_(start0).pow_(2).flatten(1).mean(new long[] { 1 });
            total.index_add_(0, row, error, 1);
        }
        return total.div_(k).MoveToOuterDisposeScope();
    }

    /// <summary>The K steps used by <see cref="DenoisingError"/>: floor((k + 1/2) T / K) for k = 0..K-1, K capped at T.</summary>
    internal static int[] DenoisingLevels(int steps, int noiseLevels)
    {
        int k = Math.Min(noiseLevels, steps);
        var levels = new int[k];
        for (int i = 0; i < k; i++)
            levels[i] = (int)Math.Floor((i + 0.5) * steps / k);
        return levels;
    }

    private void CheckCondition(InpaintingCondition? condition, long[] batchShape)
    {
        if (condition is null)
            return;
        var shape = condition.Values.shape;
        if (shape.Length != batchShape.Length)
            throw new ArgumentException($"The condition has shape [{string.Join(", ", shape)}]; it must broadcast to a batch [{string.Join(", ", batchShape)}] of {Shape}.", nameof(condition));
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] != batchShape[i] && shape[i] != 1)
                throw new ArgumentException($"The condition has shape [{string.Join(", ", shape)}]; it must broadcast to a batch [{string.Join(", ", batchShape)}] of {Shape}.", nameof(condition));
        }
    }
}
