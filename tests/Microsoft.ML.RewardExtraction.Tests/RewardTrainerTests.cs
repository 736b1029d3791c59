using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>Trainer mechanics (determinism, EMA, checkpoints, cancellation, bad data) and model persistence.</summary>
public class RewardTrainerTests
{
    private static readonly double[] A = { -0.5, 0.3 };
    private static readonly double[] B = { 0.5, -0.3 };
    private const double Std = 0.5;
    private static readonly SampleShape Shape = SampleShape.Trajectory(4, 2);
    private readonly ITestOutputHelper _output;

    public RewardTrainerTests(ITestOutputHelper output)
    {
        _output = output;
        Analytic.UseOneThread();
    }

    private sealed class Setup : IDisposable
    {
        public Setup(int steps = 10)
        {
            Schedule = NoiseSchedule.Cosine(steps);
            Base = Analytic.Model(Shape, Schedule, A, Std);
            Expert = Analytic.Model(Shape, Schedule, B, Std);
            Data = AnalyticRewardTests.Data(128, 21);
        }

        public NoiseSchedule Schedule { get; }
        public DiffusionModel Base { get; }
        public DiffusionModel Expert { get; }
        public Tensor Data { get; }

        public StateReward NewNetwork(long seed = 5) => TorchRandom.Initialize(seed, () => new StateReward(Shape, AnalyticRewardTests.SmallStateReward));

        public void Dispose()
        {
            Base.Dispose();
            Expert.Dispose();
            Data.Dispose();
        }
    }

