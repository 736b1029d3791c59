using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Which rows the base model of <see cref="RelativeRewardExtractor"/> learns.</summary>
public enum BaseModelRows
{
    /// <summary>The rows whose label is false: ordinary behaviour against expert behaviour (the trajectory experiments).</summary>
    LabelFalse = 0,
    /// <summary>Every row: a model of everything against a model of the label-true part (the paper's image experiment,
    /// all images against the safe ones).</summary>
    All = 1,
}

/// <summary>
/// The whole method in one estimator, from one labelled data set: it trains the base diffusion model on the label-false
/// rows (or on all rows), the expert model on the label-true rows, warm-started from the base model and in its data space,
/// optionally a reference model (the base model fine-tuned on the base rows with the expert's settings), then the relative
/// reward on all rows. <see cref="Fit"/> returns one <see cref="TransformerChain{TLastTransformer}"/> (base, expert,
/// [reference,] reward) that saves as one zip; its transform adds the reward (and, only when read, each model's
/// denoising error).
/// </summary>
public sealed class RelativeRewardExtractor : IEstimator<TransformerChain<RelativeRewardTransformer>>
{
    /// <summary>Options of <see cref="RelativeRewardExtractor"/>.</summary>
    public sealed class Options
    {
        /// <summary>The samples: <c>Vector&lt;Single, Shape.Length&gt;</c>, raw values. Default "Features" (the window transform's output).</summary>
        public string FeatureColumnName { get; set; } = "Features";

        /// <summary>The label: Boolean, true for expert rows. Default "Label".</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>The shape of one sample. Required.</summary>
        public SampleShape? Shape { get; set; }

        /// <summary>Which rows the base model learns. Default <see cref="BaseModelRows.LabelFalse"/>.</summary>
        public BaseModelRows BaseRows { get; set; } = BaseModelRows.LabelFalse;

        /// <summary>Also train a reference model, the base model fine-tuned on the base rows with the expert's settings and
        /// seed, and take the reward's difference against it, so that the difference reflects the data and not the
        /// fine-tuning (docs/METHOD.md section 5). Default false.</summary>
        public bool TrainReferenceModel { get; set; }

        /// <summary>Settings of the base model (its feature column, shape and output column are set from these options).</summary>
        public DiffusionModelTrainer.Options BaseModel { get; set; } = new();

        /// <summary>Settings of the expert model (and of the reference model); its initial model is the base model.</summary>
        public DiffusionModelTrainer.Options ExpertModel { get; set; } = new();

        /// <summary>Settings of the reward (its feature column is set from these options; its reference model from
        /// <see cref="TrainReferenceModel"/>).</summary>
        public RelativeRewardTrainer.Options Reward { get; set; } = new();
    }

    /// <summary>The denoising-error columns the chain's diffusion models add (computed only when read).</summary>
    public const string BaseErrorColumnName = "BaseDenoisingError", ExpertErrorColumnName = "ExpertDenoisingError", ReferenceErrorColumnName = "ReferenceDenoisingError";

    private readonly MLContext _context;
    private readonly IHost _host;
    private readonly Options _options;
    private readonly DiffusionModelTrainer.Options _base, _expert;
    private readonly RelativeRewardTrainer.Options _reward;

    internal RelativeRewardExtractor(MLContext context, Options options)
    {
        Contracts.CheckValue(context, nameof(context));
        _context = context;
        _host = ((IHostEnvironment)context).Register(nameof(RelativeRewardExtractor));
        _host.CheckValue(options, nameof(options));
        _host.CheckNonEmpty(options.FeatureColumnName, nameof(Options.FeatureColumnName));
        _host.CheckNonEmpty(options.LabelColumnName, nameof(Options.LabelColumnName));
        _host.CheckUserArg(options.Shape is not null, nameof(Options.Shape), "The sample shape is required: SampleShape.Trajectory(horizon, dimension) or SampleShape.Image(c, h, w).");
        _host.CheckUserArg(Enum.IsDefined(options.BaseRows), nameof(Options.BaseRows), "is not a defined BaseModelRows");
        _host.CheckValue(options.BaseModel, nameof(Options.BaseModel));
        _host.CheckValue(options.ExpertModel, nameof(Options.ExpertModel));
        _host.CheckValue(options.Reward, nameof(Options.Reward));
        _host.CheckUserArg(options.Reward.ReferenceModel is null, nameof(Options.Reward), "ReferenceModel is set by TrainReferenceModel here");
        _options = options;
        // Copies with the columns, the shape and every seed fixed now, so that Fit trains what was validated.
        _base = Prepared(options.BaseModel, BaseErrorColumnName);
        _expert = Prepared(options.ExpertModel, ExpertErrorColumnName);
        _reward = options.Reward.Copy();
        _reward.FeatureColumnName = options.FeatureColumnName;
        _reward.Seed ??= _host.Rand.Next();
        new DiffusionModelTrainer(_host, _base);
        new DiffusionModelTrainer(_host, _expert);
        _reward.Check(_host, options.Shape!);
    }

