namespace Microsoft.ML.RewardExtraction;

public sealed partial class RewardExtractionCatalog
{
    /// <summary>
    /// Creates a <see cref="RewardDistillationEstimator"/>: distils <paramref name="teacher"/> into ML.NET gradient-boosted
    /// trees (FastTree) that score without TorchSharp or libtorch, holding out 20% of the rows to measure the student's
    /// fidelity. Call <see cref="RewardDistillationEstimator.Distill"/> for the metrics, or <c>Fit</c> for the student alone.
    /// </summary>
    /// <param name="teacher">The reward to distil.</param>
    /// <param name="labelColumnName">Boolean, true for expert rows: adds the held-out preference accuracies. Null = none.</param>
    /// <param name="outputColumnName">The student's reward column (Single).</param>
    public RewardDistillationEstimator DistillReward(RelativeRewardTransformer teacher, string? labelColumnName = null, string outputColumnName = "Reward")
        => DistillReward(teacher, new RewardDistillationEstimator.Options { LabelColumnName = labelColumnName, OutputColumnName = outputColumnName });

    /// <summary>Creates a <see cref="RewardDistillationEstimator"/> with advanced options (learner, trees, split, episode column).</summary>
    /// <param name="teacher">The reward to distil.</param>
    /// <param name="options">Columns, split and learner settings.</param>
    public RewardDistillationEstimator DistillReward(RelativeRewardTransformer teacher, RewardDistillationEstimator.Options options)
        => new(Context, teacher, options);
}
