using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction;

public sealed partial class RewardExtractionCatalog
{
    /// <summary>
    /// Creates a <see cref="RelativeRewardExtractor"/>: the whole method from one labelled data set (base model on the
    /// label-false rows, expert model on the label-true rows, then the relative reward), fitted to one transformer chain.
    /// </summary>
    /// <param name="shape">The shape of one sample, e.g. <c>SampleShape.Trajectory(16, 6)</c>.</param>
    /// <param name="featureColumnName">The samples: <c>Vector&lt;Single, shape.Length&gt;</c>, raw values.</param>
    /// <param name="labelColumnName">Boolean, true for expert rows.</param>
    public RelativeRewardExtractor ExtractRelativeReward(SampleShape shape, string featureColumnName = "Features", string labelColumnName = "Label")
        => ExtractRelativeReward(new RelativeRewardExtractor.Options { Shape = shape, FeatureColumnName = featureColumnName, LabelColumnName = labelColumnName });

    /// <summary>Creates a <see cref="RelativeRewardExtractor"/> with advanced options (the three models' settings, reference model).</summary>
    /// <param name="options">Columns, shape, which rows the base model learns, and each stage's options.</param>
    public RelativeRewardExtractor ExtractRelativeReward(RelativeRewardExtractor.Options options) => new(Context, options);

    /// <summary>
    /// How well a reward separates expert rows from ordinary ones: the exact ROC AUC, the best balanced accuracy and its
    /// threshold, the mean reward per class and the counts. Rows whose reward is NaN are left out and counted.
    /// </summary>
    /// <param name="data">Scored rows, e.g. the output of a <see cref="RelativeRewardTransformer"/>.</param>
    /// <param name="labelColumnName">Boolean, true for expert rows.</param>
    /// <param name="rewardColumnName">Single, the reward.</param>
    public RelativeRewardMetrics Evaluate(IDataView data, string labelColumnName = "Label", string rewardColumnName = "Reward")
        => RewardEvaluation.Evaluate(Environment.Register(nameof(Evaluate)), data, labelColumnName, rewardColumnName);

    /// <summary>
    /// Splits rows into train and test sets so that all rows of one episode land on the same side (windows of one episode
    /// overlap, so a split that cut episodes would leak). Built on ML.NET's <c>TrainTestSplit</c> with the episode as the
    /// sampling key.
    /// </summary>
    /// <param name="data">Rows with an episode column (e.g. transitions, or the windows of the window transform).</param>
    /// <param name="episodeColumnName">The episode id: an integer, key or text column.</param>
    /// <param name="testFraction">The expected share of episodes in the test set, in (0, 1).</param>
    /// <param name="seed">The split's seed; null = the MLContext's random source.</param>
    public DataOperationsCatalog.TrainTestData TrainTestSplitByEpisode(IDataView data, string episodeColumnName = "Episode", double testFraction = 0.2, int? seed = null)
    {
        var host = Environment.Register(nameof(TrainTestSplitByEpisode));
        host.CheckValue(data, nameof(data));
        host.CheckNonEmpty(episodeColumnName, nameof(episodeColumnName));
        host.CheckUserArg(testFraction > 0 && testFraction < 1, nameof(testFraction), "must lie strictly between 0 and 1");
        var column = data.Schema.GetColumnOrNull(episodeColumnName);
        if (column is null)
            throw host.ExceptSchemaMismatch(nameof(data), "episode", episodeColumnName);
        var type = column.Value.Type;
        if (type is VectorDataViewType || !(type is KeyDataViewType || type is TextDataViewType || type == NumberDataViewType.Int32
            || type == NumberDataViewType.Int64 || type == NumberDataViewType.UInt32 || type == NumberDataViewType.UInt64))
            throw host.ExceptSchemaMismatch(nameof(data), "episode", episodeColumnName, "an integer, key or text scalar", type.ToString());
        return Context.Data.TrainTestSplit(data, testFraction, episodeColumnName, seed);
    }
}

public sealed partial class RewardExtractionCatalog
{
    /// <summary>
    /// The conservativeness diagnostic (docs/METHOD.md section 4): per noise level, the share of mu_expert - mu_base that the
    /// reward's gradient explains, and the antisymmetric share of the difference's Jacobian (0 for a gradient field, 1 for a
    /// rotation). Measure it on held-out rows.
    /// </summary>
    /// <param name="baseModel">The base model the reward was extracted from.</param>
    /// <param name="expertModel">The expert model.</param>
    /// <param name="reward">The reward.</param>
    /// <param name="data">Held-out rows with the reward's feature column (raw values).</param>
    /// <param name="steps">The noise levels; null = every step.</param>
    /// <param name="probes">Probe vectors per row for the asymmetry.</param>
    /// <param name="seed">Seeds the noise and the probes.</param>
    /// <param name="gradientAt">Where the reward's gradient was fitted (as in its training options).</param>
    public IReadOnlyList<ConservativenessAtStep> Conservativeness(DiffusionModelTransformer baseModel, DiffusionModelTransformer expertModel,
        RelativeRewardTransformer reward, IDataView data, IReadOnlyList<int>? steps = null, int probes = 4, int seed = 0,
        GradientLocation gradientAt = GradientLocation.BaseMean)
    {
        var host = Environment.Register(nameof(Conservativeness));
        host.CheckValue(baseModel, nameof(baseModel));
        host.CheckValue(expertModel, nameof(expertModel));
        host.CheckValue(reward, nameof(reward));
        host.CheckValue(data, nameof(data));
        host.CheckUserArg(probes >= 1, nameof(probes), "must be at least 1");
        if (!Normalizer.SameMapping(baseModel.Model.Normalizer, reward.Normalizer))
            throw host.ExceptParam(nameof(reward), "The reward was extracted in another data space: its normaliser differs from the base model's.");
        using var scope = TorchSharp.torch.NewDisposeScope();
        var raw = TrainingRows.Read(host, data, reward.FeatureColumnName, baseModel.Shape, reward.InvalidValues, out _);
        var normalized = baseModel.Model.Normalizer.Normalize(raw);
        return ConservativenessDiagnostic.Measure(baseModel.Model, expertModel.Model, reward.Model, normalized, steps, probes, seed, gradientAt);
    }
}
