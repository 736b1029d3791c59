using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>
/// The device option on a machine without a usable GPU (CI and every test host here): "cpu" named explicitly changes no
/// number; a GPU asked for by the option or by the MLContext's GpuDeviceId is an error that says why, or the CPU with a
/// warning under FallbackToCpu; a saved model loads onto the device the loading context asks for.
/// </summary>
[Collection(TrainedCollection.Name)]
public class DeviceTests(TrainedModels models)
{
    private static bool CudaUsable => torch.cuda.is_available();

    private IDataView Test => models.Ml.Data.LoadFromEnumerable(Synthetic.Mixed(40, seed: 40));

    private static DiffusionModelTrainer.Options Options(string? device = null)
    {
        var options = Synthetic.DiffusionOptions(seed: 1, steps: 20);
        options.Device = device;
        return options;
    }

    [Fact]
    public void ExplicitCpu_TrainsTheSameModelsAsTheDefault()
    {
        var ml = new MLContext(seed: 1);
        var rx = ml.RewardExtraction();
        using var byDefault = rx.DiffusionModel(Options()).Fit(models.BaseData);
        using var onCpu = rx.DiffusionModel(Options("cpu")).Fit(models.BaseData);
        Assert.Equal(byDefault.Transform(Test).GetColumn<float>("DenoisingError"), onCpu.Transform(Test).GetColumn<float>("DenoisingError"));

        var rewardOptions = Synthetic.RewardOptions(steps: 20);
        using var reward = rx.RelativeReward(models.Base, models.Expert, rewardOptions).Fit(models.MixedData);
        rewardOptions = Synthetic.RewardOptions(steps: 20);
        rewardOptions.Device = "CPU";
        using var rewardOnCpu = rx.RelativeReward(models.Base, models.Expert, rewardOptions).Fit(models.MixedData);
        Assert.Equal(reward.Transform(Test).GetColumn<float>("Reward"), rewardOnCpu.Transform(Test).GetColumn<float>("Reward"));
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:x")]
    [InlineData("cuda:-1")]
    [InlineData("")]
    public void ANameThatIsNotADevice_IsRefusedWhenTheEstimatorIsBuilt(string name)
    {
        var rx = new MLContext(seed: 1).RewardExtraction();
        var e = Assert.ThrowsAny<ArgumentException>(() => rx.DiffusionModel(Options(name)));
        Assert.Contains("Device", e.Message);
        Assert.Contains($"'{name}' is not a device: use \"cpu\", \"cuda\" or \"cuda:N\"", e.Message);
        var rewardOptions = Synthetic.RewardOptions();
        rewardOptions.Device = name;
        Assert.Contains("is not a device", Assert.ThrowsAny<ArgumentException>(() => rx.RelativeReward(models.Base, models.Expert, rewardOptions)).Message);
    }

    [Fact]
    public void AGpuThisProcessCannotUse_IsAnErrorThatSaysWhy_UnlessFallbackToCpuIsSet()
    {
        if (CudaUsable)
            return; // The expectations below are for a process without CUDA, as every CI host is.
        var strict = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = false };
        var e = Assert.Throws<InvalidOperationException>(() => strict.RewardExtraction().DiffusionModel(Options()).Fit(models.BaseData));
        Assert.Contains("GpuDeviceId 0 asks for cuda:0, but this process has no usable CUDA device", e.Message);
        Assert.Contains("FallbackToCpu", e.Message);
        e = Assert.Throws<InvalidOperationException>(() => new MLContext(seed: 1).RewardExtraction().DiffusionModel(Options("cuda:1")).Fit(models.BaseData));
        Assert.Contains("Device \"cuda:1\" asks for cuda:1", e.Message);

        var lenient = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = true };
        var log = new List<string>();
        lenient.Log += (_, args) => { lock (log) log.Add(args.Message); };
        using var fellBack = lenient.RewardExtraction().DiffusionModel(Options()).Fit(models.BaseData);
        using var onCpu = new MLContext(seed: 1).RewardExtraction().DiffusionModel(Options()).Fit(models.BaseData);
        Assert.Contains(log, m => m.Contains("asks for cuda:0") && m.Contains("running on the CPU (FallbackToCpu is set)"));
        Assert.Equal(onCpu.Transform(Test).GetColumn<float>("DenoisingError"), fellBack.Transform(Test).GetColumn<float>("DenoisingError"));
    }

    [Fact]
    public void TheOneCallEstimator_PassesTheContextsGpuToEveryStage()
    {
        if (CudaUsable)
            return;
        var strict = new MLContext(seed: 1) { GpuDeviceId = 0 };
        var options = new RelativeRewardExtractor.Options
        {
            FeatureColumnName = "Trajectory", Shape = Synthetic.Shape, BaseModel = Synthetic.DiffusionOptions(seed: 1, steps: 5),
            ExpertModel = Synthetic.DiffusionOptions(seed: 2, steps: 5), Reward = Synthetic.RewardOptions(seed: 3, steps: 5),
        };
        var labelled = strict.Data.LoadFromEnumerable(Synthetic.Mixed(40, seed: 3).Select((r, i) => new LabelledTrajectory { Trajectory = r.Trajectory, Label = i % 2 == 1 }));
        var e = Assert.ThrowsAny<Exception>(() => strict.RewardExtraction().ExtractRelativeReward(options).Fit(labelled));
        Assert.Contains("GpuDeviceId 0 asks for cuda:0", e.ToString());
    }

    private sealed class LabelledTrajectory
    {
        [VectorType(Synthetic.Horizon * Synthetic.Dimension)]
        public float[] Trajectory { get; set; } = [];

        public bool Label { get; set; }
    }

    [Fact]
    public void TheRewardTrainsWhereItsDiffusionModelsAre_AndAnotherDeviceIsNamed()
    {
        if (CudaUsable)
            return;
        var lenient = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = true };
        var options = Synthetic.RewardOptions(steps: 5);
        options.Device = "cuda";
        // With the fallback, "cuda" resolves to the CPU, where the models are.
        using (lenient.RewardExtraction().RelativeReward(models.Base, models.Expert, options).Fit(models.MixedData))
        {
        }
        var e = Assert.Throws<InvalidOperationException>(() => new MLContext(seed: 1).RewardExtraction().RelativeReward(models.Base, models.Expert, options).Fit(models.MixedData));
        Assert.Contains("Device \"cuda\" asks for cuda:0", e.Message);
    }

    [Fact]
    public void ASavedModel_LoadsOntoTheLoadingContextsDevice()
    {
        if (CudaUsable)
            return;
        using var dir = new TempFolder();
        var paths = new[] { ("base.zip", (ITransformer)models.Base), ("reward.zip", models.Reward) }
            .Select(p => { string path = Path.Combine(dir.Path, p.Item1); models.Ml.Model.Save(p.Item2, Test.Schema, path); return path; }).ToArray();

        var strict = new MLContext(seed: 5) { GpuDeviceId = 0 };
        foreach (string path in paths)
            Assert.Contains("GpuDeviceId 0 asks for cuda:0", Assert.ThrowsAny<Exception>(() => strict.Model.Load(path, out _)).ToString());

        var lenient = new MLContext(seed: 5) { GpuDeviceId = 0, FallbackToCpu = true };
        var log = new List<string>();
        lenient.Log += (_, args) => { lock (log) log.Add(args.Message); };
        using var loadedBase = Assert.IsType<DiffusionModelTransformer>(lenient.Model.Load(paths[0], out _));
        using var loadedReward = Assert.IsType<RelativeRewardTransformer>(lenient.Model.Load(paths[1], out _));
        Assert.Contains(log, m => m.Contains("running on the CPU (FallbackToCpu is set)"));
        Assert.Equal(models.Base.Transform(Test).GetColumn<float>("DenoisingError"), loadedBase.Transform(Test).GetColumn<float>("DenoisingError"));
        Assert.Equal(models.Reward.Transform(Test).GetColumn<float>("Reward"), loadedReward.Transform(Test).GetColumn<float>("Reward"));
    }
}
