using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

public class DiffusionModelTests
{
    /// <summary>
    /// Tiny tensors on a shared 2-core machine: torch's second intra-op thread only adds contention (measured: a tiny
    /// MLP training step took 12-32 ms with 2 threads under load and 1.2-1.5 ms with 1). Process-wide and idempotent;
    /// every test class here calls it, so no test changes the thread count under another.
    /// </summary>
    internal static void UseOneThread()
    {
        if (torch.get_num_threads() != 1)
            torch.set_num_threads(1);
    }

    public DiffusionModelTests() => UseOneThread();

    internal static readonly SampleShape Tiny = SampleShape.Trajectory(4, 2);

    internal static DiffusionModelOptions TinyOptions(int seed = 1, DenoiserKind kind = DenoiserKind.Mlp) => new()
    {
        Shape = Tiny,
        DiffusionSteps = 10,
        Denoiser = new DenoiserOptions { Kind = kind, HiddenWidth = 32, HiddenLayers = 2, TimeEmbeddingDimension = 8, Dimension = 8, Multipliers = [1, 2] },
        Seed = seed,
    };

    internal static float[] Weights(nn.Module module) => module.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();

    [Fact]
    public void CreateIsSeeded()
    {
        using var a = DiffusionModel.Create(TinyOptions(3));
        using var b = DiffusionModel.Create(TinyOptions(3));
        using var c = DiffusionModel.Create(TinyOptions(4));
        Assert.Equal(Weights(a.Denoiser), Weights(b.Denoiser));
        Assert.NotEqual(Weights(a.Denoiser), Weights(c.Denoiser));
        Assert.IsType<MlpDenoiser>(a.Denoiser);
        Assert.IsType<IdentityNormalizer>(a.Normalizer);
        Assert.Equal(10, a.Diffusion.Steps);
        using var unet = DiffusionModel.Create(new DiffusionModelOptions { Shape = SampleShape.Trajectory(8, 3), Denoiser = new DenoiserOptions { Dimension = 8 } });
        Assert.IsType<TemporalUNet>(unet.Denoiser);
    }

    [Fact]
    public void CreateExplainsBadSettings()
    {
        Assert.Throws<ArgumentException>(() => DiffusionModel.Create(new DiffusionModelOptions()));
        var e = Assert.Throws<ArgumentException>(() => DiffusionModel.Create(new DiffusionModelOptions { Shape = SampleShape.Trajectory(6, 3), Denoiser = new DenoiserOptions { Dimension = 8 } }));
        Assert.Contains("divisible by 4", e.Message);
        Assert.Throws<ArgumentException>(() => DiffusionModel.Create(TinyOptions(), new IdentityNormalizer(SampleShape.Trajectory(4, 3))));
    }

    [Fact]
    public void SamplingIsDeterministicForASeed()
    {
        using var scope = NewDisposeScope();
        using var model = DiffusionModel.Create(TinyOptions());
        var a = model.Sample(5, 42).data<float>().ToArray();
        var b = model.Sample(5, 42).data<float>().ToArray();
        var c = model.Sample(5, 43).data<float>().ToArray();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.All(a, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(new long[] { 5, 4, 2 }, model.Sample(5, 1).shape);
    }

    [Fact]
    public void SamplingKeepsTheCondition()
    {
        using var scope = NewDisposeScope();
        using var model = DiffusionModel.Create(TinyOptions());
        // Known first state (0.25, -0.75) for every sample.
        var values = zeros(1, 4, 2);
        values[0, 0, 0] = tensor(0.25f);
        values[0, 0, 1] = tensor(-0.75f);
        var mask = zeros(1, 4, 2, ScalarType.Bool);
        mask[0, 0] = tensor(true);
        var samples = model.Sample(3, 7, new InpaintingCondition(values, mask));
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(0.25f, samples[i, 0, 0].item<float>());
            Assert.Equal(-0.75f, samples[i, 0, 1].item<float>());
        }
        Assert.Throws<ArgumentException>(() => model.Sample(3, 7, new InpaintingCondition(zeros(2, 4, 2), zeros(2, 4, 2))));
    }

