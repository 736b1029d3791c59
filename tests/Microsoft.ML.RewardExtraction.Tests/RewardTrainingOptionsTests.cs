using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>
/// The reward trainer's options beyond the plain objective, each against a hand computation: the feature mask, conditioning
/// by inpainting, noise-level balancing, the reference model, checkpoint on cancellation, and validation.
/// </summary>
public class RewardTrainingOptionsTests
{
    private static readonly double[] A = { -0.5, 0.3 };
    private static readonly double[] B = { 0.5, -0.3 };
    private const double Std = 0.5;
    private static readonly SampleShape Shape = SampleShape.Trajectory(4, 2);
    private static readonly NoiseSchedule Schedule = NoiseSchedule.Cosine(10);

    public RewardTrainingOptionsTests() => Analytic.UseOneThread();

    private static StateReward NewNetwork(long seed = 5) => TorchRandom.Initialize(seed, () => new StateReward(Shape, AnalyticRewardTests.SmallStateReward));

    private static bool SameWeights(nn.Module a, nn.Module b)
    {
        var pa = a.parameters().ToArray();
        var pb = b.parameters().ToArray();
        return pa.Length == pb.Length && pa.Zip(pb).All(p => p.First.shape.SequenceEqual(p.Second.shape) && p.First.eq(p.Second).all().ToBoolean());
    }

    [Fact]
    public void AMaskedReward_HasZeroGradientOnMaskedFeatures_AndItsLossIsTheMeanOverTheReadEntries()
    {
        using var baseModel = Analytic.Model(Shape, Schedule, A, Std);
        using var expert = Analytic.Model(Shape, Schedule, B, Std);
        using var masked = new FeatureMaskedReward(NewNetwork(), new[] { true, false });
        using var lossMask = tensor(new float[] { 1, 0, 1, 0, 1, 0, 1, 0 }).reshape(1, 4, 2);
        var objective = new RelativeRewardObjective(baseModel, expert, masked, lossMask: lossMask);
        using var scope = NewDisposeScope();
        var generator = TorchRandom.Generator(7);
        var x = randn(new long[] { 6, 4, 2 }, generator: generator);
        var t = randint(0, 10, new long[] { 6 }, dtype: ScalarType.Int64, generator: generator);
        var target = randn(new long[] { 6, 4, 2 }, generator: generator);

        // The gradient of the reward in the masked feature (column 1) is exactly zero.
        var leaf = x.clone().requires_grad_(true);
        var gradient = torch.autograd.grad(new[] { masked.call(leaf, t).sum() }, new[] { leaf })[0];
        Assert.Equal(0f, gradient.select(2, 1).abs().max().ToSingle());
        Assert.True(gradient.select(2, 0).abs().max().ToSingle() > 0);

        // Loss = sum over the read entries of (g - target)^2 / (B * H * read features), by hand.
        var loss = objective.LossAt(x.clone(), t, target).ToDouble();
        var g = gradient.detach().to(ScalarType.Float64);
        var y = target.to(ScalarType.Float64);
        double sum = 0;
        for (int b = 0; b < 6; b++)
            for (int h = 0; h < 4; h++)
            {
                double d = g[b, h, 0].ToDouble() - y[b, h, 0].ToDouble();
                sum += d * d;
            }
        Assert.Equal(sum / (6 * 4 * 1), loss, 5);

        // The trainer wraps the network when FeatureMask is set, and the model reads only the flagged features.
        using var data = AnalyticRewardTests.Data(64, 3);
        var options = AnalyticRewardTests.Training(20);
        options.FeatureMask = new[] { true, false };
        using var model = new RewardTrainer(options).Train(baseModel, expert, NewNetwork(), data);
        var wrapper = Assert.IsType<FeatureMaskedReward>(model.Network);
        Assert.Equal(new[] { true, false }, wrapper.Features);
        var moved = x.clone();
        moved.select(2, 1).add_(5);
        Assert.True(model.Score(x, 3).eq(model.Score(moved, 3)).all().ToBoolean());
    }

