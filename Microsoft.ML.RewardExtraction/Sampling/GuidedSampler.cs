using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Settings of reward guidance (<see cref="GuidedSampler"/>).</summary>
public sealed class GuidanceOptions
{
    /// <summary>Step size of x &lt;- x + scale * dR/dx. Default 0.1 (the benchmark's value; the paper's locomotion runs used
    /// 0.2-0.5 with T = 20). 0 = the unsteered base sampler, bit for bit.</summary>
    public double Scale { get; set; } = 0.1;

    /// <summary>No guidance at steps t &lt; this value (t_stopgrad). Default 0 (guide at every step); the paper used 5-10 with T = 20.</summary>
    public int StopGradientBelow { get; set; }

    /// <summary>Multiply the gradient by the posterior variance of step t (off in the paper's runs). Default false.</summary>
    public bool ScaleByVariance { get; set; }

    /// <summary>Guidance updates per reverse step, each with a fresh gradient. Default 1.</summary>
    public int GuideSteps { get; set; } = 1;

    /// <summary>Reverse steps of the sampler. 0 (default): the ancestral (DDPM) sampler over all T steps. S in 1..T: the
    /// deterministic DDIM sampler (eta = 0) over S of the T steps, evenly spaced from T-1 to 0
    /// (<see cref="GaussianDiffusion.StridedSteps"/>): all its noise is x_T, and it runs the denoiser S times instead of T.
    /// A DDIM step from t to t' guides with (t - t') <see cref="Scale"/>, standing for the ancestral steps it skips, so
    /// one scale means about the same steering at any S.</summary>
    public int SamplingSteps { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid guidance setting.</summary>
    public void Validate()
    {
        if (!double.IsFinite(Scale))
            throw new ArgumentOutOfRangeException(nameof(Scale), Scale, "The guidance scale must be finite.");
        if (StopGradientBelow < 0)
            throw new ArgumentOutOfRangeException(nameof(StopGradientBelow), StopGradientBelow, "The stop-gradient step must be >= 0.");
        if (GuideSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(GuideSteps), GuideSteps, "At least one guide step is needed.");
        if (SamplingSteps < 0)
            throw new ArgumentOutOfRangeException(nameof(SamplingSteps), SamplingSteps, "SamplingSteps must be 0 (every step, ancestral) or a number of DDIM steps >= 1.");
    }
}

/// <summary>
/// Ancestral sampling from a base diffusion model steered by a relative reward (classifier guidance, docs/METHOD.md section 7).
/// From x_T ~ N(0, I) (condition applied), for t = T-1..0: if guiding at t (scale != 0, t &gt;= t_stopgrad), repeat
/// <see cref="GuidanceOptions.GuideSteps"/> times: g = dR/dx (x, t) (times the posterior variance if asked),
/// x &lt;- x + scale g, re-apply the condition; then x &lt;- mu_base(x, t) + std_t z (no noise, and no draw, at t = 0) and
/// re-apply the condition. With <see cref="GuidanceOptions.SamplingSteps"/> = S the same guidance precedes each of S
/// deterministic DDIM steps instead (<see cref="GaussianDiffusion.DdimStep"/>), scaled by the number of ancestral steps each
/// DDIM step spans (so S steps push as far in total as T do), and x_T is the only draw. All noise comes from the caller's generator, in the order of <see cref="DiffusionModel.Sample(int, Generator, InpaintingCondition?)"/>;
/// with no reward, scale 0 or t_stopgrad &gt;= T that sampler itself runs, and steps without guidance use its exact arithmetic. Samples are in the normalised space; denormalise with the base model's normaliser.
/// </summary>
public sealed class GuidedSampler
{
    /// <summary>Creates a sampler with <paramref name="options"/> (defaults when null).</summary>
    public GuidedSampler(GuidanceOptions? options = null)
    {
        Options = options ?? new GuidanceOptions();
    }

    /// <summary>The guidance settings.</summary>
    public GuidanceOptions Options { get; }

