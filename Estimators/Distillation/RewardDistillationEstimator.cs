using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;

namespace Microsoft.ML.RewardExtraction;

/// <summary>The ML.NET regression learner a reward is distilled into (<see cref="RewardDistillationEstimator"/>).</summary>
public enum DistillationLearner
{
    /// <summary>ML.NET's FastTree (gradient-boosted trees, managed code).</summary>
    FastTree = 0,
    /// <summary>ML.NET's LightGBM trainer (gradient-boosted trees, the LightGBM native library at training time only: the
    /// fitted trees score in managed code).</summary>
    LightGbm = 1,
}

/// <summary>
/// What <see cref="RewardDistillationEstimator.Distill"/> returns: the student model, its fidelity to the teacher, and the
/// held-out rows it was measured on.
/// </summary>
public sealed class DistilledReward
{
    internal DistilledReward(TransformerChain<ITransformer> model, DistillationMetrics metrics, IDataView heldOut, string featureColumnName,
        string outputColumnName)
    {
        Model = model;
        Metrics = metrics;
        HeldOut = heldOut;
        FeatureColumnName = featureColumnName;
        OutputColumnName = outputColumnName;
    }

    /// <summary>
    /// The student: ML.NET's regression prediction transformer (adds <c>Score</c>), then, unless the output column is
    /// <c>Score</c>, a copy of it under <see cref="OutputColumnName"/>. Only ML.NET components, so a zip written with
    /// <c>mlContext.Model.Save</c> loads and scores with Microsoft.ML and Microsoft.ML.FastTree alone: no MLReward assembly,
    /// no TorchSharp, no libtorch.
    /// </summary>
    public TransformerChain<ITransformer> Model { get; }

    /// <summary>The student's fidelity to the teacher on <see cref="HeldOut"/>.</summary>
    public DistillationMetrics Metrics { get; }

    /// <summary>The held-out rows (cached in memory): the feature column, the teacher's reward
    /// (<see cref="RewardDistillationEstimator.TeacherRewardColumnName"/>) and the label and episode columns when named.</summary>
    public IDataView HeldOut { get; }

    /// <summary>The vector column the student reads: the teacher's feature column.</summary>
    public string FeatureColumnName { get; }

    /// <summary>The column the student's reward is written to.</summary>
    public string OutputColumnName { get; }
}

/// <summary>
/// Distils a <see cref="RelativeRewardTransformer"/> (the teacher, which needs TorchSharp and libtorch to score) into an
/// ML.NET regression model (the student, gradient-boosted trees) that scores anywhere ML.NET runs and exports to ONNX. The
/// teacher scores the rows once; its rewards are the regression's label and its feature vector the regression's features.
/// A seeded share of the rows (<see cref="Options.TestFraction"/>) is held out to measure how faithful the student is
/// (<see cref="DistillationMetrics"/>). <see cref="Fit"/> returns the student alone; <see cref="Distill"/> returns it with
/// the metrics. Create it with <c>mlContext.RewardExtraction().DistillReward(teacher, ...)</c>.
/// </summary>
public sealed class RewardDistillationEstimator : IEstimator<TransformerChain<ITransformer>>
{
    /// <summary>Options of <see cref="RewardDistillationEstimator"/>.</summary>
    public sealed class Options
    {
        /// <summary>The column the student writes its reward to (Single). Default "Reward", the teacher's default, so that a
        /// distilled model replaces a reward in a pipeline.</summary>
        public string OutputColumnName { get; set; } = "Reward";

        /// <summary>A Boolean column, true for expert rows; when set, the metrics include the held-out preference accuracy
        /// of teacher and student. Default null (fidelity only).</summary>
        public string? LabelColumnName { get; set; }

        /// <summary>An episode column (integer, key or text): when set, all rows of one episode land on the same side of the
        /// split, because the overlapping windows of one episode would leak the training rows into the held-out ones.
        /// Default null (rows are split one by one).</summary>
        public string? EpisodeColumnName { get; set; }

        /// <summary>The expected share of rows (or of episodes) held out to measure the student, in (0, 1). Default 0.2.</summary>
        public double TestFraction { get; set; } = 0.2;

        /// <summary>Seeds the split and the learner. Default null: drawn from the MLContext's random source when the
        /// estimator is created.</summary>
        public int? Seed { get; set; }

