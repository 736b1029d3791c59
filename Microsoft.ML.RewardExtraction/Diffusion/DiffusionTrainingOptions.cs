namespace Microsoft.ML.RewardExtraction;

/// <summary>Settings of <see cref="DiffusionTrainer"/>: the shared optimisation settings (defaults: 1000 steps of 32,
/// Diffuser's batch size; Diffuser trains for 1e6 steps on a GPU, CPU runs are far shorter) and the loss weights.</summary>
public sealed class DiffusionTrainingOptions : OptimizationOptions
{
    /// <summary>Creates the default settings.</summary>
    public DiffusionTrainingOptions() : base(trainingSteps: 1000, batchSize: 32)
    {
    }

    /// <summary>
    /// Weights of the squared errors, one per entry of a sample (row-major over the model's sample shape); the loss is
    /// the mean of the weighted squared errors. Null (default) weighs every entry 1. A planner executes only the first
    /// action of a plan, so Diffuser weighs that action 10 times the rest in its locomotion runs; see
    /// <see cref="TrajectoryLossWeights"/>.
    /// </summary>
    public float[]? LossWeights { get; set; }

    /// <summary>
    /// Diffuser's loss weights for trajectories of <paramref name="horizon"/> steps of [action, observation]:
    /// step k weighs <paramref name="discount"/>^k, and the first step's <paramref name="actionSize"/> action entries
    /// weigh <paramref name="firstActionWeight"/>.
    /// </summary>
    /// <returns>horizon x transitionDimension weights for <see cref="LossWeights"/>.</returns>
    public static float[] TrajectoryLossWeights(int horizon, int transitionDimension, int actionSize, double firstActionWeight, double discount = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(horizon, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(transitionDimension, 1);
        if (actionSize < 0 || actionSize > transitionDimension)
            throw new ArgumentOutOfRangeException(nameof(actionSize), actionSize, $"The action size must lie in [0, {transitionDimension}] (the transition dimension).");
        if (!(firstActionWeight >= 0) || double.IsInfinity(firstActionWeight))
            throw new ArgumentOutOfRangeException(nameof(firstActionWeight), firstActionWeight, "The first action's weight must be a non-negative number.");
        if (!(discount > 0) || double.IsInfinity(discount))
            throw new ArgumentOutOfRangeException(nameof(discount), discount, "The discount must be a positive number.");
        var weights = new float[horizon * transitionDimension];
        for (int k = 0; k < horizon; k++)
            Array.Fill(weights, (float)Math.Pow(discount, k), k * transitionDimension, transitionDimension);
        Array.Fill(weights, (float)firstActionWeight, 0, actionSize);
        return weights;
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public override void Validate()
    {
        base.Validate();
        if (LossWeights is { } weights)
        {
            int bad = Array.FindIndex(weights, w => !(w >= 0) || float.IsInfinity(w));
            if (weights.Length == 0 || bad >= 0)
                throw new ArgumentOutOfRangeException(nameof(LossWeights), weights.Length == 0 ? "LossWeights is empty; use null for uniform weights."
                    : $"LossWeights[{bad}] is {weights[bad]}; every weight must be a finite number >= 0.");
        }
    }
}

/// <summary>What a <see cref="DiffusionTrainer"/> run did.</summary>
/// <param name="CompletedSteps">Optimiser steps done in total (including those restored from a checkpoint).</param>
/// <param name="ResumedFromStep">The step a checkpoint was resumed from; 0 for a fresh run.</param>
/// <param name="AverageLoss">The average loss over the last steps (NaN when no step ran).</param>
/// <param name="Elapsed">Training time, including time recorded in a resumed checkpoint.</param>
public sealed record DiffusionTrainingResult(int CompletedSteps, int ResumedFromStep, double AverageLoss, TimeSpan Elapsed);
