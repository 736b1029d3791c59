using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The settings every MLReward trainer shares: the columns, the optimisation (the estimator-side view of
/// <see cref="OptimizationOptions"/>, validated by it when the estimator is built), invalid rows, the shuffle buffer,
/// scoring batch, progress and cancellation.
/// </summary>
public abstract class TrainerOptionsBase
{
    private protected TrainerOptionsBase(string outputColumnName, int trainingSteps, int batchSize, int scoringBatchSize)
    {
        OutputColumnName = outputColumnName;
        TrainingSteps = trainingSteps;
        BatchSize = batchSize;
        ScoringBatchSize = scoringBatchSize;
    }

    /// <summary>The input column: <c>Vector&lt;Single, Shape.Length&gt;</c>, raw values, row-major. Default "Features",
    /// which is also the default output of the trajectory window transform.</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>The column the fitted transformer adds.</summary>
    public string OutputColumnName { get; set; }

    /// <summary>Optimiser steps (at least 1).</summary>
    public int TrainingSteps { get; set; }

    /// <summary>Samples per step (at least 1).</summary>
    public int BatchSize { get; set; }

    /// <summary>Adam's learning rate. Default 2e-4 (Diffuser's; the larger of the paper's two reward settings).</summary>
    public double LearningRate { get; set; } = 2e-4;

    /// <summary>Gradient norm clip; 0 = off. Default 0.</summary>
    public double GradientClipNorm { get; set; }

    /// <summary>EMA decay. Default 0.995 (Diffuser's).</summary>
    public double EmaDecay { get; set; } = 0.995;

    /// <summary>Steps between EMA updates. Default 10.</summary>
    public int EmaUpdateEvery { get; set; } = 10;

    /// <summary>Before this step the EMA weights are a plain copy. Default 2000.</summary>
    public int EmaStartStep { get; set; } = 2000;

    /// <summary>Seed of the initial weights and of all training randomness. Default null: drawn from the MLContext's
    /// random source, so <c>new MLContext(seed: s)</c> makes the run reproducible.</summary>
    public int? Seed { get; set; }

    /// <summary>Where the model trains and scores: "cpu", "cuda" or "cuda:N". Default null: the MLContext's choice, GPU
    /// <c>GpuDeviceId</c> when it is set and the CPU otherwise; a GPU this process cannot use is an error unless the
    /// MLContext's <c>FallbackToCpu</c> is set (then the CPU, with a warning). Saved models record no device: they load
    /// onto the device of the context that loads them.</summary>
    public string? Device { get; set; }

    /// <summary>Torch threads while training; 0 leaves the process setting. Default 0.</summary>
    public int Threads { get; set; }

    /// <summary>Checkpoint file; training resumes from it when it exists. Default null (no checkpoints).</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Steps between checkpoints; one is also written at the end and on cancellation (0 = only then). Default 1000.</summary>
    public int CheckpointEvery { get; set; } = 1000;

    /// <summary>What training and scoring do with rows holding NaN or infinity. Default <see cref="InvalidRowHandling.Error"/>.</summary>
    public InvalidRowHandling InvalidValues { get; set; } = InvalidRowHandling.Error;

    /// <summary>The most training rows held in memory at once. Default 65,536 (<see cref="TrainingSamples.DefaultBufferSize"/>).
    /// Data with no more rows are read once and trained on as a whole; larger data stream through a shuffle buffer of this
    /// many rows (each row drawn into a batch is replaced by the next one read, the data being read again from the start at
    /// their end), so memory stays bounded and each row is used about once per pass. At least 1.</summary>
    public int ShuffleBufferSize { get; set; } = TrainingSamples.DefaultBufferSize;

    /// <summary>Rows read ahead and scored per forward by the fitted transformer.</summary>
    public int ScoringBatchSize { get; set; }

    /// <summary>Receives one report per training step (besides ML.NET's progress channel). Default null.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Cancels training (a checkpoint is written first when a path is set). Default none.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>A shallow copy (arrays and models are shared) of the derived options.</summary>
    internal T CopyAs<T>() where T : TrainerOptionsBase => (T)MemberwiseClone();

    /// <summary>Copies the shared settings into <paramref name="core"/> with the resolved <paramref name="seed"/>.</summary>
    private protected T Fill<T>(T core, int seed) where T : OptimizationOptions
    {
        core.TrainingSteps = TrainingSteps;
        core.BatchSize = BatchSize;
        core.LearningRate = LearningRate;
        core.GradientClipNorm = GradientClipNorm;
        core.EmaDecay = EmaDecay;
        core.EmaUpdateEvery = EmaUpdateEvery;
        core.EmaStartStep = EmaStartStep;
        core.Seed = seed;
        core.Threads = Threads;
        core.CheckpointPath = CheckpointPath;
        core.CheckpointEvery = CheckpointEvery;
        core.ResumeFromCheckpoint = CheckpointPath is not null;
        return core;
    }

    /// <summary>Checks the settings every trainer shares, in ML.NET's wording; returns the seed (the MLContext's when unset).</summary>
    private protected int CheckShared(IHost host)
    {
        host.CheckNonEmpty(FeatureColumnName, nameof(FeatureColumnName));
        host.CheckNonEmpty(OutputColumnName, nameof(OutputColumnName));
        host.CheckUserArg(ScoringBatchSize >= 1, nameof(ScoringBatchSize), "must be at least 1");
        host.CheckUserArg(ShuffleBufferSize >= 1, nameof(ShuffleBufferSize), "must be at least 1");
        host.CheckUserArg(Enum.IsDefined(InvalidValues), nameof(InvalidValues), "is not a defined InvalidRowHandling");
        if (Device is not null)
        {
            try
            {
                ComputeDevice.Parse(Device);
            }
            catch (ArgumentException e)
            {
                throw host.ExceptUserArg(nameof(Device), WithoutParameterSuffix(e));
            }
        }
        return Seed ?? host.Rand.Next();
    }

    /// <summary>The device to train on: <see cref="Device"/>, else the MLContext's (see <see cref="Device"/>).</summary>
    internal TorchSharp.torch.Device ResolveDevice(IHostEnvironment env, IHost host) => ContextDevice.Resolve(env, host, Device);

    /// <summary>Runs the core validation of <paramref name="core"/> and rethrows its finding as ML.NET's user-argument error.</summary>
    private protected static T Validated<T>(IHost host, T core) where T : OptimizationOptions
    {
        try
        {
            core.Validate();
            return core;
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw host.ExceptUserArg(e.ParamName ?? "options", WithoutParameterSuffix(e));
        }
    }

    /// <summary>An argument exception's own text, without the " (Parameter 'x')" and "Actual value was" lines .NET appends.</summary>
    internal static string WithoutParameterSuffix(ArgumentException e)
    {
        string message = e.Message;
        int end = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        if (end < 0)
            end = message.IndexOf("\nActual value was", StringComparison.Ordinal);
        return end < 0 ? message : message[..end];
    }
}
