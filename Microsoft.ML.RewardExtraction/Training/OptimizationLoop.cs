using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The training loop shared by <see cref="DiffusionTrainer"/> and <see cref="RewardTrainer"/>: Adam on an online module,
/// Diffuser's EMA rule into a shadow module, one seeded generator for all of a step's draws, gradient clipping, a loss
/// average for progress, checkpoints (every <see cref="OptimizationOptions.CheckpointEvery"/> steps, at the end and on
/// cancellation) and exact resumption, torch threads set for the run. The caller supplies one step's loss.
/// </summary>
internal static class OptimizationLoop
{
    /// <summary>What a run did.</summary>
    internal readonly record struct Outcome(int CompletedSteps, int ResumedFromStep, double AverageLoss, TimeSpan Elapsed);

    /// <summary>
    /// Runs <see cref="OptimizationOptions.TrainingSteps"/> steps. The shadow starts as a copy of the online weights
    /// and ends with the EMA weights (the final online weights when the run ends before the EMA starts).
    /// </summary>
    /// <param name="options">Validated settings.</param>
    /// <param name="run">What must match for a checkpoint to be resumed (settings and data, not the step count).</param>
    /// <param name="online">The module being optimised (in training mode).</param>
    /// <param name="shadow">The EMA module, same architecture.</param>
    /// <param name="stepLoss">Given the 0-based step and the run's generator, returns the step's scalar loss; it runs inside
    /// a dispose scope, so its tensors need no disposing.</param>
    /// <param name="what">Names the loss in the error thrown when it stops being finite.</param>
    /// <param name="progress">Receives a report after every step.</param>
    /// <param name="cancellationToken">Checked before every step; on cancellation a checkpoint is written (when a path is set)
    /// and <see cref="OperationCanceledException"/> is thrown.</param>
    public static Outcome Run(OptimizationOptions options, string run, nn.Module online, nn.Module shadow,
        Func<int, torch.Generator, Tensor> stepLoss, string what, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        int previousThreads = get_num_threads();
        if (options.Threads > 0)
            set_num_threads(options.Threads);
        try
        {
            using var generator = TorchRandom.Generator(options.Seed);
            var parameters = online.parameters().ToArray();
            using var optimizer = new Adam(parameters, options.LearningRate);
            var ema = new ExponentialMovingAverage(online, shadow, options.EmaDecay, options.EmaUpdateEvery, options.EmaStartStep);
            ema.CopyFromOnline();

            var losses = new Queue<double>();
            int start = 0;
            var restoredElapsed = TimeSpan.Zero;
            if (options.CheckpointPath is { } path && options.ResumeFromCheckpoint && File.Exists(path))
            {
                var state = TrainingCheckpoint.Load(path, run, generator, online, shadow, optimizer);
                start = state.CompletedSteps;
                restoredElapsed = state.Elapsed;
                foreach (var loss in state.RecentLosses.TakeLast(options.LossAverageWindow))
                    losses.Enqueue(loss);
            }

            var clock = Stopwatch.StartNew();
            TimeSpan Elapsed() => restoredElapsed + clock.Elapsed;
            int completed = start, lastSaved = start;
            void Checkpoint()
            {
                if (options.CheckpointPath is null || completed == lastSaved)
                    return;
                TrainingCheckpoint.Save(options.CheckpointPath, run, new TrainingCheckpointState(completed, Elapsed(), losses.ToArray()),
                    generator, online, shadow, optimizer);
                lastSaved = completed;
            }

            for (int step = start; step < options.TrainingSteps; step++)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    Checkpoint();
                    cancellationToken.ThrowIfCancellationRequested();
                }
                double lossValue;
                using (var scope = NewDisposeScope())
                {
                    var loss = stepLoss(step, generator);
                    optimizer.zero_grad();
                    loss.backward();
                    if (options.GradientClipNorm > 0)
                    {
                        var withGradient = parameters.Where(p => p.grad is not null).ToArray();
                        if (withGradient.Length > 0)
                            nn.utils.clip_grad_norm_(withGradient, options.GradientClipNorm);
                    }
                    optimizer.step();
                    lossValue = loss.item<float>();
                }
                ema.Step(step);
                completed = step + 1;
                if (!double.IsFinite(lossValue))
                    throw new InvalidOperationException($"The {what} loss became {lossValue} at step {completed}; lower the learning rate or set GradientClipNorm.");
                losses.Enqueue(lossValue);
                while (losses.Count > options.LossAverageWindow)
                    losses.Dequeue();
                if (options.CheckpointEvery > 0 && completed % options.CheckpointEvery == 0)
                    Checkpoint();
                progress?.Report(new TrainingProgress(completed, options.TrainingSteps, lossValue, losses.Average(), Elapsed()));
            }
            Checkpoint();
            // Diffuser's rule only copies every EmaUpdateEvery steps before EmaStartStep; a run that ends in that phase
            // would otherwise return weights up to EmaUpdateEvery - 1 steps old.
            if (options.TrainingSteps - 1 < options.EmaStartStep)
                ema.CopyFromOnline();
            return new Outcome(completed, start, losses.Count > 0 ? losses.Average() : double.NaN, Elapsed());
        }
        finally
        {
            if (options.Threads > 0)
                set_num_threads(previousThreads);
        }
    }
}