    private static bool SameWeights(nn.Module a, nn.Module b)
    {
        var pa = a.parameters().ToArray();
        var pb = b.parameters().ToArray();
        return pa.Length == pb.Length && pa.Zip(pb).All(p => p.First.shape.SequenceEqual(p.Second.shape) && p.First.eq(p.Second).all().ToBoolean());
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().ToBoolean();

    [Fact]
    public void SameSeedGivesIdenticalWeightsAndSamples()
    {
        using var setup = new Setup();
        RelativeRewardModel Train(long seed)
        {
            using var network = setup.NewNetwork();
            return new RewardTrainer(AnalyticRewardTests.Training(60, seed)).Train(setup.Base, setup.Expert, network, setup.Data);
        }
        using var first = Train(1);
        using var second = Train(1);
        using var other = Train(2);
        Assert.True(SameWeights(first.Network, second.Network));
        Assert.False(SameWeights(first.Network, other.Network));

        var sampler = new GuidedSampler(new GuidanceOptions { Scale = 0.5 });
        using var gen1 = TorchRandom.Generator(7);
        using var gen2 = TorchRandom.Generator(7);
        using var s1 = sampler.Sample(setup.Base, first, 16, gen1);
        using var s2 = sampler.Sample(setup.Base, second, 16, gen2);
        Assert.True(Same(s1, s2));
    }

    [Fact]
    public void ShortRunsReturnTheFinalWeightsAndLaterRunsBlend()
    {
        using var setup = new Setup();
        using var network = setup.NewNetwork();
        var options = AnalyticRewardTests.Training(23);   // the last EMA copy step would be 20
        using var model = new RewardTrainer(options).Train(setup.Base, setup.Expert, network, setup.Data);
        Assert.True(SameWeights(model.Network, network));
        Assert.False(ReferenceEquals(model.Network, network));

        using var blended = setup.NewNetwork();
        options = AnalyticRewardTests.Training(40);
        options.EmaStartStep = 10;
        using var ema = new RewardTrainer(options).Train(setup.Base, setup.Expert, blended, setup.Data);
        Assert.False(SameWeights(ema.Network, blended));
    }

    [Fact]
    public void ResumingFromACheckpointEqualsAnUninterruptedRun()
    {
        using var setup = new Setup();
        string path = Path.Combine(Path.GetTempPath(), $"reward-checkpoint-{Guid.NewGuid():N}.bin");
        try
        {
            RewardTrainingOptions Options(int steps, bool resume) => new()
            {
                TrainingSteps = steps, BatchSize = 32, LearningRate = 2e-3, Seed = 4, EmaStartStep = 10, EmaUpdateEvery = 5,
                CheckpointPath = resume ? path : null, CheckpointEvery = 10, ResumeFromCheckpoint = resume,
            };
            using var straightNetwork = setup.NewNetwork();
            using var straight = new RewardTrainer(Options(40, false)).Train(setup.Base, setup.Expert, straightNetwork, setup.Data);

            using var firstHalf = setup.NewNetwork();
            using (new RewardTrainer(Options(20, true)).Train(setup.Base, setup.Expert, firstHalf, setup.Data)) { }
            Assert.True(File.Exists(path));
            using var resumedNetwork = setup.NewNetwork(seed: 77);   // different initial weights: the checkpoint must overwrite them
            var reports = new List<TrainingProgress>();
            using var resumed = new RewardTrainer(Options(40, true)).Train(setup.Base, setup.Expert, resumedNetwork, setup.Data, new ListProgress(reports));
            Assert.Equal(20, reports.Count);
            Assert.Equal(21, reports[0].Step);
            Assert.True(SameWeights(straightNetwork, resumedNetwork));
            Assert.True(SameWeights(straight.Network, resumed.Network));

            // A checkpoint of another architecture is refused.
            using var wider = new StateReward(Shape, new StateRewardOptions { HiddenSizes = new[] { 8 } });
            Assert.Throws<InvalidDataException>(() => new RewardTrainer(Options(50, true)).Train(setup.Base, setup.Expert, wider, setup.Data));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ProgressIsReportedEveryStepAndCancellationStops()
    {
        using var setup = new Setup();
        using var network = setup.NewNetwork();
        var reports = new List<TrainingProgress>();
        using (new RewardTrainer(AnalyticRewardTests.Training(12)).Train(setup.Base, setup.Expert, network, setup.Data, new ListProgress(reports))) { }
        Assert.Equal(Enumerable.Range(1, 12), reports.Select(r => r.Step));
        Assert.All(reports, r => Assert.Equal(12, r.TotalSteps));
        Assert.All(reports, r => Assert.True(double.IsFinite(r.Loss) && r.Loss >= 0));

        using var cts = new CancellationTokenSource();
        var seen = new List<TrainingProgress>();
        var cancelling = new ListProgress(seen, after: 5, cts);
        Assert.ThrowsAny<OperationCanceledException>(() =>
            new RewardTrainer(AnalyticRewardTests.Training(1000)).Train(setup.Base, setup.Expert, network, setup.Data, cancelling, cts.Token));
        Assert.Equal(5, seen.Count);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void NonFiniteDataIsRejectedNamingTheSample(float bad)
    {
        using var setup = new Setup();
        using var network = setup.NewNetwork();
        using var data = setup.Data.clone();
        data[37, 2, 1] = tensor(bad);
        data[90, 0, 0] = tensor(bad);
        var e = Assert.Throws<ArgumentException>(() => new RewardTrainer(AnalyticRewardTests.Training(5)).Train(setup.Base, setup.Expert, network, data));
        Assert.Contains("sample 37", e.Message);
        Assert.Contains("NaN or infinite", e.Message);
    }

    [Fact]
    public void WrongDataShapeAndBadOptionsAreRejected()
    {
        using var setup = new Setup();
        using var network = setup.NewNetwork();
        using var data = zeros(16, 4, 3);
        var e = Assert.Throws<ArgumentException>(() => new RewardTrainer(AnalyticRewardTests.Training(5)).Train(setup.Base, setup.Expert, network, data));
        Assert.Contains("[B, 4, 2]", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new RewardTrainer(new RewardTrainingOptions { BatchSize = 0 }).Train(setup.Base, setup.Expert, network, setup.Data));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RewardTrainer(new RewardTrainingOptions { LearningRate = double.NaN }).Train(setup.Base, setup.Expert, network, setup.Data));
    }

    public static IEnumerable<object[]> Kinds() => new[] { new object[] { "state" }, new object[] { "trajectory" }, new object[] { "image" } };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void SaveLoadRoundTripIsExact(string kind)
    {
        using var scope = NewDisposeScope();
        RelativeRewardModel model;
        if (kind == "state")
        {
            using var setup = new Setup();
            using var network = setup.NewNetwork();
            model = new RewardTrainer(AnalyticRewardTests.Training(30)).Train(setup.Base, setup.Expert, network, setup.Data);
        }
        else
        {
            RewardNetwork network = kind == "trajectory"
                ? new TrajectoryReward(SampleShape.Trajectory(8, 3), new TrajectoryRewardOptions { Dimension = 8, DimensionMultipliers = new[] { 1, 2 } })
                : new ImageReward(SampleShape.Image(1, 8, 8), new ImageRewardOptions { BaseChannels = 8, ChannelMultipliers = new[] { 1, 2 }, TimeEmbeddingDimension = 8 });
            model = new RelativeRewardModel(network, NoiseSchedule.Linear(20));
        }
        using (model)
        {
            using var stream = new MemoryStream();
            model.Save(stream);
            stream.Position = 0;
            using var loaded = RelativeRewardModel.Load(stream);
            Assert.Equal(stream.Length, stream.Position);
            Assert.Equal(model.Shape, loaded.Shape);
            Assert.Equal(model.Schedule, loaded.Schedule);
            Assert.Equal(model.Network.GetType(), loaded.Network.GetType());
            var x = randn(model.Shape.BatchShape(5), generator: TorchRandom.Generator(3));
            var t = tensor(new long[] { 0, 1, 2, 3, 4 });
            Assert.True(Same(model.Score(x, t), loaded.Score(x, t)));
            Assert.True(Same(model.Score(x), loaded.Score(x)));
            Assert.True(Same(model.Gradient(x, t), loaded.Gradient(x, t)));
            _output.WriteLine($"{kind}: {stream.Length} bytes");
        }
    }

    [Fact]
    public void TruncatedOrForeignStreamsAreInvalidData()
    {
        using var network = new StateReward(Shape, new StateRewardOptions { HiddenSizes = new[] { 8 } });
        using var model = new RelativeRewardModel(network, NoiseSchedule.Cosine(10));
        using var stream = new MemoryStream();
        model.Save(stream);
        var bytes = stream.ToArray();
        foreach (int length in new[] { 0, 3, 12, 40, bytes.Length / 2, bytes.Length - 1 })
        {
            using var truncated = new MemoryStream(bytes, 0, length);
            Assert.Throws<InvalidDataException>(() => RelativeRewardModel.Load(truncated));
        }
        using var foreign = new MemoryStream(System.Text.Encoding.UTF8.GetBytes("PK\u0003\u0004 this is not a reward model at all, just some text"));
        Assert.Throws<InvalidDataException>(() => RelativeRewardModel.Load(foreign));
        using var random = new MemoryStream(Enumerable.Range(0, 500).Select(i => (byte)(i * 37 + 11)).ToArray());
        Assert.Throws<InvalidDataException>(() => RelativeRewardModel.Load(random));

        // Another kind behind a valid header.
        using var other = new MemoryStream();
        using (var writer = new BinaryWriter(other, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            ModelHeader.Write(writer, "DiffusionModel", 1);
        }
        other.Position = 0;
        var e = Assert.Throws<InvalidDataException>(() => RelativeRewardModel.Load(other));
        Assert.Contains("DiffusionModel", e.Message);

        // A corrupted hyperparameter (the hidden width) no longer matches the weights.
        var corrupted = (byte[])bytes.Clone();
        int index = FindHiddenWidth(corrupted);
        corrupted[index] = 9;
        Assert.Throws<InvalidDataException>(() => RelativeRewardModel.Load(new MemoryStream(corrupted)));
    }

    private static int FindHiddenWidth(byte[] bytes)
    {
        // Descriptor: name "StateReward", type name, shape (kind, rank, 4, 2), architecture length, window 1, count 1, width 8.
        var marker = System.Text.Encoding.UTF8.GetBytes("StateReward");
        using var reader = new BinaryReader(new MemoryStream(bytes));
        reader.BaseStream.Position = bytes.AsSpan().IndexOf(marker) - 1;
        Assert.Equal("StateReward", reader.ReadString());
        Assert.Contains(nameof(StateReward), reader.ReadString());
        return (int)reader.BaseStream.Position + 4 * 4 + 4 + 4 + 4;
    }

    [Fact]
    public void CustomRewardNetworksSaveAndLoadOnceTheirLoaderIsRegistered()
    {
        var schedule = NoiseSchedule.Cosine(10);
        using var model = new RelativeRewardModel(new AnalyticLinearReward(Shape, schedule, A, B, Std), schedule);
        using var stream = new MemoryStream();
        model.Save(stream);
        string name = typeof(AnalyticLinearReward).FullName!;
        // No loader and no (SampleShape, BinaryReader) constructor: the error says what to do.
        stream.Position = 0;
        var e = Assert.Throws<InvalidDataException>(() => RelativeRewardModel.Load(stream));
        Assert.Contains($"RewardNetworkRegistry.Register(\"{name}\"", e.Message);
        Assert.Contains("(SampleShape shape, BinaryReader architecture)", e.Message);

        RewardNetworkRegistry.Register(name, (shape, _) => new AnalyticLinearReward(shape, schedule, A, B, Std));
        stream.Position = 0;
        using var loaded = RelativeRewardModel.Load(stream);
        Assert.IsType<AnalyticLinearReward>(loaded.Network);
        using var x = randn(5, 4, 2, generator: TorchRandom.Generator(3));
        using var expected = model.Score(x, 2);
        using var actual = loaded.Score(x, 2);
        Assert.True(expected.eq(actual).all().ToBoolean());
        Assert.Throws<ArgumentException>(() => RewardNetworkRegistry.Register(nameof(StateReward), (shape, _) => new StateReward(shape)));
    }

    private sealed class ListProgress(List<TrainingProgress> sink, int after = int.MaxValue, CancellationTokenSource? cancel = null) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            sink.Add(value);
            if (sink.Count >= after)
                cancel?.Cancel();
        }
    }
}