    [Fact]
    public void SamplingAndScoringLeaveOnlyTheirResultInTheCallersScope()
    {
        using var model = DiffusionModel.Create(TinyOptions());
        // Dispose scopes are per thread, so this count is not disturbed by tests running in parallel.
        using var scope = NewDisposeScope();
        var input = zeros(3, 4, 2);
        model.Sample(2, 1);
        model.DenoisingError(input);
        Assert.Equal(3, scope.DisposablesCount);
    }

    [Fact]
    public void DenoisingErrorIsPerRowAndDeterministic()
    {
        using var scope = NewDisposeScope();
        using var model = DiffusionModel.Create(TinyOptions());
        using var g = TorchRandom.Generator(9);
        var batch = rand(new long[] { 6, 4, 2 }, generator: g).mul_(2).sub_(1);
        var scores = model.DenoisingError(batch);
        Assert.Equal(new long[] { 6 }, scores.shape);
        var a = scores.data<float>().ToArray();
        Assert.Equal(a, model.DenoisingError(batch).data<float>().ToArray());
        Assert.All(a, v => Assert.True(v > 0 && float.IsFinite(v)));
        // A row scores the same alone, or in a permuted batch (up to float rounding of batched kernels).
        var single = model.DenoisingError(batch[3..4]).item<float>();
        Assert.True(Math.Abs(single - a[3]) <= 1e-6f * Math.Max(1, a[3]), $"alone {single} vs in batch {a[3]}");
        var permutation = tensor(new long[] { 5, 3, 1, 0, 2, 4 });
        var permuted = model.DenoisingError(batch.index_select(0, permutation)).data<float>().ToArray();
        for (int i = 0; i < 6; i++)
            Assert.True(Math.Abs(permuted[i] - a[permutation[i].item<long>()]) <= 1e-6f * Math.Max(1, permuted[i]));
        // Another seed draws other noise.
        Assert.NotEqual(a, model.DenoisingError(batch, seed: 1).data<float>().ToArray());
        Assert.Throws<ArgumentException>(() => model.DenoisingError(zeros(2, 4, 3)));
    }

    [Fact]
    public void DenoisingErrorMatchesItsDefinition()
    {
        using var scope = NewDisposeScope();
        using var model = DiffusionModel.Create(TinyOptions());
        var batch = rand(new long[] { 2, 4, 2 }, generator: TorchRandom.Generator(2));
        var levels = DiffusionModel.DenoisingLevels(10, 4);
        Assert.Equal(new[] { 1, 3, 6, 8 }, levels);
        Tensor noise;
        using (var g = TorchRandom.Generator(5))
            noise = randn(new long[] { 4, 4, 2 }, generator: g);
        var expected = zeros(2);
        using (no_grad())
        {
            for (int k = 0; k < 4; k++)
            {
                var t = full(new long[] { 2 }, levels[k], ScalarType.Int64);
                var xt = model.Diffusion.QSample(batch, t, noise[k].unsqueeze(0).expand(2, 4, 2));
                var x0 = model.Diffusion.EstimateStart(model.Denoiser.call(xt, t), xt, t);
                expected += (x0 - batch).square().flatten(1).mean(new long[] { 1 });
            }
        }
        expected /= 4;
        var actual = model.DenoisingError(batch, 4, 5);
        Assert.True((actual - expected).abs().max().item<float>() < 1e-6f);
    }

    [Theory]
    [InlineData(DenoiserKind.Mlp)]
    [InlineData(DenoiserKind.TemporalUNet)]
    public void SaveLoadRoundTripIsBitwise(DenoiserKind kind)
    {
        using var scope = NewDisposeScope();
        var data = rand(new long[] { 20, 4, 2 }, generator: TorchRandom.Generator(1)).mul_(10);
        using var model = DiffusionModel.Create(TinyOptions(5, kind), LimitsNormalizer.Fit(Tiny, data));
        using var stream = new MemoryStream();
        model.Save(stream);
        stream.WriteByte(0xAB);   // the stream is left open and the loader stops at the model's end
        stream.Position = 0;
        using var loaded = DiffusionModel.Load(stream);
        Assert.Equal(stream.Length - 1, stream.Position);
        Assert.Equal(model.Shape, loaded.Shape);
        Assert.Equal(model.Diffusion.Schedule, loaded.Diffusion.Schedule);
        Assert.Equal(model.Diffusion.Target, loaded.Diffusion.Target);
        Assert.Equal(model.Diffusion.ClipDenoised, loaded.Diffusion.ClipDenoised);
        Assert.Equal(model.Denoiser.GetType(), loaded.Denoiser.GetType());
        Assert.Equal(Weights(model.Denoiser), Weights(loaded.Denoiser));
        Assert.Equal(model.Sample(3, 11).data<float>().ToArray(), loaded.Sample(3, 11).data<float>().ToArray());
        var normalized = model.Normalizer.Normalize(data);
        Assert.Equal(normalized.data<float>().ToArray(), loaded.Normalizer.Normalize(data).data<float>().ToArray());
        Assert.Equal(model.DenoisingError(normalized).data<float>().ToArray(), loaded.DenoisingError(normalized).data<float>().ToArray());
    }

