namespace Microsoft.ML.RewardExtraction;

/// <summary>Settings of <see cref="DiffusionTrainer"/>. The defaults follow Diffuser where it has one.</summary>
public sealed class DiffusionTrainingOptions
{
    /// <summary>Optimiser steps. Default 1000 (Diffuser trains for 1e6 steps on a GPU; CPU runs are far shorter).</summary>
    public int TrainingSteps { get; set; } = 1000;

    /// <summary>Samples per step, drawn uniformly with replacement. Default 32 (Diffuser's).</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Adam learning rate. Default 2e-4 (Diffuser's).</summary>
    public double LearningRate { get; set; } = 2e-4;

    /// <summary>Maximum global gradient norm; 0 turns clipping off. Default 0 (Diffuser does not clip).</summary>
    public double GradientClipNorm { get; set; }

    /// <summary>EMA decay. Default 0.995 (Diffuser's).</summary>
    public double EmaDecay { get; set; } = 0.995;

    /// <summary>Steps between EMA updates. Default 10 (Diffuser's).</summary>
    public int EmaUpdateEvery { get; set; } = 10;

    /// <summary>Before this step the EMA weights are a plain copy of the online weights. Default 2000 (Diffuser's).
    /// When the whole run ends before it, the EMA weights are set to the final online weights.</summary>
    public int EmaStartStep { get; set; } = 2000;

    /// <summary>Seeds the batch indices, steps and noise. Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>Checkpoint file; null (default) writes none. When it exists at the start of training and
    /// <see cref="ResumeFromCheckpoint"/> is set, training resumes from it.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Steps between checkpoints (a checkpoint is also written at the end and on cancellation). Default 1000.</summary>
    public int CheckpointEvery { get; set; } = 1000;

    /// <summary>Whether an existing checkpoint is resumed. Default true.</summary>
    public bool ResumeFromCheckpoint { get; set; } = true;

    /// <summary>torch's intra-op thread count during training (process-wide; restored afterwards); 0 (default) leaves it.</summary>
    public int Threads { get; set; }

    /// <summary>Number of recent steps averaged in <see cref="TrainingProgress.AverageLoss"/>. Default 100.</summary>
    public int LossAverageWindow { get; set; } = 100;

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
    public void Validate()
    {
        if (TrainingSteps < 0)
            throw new ArgumentOutOfRangeException(nameof(TrainingSteps), TrainingSteps, "TrainingSteps must be non-negative.");
        if (BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be at least 1.");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be a positive number.");
        if (!(GradientClipNorm >= 0) || double.IsInfinity(GradientClipNorm))
            throw new ArgumentOutOfRangeException(nameof(GradientClipNorm), GradientClipNorm, "GradientClipNorm must be 0 (off) or positive.");
        if (!(EmaDecay is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(EmaDecay), EmaDecay, "EmaDecay must lie in [0, 1].");
        if (EmaUpdateEvery < 1)
            throw new ArgumentOutOfRangeException(nameof(EmaUpdateEvery), EmaUpdateEvery, "EmaUpdateEvery must be at least 1.");
        if (EmaStartStep < 0)
            throw new ArgumentOutOfRangeException(nameof(EmaStartStep), EmaStartStep, "EmaStartStep must be non-negative.");
        if (CheckpointEvery < 1)
            throw new ArgumentOutOfRangeException(nameof(CheckpointEvery), CheckpointEvery, "CheckpointEvery must be at least 1.");
        if (Threads < 0)
            throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "Threads must be 0 (leave as is) or positive.");
        if (LossAverageWindow < 1)
            throw new ArgumentOutOfRangeException(nameof(LossAverageWindow), LossAverageWindow, "LossAverageWindow must be at least 1.");
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
