using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using Microsoft.ML.Runtime;
using TorchSharp;

[assembly: LoadableClass(GuidedSamplingTransformer.Summary, typeof(GuidedSamplingTransformer), null, typeof(SignatureLoadModel),
    GuidedSamplingTransformer.UserName, GuidedSamplingTransformer.LoaderSignature)]

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The base diffusion model's sampler steered by a relative reward (classifier guidance), as an ML.NET transformer.
/// Each input row becomes one sample in the <c>Sample</c> column (raw, un-normalised values). Optional per-row
/// inputs: a condition vector with a mask (inpainting: entries where the mask is non-zero are fixed to the condition's
/// values) and an integer seed; without a seed column each row is seeded from <see cref="Seed"/> and its position
/// (a PredictionEngine numbers its calls 0, 1, 2, ... the same way). Every row draws its noise from its own generator and
/// every sampling pass runs on exactly <see cref="BatchedTransformerBase.BatchSize"/> rows (partial batches and a
/// PredictionEngine's single row are padded), so a row's sample is bit-identical whichever batch, or engine, produces it.
/// </summary>
public sealed class GuidedSamplingTransformer : BatchedTransformerBase
{
    internal const string Summary = "Draws samples from a base diffusion model steered by a relative reward.";
    internal const string UserName = "Guided Sampling Transformer";
    internal const string LoaderSignature = "GuidedSamplingXf";
    private const string BaseEntry = "BaseModel";
    private const string RewardEntry = "RewardModel";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "MLRWGUID",
        verWrittenCur: 0x00010002, // Sampling steps (DDIM)
        verReadableCur: 0x00010002,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(GuidedSamplingTransformer).Assembly.FullName);

    private readonly BatchInput[] _inputs;
    private readonly int _conditionInput = -1;
    private readonly int _maskInput = -1;
    private readonly bool _ownsModels;
    private readonly BatchedTransformerBase[] _lenders;
    private bool _disposed;

    internal GuidedSamplingTransformer(IHostEnvironment env, DiffusionModel baseModel, RelativeRewardModel? reward, GuidanceOptions guidance,
        string outputColumnName, string? conditionColumnName, string? conditionMaskColumnName, string? seedColumnName, long seed,
        int batchSize, bool ownsModels, IReadOnlyList<BatchedTransformerBase>? lenders = null)
        : base(env, nameof(GuidedSamplingTransformer), outputColumnName, batchSize, InvalidRowHandling.Error)
    {
        _lenders = lenders?.ToArray() ?? Array.Empty<BatchedTransformerBase>();
        BaseModel = baseModel ?? throw new ArgumentNullException(nameof(baseModel));
        Reward = reward;
        Guidance = guidance ?? throw new ArgumentNullException(nameof(guidance));
        guidance.Validate();
        if (guidance.SamplingSteps > baseModel.Diffusion.Steps)
            throw new ArgumentOutOfRangeException(nameof(guidance), guidance.SamplingSteps, $"SamplingSteps must lie in 0..{baseModel.Diffusion.Steps} (T of the base model).");
        if (reward is not null)
        {
            if (!reward.Shape.Equals(baseModel.Shape))
                throw new ArgumentException($"The reward was trained for {reward.Shape} but the base model samples {baseModel.Shape}.", nameof(reward));
            if (reward.DiffusionSteps != baseModel.Diffusion.Steps)
                throw new ArgumentException($"The reward was trained for T = {reward.DiffusionSteps} diffusion steps but the base model has T = {baseModel.Diffusion.Steps}.", nameof(reward));
        }
        if ((conditionColumnName is null) != (conditionMaskColumnName is null))
            throw new ArgumentException("Inpainting needs both a condition column and a condition mask column (non-zero = known entry); give both or neither.");
        ConditionColumnName = conditionColumnName;
        ConditionMaskColumnName = conditionMaskColumnName;
        SeedColumnName = seedColumnName;
        Seed = seed;
        _ownsModels = ownsModels;
        var inputs = new List<BatchInput>();
        if (conditionColumnName is not null)
        {
            _conditionInput = inputs.Count;
            inputs.Add(new BatchInput(conditionColumnName, baseModel.Shape.Length, Description: $"known values of {baseModel.Shape}"));
            _maskInput = inputs.Count;
            inputs.Add(new BatchInput(conditionMaskColumnName!, baseModel.Shape.Length, Description: $"mask of {baseModel.Shape}, non-zero = known"));
        }
        if (seedColumnName is not null)
            inputs.Add(new BatchInput(seedColumnName, 1, IsSeed: true));
        _inputs = inputs.ToArray();
    }

    /// <summary>The base model whose sampler is steered.</summary>
    public DiffusionModel BaseModel { get; }

    /// <summary>The reward that steers it; null samples the base model unguided.</summary>
    public RelativeRewardModel? Reward { get; }

    /// <summary>Scale, stop-gradient step, variance scaling, guide steps.</summary>
    public GuidanceOptions Guidance { get; }

    /// <summary>Optional condition column (raw values), or null.</summary>
    public string? ConditionColumnName { get; }

    /// <summary>Optional condition mask column (non-zero = known), or null.</summary>
    public string? ConditionMaskColumnName { get; }

    /// <summary>Optional per-row seed column, or null.</summary>
    public string? SeedColumnName { get; }

    /// <summary>The seed mixed with the row position when there is no seed column.</summary>
    public long Seed { get; }

    /// <summary>The shape of one sample.</summary>
    public SampleShape Shape => BaseModel.Shape;

    /// <summary>
    /// This sampler with another guidance scale (0 samples the base model unguided), its other settings and its columns
    /// unchanged: for a saved sampler whose scale the user wants to vary. The copy borrows this transformer's models, so it
    /// fails with a clear error once this one is disposed.
    /// </summary>
    public GuidedSamplingTransformer WithGuidanceScale(double scale)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!double.IsFinite(scale) || scale < 0)
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "The guidance scale must be finite and at least 0.");
        if (scale > 0 && Reward is null)
            throw new InvalidOperationException("This sampler was saved without a reward, so it cannot be guided; only scale 0 is possible.");
        var guidance = CopyOfGuidance();
        guidance.Scale = scale;
        return new GuidedSamplingTransformer(Host, BaseModel, scale == 0 ? null : Reward, guidance, OutputColumnName, ConditionColumnName,
            ConditionMaskColumnName, SeedColumnName, Seed, BatchSize, ownsModels: false, lenders: [this]);
    }

    /// <summary>
    /// The same sampler with another number of reverse steps (<see cref="GuidanceOptions.SamplingSteps"/>: 0 = the ancestral
    /// sampler over all T steps, S in 1..T = deterministic DDIM over S steps), sharing this one's models: dispose it before this
    /// one. Saving it writes a sampler that runs that many steps.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="samplingSteps"/> is negative or above the base model's T.</exception>
    public GuidedSamplingTransformer WithSamplingSteps(int samplingSteps)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (samplingSteps < 0 || samplingSteps > BaseModel.Diffusion.Steps)
            throw new ArgumentOutOfRangeException(nameof(samplingSteps), samplingSteps, $"The sampling steps must lie in 0..{BaseModel.Diffusion.Steps} (T of the base model).");
        var guidance = CopyOfGuidance();
        guidance.SamplingSteps = samplingSteps;
        return new GuidedSamplingTransformer(Host, BaseModel, Reward, guidance, OutputColumnName, ConditionColumnName,
            ConditionMaskColumnName, SeedColumnName, Seed, BatchSize, ownsModels: false, lenders: [this]);
    }

    private GuidanceOptions CopyOfGuidance() => new()
    {
        Scale = Guidance.Scale, StopGradientBelow = Guidance.StopGradientBelow, ScaleByVariance = Guidance.ScaleByVariance,
        GuideSteps = Guidance.GuideSteps, SamplingSteps = Guidance.SamplingSteps,
    };

    private protected override DataViewType OutputType => new VectorDataViewType(NumberDataViewType.Single, Shape.Length);

    private protected override IReadOnlyList<BatchInput> Inputs => _inputs;

    /// <summary>Every sampling pass runs on exactly <see cref="BatchedTransformerBase.BatchSize"/> rows, so a row's sample
    /// is bit-identical whether it comes from Transform (in any batch) or from a PredictionEngine.</summary>
    private protected override bool PadsBatches => true;

    private protected override bool CanSkipInvalidRows => false;

    /// <summary>The seed of a row without a seed column: a fixed mix of the options' seed and the row position.</summary>
    internal static long RowSeed(long seed, long position) => unchecked(seed * -7046029254386353131L + position * 0x5851F42D4C957F2DL + 1442695040888963407L);

    /// <summary>Throws if this sampler, or a transformer whose models it borrows, has been disposed.</summary>
    private void CheckAlive()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        foreach (var lender in _lenders)
        {
            if (lender.IsDisposed)
                throw new ObjectDisposedException(lender.GetType().Name, $"This sampler uses the models of a {lender.GetType().Name} that has been disposed.");
        }
    }

    private protected override void ComputeBatch(RowBatch batch)
    {
        CheckAlive();
        using var scope = torch.NewDisposeScope();
        var generators = new torch.Generator[batch.Count];
        try
        {
            for (int i = 0; i < batch.Count; i++)
                generators[i] = TorchRandom.Generator(batch.HasSeed[i] ? batch.Seeds[i] : RowSeed(Seed, batch.Positions[i]));
            InpaintingCondition? condition = null;
            if (_conditionInput >= 0)
            {
                var values = RowBatchTensors.NormalizedInput(batch, _conditionInput, Shape, BaseModel.Normalizer);
                var mask = RowBatchTensors.Input(batch, _maskInput, Shape).ne(0);
                condition = new InpaintingCondition(values, mask);
            }
            var sampler = new GuidedSampler(Guidance);
            var samples = sampler.Sample(BaseModel, Reward, generators, condition);
            using var _ = torch.no_grad();
            RowBatchTensors.Output(batch, BaseModel.Normalizer.Denormalize(samples));
        }
        finally
        {
            foreach (var g in generators)
                g?.Dispose();
        }
    }

    private protected override void SaveModel(ModelSaveContext ctx)
    {
        CheckAlive();
        Host.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());

        // *** Binary format ***
        // int: id of output column name
        // int: id of condition column name, or -1
        // int: id of condition mask column name, or -1
        // int: id of seed column name, or -1
        // long: seed
        // int: sampling batch size
        // double: guidance scale
        // int: stop-gradient step (no guidance below it)
        // bool: scale the gradient by the posterior variance
        // int: guide steps per reverse step
        // bool: has a reward
        // int: sampling steps (0 = ancestral over all T, S = DDIM over S steps; from version 0x00010002, else 0)
        // entry "BaseModel": component stream holding DiffusionModel.Save
        // entry "RewardModel" (when present): component stream holding RelativeRewardModel.Save
        ctx.SaveNonEmptyString(OutputColumnName);
        ctx.SaveStringOrNull(ConditionColumnName);
        ctx.SaveStringOrNull(ConditionMaskColumnName);
        ctx.SaveStringOrNull(SeedColumnName);
        ctx.Writer.Write(Seed);
        ctx.Writer.Write(BatchSize);
        ctx.Writer.Write(Guidance.Scale);
        ctx.Writer.Write(Guidance.StopGradientBelow);
        ctx.Writer.Write(Guidance.ScaleByVariance);
        ctx.Writer.Write(Guidance.GuideSteps);
        ctx.Writer.Write(Reward is not null);
        ctx.Writer.Write(Guidance.SamplingSteps);
        ComponentStream.Save(ctx, BaseEntry, nameof(DiffusionModel), 1, BaseModel.Save);
        if (Reward is not null)
            ComponentStream.Save(ctx, RewardEntry, RelativeRewardModel.PersistenceKind, 1, Reward.Save);
    }

    // Factory method for SignatureLoadModel.
    private static GuidedSamplingTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        var host = env.Register(nameof(GuidedSamplingTransformer));
        host.CheckValue(ctx, nameof(ctx));
        ModelVersion.CheckReadable(ctx, GetVersionInfo());
        ctx.CheckAtModel(GetVersionInfo());

        // *** Binary format ***
        // See SaveModel.
        string output = ctx.LoadNonEmptyString();
        string? condition = ctx.LoadStringOrNull();
        string? mask = ctx.LoadStringOrNull();
        string? seedColumn = ctx.LoadStringOrNull();
        long seed = ctx.Reader.ReadInt64();
        int batchSize = ctx.Reader.ReadInt32();
        host.CheckDecode(batchSize >= 1);
        var guidance = new GuidanceOptions
        {
            Scale = ctx.Reader.ReadDouble(),
            StopGradientBelow = ctx.Reader.ReadInt32(),
            ScaleByVariance = ctx.Reader.ReadBoolean(),
            GuideSteps = ctx.Reader.ReadInt32(),
        };
        bool hasReward = ctx.Reader.ReadBoolean();
        if (ctx.Header.ModelVerWritten >= 0x00010002)
        {
            guidance.SamplingSteps = ctx.Reader.ReadInt32();
            host.CheckDecode(guidance.SamplingSteps >= 0);
        }
        var device = ContextDevice.Resolve(env, host);
        var baseModel = ComponentStream.Load(ctx, BaseEntry, nameof(DiffusionModel), 1, 1, (stream, _) => DiffusionModel.Load(stream, device), host);
        var reward = hasReward
            ? ComponentStream.Load(ctx, RewardEntry, RelativeRewardModel.PersistenceKind, 1, 1, (stream, _) => RelativeRewardModel.Load(stream, baseModel.Normalizer, device), host)
            : null;
        return new GuidedSamplingTransformer(env, baseModel, reward, guidance, output, condition, mask, seedColumn, seed, batchSize, ownsModels: true);
    }

    internal override bool IsDisposed => _disposed;

    /// <summary>Releases the torch modules this transformer loaded itself (models passed in stay with their owners).</summary>
    public override void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_ownsModels)
        {
            BaseModel.Dispose();
            Reward?.Dispose();
        }
    }
}
