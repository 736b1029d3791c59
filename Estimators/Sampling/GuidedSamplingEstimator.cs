using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Steers the base model's sampler with a relative reward (classifier guidance, docs/METHOD.md section 7): each input row becomes
/// one sample in the <c>Sample</c> column. Nothing is trained; <see cref="Fit"/> checks the schema.
/// </summary>
public sealed class GuidedSamplingEstimator : IEstimator<GuidedSamplingTransformer>
{
    /// <summary>Options of <see cref="GuidedSamplingEstimator"/>.</summary>
    public sealed class Options
    {
        /// <summary>The output column: <c>Vector&lt;Single, Shape.Length&gt;</c>, raw values. Default "Sample".</summary>
        public string OutputColumnName { get; set; } = "Sample";

        /// <summary>Optional input column of known values (raw), for inpainting. Default null.</summary>
        public string? ConditionColumnName { get; set; }

        /// <summary>Optional input column marking known entries (non-zero = known); needed with a condition. Default null.</summary>
        public string? ConditionMaskColumnName { get; set; }

        /// <summary>Optional integer column seeding each row's sample: a row's sample then depends on its seed only.
        /// Default null: the seed is mixed from <see cref="Seed"/> and the row position (0, 1, 2, ... in the input;
        /// a PredictionEngine numbers its calls the same way, so its n-th call matches row n - 1).</summary>
        public string? SeedColumnName { get; set; }

        /// <summary>The step size of the guidance: x += scale * grad R. Default 0.1; 0 samples the base model unguided.</summary>
        public double GuidanceScale { get; set; } = 0.1;

        /// <summary>No guidance at diffusion steps below this one (the paper's t_stopgrad). Default 0.</summary>
        public int StopGradientBelow { get; set; }

        /// <summary>Multiply the gradient by the posterior variance of the step. Default false (the paper's runs).</summary>
        public bool ScaleByVariance { get; set; }

        /// <summary>Guidance steps per reverse step. Default 1.</summary>
        public int GuideSteps { get; set; } = 1;

        /// <summary>Reverse steps of the sampler: 0 (default) = the ancestral sampler over all T steps of the base model;
        /// S in 1..T = the deterministic DDIM sampler over S evenly spaced steps (S denoiser passes instead of T).</summary>
        public int SamplingSteps { get; set; }

        /// <summary>Seed of rows without a seed column. Default 0.</summary>
        public long Seed { get; set; }

        /// <summary>Rows sampled together in one batch. Every pass runs on exactly this many rows (a partial batch, and a
        /// PredictionEngine's single row, are padded) so that a row's sample is bit-identical however it is produced;
        /// a PredictionEngine therefore pays for a whole batch per row. Default 16.</summary>
        public int BatchSize { get; set; } = 16;
    }

    private readonly IHost _host;
    private readonly Options _options;
    private readonly DiffusionModelTransformer _base;
    private readonly RelativeRewardTransformer? _reward;