    /// <summary>Draws <paramref name="count"/> normalised samples [count, ...shape].</summary>
    /// <param name="baseModel">The model to sample from.</param>
    /// <param name="reward">The reward that steers it; null = unguided.</param>
    /// <param name="count">Number of samples.</param>
    /// <param name="generator">Source of all noise (x_T and every reverse step), drawn for the whole batch at once.</param>
    /// <param name="condition">Known entries (inpainting) of shape [count or 1, ...shape], or null.</param>
    /// <param name="cancellationToken">Checked before every reverse step.</param>
    /// <exception cref="ArgumentException">The reward is built for another shape or another number of diffusion steps, or the condition's shape is wrong.</exception>
    public Tensor Sample(DiffusionModel baseModel, RelativeRewardModel? reward, int count, Generator generator,
        InpaintingCondition? condition = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(generator);
        Validate(baseModel, reward, count, condition);
        cancellationToken.ThrowIfCancellationRequested();
        if (!Guides(baseModel, reward) && Options.SamplingSteps == 0)
            return baseModel.Sample(count, generator, condition);   // unguided: the base model's own sampler, bit for bit
        var shape = baseModel.Shape.BatchShape(count);
        var device = baseModel.Diffusion.Device;
        return Run(baseModel, Guides(baseModel, reward) ? reward : null, count, () => randn(shape, ScalarType.Float32, device, generator: generator), condition, cancellationToken);
    }

    /// <summary>
    /// Draws one normalised sample per generator ([generators.Count, ...shape]); row i takes all its noise from
    /// <paramref name="generators"/>[i], so a row's sample does not depend on the other rows of the batch (up to float
    /// rounding in batched kernels) and equals the single-generator overload's sample for a batch of one with that generator.
    /// </summary>
    /// <param name="baseModel">The model to sample from.</param>
    /// <param name="reward">The reward that steers it; null = unguided.</param>
    /// <param name="generators">One noise source per row.</param>
    /// <param name="condition">Known entries (inpainting) of shape [count or 1, ...shape], or null.</param>
    /// <param name="cancellationToken">Checked before every reverse step.</param>
    public Tensor Sample(DiffusionModel baseModel, RelativeRewardModel? reward, IReadOnlyList<Generator> generators,
        InpaintingCondition? condition = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(generators);
        if (generators.Any(g => g is null))
            throw new ArgumentNullException(nameof(generators), "Every row needs a generator.");
        Validate(baseModel, reward, generators.Count, condition);
        cancellationToken.ThrowIfCancellationRequested();
        var rowShape = baseModel.Shape.BatchShape(1);
        var device = baseModel.Diffusion.Device;
        Tensor Draw()
        {
            if (generators.Count == 1)
                return randn(rowShape, ScalarType.Float32, device, generator: generators[0]);
            var rows = new Tensor[generators.Count];
            for (int i = 0; i < rows.Length; i++)
                rows[i] = randn(rowShape, ScalarType.Float32, device, generator: generators[i]);
            var batch = cat(rows, 0);
            foreach (var row in rows)
                row.Dispose();
            return batch;
        }
        return Run(baseModel, Guides(baseModel, reward) ? reward : null, generators.Count, Draw, condition, cancellationToken);
    }

    private bool Guides(DiffusionModel baseModel, RelativeRewardModel? reward)
        => reward is not null && Options.Scale != 0 && Options.StopGradientBelow < baseModel.Diffusion.Steps;

    private void Validate(DiffusionModel baseModel, RelativeRewardModel? reward, int count, InpaintingCondition? condition)
    {
        Options.Validate();
        if (count < 1)
            throw new ArgumentOutOfRangeException(nameof(count), count, "At least one sample must be drawn.");
        if (Options.SamplingSteps > baseModel.Diffusion.Steps)
            throw new ArgumentOutOfRangeException(nameof(GuidanceOptions.SamplingSteps), Options.SamplingSteps,
                $"SamplingSteps must lie in 0..{baseModel.Diffusion.Steps} (T of the base model).");
        if (reward is not null)
            CheckReward(baseModel, reward);
        if (condition is not null)
            CheckCondition(baseModel.Shape, condition, count);
    }

