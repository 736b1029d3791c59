namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// How well a reward separates expert rows (label true) from ordinary ones (label false), from
/// <see cref="RewardExtractionCatalog.Evaluate"/>.
/// </summary>
public sealed class RelativeRewardMetrics
{
    internal RelativeRewardMetrics(double auc, double balancedAccuracy, float threshold, double meanPositive, double meanNegative,
        long positives, long negatives, long skipped)
    {
        AreaUnderRocCurve = auc;
        BalancedAccuracy = balancedAccuracy;
        BestThreshold = threshold;
        MeanRewardPositive = meanPositive;
        MeanRewardNegative = meanNegative;
        PositiveCount = positives;
        NegativeCount = negatives;
        SkippedCount = skipped;
    }

    /// <summary>The area under the ROC curve of the reward as a score for the label: the probability that a random expert
    /// row gets a higher reward than a random ordinary row, ties counting one half. 0.5 = no separation.</summary>
    public double AreaUnderRocCurve { get; }

    /// <summary>The best balanced accuracy, (true positive rate + true negative rate) / 2, over all thresholds.</summary>
    public double BalancedAccuracy { get; }

    /// <summary>The threshold that reaches <see cref="BalancedAccuracy"/>: rows with reward &gt;= it are called expert.</summary>
    public float BestThreshold { get; }

    /// <summary>The mean reward of the expert rows (label true).</summary>
    public double MeanRewardPositive { get; }

    /// <summary>The mean reward of the ordinary rows (label false).</summary>
    public double MeanRewardNegative { get; }

    /// <summary>Rows with label true.</summary>
    public long PositiveCount { get; }

    /// <summary>Rows with label false.</summary>
    public long NegativeCount { get; }

    /// <summary>Rows left out because their reward was NaN (rows scored with <see cref="InvalidRowHandling.Skip"/>).</summary>
    public long SkippedCount { get; }

    /// <summary>"AUC 0.912, balanced accuracy 0.840 at 0.12; mean reward 0.53 (expert, 100) vs -0.41 (ordinary, 100)".</summary>
    public override string ToString() => FormattableString.Invariant(
        $"AUC {AreaUnderRocCurve:F3}, balanced accuracy {BalancedAccuracy:F3} at {BestThreshold:G4}; mean reward {MeanRewardPositive:G4} (expert, {PositiveCount}) vs {MeanRewardNegative:G4} (ordinary, {NegativeCount})");
}