        /// <summary>The regression learner. Default <see cref="DistillationLearner.FastTree"/>.</summary>
        public DistillationLearner Learner { get; set; } = DistillationLearner.FastTree;

        /// <summary>Boosted trees (LightGBM's iterations), at least 1. Default 100, FastTree's default.</summary>
        public int NumberOfTrees { get; set; } = 100;

        /// <summary>Leaves per tree, at least 2. Default 20, FastTree's default.</summary>
        public int NumberOfLeaves { get; set; } = 20;

        /// <summary>The fewest training rows a leaf may hold, at least 1. Default 10, FastTree's default.</summary>
        public int MinimumExampleCountPerLeaf { get; set; } = 10;

        /// <summary>The boosting learning rate (shrinkage), positive. Default 0.2, FastTree's default (used for LightGBM too,
        /// so that the two learners differ only in how they grow trees).</summary>
        public double LearningRate { get; set; } = 0.2;

        internal Options Copy() => (Options)MemberwiseClone();
    }

    /// <summary>The teacher's reward in <see cref="DistilledReward.HeldOut"/>: the regression's label.</summary>
    public const string TeacherRewardColumnName = "TeacherReward";

    /// <summary>The column ML.NET's regression prediction transformer adds.</summary>
    private const string ScoreColumnName = "Score";

    private readonly MLContext _context;
    private readonly IHost _host;
    private readonly RelativeRewardTransformer _teacher;
    private readonly Options _options;
    private readonly int _seed;

    internal RewardDistillationEstimator(MLContext context, RelativeRewardTransformer teacher, Options options)
    {
        Contracts.CheckValue(context, nameof(context));
        _context = context;
        _host = ((IHostEnvironment)context).Register(nameof(RewardDistillationEstimator));
        _host.CheckValue(teacher, nameof(teacher));
        ModelArguments.CheckAlive(_host, teacher, nameof(teacher));
        _host.CheckValue(options, nameof(options));
        _host.CheckNonEmpty(options.OutputColumnName, nameof(Options.OutputColumnName));
        _host.CheckUserArg(options.OutputColumnName != TeacherRewardColumnName, nameof(Options.OutputColumnName),
            $"'{TeacherRewardColumnName}' holds the teacher's reward next to the student's; name the output otherwise");
        _host.CheckUserArg(options.LabelColumnName is null || !string.IsNullOrWhiteSpace(options.LabelColumnName), nameof(Options.LabelColumnName),
            "must be null (no label) or a column name");
        _host.CheckUserArg(options.EpisodeColumnName is null || !string.IsNullOrWhiteSpace(options.EpisodeColumnName), nameof(Options.EpisodeColumnName),
            "must be null (rows split one by one) or a column name");
        foreach (var (name, option) in new[] { (options.LabelColumnName, nameof(Options.LabelColumnName)), (options.EpisodeColumnName, nameof(Options.EpisodeColumnName)) })
        {
            // The teacher's reward would hide an input column of its name before the split reads it.
            _host.CheckUserArg(name != teacher.OutputColumnName, option, $"'{name}' is the teacher's output column, which hides the input column of that name");
        }
        _host.CheckUserArg(options.TestFraction > 0 && options.TestFraction < 1, nameof(Options.TestFraction), "must lie strictly between 0 and 1");
        _host.CheckUserArg(Enum.IsDefined(options.Learner), nameof(Options.Learner), "is not a defined DistillationLearner");
        _host.CheckUserArg(options.NumberOfTrees >= 1, nameof(Options.NumberOfTrees), "must be at least 1");
        _host.CheckUserArg(options.NumberOfLeaves >= 2, nameof(Options.NumberOfLeaves), "must be at least 2");
        _host.CheckUserArg(options.MinimumExampleCountPerLeaf >= 1, nameof(Options.MinimumExampleCountPerLeaf), "must be at least 1");
        _host.CheckUserArg(options.LearningRate > 0 && double.IsFinite(options.LearningRate), nameof(Options.LearningRate), "must be a positive number");
        _teacher = teacher;
        _options = options.Copy();   // Fit uses what was validated, whatever the caller changes later
        _seed = options.Seed ?? _host.Rand.Next();
    }

    /// <summary>Distils the teacher on <paramref name="input"/> and returns the student alone (see <see cref="Distill"/>).</summary>
    public TransformerChain<ITransformer> Fit(IDataView input) => Distill(input).Model;

