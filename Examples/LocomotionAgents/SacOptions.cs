namespace MLReward.LocomotionAgents;

/// <summary>Hyper-parameters of <see cref="SacAgent"/> (defaults: the SAC paper's, with automatic entropy tuning).</summary>
public sealed record SacOptions
{
    /// <summary>Hidden layer widths of the actor and of each critic.</summary>
    public int[] HiddenSizes { get; init; } = [256, 256];

    /// <summary>Adam learning rate of actor, critics and temperature.</summary>
    public double LearningRate { get; init; } = 3e-4;

    /// <summary>Discount factor.</summary>
    public double Gamma { get; init; } = 0.99;

    /// <summary>Polyak factor of the target critics: target = (1 - tau) target + tau critic, after every update.</summary>
    public double Tau { get; init; } = 0.005;

    /// <summary>Minibatch size.</summary>
    public int BatchSize { get; init; } = 256;

    /// <summary>Initial temperature alpha.</summary>
    public double InitialAlpha { get; init; } = 1.0;

    /// <summary>Entropy target; null means -|A|.</summary>
    public double? TargetEntropy { get; init; }

    /// <summary>Tune alpha toward <see cref="TargetEntropy"/> (otherwise alpha stays at <see cref="InitialAlpha"/>).</summary>
    public bool AutoTuneAlpha { get; init; } = true;

    /// <summary>Seed of the network initialisation, the sampling noise of updates and of stochastic actions.</summary>
    public int Seed { get; init; }

    internal void Validate()
    {
        if (HiddenSizes.Length == 0 || HiddenSizes.Any(h => h < 1))
            throw new ArgumentException("Hidden sizes must be positive and non-empty.");
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchSize, 1);
        if (!(Gamma is >= 0 and <= 1) || !(Tau is > 0 and <= 1) || !(LearningRate > 0) || !(InitialAlpha > 0))
            throw new ArgumentException("Gamma must be in [0, 1], tau in (0, 1], learning rate and alpha positive.");
    }
}

/// <summary>Diagnostics of one <see cref="SacAgent.Update(TransitionBatch)"/>.</summary>
/// <param name="CriticLoss">Sum of both critics' mean squared TD errors.</param>
/// <param name="ActorLoss">mean(alpha log pi - min Q).</param>
/// <param name="Alpha">Temperature used in this update.</param>
/// <param name="Entropy">Monte-Carlo entropy estimate -mean(log pi) of the batch's fresh actions.</param>
/// <param name="MeanQ">Mean of Q1 on the batch.</param>
public readonly record struct SacUpdateStats(float CriticLoss, float ActorLoss, float Alpha, float Entropy, float MeanQ);