    private DiffusionModelTrainer.Options Prepared(DiffusionModelTrainer.Options options, string outputColumnName)
    {
        var copy = options.Copy();
        copy.FeatureColumnName = _options.FeatureColumnName;
        copy.OutputColumnName = outputColumnName;
        copy.Shape = _options.Shape;
        copy.Seed ??= _host.Rand.Next();
        return copy;
    }

    /// <summary>Trains base, expert, (reference) and reward on <paramref name="input"/>.</summary>
    public TransformerChain<RelativeRewardTransformer> Fit(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        CheckLabel(input.Schema);
        var expertRows = Rows(input, expert: true);
        var baseRows = _options.BaseRows == BaseModelRows.All ? input : Rows(input, expert: false);
        var trained = new List<ITransformer>();
        try
        {
            using var channel = _host.Start("Extracting a relative reward from labelled rows");
            channel.Info("Training the base model.");
            var baseModel = new DiffusionModelTrainer(_host, _base).Fit(baseRows);
            trained.Add(baseModel);

            channel.Info("Training the expert model (warm-started from the base model).");
            var expertOptions = _expert.Copy();
            expertOptions.InitialModel = baseModel;
            var expertModel = new DiffusionModelTrainer(_host, expertOptions).Fit(expertRows);
            trained.Add(expertModel);

            DiffusionModelTransformer? reference = null;
            if (_options.TrainReferenceModel)
            {
                channel.Info("Training the reference model (the base model fine-tuned on the base rows with the expert's settings).");
                var referenceOptions = _expert.Copy();
                referenceOptions.InitialModel = baseModel;
                referenceOptions.OutputColumnName = ReferenceErrorColumnName;
                reference = new DiffusionModelTrainer(_host, referenceOptions).Fit(Rows(input, expert: false));
                trained.Add(reference);
            }

            channel.Info("Training the relative reward.");
            var rewardOptions = _reward.Copy();
            rewardOptions.ReferenceModel = reference;
            var reward = new RelativeRewardTrainer(_host, baseModel, expertModel, rewardOptions).Fit(input);
            trained.Add(reward);
            return new TransformerChain<RelativeRewardTransformer>(trained.ToArray());
        }
        catch
        {
            foreach (var model in trained)
                (model as IDisposable)?.Dispose();
            throw;
        }
    }

    /// <summary>The rows whose label is <paramref name="expert"/> (through ML.NET's own conversion and row filter, lazily).</summary>
    private IDataView Rows(IDataView input, bool expert)
    {
        const string numeric = "__RewardExtractionLabel";
        var converted = _context.Transforms.Conversion.ConvertType(numeric, _options.LabelColumnName, DataKind.Single).Fit(input).Transform(input);
        var rows = expert
            ? _context.Data.FilterRowsByColumn(converted, numeric, lowerBound: 0.5, upperBound: 1.5)
            : _context.Data.FilterRowsByColumn(converted, numeric, lowerBound: -0.5, upperBound: 0.5);
        return _context.Transforms.DropColumns(numeric).Fit(rows).Transform(rows);
    }

    private void CheckLabel(DataViewSchema schema)
    {
        var label = schema.GetColumnOrNull(_options.LabelColumnName);
        if (label is null)
            throw _host.ExceptSchemaMismatch(nameof(schema), "label", _options.LabelColumnName);
        if (label.Value.Type != BooleanDataViewType.Instance)
            throw _host.ExceptSchemaMismatch(nameof(schema), "label", _options.LabelColumnName, "Boolean", label.Value.Type.ToString());
    }

    /// <summary>Checks the feature and label columns and returns the output schema (the input plus the reward and the
    /// models' denoising errors).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _host.CheckValue(inputSchema, nameof(inputSchema));
        EstimatorSchema.CheckVectorColumn(inputSchema, _options.FeatureColumnName, _options.Shape!);
        if (!inputSchema.TryFindColumn(_options.LabelColumnName, out var label))
            throw _host.ExceptSchemaMismatch(nameof(inputSchema), "label", _options.LabelColumnName);
        if (label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType != BooleanDataViewType.Instance)
            throw _host.ExceptSchemaMismatch(nameof(inputSchema), "label", _options.LabelColumnName, "Boolean", label.GetTypeString());
        var result = inputSchema.ToDictionary(c => c.Name);
        var outputs = new List<string> { BaseErrorColumnName, ExpertErrorColumnName, _reward.OutputColumnName };
        if (_options.TrainReferenceModel)
            outputs.Add(ReferenceErrorColumnName);
        foreach (var name in outputs)
            result[name] = new SchemaShape.Column(name, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }
}