    internal GuidedSamplingEstimator(IHostEnvironment env, DiffusionModelTransformer baseModel, RelativeRewardTransformer? reward, Options options)
    {
        Contracts.CheckValue(env, nameof(env));
        _host = env.Register(nameof(GuidedSamplingEstimator));
        _host.CheckValue(baseModel, nameof(baseModel));
        _host.CheckValue(options, nameof(options));
        ModelArguments.CheckAlive(_host, baseModel, nameof(baseModel));
        ModelArguments.CheckAlive(_host, reward, nameof(reward));
        _host.CheckNonEmpty(options.OutputColumnName, nameof(Options.OutputColumnName));
        _host.CheckUserArg(options.BatchSize >= 1, nameof(Options.BatchSize), "must be at least 1");
        _host.CheckUserArg(options.GuideSteps >= 1, nameof(Options.GuideSteps), "must be at least 1");
        _host.CheckUserArg(options.SamplingSteps >= 0 && options.SamplingSteps <= baseModel.Model.Diffusion.Steps, nameof(Options.SamplingSteps),
            $"must lie in 0..{baseModel.Model.Diffusion.Steps} (0 = every step; T of the base model is {baseModel.Model.Diffusion.Steps})");
        if (reward is not null && !reward.Shape.Equals(baseModel.Shape))
            throw _host.ExceptParam(nameof(reward), $"The reward was trained for {reward.Shape} but the base model samples {baseModel.Shape}.");
        if (reward is not null && reward.Model.DiffusionSteps != baseModel.Model.Diffusion.Steps)
            throw _host.ExceptParam(nameof(reward), $"The reward was trained for T = {reward.Model.DiffusionSteps} diffusion steps but the base model has T = {baseModel.Model.Diffusion.Steps}.");
        if (reward is not null && !Normalizer.SameMapping(reward.Normalizer, baseModel.Model.Normalizer))
            throw _host.ExceptParam(nameof(reward), "The reward was trained in another data space: its normaliser differs from the base model's. " +
                "Guide with the base model the reward was extracted from (or one trained with NormalizeLike = that model).");
        if ((options.ConditionColumnName is null) != (options.ConditionMaskColumnName is null))
            throw _host.ExceptUserArg(nameof(Options.ConditionMaskColumnName), "Inpainting needs both ConditionColumnName and ConditionMaskColumnName (non-zero = known entry); give both or neither.");
        _base = baseModel;
        _reward = reward;
        _options = options;
    }

    /// <summary>Checks the input schema and returns the sampling transformer.</summary>
    public GuidedSamplingTransformer Fit(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        ModelArguments.CheckAlive(_host, _base, "baseModel");
        ModelArguments.CheckAlive(_host, _reward, "reward");
        var transformer = Create();
        transformer.GetOutputSchema(input.Schema);
        return transformer;
    }

    private GuidedSamplingTransformer Create()
    {
        var o = _options;
        var guidance = new GuidanceOptions { Scale = o.GuidanceScale, StopGradientBelow = o.StopGradientBelow, ScaleByVariance = o.ScaleByVariance, GuideSteps = o.GuideSteps, SamplingSteps = o.SamplingSteps };
        return new GuidedSamplingTransformer(_host, _base.Model, _reward?.Model, guidance, o.OutputColumnName, o.ConditionColumnName,
            o.ConditionMaskColumnName, o.SeedColumnName, o.Seed, o.BatchSize, ownsModels: false,
            lenders: _reward is null ? new BatchedTransformerBase[] { _base } : new BatchedTransformerBase[] { _base, _reward });
    }

    /// <summary>Checks the input schema and returns the output schema (the input plus <c>Sample</c>).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _host.CheckValue(inputSchema, nameof(inputSchema));
        var o = _options;
        if (o.ConditionColumnName is not null)
        {
            EstimatorSchema.CheckVectorColumn(inputSchema, o.ConditionColumnName, _base.Shape, $"known values of {_base.Shape}");
            EstimatorSchema.CheckVectorColumn(inputSchema, o.ConditionMaskColumnName!, _base.Shape, $"mask of {_base.Shape}, non-zero = known");
        }
        if (o.SeedColumnName is not null)
        {
            if (!inputSchema.TryFindColumn(o.SeedColumnName, out var seed))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Could not find input column '{o.SeedColumnName}': expected an integer seed (Int32, Int64, UInt32 or UInt64).");
            if (seed.Kind != SchemaShape.Column.VectorKind.Scalar || !(seed.ItemType == NumberDataViewType.Int32 || seed.ItemType == NumberDataViewType.Int64
                || seed.ItemType == NumberDataViewType.UInt32 || seed.ItemType == NumberDataViewType.UInt64))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Schema mismatch for input column '{o.SeedColumnName}': expected an integer seed (Int32, Int64, UInt32 or UInt64), got {seed.GetTypeString()}.");
        }
        var result = inputSchema.ToDictionary(c => c.Name);
        result[o.OutputColumnName] = new SchemaShape.Column(o.OutputColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }
}
