using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using Microsoft.ML.Runtime;
using TorchSharp;

[assembly: LoadableClass(RelativeRewardTransformer.Summary, typeof(RelativeRewardTransformer), null, typeof(SignatureLoadModel),
    RelativeRewardTransformer.UserName, RelativeRewardTransformer.LoaderSignature)]

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// The relative reward extracted from a base and an expert diffusion model, as an ML.NET transformer.
/// <see cref="BatchedTransformerBase.Transform"/> adds <c>Reward</c> (Single): R(x, t) of each row's sample after the base
/// model's normalisation, at diffusion step <see cref="ScoringStep"/> (0 = clean data). Higher = more expert-like.
/// </summary>
public sealed class RelativeRewardTransformer : BatchedTransformerBase
{
    internal const string Summary = "Scores trajectories or images with a relative reward extracted from two diffusion models.";
    internal const string UserName = "Relative Reward Transformer";
    internal const string LoaderSignature = "RelativeRewardXf";
    private const string RewardEntry = "RewardModel";
    private const string NormalizerEntry = "Normalizer";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "MLRWRWRD",
        verWrittenCur: 0x00010001, // Initial
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(RelativeRewardTransformer).Assembly.FullName);

    private readonly BatchInput[] _inputs;
    private bool _disposed;

    internal RelativeRewardTransformer(IHostEnvironment env, RelativeRewardModel model, Normalizer normalizer, string featureColumnName,
        string outputColumnName, int batchSize, InvalidRowHandling invalidValues, int scoringStep)
        : base(env, nameof(RelativeRewardTransformer), outputColumnName, batchSize, invalidValues)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Normalizer = normalizer ?? throw new ArgumentNullException(nameof(normalizer));
        if (!normalizer.Shape.Equals(model.Shape))
            throw new ArgumentException($"The normaliser is fitted for {normalizer.Shape} but the reward is built for {model.Shape}.", nameof(normalizer));
        if (scoringStep < 0 || scoringStep >= model.DiffusionSteps)
            throw new ArgumentOutOfRangeException(nameof(scoringStep), scoringStep, $"The scoring step must lie in 0..{model.DiffusionSteps - 1}.");
        FeatureColumnName = featureColumnName;
        ScoringStep = scoringStep;
        _inputs = new[] { new BatchInput(featureColumnName, model.Shape.Length, Description: model.Shape.ToString()) };
    }

    /// <summary>The core reward model (EMA weights).</summary>
    public RelativeRewardModel Model { get; }

    /// <summary>The base model's normaliser, applied to every row before scoring.</summary>
    public Normalizer Normalizer { get; }

    /// <summary>The vector column holding samples (raw values).</summary>
    public string FeatureColumnName { get; }

    /// <summary>The shape of one sample.</summary>
    public SampleShape Shape => Model.Shape;

    /// <summary>The diffusion step at which rows are scored (0 = clean data).</summary>
    public int ScoringStep { get; }

    /// <summary>
    /// A transformer that scores rows at diffusion step <paramref name="step"/> with a copy of this reward (same weights,
    /// columns and settings). At t = 0 the two diffusion models nearly agree, so the objective constrains the reward's
    /// t = 0 slice least; a moderate noise level often ranks clean data better. Dispose both transformers.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="step"/> is outside 0..T-1.</exception>
    public RelativeRewardTransformer AtScoringStep(int step)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (step < 0 || step >= Model.DiffusionSteps)
            throw new ArgumentOutOfRangeException(nameof(step), step, $"The scoring step must lie in 0..{Model.DiffusionSteps - 1}.");
        using var stream = new MemoryStream();
        Model.Save(stream);
        stream.Position = 0;
        var copy = RelativeRewardModel.Load(stream, Normalizer, Model.Network.parameters().FirstOrDefault()?.device);
        return new RelativeRewardTransformer(Host, copy, Normalizer, FeatureColumnName, OutputColumnName, BatchSize, InvalidValues, step);
    }

    private protected override DataViewType OutputType => NumberDataViewType.Single;

    private protected override IReadOnlyList<BatchInput> Inputs => _inputs;

    private protected override void ComputeBatch(RowBatch batch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var normalized = RowBatchTensors.NormalizedInput(batch, 0, Shape, Normalizer);
        RowBatchTensors.Output(batch, Model.Score(normalized, ScoringStep));
    }

    private protected override void SaveModel(ModelSaveContext ctx)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Host.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());

        // *** Binary format ***
        // int: id of feature column name
        // int: id of output column name
        // int: scoring batch size
        // int: invalid-row handling (0 = Error, 1 = Skip)
        // int: scoring step
        // entry "RewardModel": component stream holding RelativeRewardModel.Save (header, schedule, architecture, EMA weights)
        // entry "Normalizer": component stream holding the base model's Normalizer.Save
        ctx.SaveNonEmptyString(FeatureColumnName);
        ctx.SaveNonEmptyString(OutputColumnName);
        ctx.Writer.Write(BatchSize);
        ctx.Writer.Write((int)InvalidValues);
        ctx.Writer.Write(ScoringStep);
        ComponentStream.Save(ctx, RewardEntry, RelativeRewardModel.PersistenceKind, 1, Model.Save);
        ComponentStream.Save(ctx, NormalizerEntry, nameof(Normalizer), 1, stream => SaveNormalizer(stream, Normalizer));
    }

    internal static void SaveNormalizer(Stream stream, Normalizer normalizer)
    {
        using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        normalizer.Save(writer);
    }

    internal static Normalizer LoadNormalizer(Stream stream)
    {
        using var reader = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        return Normalizer.Load(reader);
    }

    // Factory method for SignatureLoadModel.
    private static RelativeRewardTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        var host = env.Register(nameof(RelativeRewardTransformer));
        host.CheckValue(ctx, nameof(ctx));
        ModelVersion.CheckReadable(ctx, GetVersionInfo());
        ctx.CheckAtModel(GetVersionInfo());

        // *** Binary format ***
        // See SaveModel.
        string feature = ctx.LoadNonEmptyString();
        string output = ctx.LoadNonEmptyString();
        int batchSize = ctx.Reader.ReadInt32();
        host.CheckDecode(batchSize >= 1);
        int invalid = ctx.Reader.ReadInt32();
        host.CheckDecode(Enum.IsDefined((InvalidRowHandling)invalid));
        int step = ctx.Reader.ReadInt32();
        var normalizer = ComponentStream.Load(ctx, NormalizerEntry, nameof(Normalizer), 1, 1, (stream, _) => LoadNormalizer(stream), host);
        var device = ContextDevice.Resolve(env, host);
        var model = ComponentStream.Load(ctx, RewardEntry, RelativeRewardModel.PersistenceKind, 1, 1, (stream, _) => RelativeRewardModel.Load(stream, normalizer, device), host);
        host.CheckDecode(step >= 0 && step < model.DiffusionSteps);
        return new RelativeRewardTransformer(env, model, normalizer, feature, output, batchSize, (InvalidRowHandling)invalid, step);
    }

    internal override bool IsDisposed => _disposed;

    /// <summary>Releases the torch modules.</summary>
    public override void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Model.Dispose();
    }
}
