using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using Microsoft.ML.Runtime;
using TorchSharp;

[assembly: LoadableClass(DiffusionModelTransformer.Summary, typeof(DiffusionModelTransformer), null, typeof(SignatureLoadModel),
    DiffusionModelTransformer.UserName, DiffusionModelTransformer.LoaderSignature)]

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// A trained diffusion model as an ML.NET transformer. <see cref="BatchedTransformerBase.Transform"/> adds
/// <c>DenoisingError</c> (Single): the mean x0-reconstruction error over a fixed, seeded set of noise levels,
/// an anomaly score (low = typical under this model). The model itself (<see cref="Model"/>) feeds
/// <c>RelativeReward</c> and <c>GuidedSampling</c>.
/// </summary>
public sealed class DiffusionModelTransformer : BatchedTransformerBase
{
    internal const string Summary = "A denoising diffusion model over trajectories or images; scores rows by denoising error.";
    internal const string UserName = "Diffusion Model Transformer";
    internal const string LoaderSignature = "DiffusionModelXf";
    private const string ModelEntry = "DiffusionModel";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "MLRWDIFF",
        verWrittenCur: 0x00010001, // Initial
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(DiffusionModelTransformer).Assembly.FullName);

    private readonly BatchInput[] _inputs;
    private bool _disposed;

    internal DiffusionModelTransformer(IHostEnvironment env, DiffusionModel model, string featureColumnName, string outputColumnName,
        int batchSize, InvalidRowHandling invalidValues, int noiseLevels, long evaluationSeed)
        : base(env, nameof(DiffusionModelTransformer), outputColumnName, batchSize, invalidValues)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        FeatureColumnName = featureColumnName;
        NoiseLevels = noiseLevels;
        EvaluationSeed = evaluationSeed;
        _inputs = new[] { new BatchInput(featureColumnName, model.Shape.Length, Description: model.Shape.ToString()) };
    }

    /// <summary>The core model: shape, schedule, EMA denoiser, normaliser.</summary>
    public DiffusionModel Model { get; }

    /// <summary>The vector column holding samples (raw, un-normalised values).</summary>
    public string FeatureColumnName { get; }

    /// <summary>The shape of one sample.</summary>
    public SampleShape Shape => Model.Shape;

    /// <summary>Noise levels averaged by the denoising error.</summary>
    public int NoiseLevels { get; }

    /// <summary>Seed of the fixed noise used by the denoising error.</summary>
    public long EvaluationSeed { get; }

    private protected override DataViewType OutputType => NumberDataViewType.Single;

    private protected override IReadOnlyList<BatchInput> Inputs => _inputs;

    private protected override void ComputeBatch(RowBatch batch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var normalized = RowBatchTensors.NormalizedInput(batch, 0, Shape, Model.Normalizer);
        RowBatchTensors.Output(batch, Model.DenoisingError(normalized, NoiseLevels, EvaluationSeed));
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
        // int: noise levels of the denoising error
        // long: evaluation seed
        // entry "DiffusionModel": component stream holding DiffusionModel.Save (header, shape, schedule, normaliser, EMA weights)
        ctx.SaveNonEmptyString(FeatureColumnName);
        ctx.SaveNonEmptyString(OutputColumnName);
        ctx.Writer.Write(BatchSize);
        ctx.Writer.Write((int)InvalidValues);
        ctx.Writer.Write(NoiseLevels);
        ctx.Writer.Write(EvaluationSeed);
        ComponentStream.Save(ctx, ModelEntry, nameof(DiffusionModel), 1, Model.Save);
    }

    // Factory method for SignatureLoadModel.
    private static DiffusionModelTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        var host = env.Register(nameof(DiffusionModelTransformer));
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
        int noiseLevels = ctx.Reader.ReadInt32();
        host.CheckDecode(noiseLevels >= 1);
        long seed = ctx.Reader.ReadInt64();
        var device = ContextDevice.Resolve(env, host);
        var model = ComponentStream.Load(ctx, ModelEntry, nameof(DiffusionModel), 1, 1, (stream, _) => DiffusionModel.Load(stream, device), host);
        return new DiffusionModelTransformer(env, model, feature, output, batchSize, (InvalidRowHandling)invalid, noiseLevels, seed);
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
