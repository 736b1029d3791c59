using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using Microsoft.ML.Trainers.FastTree;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// The two accuracies of docs/EXPERIMENTS.md section 1, both fitted on training-episode windows and measured on held-out-episode
/// windows (expert = positive class), class-balanced: training rows are weighted n / (2 n_class) and the accuracy is the
/// mean of the two per-class accuracies ("weighted accuracy").
/// </summary>
internal static class PreferenceClassifiers
{
    /// <summary>
    /// Logistic regression (ML.NET L-BFGS, the reward standardised, no L1 and a tiny L2) on the scalar reward: only a threshold
    /// is learned, so this measures how well the reward alone orders expert above base windows.
    /// </summary>
    public static double RewardAccuracy(MLContext ml, float[] trainExpert, float[] trainBase, float[] testExpert, float[] testBase)
    {
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1);
        var train = ml.Data.LoadFromEnumerable(Rows(trainExpert.Select(v => new[] { v }).ToArray(), trainBase.Select(v => new[] { v }).ToArray()), schema);
        var test = ml.Data.LoadFromEnumerable(Rows(testExpert.Select(v => new[] { v }).ToArray(), testBase.Select(v => new[] { v }).ToArray()), schema);
        var pipeline = ml.Transforms.NormalizeMeanVariance(nameof(Row.Features))
            .Append(ml.BinaryClassification.Trainers.LbfgsLogisticRegression(new LbfgsLogisticRegressionBinaryTrainer.Options
            {
                LabelColumnName = nameof(Row.Label),
                FeatureColumnName = nameof(Row.Features),
                ExampleWeightColumnName = nameof(Row.Weight),
                L1Regularization = 0,
                L2Regularization = 1e-6f,
                NumberOfThreads = 1,
            }));
        return BalancedAccuracy(ml, pipeline.Fit(train).Transform(test));
    }

    /// <summary>FastTree (gradient-boosted trees) on the raw window values, the baseline classifier.</summary>
    public static double FastTreeAccuracy(MLContext ml, TrajectoryWindowSet trainExpert, TrajectoryWindowSet trainBase,
        TrajectoryWindowSet testExpert, TrajectoryWindowSet testBase, int trees, int leaves)
    {
        int length = trainExpert.WindowLength;
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, length);
        static float[][] Windows(TrajectoryWindowSet set) => Enumerable.Range(0, set.Count).Select(i => set.Window(i).ToArray()).ToArray();
        var train = ml.Data.LoadFromEnumerable(Rows(Windows(trainExpert), Windows(trainBase)), schema);
        var test = ml.Data.LoadFromEnumerable(Rows(Windows(testExpert), Windows(testBase)), schema);
        var trainer = ml.BinaryClassification.Trainers.FastTree(new FastTreeBinaryTrainer.Options
        {
            LabelColumnName = nameof(Row.Label),
            FeatureColumnName = nameof(Row.Features),
            ExampleWeightColumnName = nameof(Row.Weight),
            NumberOfTrees = trees,
            NumberOfLeaves = leaves,
            MinimumExampleCountPerLeaf = 10,
            NumberOfThreads = 1,
        });
        return BalancedAccuracy(ml, trainer.Fit(train).Transform(test));
    }

    private static IEnumerable<Row> Rows(float[][] expert, float[][] @base)
    {
        int total = expert.Length + @base.Length;
        float expertWeight = total / (2f * Math.Max(1, expert.Length)), baseWeight = total / (2f * Math.Max(1, @base.Length));
        foreach (var e in expert)
            yield return new Row { Label = true, Features = e, Weight = expertWeight };
        foreach (var b in @base)
            yield return new Row { Label = false, Features = b, Weight = baseWeight };
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

    private sealed class Row
    {
        public bool Label { get; set; }
        public float[] Features { get; set; } = [];
        public float Weight { get; set; }
    }

    private sealed class Prediction
    {
        public bool Label { get; set; }
        public bool PredictedLabel { get; set; }
    }
}