    [Fact]
    public void TheLossMask_FitsOnlyItsEntries_OfThoseTheRewardReads()
    {
        // Shape [4 steps, 2 features]; the last two steps fitted, only feature 0 read: the entries fitted are (2,0) and (3,0).
        var options = new RewardTrainingOptions { FeatureMask = new[] { true, false }, LossMask = RewardTrainingOptions.LastStepsMask(4, 2, 2) };
        Assert.Equal(new[] { false, false, false, false, true, true, true, true }, options.LossMask);
        using var network = NewNetwork();
        using var masked = new FeatureMaskedReward(NewNetwork(), new[] { true, false });
        using var both = new RewardTrainer(options).FittedEntries(Shape, masked)!;
        Assert.Equal(new long[] { 1, 4, 2 }, both.shape);
        Assert.Equal(new float[] { 0, 0, 0, 0, 1, 0, 1, 0 }, both.data<float>().ToArray());
        options.FeatureMask = null;
        using var fittedOnly = new RewardTrainer(options).FittedEntries(Shape, network)!;
        Assert.Equal(new float[] { 0, 0, 0, 0, 1, 1, 1, 1 }, fittedOnly.data<float>().ToArray());
        options.LossMask = null;
        Assert.Null(new RewardTrainer(options).FittedEntries(Shape, network));

        // A loss mask over every entry changes nothing: the same weights, bit for bit.
        using var baseModel = Analytic.Model(Shape, Schedule, A, Std);
        using var expert = Analytic.Model(Shape, Schedule, B, Std);
        using var data = AnalyticRewardTests.Data(64, 3);
        var plain = AnalyticRewardTests.Training(20);
        var everyEntry = AnalyticRewardTests.Training(20);
        everyEntry.LossMask = Enumerable.Repeat(true, Shape.Length).ToArray();
        using var a = new RewardTrainer(plain).Train(baseModel, expert, NewNetwork(), data);
        using var b = new RewardTrainer(everyEntry).Train(baseModel, expert, NewNetwork(), data);
        Assert.True(SameWeights(a.Network, b.Network));
        // Fitting the last step only is another objective: other weights.
        var lastStep = AnalyticRewardTests.Training(20);
        lastStep.LossMask = RewardTrainingOptions.LastStepsMask(4, 2, 1);
        using var c = new RewardTrainer(lastStep).Train(baseModel, expert, NewNetwork(), data);
        Assert.False(SameWeights(a.Network, c.Network));
    }

    [Fact]
    public void ALossMaskThatFitsNothingTheRewardReads_IsRefused()
    {
        var options = AnalyticRewardTests.Training(2);
        options.FeatureMask = new[] { false, true };
        options.LossMask = new[] { true, false, true, false, true, false, true, false };
        var e = Assert.Throws<ArgumentException>(() => options.CheckShape(Shape));
        Assert.Equal("LossMask", e.ParamName);
        Assert.Contains("share no entry", e.Message);
        options.LossMask = new bool[7];
        e = Assert.Throws<ArgumentException>(() => options.CheckShape(Shape));
        Assert.Contains("LossMask has 7 flags", e.Message);
        Assert.Contains("8 entries", e.Message);
        var steps = Assert.Throws<ArgumentOutOfRangeException>(() => RewardTrainingOptions.LastStepsMask(4, 2, 5));
        Assert.Contains("[1, 4]", steps.Message);
    }

    [Fact]
    public void AFeatureMaskedModel_SavesAndLoads_ScoringIdentically()
    {
        using var baseModel = Analytic.Model(Shape, Schedule, A, Std);
        using var expert = Analytic.Model(Shape, Schedule, B, Std);
        using var data = AnalyticRewardTests.Data(64, 3);
        var options = AnalyticRewardTests.Training(10);
        options.FeatureMask = new[] { false, true };
        using var model = new RewardTrainer(options).Train(baseModel, expert, NewNetwork(), data);
        using var stream = new MemoryStream();
        model.Save(stream);
        stream.Position = 0;
        using var loaded = RelativeRewardModel.Load(stream);
        var wrapper = Assert.IsType<FeatureMaskedReward>(loaded.Network);
        Assert.Equal(new[] { false, true }, wrapper.Features);
        Assert.IsType<StateReward>(wrapper.Inner);
        using var x = randn(new long[] { 5, 4, 2 }, generator: TorchRandom.Generator(1));
        Assert.True(model.Score(x, 2).eq(loaded.Score(x, 2)).all().ToBoolean());
    }

