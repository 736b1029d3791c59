using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Exact ranking metrics of a reward column against a boolean label. ML.NET's binary evaluator needs a predicted-label
/// column and estimates the AUC from a reservoir sample on large data; a reward has no natural threshold and the numbers
/// here must be exact, so they are computed from the sorted rewards.
/// </summary>
internal static class RewardEvaluation
{
    public static RelativeRewardMetrics Evaluate(IHost host, IDataView data, string labelColumnName, string rewardColumnName)
    {
        host.CheckValue(data, nameof(data));
        host.CheckNonEmpty(labelColumnName, nameof(labelColumnName));
        host.CheckNonEmpty(rewardColumnName, nameof(rewardColumnName));
        var label = FindColumn(host, data.Schema, labelColumnName, BooleanDataViewType.Instance, "label");
        var reward = FindColumn(host, data.Schema, rewardColumnName, NumberDataViewType.Single, "reward");

        var scores = new List<(float Reward, bool Label)>();
        long skipped = 0;
        using (var cursor = data.GetRowCursor(new[] { label, reward }))
        {
            var getLabel = cursor.GetGetter<bool>(label);
            var getReward = cursor.GetGetter<float>(reward);
            bool y = false;
            float r = 0;
            while (cursor.MoveNext())
            {
                getLabel(ref y);
                getReward(ref r);
                if (float.IsNaN(r))
                    skipped++;
                else
                    scores.Add((r, y));
            }
        }
        long positives = scores.LongCount(s => s.Label), negatives = scores.Count - positives;
        if (positives == 0 || negatives == 0)
            throw host.Except($"Evaluating a reward needs rows of both classes in label column '{labelColumnName}'; found {positives} true and {negatives} false" +
                (skipped > 0 ? $" (and {skipped} rows with a NaN reward left out)." : "."));
        return Compute(scores, skipped);
    }

    /// <summary>AUC from average ranks (ties count one half) and the best balanced accuracy over thresholds between distinct rewards.</summary>
    internal static RelativeRewardMetrics Compute(IReadOnlyList<(float Reward, bool Label)> scores, long skipped)
    {
        var sorted = scores.OrderBy(s => s.Reward).ToArray();
        long positives = sorted.LongCount(s => s.Label), negatives = sorted.Length - positives;
        double positiveRankSum = 0, positiveSum = 0, negativeSum = 0;
        // Walking groups of equal rewards upwards: every row at or above a group's lowest reward is called expert when the
        // threshold is that reward, so the rows below it are the true negatives and missed positives.
        long below = 0, positivesBelow = 0;
        double bestAccuracy = 0.5;   // a threshold above every reward: all rows called ordinary
        float bestThreshold = float.PositiveInfinity;
        for (int first = 0; first < sorted.Length;)
        {
            int end = first;
            long groupPositives = 0;
            while (end < sorted.Length && sorted[end].Reward == sorted[first].Reward)
            {
                if (sorted[end].Label)
                {
                    groupPositives++;
                    positiveSum += sorted[end].Reward;
                }
                else
                {
                    negativeSum += sorted[end].Reward;
                }
                end++;
            }
            double averageRank = (first + 1 + end) / 2.0;   // ranks first+1..end
            positiveRankSum += groupPositives * averageRank;

            long trueNegatives = below - positivesBelow, truePositives = positives - positivesBelow;
            double accuracy = 0.5 * ((double)truePositives / positives + (double)trueNegatives / negatives);
            if (accuracy > bestAccuracy)
            {
                bestAccuracy = accuracy;
                bestThreshold = sorted[first].Reward;
            }
            below += end - first;
            positivesBelow += groupPositives;
            first = end;
        }
        double auc = (positiveRankSum - positives * (positives + 1) / 2.0) / ((double)positives * negatives);
        return new RelativeRewardMetrics(auc, bestAccuracy, bestThreshold, positiveSum / positives, negativeSum / negatives, positives, negatives, skipped);
    }

    /// <summary>The balanced accuracy of calling rows with reward &gt;= <paramref name="threshold"/> expert, e.g. on held-out rows
    /// at a threshold that <see cref="Compute"/> chose on training rows. Both classes must be present.</summary>
    internal static double BalancedAccuracyAt(IReadOnlyList<(float Reward, bool Label)> scores, float threshold)
    {
        long positives = 0, negatives = 0, truePositives = 0, trueNegatives = 0;
        foreach (var (reward, label) in scores)
        {
            if (label)
            {
                positives++;
                if (reward >= threshold) truePositives++;
            }
            else
            {
                negatives++;
                if (reward < threshold) trueNegatives++;
            }
        }
        if (positives == 0 || negatives == 0)
            throw new ArgumentException($"A balanced accuracy needs rows of both classes; found {positives} true and {negatives} false.", nameof(scores));
        return 0.5 * ((double)truePositives / positives + (double)trueNegatives / negatives);
    }

    private static DataViewSchema.Column FindColumn(IHost host, DataViewSchema schema, string name, DataViewType expected, string role)
    {
        var column = schema.GetColumnOrNull(name);
        if (column is null)
            throw host.ExceptSchemaMismatch(nameof(schema), role, name);
        if (!column.Value.Type.Equals(expected))
            throw host.ExceptSchemaMismatch(nameof(schema), role, name, expected.ToString(), column.Value.Type.ToString());
        return column.Value;
    }
}
