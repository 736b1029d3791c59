using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using Microsoft.ML.RewardExtraction.Pipeline.Tests;
using Microsoft.ML.Runtime;
using TorchSharp;

[assembly: LoadableClass(typeof(TorchProbeTransformer), null, typeof(SignatureLoadModel),
    "Torch Probe Transformer", TorchProbeTransformer.LoaderSignature)]

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>
/// A test-only torch-holding component: passes data through unchanged and carries a linear layer, saved with
/// <see cref="ComponentStream"/> the way the diffusion and reward transformers store their networks.
/// </summary>
public sealed class TorchProbeTransformer : ITransformer, IDisposable
{
    internal const string LoaderSignature = "MLRewardTorchProbe";
    internal const string EntryName = "TorchState";
    internal const string Kind = "TorchProbeLinear";

    private static VersionInfo GetVersionInfo()
        => new VersionInfo(
            modelSignature: "TRCHPROB",
            verWrittenCur: 0x00010001,
            verReadableCur: 0x00010001,
            verWeCanReadBack: 0x00010001,
            loaderSignature: LoaderSignature,
            loaderAssemblyName: typeof(TorchProbeTransformer).Assembly.FullName);

    public TorchProbeTransformer(TorchSharp.Modules.Linear module, int inputs, int outputs)
    {
        Module = module;
        Inputs = inputs;
        Outputs = outputs;
    }

    public TorchSharp.Modules.Linear Module { get; }

    public int Inputs { get; }

    public int Outputs { get; }

    public bool IsRowToRowMapper => false;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new NotSupportedException();

    public IDataView Transform(IDataView input) => input;

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());

        // *** Binary format ***
        // int: inputs
        // int: outputs
        // entry TorchState: ComponentStream "TorchProbeLinear" v1, payload = TorchSharp module.save
        ctx.Writer.Write(Inputs);
        ctx.Writer.Write(Outputs);
        ComponentStream.Save(ctx, EntryName, Kind, 1, stream => Module.save(stream));
    }

    private static TorchProbeTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ctx.CheckAtModel(GetVersionInfo());
        int inputs = ctx.Reader.ReadInt32();
        int outputs = ctx.Reader.ReadInt32();
        var module = torch.nn.Linear(inputs, outputs);
        ComponentStream.Load(ctx, EntryName, Kind, 1, 1, (stream, version) => module.load(stream));
        return new TorchProbeTransformer(module, inputs, outputs);
    }

    public void Dispose() => Module.Dispose();
}