    [Fact]
    public void ConditionedTargets_EqualTheHandInpaintedComputation()
    {
        using var baseModel = Analytic.Model(Shape, Schedule, A, Std);
        using var expert = Analytic.Model(Shape, Schedule, B, Std);
        using var reward = NewNetwork();
        var condition = RewardTrainingOptions.FirstObservationCondition(horizon: 4, transitionDimension: 2, actionSize: 1);
        Assert.Equal(new[] { false, true, false, false, false, false, false, false }, condition);
        using var mask = tensor(condition).reshape(1, 4, 2);
        var objective = new RelativeRewardObjective(baseModel, expert, reward, conditionMask: mask);
        using var scope = NewDisposeScope();
        var generator = TorchRandom.Generator(11);
        var start = randn(new long[] { 6, 4, 2 }, generator: generator);
        var t = randint(0, 10, new long[] { 6 }, dtype: ScalarType.Int64, generator: generator);
        var noise = randn(new long[] { 6, 4, 2 }, generator: generator);

        var (at, target) = objective.Targets(start, t, noise);

        // By hand: x_t with the known entry overwritten, both means with it overwritten too.
        var xt = baseModel.Diffusion.QSample(start, t, noise);
        xt[.., 0, 1] = start[.., 0, 1];
        var muB = baseModel.ReverseMean(xt, t);
        var muE = expert.ReverseMean(xt, t);
        muB[.., 0, 1] = start[.., 0, 1];
        muE[.., 0, 1] = start[.., 0, 1];
        Assert.True(at.eq(muB).all().ToBoolean());
        Assert.True(target.eq(muE - muB).all().ToBoolean());
        Assert.Equal(0f, target[.., 0, 1].abs().max().ToSingle());
        Assert.True(target[.., 1..].abs().max().ToSingle() > 0);
    }

    [Fact]
    public void NoiseLevelWeights_AreTheInverseMeanSquaredTargetPerStep_NormalisedOverThePool()
    {
        using var scope = NewDisposeScope();
        var steps = tensor(new long[] { 0, 0, 1, 2, 2, 2 });
        // Per-sample mean squared targets 1, 3, 4, 2, 2, 2 (entries all equal to the square root).
        var perSample = new[] { 1.0, 3.0, 4.0, 2.0, 2.0, 2.0 };
        var target = tensor(perSample.Select(v => (float)Math.Sqrt(v)).ToArray()).reshape(6, 1, 1).expand(6, 4, 2).contiguous();
        var weights = TargetCache.StepWeights(steps, target, null, 4);
        // Mean square per step: t0 2, t1 4, t2 2, t3 never drawn (gets the largest weight, 1/2).
        double[] raw = { 1 / 2.0, 1 / 4.0, 1 / 2.0, 1 / 2.0 };
        double poolMean = (raw[0] * 2 + raw[1] + raw[2] * 3) / 6;
        for (int s = 0; s < 4; s++)
            Assert.Equal(raw[s] / poolMean, weights[s].ToDouble(), 5);

        // With a loss mask only the read entries count: zero targets in feature 1 do not lower the mean square.
        var half = target.clone();
        half.select(2, 1).zero_();
        var masked = TargetCache.StepWeights(steps, half, tensor(new float[] { 1, 0, 1, 0, 1, 0, 1, 0 }).reshape(1, 4, 2), 4);
        Assert.True(masked.allclose(weights, rtol: 1e-6, atol: 1e-7));
    }

    [Fact]
    public void BalancedTraining_UsesTheWeights_AndDiffersFromUnbalanced()
    {
        using var baseModel = Analytic.Model(Shape, Schedule, A, Std);
        using var expert = Analytic.Model(Shape, Schedule, B, Std);
        using var data = AnalyticRewardTests.Data(64, 3);
        RelativeRewardModel Train(bool balance)
        {
            var options = AnalyticRewardTests.Training(15);
            options.TargetCachePoolSize = 200;
            options.BalanceNoiseLevels = balance;
            return new RewardTrainer(options).Train(baseModel, expert, NewNetwork(), data);
        }
        using var plain = Train(false);
        using var balanced = Train(true);
        using var again = Train(true);
        Assert.False(SameWeights(plain.Network, balanced.Network));
        Assert.True(SameWeights(balanced.Network, again.Network));
    }

