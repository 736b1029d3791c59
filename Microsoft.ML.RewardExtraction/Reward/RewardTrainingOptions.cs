namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Settings of <see cref="RewardTrainer"/>: the shared optimisation settings (defaults: 2000 steps of 64, CPU-sized; the
/// paper's GPU runs used 50k-100k steps at batch 128-256, docs/METHOD.md section 9) and what the relative reward objective fits.
/// Every setting's default gives the plain objective of docs/METHOD.md section 3.
/// </summary>
public sealed class RewardTrainingOptions : OptimizationOptions
{
    /// <summary>Creates the default settings.</summary>
    public RewardTrainingOptions() : base(trainingSteps: 2000, batchSize: 64)
    {
    }

    /// <summary>Where the reward's input gradient is taken. Default <see cref="GradientLocation.BaseMean"/>.</summary>
    public GradientLocation GradientAt { get; set; } = GradientLocation.BaseMean;

    /// <summary>lambda, weight of the reward magnitude penalty mean(r^2). Default 0 (off, as the paper).</summary>
    public double MagnitudePenalty { get; set; }

    /// <summary>
    /// The features the reward reads and is fitted on: one flag per feature of a transition (trajectories: the transition
    /// dimension D, e.g. only the position of [action, position, velocity]) or per channel (images). The trained network
    /// sees the other features as zero (it is wrapped in a <see cref="FeatureMaskedReward"/>, so its gradient there is
    /// zero), and the loss is the mean squared error over the read entries only. Null or all true (default) = every feature.
    /// </summary>
    public bool[]? FeatureMask { get; set; }

    /// <summary>
    /// Conditioning by inpainting, as the planner samples: one flag per entry of a sample (row-major over the sample shape),
    /// true where the value is known when sampling (e.g. the first observation, see <see cref="FirstObservationCondition"/>).
    /// Those entries of x_t are set to the clean sample's values before the two models' means are taken, and those entries of
    /// u and of both means too, so their target is 0. Null (default) = unconditioned.
    /// </summary>
    public bool[]? ConditionMask { get; set; }

    /// <summary>
    /// The entries whose gradient is fitted: one flag per entry of a sample (row-major over the sample shape), true where the
    /// reward's gradient is matched to the two models' difference. The loss is the mean squared error over the entries that
    /// are both fitted and read (<see cref="FeatureMask"/>); the network still reads every read entry. Use it when only part
    /// of a sample carries the signal the reward should explain, e.g. the last steps of a window for a per-state navigation
    /// reward (<see cref="LastStepsMask"/>, docs/METHOD.md section 5). Null (default) = every entry.
    /// </summary>
    public bool[]? LossMask { get; set; }

    /// <summary>
    /// Noise-level balancing (needs the target pool): each sample's squared error is divided by the pool's mean squared
    /// target at its step t (over the read features), with the weights scaled to mean 1 over the pool, so every noise level
    /// counts alike. Per t the minimiser is unchanged. Default false.
    /// </summary>
    public bool BalanceNoiseLevels { get; set; }

    /// <summary>
    /// Target pool (0 = off = the exact method, the default). The base and expert models are frozen, so for a pool of this
    /// many (x0, t, noise) draws the regression input u and target mu_expert - mu_base are computed once and reused: each
    /// step draws its batch from the pool (with replacement) and runs only the reward network. The pool is rebuilt every
    /// <see cref="TargetCacheRefreshEvery"/> steps. A finite pool instead of fresh draws changes the sampling of the
    /// objective, so results differ from the exact mode.
    /// </summary>
    public int TargetCachePoolSize { get; set; }

    /// <summary>Steps between rebuilds of the target pool (0 = build it once). Pool number r = step / K is drawn from its
    /// own generator seeded with <see cref="OptimizationOptions.Seed"/> and r, so a resumed run rebuilds exactly the same
    /// pool. Ignored when <see cref="TargetCachePoolSize"/> is 0. Default 1000.</summary>
    public int TargetCacheRefreshEvery { get; set; } = 1000;

    /// <summary>A <see cref="ConditionMask"/> that marks the first observation of a trajectory of [action, observation]
    /// rows: entries actionSize..D-1 of the first step (what a planner knows when it starts planning).</summary>
    public static bool[] FirstObservationCondition(int horizon, int transitionDimension, int actionSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(horizon, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(transitionDimension, 1);
        if (actionSize < 0 || actionSize >= transitionDimension)
            throw new ArgumentOutOfRangeException(nameof(actionSize), actionSize, $"The action size must lie in [0, {transitionDimension - 1}] (the transition dimension is {transitionDimension}).");
        var mask = new bool[horizon * transitionDimension];
        Array.Fill(mask, true, actionSize, transitionDimension - actionSize);
        return mask;
    }

    /// <summary>A <see cref="LossMask"/> that fits the last <paramref name="steps"/> steps of a trajectory of
    /// <paramref name="horizon"/> rows of <paramref name="transitionDimension"/> features (every feature of those rows).</summary>
    public static bool[] LastStepsMask(int horizon, int transitionDimension, int steps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(horizon, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(transitionDimension, 1);
        if (steps < 1 || steps > horizon)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"The number of fitted steps must lie in [1, {horizon}] (the horizon).");
        var mask = new bool[horizon * transitionDimension];
        Array.Fill(mask, true, (horizon - steps) * transitionDimension, steps * transitionDimension);
        return mask;
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid training setting.</summary>
    public override void Validate()
    {
        base.Validate();
        if (!Enum.IsDefined(GradientAt))
            throw new ArgumentOutOfRangeException(nameof(GradientAt), GradientAt, "Unknown gradient location.");
        if (!(MagnitudePenalty >= 0) || double.IsInfinity(MagnitudePenalty))
            throw new ArgumentOutOfRangeException(nameof(MagnitudePenalty), MagnitudePenalty, "MagnitudePenalty must be a finite number >= 0.");
        if (FeatureMask is { } features && (features.Length == 0 || !features.Any(f => f)))
            throw new ArgumentOutOfRangeException(nameof(FeatureMask), features.Length == 0 ? "FeatureMask is empty; use null to read every feature."
                : "FeatureMask selects no feature; the reward must read at least one.");
        if (ConditionMask is { Length: 0 })
            throw new ArgumentOutOfRangeException(nameof(ConditionMask), "ConditionMask is empty; use null for no conditioning.");
        if (LossMask is { } fitted && (fitted.Length == 0 || !fitted.Any(f => f)))
            throw new ArgumentOutOfRangeException(nameof(LossMask), fitted.Length == 0 ? "LossMask is empty; use null to fit every entry."
                : "LossMask selects no entry; the loss must fit at least one.");
        if (TargetCachePoolSize < 0)
            throw new ArgumentOutOfRangeException(nameof(TargetCachePoolSize), TargetCachePoolSize, "TargetCachePoolSize must be >= 0 (0 = off).");
        if (TargetCacheRefreshEvery < 0)
            throw new ArgumentOutOfRangeException(nameof(TargetCacheRefreshEvery), TargetCacheRefreshEvery, "TargetCacheRefreshEvery must be >= 0 (0 = never).");
        if (BalanceNoiseLevels && TargetCachePoolSize == 0)
            throw new ArgumentOutOfRangeException(nameof(BalanceNoiseLevels), BalanceNoiseLevels, "BalanceNoiseLevels weighs each step by the target pool's mean squared target at it; set TargetCachePoolSize > 0.");
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless the masks fit samples of <paramref name="shape"/>.</summary>
    public void CheckShape(SampleShape shape)
    {
        int features = shape.FeatureCount;
        if (FeatureMask is { } mask && mask.Length != features)
            throw new ArgumentException($"{nameof(FeatureMask)} has {mask.Length} flags but a sample of shape {shape} has {features} {(shape.Kind == SampleShapeKind.Image ? "channels" : "features per transition")}.", nameof(FeatureMask));
        if (ConditionMask is { } condition && condition.Length != shape.Length)
            throw new ArgumentException($"{nameof(ConditionMask)} has {condition.Length} flags but a sample of shape {shape} has {shape.Length} entries.", nameof(ConditionMask));
        if (LossMask is { } fitted)
        {
            if (fitted.Length != shape.Length)
                throw new ArgumentException($"{nameof(LossMask)} has {fitted.Length} flags but a sample of shape {shape} has {shape.Length} entries.", nameof(LossMask));
            if (FeatureMask is { } read && !Enumerable.Range(0, fitted.Length).Any(i => fitted[i] && read[i % features]))
                throw new ArgumentException($"{nameof(LossMask)} and {nameof(FeatureMask)} share no entry: the loss would fit nothing the reward reads.", nameof(LossMask));
        }
    }
}