    /// <summary>The reverse chain; <paramref name="reward"/> null = no guidance. <paramref name="draw"/> gives one [count, ...shape] noise tensor per call.</summary>
    private Tensor Run(DiffusionModel baseModel, RelativeRewardModel? reward, int count, Func<Tensor> draw,
        InpaintingCondition? condition, CancellationToken cancellationToken)
    {
        var diffusion = baseModel.Diffusion;
        var schedule = diffusion.Schedule;
        var device = diffusion.Device;
        using var outer = NewDisposeScope();
        var x = draw();
        if (condition is not null)
            x = condition.Apply(x);
        using var steps = empty(count, ScalarType.Int64, device);
        int[] visited = Options.SamplingSteps == 0 ? GaussianDiffusion.StridedSteps(diffusion.Steps, diffusion.Steps) : GaussianDiffusion.StridedSteps(diffusion.Steps, Options.SamplingSteps);
        for (int i = 0; i < visited.Length; i++)
        {
            int step = visited[i];
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            steps.fill_(step);
            // A DDIM step from t to t' stands for the t - t' ancestral steps between them, each of which would have pushed x by
            // scale g: so it pushes by (t - t') scale g, and the total guidance does not shrink with the number of steps.
            int stride = Options.SamplingSteps == 0 ? 1 : i + 1 < visited.Length ? step - visited[i + 1] : step + 1;
            var current = reward is not null && step >= Options.StopGradientBelow ? Guide(reward, diffusion, x, steps, condition, stride) : x;
            Tensor next;
            using (no_grad())
            {
                if (Options.SamplingSteps > 0)
                {
                    next = diffusion.DdimStep(baseModel.EstimateStart(current, steps), current, step, i + 1 < visited.Length ? visited[i + 1] : -1);
                }
                else
                {
                    // The same arithmetic as DiffusionModel.Sample, so that unguided steps agree bit for bit.
                    next = baseModel.ReverseMean(current, steps);
                    if (step > 0)
                    {
                        double std = Math.Exp(0.5 * schedule.PosteriorLogVarianceClipped[step]);
                        next.add_(draw(), alpha: std);
                    }
                }
                if (condition is not null)
                    next = condition.Apply(next);
            }
            next.MoveToOuterDisposeScope();
            x.Dispose();
            x = next;
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary><see cref="GuidanceOptions.GuideSteps"/> times: x &lt;- x + stride scale dR/dx (x, t) (times the posterior
    /// variance if asked), the condition re-applied after each.</summary>
    private Tensor Guide(RelativeRewardModel reward, GaussianDiffusion diffusion, Tensor x, Tensor steps, InpaintingCondition? condition, int stride)
    {
        var current = x;
        for (int k = 0; k < Options.GuideSteps; k++)
        {
            var gradient = reward.Gradient(current, steps);
            if (gradient.dtype != current.dtype || gradient.device != current.device)
                gradient = gradient.to(current.dtype, current.device);
            if (Options.ScaleByVariance)
                gradient = gradient.mul_(diffusion.PosteriorVariance(steps, current));
            current = current.add(gradient, alpha: Options.Scale * stride);
            if (condition is not null)
                current = condition.Apply(current);
        }
        return current;
    }

    private static void CheckReward(DiffusionModel baseModel, RelativeRewardModel reward)
    {
        if (!reward.Shape.Equals(baseModel.Shape))
            throw new ArgumentException($"The reward is built for {reward.Shape} but the base model samples {baseModel.Shape}.", nameof(reward));
        if (reward.DiffusionSteps != baseModel.Diffusion.Steps)
            throw new ArgumentException($"The reward was trained for T = {reward.DiffusionSteps} diffusion steps but the base model has T = {baseModel.Diffusion.Steps}.", nameof(reward));
    }

    private static void CheckCondition(SampleShape shape, InpaintingCondition condition, int count)
    {
        var values = condition.Values.shape;
        bool ok = values.Length == shape.Dimensions.Count + 1 && (values[0] == count || values[0] == 1);
        for (int i = 0; ok && i < shape.Dimensions.Count; i++)
            ok = values[i + 1] == shape.Dimensions[i];
        if (!ok)
            throw new ArgumentException($"The condition has shape [{string.Join(", ", values)}]; expected [{count} or 1, {string.Join(", ", shape.Dimensions)}].", nameof(condition));
    }
}