    [Fact]
    public void AReferenceModelEqualToTheBase_GivesBitIdenticalTraining()
    {
        using var baseModel = Analytic.Model(Shape, Schedule, A, Std);
        using var copy = Analytic.Model(Shape, Schedule, A, Std);
        using var expert = Analytic.Model(Shape, Schedule, B, Std);
        using var data = AnalyticRewardTests.Data(64, 3);
        using var plain = new RewardTrainer(AnalyticRewardTests.Training(30)).Train(baseModel, expert, NewNetwork(), data);
        using var referenced = new RewardTrainer(AnalyticRewardTests.Training(30)).Train(baseModel, expert, NewNetwork(), data, referenceModel: copy);
        Assert.True(SameWeights(plain.Network, referenced.Network));

        // A different reference changes the targets, so the result.
        using var other = Analytic.Model(Shape, Schedule, new[] { -0.4, 0.2 }, Std);
        using var shifted = new RewardTrainer(AnalyticRewardTests.Training(30)).Train(baseModel, expert, NewNetwork(), data, referenceModel: other);
        Assert.False(SameWeights(plain.Network, shifted.Network));

        // Another shape or schedule is refused, naming the reference.
        using var wrong = Analytic.Model(Shape, NoiseSchedule.Cosine(12), A, Std);
        var e = Assert.Throws<ArgumentException>(() => new RewardTrainer(AnalyticRewardTests.Training(3)).Train(baseModel, expert, NewNetwork(), data, referenceModel: wrong));
        Assert.Contains("schedule", e.Message);
    }

