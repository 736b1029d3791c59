namespace Microsoft.ML.RewardExtraction;

/// <summary>A progress report from a training loop: step (1-based), total steps, the loss of that step, its
/// moving average, and the elapsed time.</summary>
public readonly record struct TrainingProgress(int Step, int TotalSteps, double Loss, double AverageLoss, TimeSpan Elapsed);