    /// <summary>
    /// Scores <paramref name="input"/> with the teacher, splits the rows (seeded), fits the student on the training rows and
    /// measures it on the held-out rows. Rows the teacher leaves unscored (NaN, with <see cref="InvalidRowHandling.Skip"/>)
    /// are left out.
    /// </summary>
    /// <param name="input">Rows with the teacher's feature column (raw values), and the label and episode columns when named.</param>
    public DistilledReward Distill(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        ModelArguments.CheckAlive(_host, _teacher, "teacher");
        GetOutputSchema(SchemaShape.Create(input.Schema));
        using var channel = _host.Start("Distilling a relative reward");
        channel.Info("Scoring the rows with the teacher.");
        var rows = TeacherScored(input);
        var split = _options.EpisodeColumnName is null
            ? _context.Data.TrainTestSplit(rows, _options.TestFraction, seed: _seed)
            : _context.RewardExtraction().TrainTestSplitByEpisode(rows, _options.EpisodeColumnName, _options.TestFraction, _seed);
        long trainingRows = Count(split.TrainSet), heldOutRows = Count(split.TestSet);
        if (trainingRows == 0 || heldOutRows == 0)
            throw _host.Except($"Distilling needs rows on both sides of the split; the {Count(rows)} scored rows gave {trainingRows} training and " +
                $"{heldOutRows} held-out rows at {nameof(Options.TestFraction)} {_options.TestFraction}. Give more rows (or episodes).");

        channel.Info($"Fitting {_options.Learner} on {trainingRows} rows.");
        var transformers = new List<ITransformer> { FitRegression(split.TrainSet) };
        if (_options.OutputColumnName != ScoreColumnName)
            transformers.Add(_context.Transforms.CopyColumns(_options.OutputColumnName, ScoreColumnName).Fit(transformers[0].Transform(split.TrainSet)));
        var model = new TransformerChain<ITransformer>(transformers.ToArray());
        var metrics = Measure(model, split.TrainSet, split.TestSet, trainingRows, heldOutRows);
        channel.Info($"Held out: {metrics}.");
        return new DistilledReward(model, metrics, split.TestSet, _teacher.FeatureColumnName, _options.OutputColumnName);
    }

    /// <summary>The teacher's reward next to the columns the distillation reads, scored once and kept in memory: the
    /// teacher is by far the slowest step and the split, the learner and the metrics read the rows several times.</summary>
    private IDataView TeacherScored(IDataView input)
    {
        var scored = _teacher.Transform(input);
        var copied = _context.Transforms.CopyColumns(TeacherRewardColumnName, _teacher.OutputColumnName).Fit(scored).Transform(scored);
        var columns = new[] { _teacher.FeatureColumnName, TeacherRewardColumnName, _options.LabelColumnName, _options.EpisodeColumnName }
            .OfType<string>().Distinct().ToArray();
        var selected = _context.Transforms.SelectColumns(columns).Fit(copied).Transform(copied);
        var valid = _context.Data.FilterRowsByMissingValues(selected, TeacherRewardColumnName);
        return _context.Data.Cache(valid, columns);
    }

    private ITransformer FitRegression(IDataView training) => _options.Learner switch
    {
        DistillationLearner.FastTree => _context.Regression.Trainers.FastTree(new FastTreeRegressionTrainer.Options
        {
            LabelColumnName = TeacherRewardColumnName,
            FeatureColumnName = _teacher.FeatureColumnName,
            NumberOfTrees = _options.NumberOfTrees,
            NumberOfLeaves = _options.NumberOfLeaves,
            MinimumExampleCountPerLeaf = _options.MinimumExampleCountPerLeaf,
            LearningRate = _options.LearningRate,
            Seed = _seed,
        }).Fit(training),
        DistillationLearner.LightGbm => _context.Regression.Trainers.LightGbm(new LightGbmRegressionTrainer.Options
        {
            LabelColumnName = TeacherRewardColumnName,
            FeatureColumnName = _teacher.FeatureColumnName,
            NumberOfIterations = _options.NumberOfTrees,
            NumberOfLeaves = _options.NumberOfLeaves,
            MinimumExampleCountPerLeaf = _options.MinimumExampleCountPerLeaf,
            LearningRate = _options.LearningRate,
            Seed = _seed,
        }).Fit(training),
        _ => throw _host.ExceptNotSupp($"Learner {_options.Learner}"),
    };

