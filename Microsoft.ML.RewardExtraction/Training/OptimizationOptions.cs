namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The optimisation settings shared by diffusion and reward training (<see cref="DiffusionTrainingOptions"/>,
/// <see cref="RewardTrainingOptions"/>): steps, batch, Adam's learning rate, clipping, Diffuser's EMA rule, the seed, torch
/// threads and checkpointing. <see cref="Validate"/> is the one place they are checked; the estimators call it when they
/// are built.
/// </summary>
public abstract class OptimizationOptions
{
    /// <summary>Creates options with the given step and batch defaults.</summary>
    private protected OptimizationOptions(int trainingSteps, int batchSize)
    {
        TrainingSteps = trainingSteps;
        BatchSize = batchSize;
    }

    /// <summary>Optimiser steps (at least 1).</summary>
    public int TrainingSteps { get; set; }

    /// <summary>Samples per step, drawn uniformly with replacement.</summary>
    public int BatchSize { get; set; }

    /// <summary>Adam's learning rate. Default 2e-4 (Diffuser's, and the larger of the paper's two reward settings).</summary>
    public double LearningRate { get; set; } = 2e-4;

    /// <summary>Maximum global L2 norm of the parameter gradient; 0 turns clipping off. Default 0 (neither Diffuser nor the paper clips).</summary>
    public double GradientClipNorm { get; set; }

    /// <summary>EMA decay. Default 0.995 (Diffuser's).</summary>
    public double EmaDecay { get; set; } = 0.995;

    /// <summary>Steps between EMA updates. Default 10 (Diffuser's).</summary>
    public int EmaUpdateEvery { get; set; } = 10;

    /// <summary>Before this step the EMA weights are a plain copy of the online weights. Default 2000 (Diffuser's). When the
    /// whole run ends before it, the returned weights are the final online weights.</summary>
    public int EmaStartStep { get; set; } = 2000;

    /// <summary>Seeds the generator that draws batches, steps and noise. Default 0.</summary>
    public long Seed { get; set; }

    /// <summary>torch's intra-op thread count during training (process-wide, restored afterwards); 0 (default) leaves it.</summary>
    public int Threads { get; set; }

    /// <summary>Checkpoint file (online and EMA weights, Adam state, generator state, recent losses); null (default) writes none.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Steps between checkpoints; a checkpoint is also written at the end and when training is cancelled.
    /// 0 = only then. Default 1000.</summary>
    public int CheckpointEvery { get; set; } = 1000;

    /// <summary>Whether an existing checkpoint at <see cref="CheckpointPath"/> is resumed (the result equals an uninterrupted
    /// run with the same settings). Default true.</summary>
    public bool ResumeFromCheckpoint { get; set; } = true;

    /// <summary>Number of recent steps averaged in <see cref="TrainingProgress.AverageLoss"/>. Default 100.</summary>
    public int LossAverageWindow { get; set; } = 100;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> whose parameter name is the first invalid setting.</summary>
    public virtual void Validate()
    {
        if (TrainingSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(TrainingSteps), TrainingSteps, "TrainingSteps must be at least 1.");
        if (BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be at least 1.");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be a finite number > 0.");
        if (!(GradientClipNorm >= 0) || double.IsInfinity(GradientClipNorm))
            throw new ArgumentOutOfRangeException(nameof(GradientClipNorm), GradientClipNorm, "GradientClipNorm must be 0 (off) or a finite positive number.");
        if (!(EmaDecay is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(EmaDecay), EmaDecay, "EmaDecay must lie in [0, 1].");
        if (EmaUpdateEvery < 1)
            throw new ArgumentOutOfRangeException(nameof(EmaUpdateEvery), EmaUpdateEvery, "EmaUpdateEvery must be at least 1.");
        if (EmaStartStep < 0)
            throw new ArgumentOutOfRangeException(nameof(EmaStartStep), EmaStartStep, "EmaStartStep must be >= 0.");
        if (Threads < 0)
            throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "Threads must be 0 (leave as is) or positive.");
        if (CheckpointEvery < 0)
            throw new ArgumentOutOfRangeException(nameof(CheckpointEvery), CheckpointEvery, "CheckpointEvery must be >= 0 (0 = only at the end and on cancellation).");
        if (CheckpointPath is not null && string.IsNullOrWhiteSpace(CheckpointPath))
            throw new ArgumentOutOfRangeException(nameof(CheckpointPath), CheckpointPath, "CheckpointPath must be null (no checkpoints) or a file path.");
        if (LossAverageWindow < 1)
            throw new ArgumentOutOfRangeException(nameof(LossAverageWindow), LossAverageWindow, "LossAverageWindow must be at least 1.");
    }
}