    [Fact]
    public void CancelledRewardTraining_WritesACheckpoint_AndTheResumedRunEqualsAnUninterruptedOne()
    {
        using var baseModel = Analytic.Model(Shape, Schedule, A, Std);
        using var expert = Analytic.Model(Shape, Schedule, B, Std);
        using var data = AnalyticRewardTests.Data(64, 3);
        string path = Path.Combine(Path.GetTempPath(), $"mlreward-cancel-{Guid.NewGuid():N}.ckpt");
        try
        {
            RewardTrainingOptions Options(string? checkpoint)
            {
                var o = AnalyticRewardTests.Training(24);
                o.CheckpointPath = checkpoint;
                o.CheckpointEvery = 0;
                return o;
            }
            using var uninterrupted = new RewardTrainer(Options(null)).Train(baseModel, expert, NewNetwork(), data);
            using var cancel = new CancellationTokenSource();
            var progress = new Progress(p => { if (p.Step == 9) cancel.Cancel(); });
            Assert.Throws<OperationCanceledException>(() => new RewardTrainer(Options(path)).Train(baseModel, expert, NewNetwork(), data, progress, cancel.Token));
            Assert.True(File.Exists(path));
            using var resumed = new RewardTrainer(Options(path)).Train(baseModel, expert, NewNetwork(), data);
            Assert.True(SameWeights(uninterrupted.Network, resumed.Network));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    public static TheoryData<string, Action<RewardTrainingOptions>> InvalidSettings => new()
    {
        { "TrainingSteps", o => o.TrainingSteps = 0 },
        { "BatchSize", o => o.BatchSize = 0 },
        { "LearningRate", o => o.LearningRate = double.NaN },
        { "LearningRate", o => o.LearningRate = -1e-3 },
        { "GradientClipNorm", o => o.GradientClipNorm = -1 },
        { "EmaDecay", o => o.EmaDecay = 1.5 },
        { "EmaUpdateEvery", o => o.EmaUpdateEvery = 0 },
        { "EmaStartStep", o => o.EmaStartStep = -1 },
        { "Threads", o => o.Threads = -2 },
        { "CheckpointEvery", o => o.CheckpointEvery = -1 },
        { "CheckpointPath", o => o.CheckpointPath = " " },
        { "LossAverageWindow", o => o.LossAverageWindow = 0 },
        { "MagnitudePenalty", o => o.MagnitudePenalty = double.PositiveInfinity },
        { "FeatureMask", o => o.FeatureMask = new[] { false, false } },
        { "ConditionMask", o => o.ConditionMask = Array.Empty<bool>() },
        { "LossMask", o => o.LossMask = Array.Empty<bool>() },
        { "LossMask", o => o.LossMask = new bool[8] },
        { "TargetCachePoolSize", o => o.TargetCachePoolSize = -1 },
        { "TargetCacheRefreshEvery", o => o.TargetCacheRefreshEvery = -1 },
        { "BalanceNoiseLevels", o => o.BalanceNoiseLevels = true },
    };

    [Theory]
    [MemberData(nameof(InvalidSettings))]
    public void EveryInvalidSetting_FailsAtConstruction_NamingIt(string name, Action<RewardTrainingOptions> spoil)
    {
        var options = new RewardTrainingOptions();
        spoil(options);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new RewardTrainer(options));
        Assert.Equal(name, e.ParamName);
        Assert.Contains(name, e.Message);
    }

    [Fact]
    public void MasksOfTheWrongSize_AreRefused_NamingBothSizes()
    {
        using var baseModel = Analytic.Model(Shape, Schedule, A, Std);
        using var expert = Analytic.Model(Shape, Schedule, B, Std);
        using var data = AnalyticRewardTests.Data(16, 3);
        var options = AnalyticRewardTests.Training(2);
        options.FeatureMask = new[] { true, false, true };
        var e = Assert.Throws<ArgumentException>(() => new RewardTrainer(options).Train(baseModel, expert, NewNetwork(), data));
        Assert.Contains("FeatureMask has 3 flags", e.Message);
        Assert.Contains("2 features per transition", e.Message);
        options.FeatureMask = null;
        options.ConditionMask = new bool[7];
        e = Assert.Throws<ArgumentException>(() => new RewardTrainer(options).Train(baseModel, expert, NewNetwork(), data));
        Assert.Contains("ConditionMask has 7 flags", e.Message);
        Assert.Contains("8 entries", e.Message);
    }
}

public class RewardModelFormatTests
{
    [Fact]
    public void AVersion1RewardStream_WrittenBeforeTheRegistry_StillLoads()
    {
        Analytic.UseOneThread();
        var shape = SampleShape.Trajectory(4, 2);
        var schedule = NoiseSchedule.Cosine(10);
        var options = new StateRewardOptions { HiddenSizes = new[] { 8 } };
        using var network = TorchRandom.Initialize(3, () => new StateReward(shape, options));
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            // The version 1 layout: header, schedule, kind, shape, hyperparameters, dtype, weights.
            ModelHeader.Write(writer, RelativeRewardModel.PersistenceKind, 1);
            schedule.Save(writer);
            writer.Write(nameof(StateReward));
            shape.Save(writer);
            network.Options.Write(writer);
            writer.Write((int)ScalarType.Float32);
            ModuleSerializer.WriteModule(writer, network);
        }
        stream.Position = 0;
        using var loaded = RelativeRewardModel.Load(stream);
        using var original = new RelativeRewardModel(TorchRandom.Initialize(3, () => new StateReward(shape, options)), schedule);
        using var x = randn(new long[] { 6, 4, 2 }, generator: TorchRandom.Generator(2));
        Assert.True(original.Score(x, 4).eq(loaded.Score(x, 4)).all().ToBoolean());

        // Today's stream is version 3 (sealed with a hash; its body is version 2's, which names the type).
        using var saved = new MemoryStream();
        loaded.Save(saved);
        saved.Position = 0;
        using (var reader = new BinaryReader(saved))
        {
            using var body = ModelHeader.ReadSealed(reader, RelativeRewardModel.PersistenceKind, RelativeRewardModel.PersistenceVersion, 3);
            Assert.Equal((3, true), (body.Version, body.Verified));
            NoiseSchedule.Load(body.Reader);
            Assert.Equal(nameof(StateReward), body.Reader.ReadString());
        }
    }
}