    /// <summary>Correlations on the held-out rows; with a label, each reward's held-out balanced accuracy at the threshold that
    /// is best on the training rows (the library's <see cref="RewardEvaluation"/>), so that neither accuracy is fitted on the
    /// rows it is measured on.</summary>
    private DistillationMetrics Measure(ITransformer model, IDataView training, IDataView heldOut, long trainingRows, long heldOutRows)
    {
        var heldOutScored = model.Transform(heldOut);
        var teacher = heldOutScored.GetColumn<float>(TeacherRewardColumnName).ToArray();
        var student = heldOutScored.GetColumn<float>(_options.OutputColumnName).ToArray();
        double spearman = Correlation.Spearman(student, teacher), pearson = Correlation.Pearson(student, teacher);
        if (_options.LabelColumnName is not { } label)
            return new DistillationMetrics(spearman, pearson, trainingRows, heldOutRows);

        var labels = heldOutScored.GetColumn<bool>(label).ToArray();
        var trainingScored = model.Transform(training);
        var trainingLabels = trainingScored.GetColumn<bool>(label).ToArray();
        CheckBothClasses(trainingLabels, "training");
        CheckBothClasses(labels, "held-out");
        var trainingTeacher = Pairs(trainingScored.GetColumn<float>(TeacherRewardColumnName).ToArray(), trainingLabels);
        var trainingStudent = Pairs(trainingScored.GetColumn<float>(_options.OutputColumnName).ToArray(), trainingLabels);
        var heldOutTeacher = Pairs(teacher, labels);
        var heldOutStudent = Pairs(student, labels);
        return new DistillationMetrics(spearman, pearson, trainingRows, heldOutRows,
            teacherAccuracy: RewardEvaluation.BalancedAccuracyAt(heldOutTeacher, RewardEvaluation.Compute(trainingTeacher, 0).BestThreshold),
            studentAccuracy: RewardEvaluation.BalancedAccuracyAt(heldOutStudent, RewardEvaluation.Compute(trainingStudent, 0).BestThreshold),
            teacherAuc: RewardEvaluation.Compute(heldOutTeacher, 0).AreaUnderRocCurve,
            studentAuc: RewardEvaluation.Compute(heldOutStudent, 0).AreaUnderRocCurve);
    }

    private static (float Reward, bool Label)[] Pairs(float[] rewards, bool[] labels) => rewards.Zip(labels).ToArray();

    private void CheckBothClasses(bool[] labels, string side)
    {
        int positives = labels.Count(l => l);
        if (positives == 0 || positives == labels.Length)
            throw _host.Except($"Measuring the preference accuracy needs rows of both classes in label column '{_options.LabelColumnName}' on both sides " +
                $"of the split; the {side} rows have {positives} true and {labels.Length - positives} false. Give rows of both classes, or more of them.");
    }

    private static long Count(IDataView data)
    {
        if (data.GetRowCount() is { } known)
            return known;
        long count = 0;
        using var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        while (cursor.MoveNext())
            count++;
        return count;
    }

    /// <summary>Checks the feature, label and episode columns and returns the output schema: the input plus <c>Score</c> (the
    /// regression's) and the output column, both Single.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _host.CheckValue(inputSchema, nameof(inputSchema));
        EstimatorSchema.CheckVectorColumn(inputSchema, _teacher.FeatureColumnName, _teacher.Shape);
        if (_options.LabelColumnName is { } label)
        {
            if (!inputSchema.TryFindColumn(label, out var column))
                throw _host.ExceptSchemaMismatch(nameof(inputSchema), "label", label);
            if (column.Kind != SchemaShape.Column.VectorKind.Scalar || column.ItemType != BooleanDataViewType.Instance)
                throw _host.ExceptSchemaMismatch(nameof(inputSchema), "label", label, "Boolean", column.GetTypeString());
        }
        if (_options.EpisodeColumnName is { } episode && !inputSchema.TryFindColumn(episode, out _))
            throw _host.ExceptSchemaMismatch(nameof(inputSchema), "episode", episode);
        var result = inputSchema.ToDictionary(c => c.Name);
        foreach (var name in new[] { ScoreColumnName, _options.OutputColumnName })
            result[name] = new SchemaShape.Column(name, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }
}
