using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using Microsoft.ML.Trainers.FastTree;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// The two accuracies of docs/EXPERIMENTS.md section 1, both fitted on training-episode windows and measured on held-out-episode
/// windows (expert = positive class, rows weighted so that both classes count alike; the accuracy is the mean of the two
/// per-class accuracies). Both are plain ML.NET pipelines over the window views of <see cref="MazeWindows.Balanced"/>.
/// </summary>
internal static class PreferenceClassifiers
{
    /// <summary>
    /// Logistic regression (L-BFGS, the reward standardised, no L1 and a tiny L2) on the scalar reward column of the scored views:
    /// only a threshold is learned, so this measures how well the reward alone orders expert above base windows.
    /// </summary>
    public static double RewardAccuracy(MLContext ml, IDataView scoredTraining, IDataView scoredHeldOut, string rewardColumnName)
    {
        const string feature = "RewardFeature";
        var pipeline = ml.Transforms.Concatenate(feature, rewardColumnName)
            .Append(ml.Transforms.NormalizeMeanVariance(feature))
            .Append(ml.BinaryClassification.Trainers.LbfgsLogisticRegression(new LbfgsLogisticRegressionBinaryTrainer.Options
            {
                LabelColumnName = nameof(MazeWindow.Label),
                FeatureColumnName = feature,
                ExampleWeightColumnName = nameof(MazeWindow.Weight),
                L1Regularization = 0,
                L2Regularization = 1e-6f,
                NumberOfThreads = 1,
            }));
        return BalancedAccuracy(ml, pipeline.Fit(scoredTraining).Transform(scoredHeldOut));
    }

    /// <summary>FastTree (gradient-boosted trees) on the raw window values, the baseline classifier.</summary>
    public static double FastTreeAccuracy(MLContext ml, IDataView training, IDataView heldOut, int trees, int leaves)
    {
        var trainer = ml.BinaryClassification.Trainers.FastTree(new FastTreeBinaryTrainer.Options
        {
            LabelColumnName = nameof(MazeWindow.Label),
            FeatureColumnName = nameof(MazeWindow.Features),
            ExampleWeightColumnName = nameof(MazeWindow.Weight),
            NumberOfTrees = trees,
            NumberOfLeaves = leaves,
            MinimumExampleCountPerLeaf = 10,
            NumberOfThreads = 1,
        });
        return BalancedAccuracy(ml, trainer.Fit(training).Transform(heldOut));
    }

    private static double BalancedAccuracy(MLContext ml, IDataView predictions)
    {
        long tp = 0, p = 0, tn = 0, n = 0;
        foreach (var row in ml.Data.CreateEnumerable<Prediction>(predictions, reuseRowObject: true))
        {
            if (row.Label)
            {
                p++;
                if (row.PredictedLabel) tp++;
            }
            else
            {
                n++;
                if (!row.PredictedLabel) tn++;
            }
        }
        if (p == 0 || n == 0)
            throw new InvalidOperationException("The held-out set needs windows of both classes.");
        return 0.5 * ((double)tp / p + (double)tn / n);
    }

    private sealed class Prediction
    {
        public bool Label { get; set; }
        public bool PredictedLabel { get; set; }
    }
}