    [Fact]
    public void LoadRejectsForeignVersionedAndTruncatedStreams()
    {
        using var model = DiffusionModel.Create(TinyOptions());
        using var stream = new MemoryStream();
        model.Save(stream);
        var bytes = stream.ToArray();

        // Empty and foreign streams.
        var e = Assert.Throws<InvalidDataException>(() => DiffusionModel.Load(new MemoryStream()));
        Assert.Contains("expected 4 bytes", e.Message);
        e = Assert.Throws<InvalidDataException>(() => DiffusionModel.Load(new MemoryStream("PK\u0003\u0004 not a model"u8.ToArray())));
        Assert.Contains("\"MLRW\"", e.Message);

        // Another component kind.
        using (var other = new MemoryStream())
        {
            using (var w = new BinaryWriter(other, System.Text.Encoding.UTF8, true))
                ModelHeader.Write(w, "RelativeReward", 1);
            other.Position = 0;
            e = Assert.Throws<InvalidDataException>(() => DiffusionModel.Load(other));
            Assert.Contains("expected a \"DiffusionModel\", found a \"RelativeReward\"", e.Message);
        }

        // A newer format version.
        var newer = (byte[])bytes.Clone();
        BitConverter.GetBytes(DiffusionModel.FormatVersion + 1).CopyTo(newer, 4);
        e = Assert.Throws<InvalidDataException>(() => DiffusionModel.Load(new MemoryStream(newer)));
        Assert.Contains($"found version {DiffusionModel.FormatVersion + 1}", e.Message);

        // Every truncation, in the header, the description, the normaliser and the weights, is reported as such.
        foreach (int length in new[] { 3, 6, 10, 20, 30, 60, 100, bytes.Length / 2, bytes.Length - 1 })
        {
            var cut = new MemoryStream(bytes[..length]);
            Assert.Throws<InvalidDataException>(() => DiffusionModel.Load(cut));
        }
    }

    [Fact]
    public void LoadRejectsWeightsOfAnotherArchitecture()
    {
        using var small = DiffusionModel.Create(TinyOptions());
        var opts = TinyOptions();
        opts.Denoiser.HiddenWidth = 16;
        using var other = DiffusionModel.Create(opts);
        // Splice, in the unsealed version-1 layout (a sealed file would fail its hash first): the description of `small`
        // followed by the weights of `other`.
        byte[] Description(DiffusionModel m, out byte[] weights)
        {
            using var s = new MemoryStream();
            m.Save(s);
            var all = s.ToArray();
            using var w = new MemoryStream();
            using (var bw = new BinaryWriter(w, System.Text.Encoding.UTF8, true))
                ModuleSerializer.WriteModule(bw, m.Denoiser);
            weights = w.ToArray();
            int sealedHeader = 12 + DiffusionModel.ComponentKind.Length + 8 + 32;
            return all[sealedHeader..^weights.Length];
        }
        using var header = new MemoryStream();
        using (var bw = new BinaryWriter(header, System.Text.Encoding.UTF8, true))
            ModelHeader.Write(bw, DiffusionModel.ComponentKind, 1);
        var head = Description(small, out _);
        Description(other, out var otherWeights);
        var e = Assert.Throws<InvalidDataException>(() => DiffusionModel.Load(new MemoryStream([.. header.ToArray(), .. head, .. otherWeights])));
        Assert.Contains("network weights", e.Message);
    }
}
