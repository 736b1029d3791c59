using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Where the reward's input gradient is taken in the relative reward objective.</summary>
public enum GradientLocation
{
    /// <summary>At the base model's reverse mean u = mu_base(x_t, t) (docs/METHOD.md section 3 default, the paper's trajectory experiments).</summary>
    BaseMean = 0,
    /// <summary>At the noisy sample u = x_t itself (the paper's image variant). The target is still mu_expert - mu_base.</summary>
    Current = 1,
}

/// <summary>
/// The gradient-alignment objective of relative reward extraction (docs/METHOD.md section 3), for one batch of normalised clean
/// samples x0 with steps t and noise eps:
/// x_t = q_sample(x0, t, eps); without gradients muB = mu_base(x_t, t), muE = mu_expert(x_t, t) (each model with its own
/// x0 clamp); u = muB (or x_t) as a leaf that requires grad; r = R(u, t); g = d(sum r)/du with create_graph;
/// loss = mean((g - (muE - muB))^2) + lambda * mean(r^2).
/// The two diffusion models are frozen: they run under no_grad and their parameters receive no gradient.
/// Optionally (docs/METHOD.md section 5): a condition mask inpaints the known entries of the clean sample
/// into x_t, u and both means (target 0 there); a loss mask restricts the mean to the entries the reward reads; per-sample
/// weights balance the noise levels.
/// </summary>
public sealed class RelativeRewardObjective
{
    /// <summary>Binds the objective to two compatible models and a reward network of their shape.</summary>
    /// <param name="baseModel">The base (low-reward) diffusion model; its forward process makes x_t.</param>
    /// <param name="expertModel">The expert (high-reward) diffusion model: same sample shape and schedule.</param>
    /// <param name="reward">The reward network being trained.</param>
    /// <param name="gradientAt">Where the input gradient is taken.</param>
    /// <param name="magnitudePenalty">lambda &gt;= 0, the weight of mean(r^2) (0 = off).</param>
    /// <exception cref="ArgumentException">The models differ in shape or schedule, or the reward is built for another shape.</exception>
    /// <param name="lossMask">1 (or true) on the entries the loss covers, shape [...shape] or [1, ...shape]; null = all.</param>
    /// <param name="conditionMask">True on the entries known when sampling, shape [...shape] or [1, ...shape]; null = none.</param>
    public RelativeRewardObjective(DiffusionModel baseModel, DiffusionModel expertModel, RewardNetwork reward,
        GradientLocation gradientAt = GradientLocation.BaseMean, double magnitudePenalty = 0, Tensor? lossMask = null, Tensor? conditionMask = null)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(expertModel);
        ArgumentNullException.ThrowIfNull(reward);
        CheckCompatible(baseModel, expertModel);
        CheckReward(baseModel, reward);
        if (!Enum.IsDefined(gradientAt))
            throw new ArgumentOutOfRangeException(nameof(gradientAt), gradientAt, "Unknown gradient location.");
        if (!(magnitudePenalty >= 0) || double.IsInfinity(magnitudePenalty))
            throw new ArgumentOutOfRangeException(nameof(magnitudePenalty), magnitudePenalty, "The magnitude penalty must be a finite number >= 0.");
        BaseModel = baseModel;
        ExpertModel = expertModel;
        Reward = reward;
        GradientAt = gradientAt;
        MagnitudePenalty = magnitudePenalty;
        var device = baseModel.Diffusion.Device;
        LossMask = lossMask is null ? null : SampleMask(baseModel.Shape, lossMask, nameof(lossMask)).to(ScalarType.Float32, device);
        ConditionMask = conditionMask is null ? null : SampleMask(baseModel.Shape, conditionMask, nameof(conditionMask)).ne(0).to(device);
        if (LossMask is not null && !(LossMask.sum().ToSingle() > 0))
            throw new ArgumentException("The loss mask covers no entry.", nameof(lossMask));
    }

    /// <summary>The entries the loss covers ([1, ...shape], 0/1), or null for all.</summary>
    public Tensor? LossMask { get; }

    /// <summary>The entries known when sampling ([1, ...shape], boolean), or null.</summary>
    public Tensor? ConditionMask { get; }

    /// <summary>Per sample, the mean of <paramref name="values"/> [B, ...shape] over the entries of <paramref name="mask"/>
    /// ([1, ...shape], 0/1; null = all entries): [B].</summary>
    internal static Tensor PerSampleMean(Tensor values, Tensor? mask)
        => mask is null ? values.flatten(1).mean(new long[] { 1 }) : values.mul(mask).flatten(1).sum(1).div(mask.sum());

    private static Tensor SampleMask(SampleShape shape, Tensor mask, string name)
    {
        var dims = shape.BatchShape(1);
        if (mask.shape.SequenceEqual(dims.Skip(1)))
            return mask.unsqueeze(0);
        if (mask.shape.SequenceEqual(dims))
            return mask.alias();
        throw new ArgumentException($"The mask must have shape [{string.Join(", ", dims.Skip(1))}] or [{string.Join(", ", dims)}]; got [{string.Join(", ", mask.shape)}].", name);
    }

    /// <summary>The base model.</summary>
    public DiffusionModel BaseModel { get; }
    /// <summary>The expert model.</summary>
    public DiffusionModel ExpertModel { get; }
    /// <summary>The reward network R(x, t).</summary>
    public RewardNetwork Reward { get; }
    /// <summary>Where the input gradient is taken.</summary>
    public GradientLocation GradientAt { get; }
    /// <summary>lambda, the weight of mean(r^2).</summary>
    public double MagnitudePenalty { get; }

    /// <summary>Throws a clear <see cref="ArgumentException"/> unless base and <paramref name="other"/> share sample shape and
    /// noise schedule (kind and T).</summary>
    /// <param name="baseModel">The base model.</param>
    /// <param name="other">The model paired with it.</param>
    /// <param name="role">What <paramref name="other"/> is, in messages and as the parameter name: "expert" or "reference".</param>
    public static void CheckCompatible(DiffusionModel baseModel, DiffusionModel other, string role = "expert")
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(other);
        string parameter = role + "Model";
        if (!baseModel.Shape.Equals(other.Shape))
            throw new ArgumentException($"The base and {role} models must have the same sample shape: base is {baseModel.Shape}, {role} is {other.Shape}.", parameter);
        var b = baseModel.Diffusion.Schedule;
        var e = other.Diffusion.Schedule;
        if (b.Kind != e.Kind || b.Steps != e.Steps)
            throw new ArgumentException($"The base and {role} models must share one noise schedule: base is {b}, {role} is {e}.", parameter);
        if (!ComputeDevice.Same(baseModel.Diffusion.Device, other.Diffusion.Device))
            throw new ArgumentException($"The base and {role} models must be on one device: base is on {ComputeDevice.Describe(baseModel.Diffusion.Device)}, {role} on {ComputeDevice.Describe(other.Diffusion.Device)}.", parameter);
    }

    /// <summary>Throws a clear <see cref="ArgumentException"/> unless the reward network is built for the model's sample shape.</summary>
    public static void CheckReward(DiffusionModel model, RewardNetwork reward)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(reward);
        if (!reward.Shape.Equals(model.Shape))
            throw new ArgumentException($"The reward network is built for {reward.Shape} but the diffusion models' samples are {model.Shape}.", nameof(reward));
    }

    /// <summary>
    /// The loss of one batch (a scalar with a graph to the reward's parameters; call backward on it). Open a dispose
    /// scope around the call: the intermediates are ordinary tensors of the caller's scope.
    /// </summary>
    /// <param name="start">Normalised clean samples x0, [B, ...shape].</param>
    /// <param name="t">Steps, [B] int64 in 0..T-1.</param>
    /// <param name="noise">eps, same shape as <paramref name="start"/>.</param>
    public Tensor Loss(Tensor start, Tensor t, Tensor noise)
    {
        BaseModel.Shape.CheckBatch(start, "Relative reward objective input");
        if (t.dim() != 1 || t.shape[0] != start.shape[0])
            throw new ArgumentException($"Expected one step per sample ([{start.shape[0]}]), got [{string.Join(", ", t.shape)}].", nameof(t));
        if (!noise.shape.SequenceEqual(start.shape))
            throw new ArgumentException($"The noise has shape [{string.Join(", ", noise.shape)}] but the samples have [{string.Join(", ", start.shape)}].", nameof(noise));

        var (at, target) = Targets(start, t, noise);
        return LossAt(at, t, target);
    }

    /// <summary>
    /// The frozen half of <see cref="Loss"/>, computed without gradients: x_t = q_sample(x0, t, eps), the point u where the
    /// reward's gradient is taken (mu_base(x_t, t) or x_t) and the target mu_expert(x_t, t) - mu_base(x_t, t). It depends only
    /// on the two frozen models, so it can be computed once and reused (<see cref="RewardTrainingOptions.TargetCachePoolSize"/>). With a
    /// <see cref="ConditionMask"/> the known entries of x_t, u and both means are the clean sample's (target 0 there).
    /// </summary>
    public (Tensor At, Tensor Target) Targets(Tensor start, Tensor t, Tensor noise)
    {
        using (no_grad())
        {
            var current = BaseModel.Diffusion.QSample(start, t, noise);
            if (ConditionMask is null)
            {
                var baseMean = BaseModel.ReverseMean(current, t);
                var target = ExpertModel.ReverseMean(current, t).sub_(baseMean);
                return (GradientAt == GradientLocation.BaseMean ? baseMean : current, target);
            }
            // As the planner samples: the known entries are the clean sample's in x_t and in both means.
            current = where(ConditionMask, start, current);
            var conditionedBase = where(ConditionMask, start, BaseModel.ReverseMean(current, t));
            var conditionedExpert = where(ConditionMask, start, ExpertModel.ReverseMean(current, t));
            return (GradientAt == GradientLocation.BaseMean ? conditionedBase : current, conditionedExpert.sub_(conditionedBase));
        }
    }

    /// <summary>The differentiable half of <see cref="Loss"/>: r = R(u, t), g = d(sum r)/du with create_graph,
    /// mean((g - target)^2) + lambda mean(r^2), the mean taken over the entries of <see cref="LossMask"/> and weighted per
    /// sample by <paramref name="weights"/> when given. <paramref name="at"/> must be a tensor without history (it is made a
    /// leaf that requires grad).</summary>
    /// <param name="at">The points u, [B, ...shape].</param>
    /// <param name="t">Steps, [B] int64.</param>
    /// <param name="target">mu_expert - mu_base, [B, ...shape].</param>
    /// <param name="weights">Per-sample weights [B] of the squared error (e.g. noise-level balancing), or null.</param>
    public Tensor LossAt(Tensor at, Tensor t, Tensor target, Tensor? weights = null)
    {
        // Leaves created under no_grad: no history to detach from, no copy needed.
        at.requires_grad_(true);
        var reward = Reward.call(at, t);
        Tensor gradient;
        using (InputGradientPass.Enter())
            gradient = torch.autograd.grad(new[] { reward.sum() }, new[] { at }, retain_graph: true, create_graph: true)[0];
        Tensor loss;
        if (LossMask is null && weights is null)
        {
            loss = nn.functional.mse_loss(gradient, target);
        }
        else
        {
            var perSample = PerSampleMean((gradient - target).square(), LossMask);
            loss = weights is null ? perSample.mean() : perSample.mul(weights).mean();
        }
        if (MagnitudePenalty > 0)
            loss = loss + reward.square().mean() * MagnitudePenalty;
        return loss;
    }
}
