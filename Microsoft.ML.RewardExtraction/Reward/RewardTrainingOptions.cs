namespace Microsoft.ML.RewardExtraction;

/// <summary>Settings of <see cref="RewardTrainer"/>. Defaults are CPU-sized; the paper's GPU runs used
/// 50k-100k steps at batch 128-256 (METHOD.md).</summary>
public sealed class RewardTrainingOptions
{
    /// <summary>Optimiser steps. Default 2000.</summary>
    public int TrainingSteps { get; set; } = 2000;

    /// <summary>Samples per step (drawn with replacement). Default 64.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Adam learning rate. Default 2e-4: the paper's locomotion value (the larger of its two settings, 5e-5 and
    /// 2e-4), because CPU runs take 10-50x fewer steps than its 100k.</summary>
    public double LearningRate { get; set; } = 2e-4;

    /// <summary>Where the reward's input gradient is taken. Default <see cref="GradientLocation.BaseMean"/>.</summary>
    public GradientLocation GradientAt { get; set; } = GradientLocation.BaseMean;

    /// <summary>lambda, weight of the reward magnitude penalty mean(r^2). Default 0 (off, as the paper).</summary>
    public double MagnitudePenalty { get; set; }

    /// <summary>EMA decay of the reward weights. Default 0.995 (Diffuser).</summary>
    public double EmaDecay { get; set; } = 0.995;

    /// <summary>Steps between EMA updates. Default 10 (Diffuser).</summary>
    public int EmaUpdateEvery { get; set; } = 10;

    /// <summary>Before this step the EMA weights are a plain copy of the online weights. Default 2000 (Diffuser). When
    /// training ends before this step, the returned weights are the final online weights.</summary>
    public int EmaStartStep { get; set; } = 2000;

    /// <summary>Seed of the generator that draws batches, steps and noise. Default 0.</summary>
    public long Seed { get; set; }

    /// <summary>Maximum global L2 norm of the parameter gradient; 0 = no clipping (the default, as the paper).</summary>
    public double GradientClipNorm { get; set; }

    /// <summary>File for periodic checkpoints (online and EMA weights, Adam state, generator state); null = none.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Steps between checkpoints (0 = only at the end when <see cref="CheckpointPath"/> is set). Default 0.</summary>
    public int CheckpointEvery { get; set; }

    /// <summary>When true and <see cref="CheckpointPath"/> exists, training resumes from it (the result equals an
    /// uninterrupted run with the same options). Default false.</summary>
    public bool ResumeFromCheckpoint { get; set; }

    /// <summary>
    /// Target cache (opt-in; 0 = off = the exact method). The base and expert models are frozen, so for a pool of this many
    /// (x0, t, noise) triples the regression input u and target mu_expert - mu_base can be computed once and reused: each
    /// step then draws its batch from the pool (with replacement) and runs only the reward network, without the two
    /// diffusion-model forwards. The pool is rebuilt every <see cref="TargetCacheRefreshEvery"/> steps. This changes the
    /// sampling of the objective (a finite pool instead of fresh draws), so results differ from the exact mode. Default 0.
    /// </summary>
    public int TargetCachePoolSize { get; set; }

    /// <summary>Steps between rebuilds of the target cache's pool (0 = build it once). Pool number r = step / K is drawn
    /// from its own generator seeded with <see cref="Seed"/> and r, so a resumed run rebuilds exactly the same pool.
    /// Ignored when <see cref="TargetCachePoolSize"/> is 0. Default 1000.</summary>
    public int TargetCacheRefreshEvery { get; set; } = 1000;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid training setting.</summary>
    public void Validate()
    {
        if (TrainingSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(TrainingSteps), TrainingSteps, "Training needs at least one step.");
        if (BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "The batch size must be positive.");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "The learning rate must be a finite number > 0.");
        if (!Enum.IsDefined(GradientAt))
            throw new ArgumentOutOfRangeException(nameof(GradientAt), GradientAt, "Unknown gradient location.");
        if (!(MagnitudePenalty >= 0) || double.IsInfinity(MagnitudePenalty))
            throw new ArgumentOutOfRangeException(nameof(MagnitudePenalty), MagnitudePenalty, "The magnitude penalty must be a finite number >= 0.");
        if (!(EmaDecay >= 0 && EmaDecay <= 1))
            throw new ArgumentOutOfRangeException(nameof(EmaDecay), EmaDecay, "The EMA decay must lie in [0, 1].");
        if (EmaUpdateEvery < 1)
            throw new ArgumentOutOfRangeException(nameof(EmaUpdateEvery), EmaUpdateEvery, "The EMA update interval must be at least 1.");
        if (EmaStartStep < 0)
            throw new ArgumentOutOfRangeException(nameof(EmaStartStep), EmaStartStep, "The EMA start step must be >= 0.");
        if (!(GradientClipNorm >= 0) || double.IsInfinity(GradientClipNorm))
            throw new ArgumentOutOfRangeException(nameof(GradientClipNorm), GradientClipNorm, "The gradient clip norm must be a finite number >= 0 (0 = off).");
        if (CheckpointEvery < 0)
            throw new ArgumentOutOfRangeException(nameof(CheckpointEvery), CheckpointEvery, "The checkpoint interval must be >= 0.");
        if (TargetCachePoolSize < 0)
            throw new ArgumentOutOfRangeException(nameof(TargetCachePoolSize), TargetCachePoolSize, "The target cache pool size must be >= 0 (0 = off).");
        if (TargetCacheRefreshEvery < 0)
            throw new ArgumentOutOfRangeException(nameof(TargetCacheRefreshEvery), TargetCacheRefreshEvery, "The target cache refresh interval must be >= 0 (0 = never).");
    }
}
