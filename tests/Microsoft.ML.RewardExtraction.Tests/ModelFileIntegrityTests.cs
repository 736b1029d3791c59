using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>
/// The core files (diffusion model, relative reward model, training checkpoint) cannot lie: a damaged byte anywhere fails the
/// load naming the file, NaN weights behind a valid hash fail, files written before the hash load with a warning, and a
/// killed writer's temporary file is removed by the next save of the same path.
/// </summary>
public sealed class ModelFileIntegrityTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("mlreward-integrity-").FullName;

    public ModelFileIntegrityTests() => DiffusionModelTests.UseOneThread();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string PathOf(string name) => Path.Combine(_folder, name);

    private static RelativeRewardModel NewReward() => new(
        TorchRandom.Initialize(5, () => new StateReward(DiffusionModelTests.Tiny, AnalyticRewardTests.SmallStateReward)), NoiseSchedule.Cosine(10));

    /// <summary>The bytes of a sealed file rewritten the way the unsealed <paramref name="version"/> laid them out: the
    /// header with that version, then the body, without length and hash.</summary>
    private static byte[] Unsealed(byte[] sealedBytes, string kind, int version)
    {
        int headerLength = 12 + kind.Length;
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            ModelHeader.Write(writer, kind, version);
        stream.Write(sealedBytes, headerLength + 8 + 32, sealedBytes.Length - headerLength - 40);
        return stream.ToArray();
    }

    /// <summary>Positions spread over the whole file after the magic bytes: header, length, hash, body and weights.</summary>
    private static IEnumerable<int> Spread(int length) => Enumerable.Range(0, 40).Select(i => 4 + (int)((long)(length - 5) * i / 39));

    [Fact]
    public void AByteFlippedAnywhereInADiffusionModelFile_FailsTheLoad_NamingTheFile()
    {
        string path = PathOf("model.bin");
        using (var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions()))
            model.Save(path);
        var bytes = File.ReadAllBytes(path);
        using (DiffusionModel.Load(path, _ => throw new InvalidOperationException("a sealed file gives no warning")))
        {
        }
        foreach (int position in Spread(bytes.Length))
        {
            var damaged = (byte[])bytes.Clone();
            damaged[position] ^= 0x04;
            File.WriteAllBytes(path, damaged);
            var e = Assert.Throws<InvalidDataException>(() => DiffusionModel.Load(path));
            Assert.Contains(path, e.Message);
        }
        // In the weights, the hash is what catches it.
        var weight = (byte[])bytes.Clone();
        weight[^20] ^= 0x04;
        File.WriteAllBytes(path, weight);
        Assert.Contains("SHA-256", Assert.Throws<InvalidDataException>(() => DiffusionModel.Load(path)).Message);
    }

    [Fact]
    public void AByteFlippedInARewardFileOrACheckpoint_FailsTheLoad()
    {
        string rewardPath = PathOf("reward.bin");
        using (var reward = NewReward())
            reward.Save(rewardPath);
        var bytes = File.ReadAllBytes(rewardPath);
        bytes[^20] ^= 0x04;
        File.WriteAllBytes(rewardPath, bytes);
        var e = Assert.Throws<InvalidDataException>(() => RelativeRewardModel.Load(rewardPath));
        Assert.Contains(rewardPath, e.Message);
        Assert.Contains("SHA-256", e.Message);

        string checkpoint = PathOf("run.ckpt");
        using var online = new MlpDenoiser(DiffusionModelTests.Tiny, 8, 1, 4);
        using var shadow = new MlpDenoiser(DiffusionModelTests.Tiny, 8, 1, 4);
        using var optimizer = optim.Adam(online.parameters(), 1e-3);
        using var generator = TorchRandom.Generator(1);
        TrainingCheckpoint.Save(checkpoint, "run", new TrainingCheckpointState(3, TimeSpan.FromSeconds(1), [0.5]), generator, online, shadow, optimizer);
        TrainingCheckpoint.Load(checkpoint, "run", generator, online, shadow, optimizer, _ => throw new InvalidOperationException("no warning expected"));
        var saved = File.ReadAllBytes(checkpoint);
        saved[^20] ^= 0x04;
        File.WriteAllBytes(checkpoint, saved);
        e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(checkpoint, "run", generator, online, shadow, optimizer));
        Assert.Contains(checkpoint, e.Message);
        Assert.Contains("SHA-256", e.Message);
    }

    [Fact]
    public void NaNWeightsBehindAValidHash_DoNotLoad_FromAnyCoreFile()
    {
        string modelPath = PathOf("model.bin"), rewardPath = PathOf("reward.bin"), checkpoint = PathOf("run.ckpt");
        using (var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions()))
        {
            using (no_grad())
                model.Denoiser.parameters().Last().fill_(float.NaN);
            model.Save(modelPath);
        }
        Assert.Contains("NaN or infinite", Assert.Throws<InvalidDataException>(() => DiffusionModel.Load(modelPath)).Message);

        using (var reward = NewReward())
        {
            using (no_grad())
                reward.Network.parameters().First().fill_(float.PositiveInfinity);
            reward.Save(rewardPath);
        }
        Assert.Contains("NaN or infinite", Assert.Throws<InvalidDataException>(() => RelativeRewardModel.Load(rewardPath)).Message);

        using var online = new MlpDenoiser(DiffusionModelTests.Tiny, 8, 1, 4);
        using var shadow = new MlpDenoiser(DiffusionModelTests.Tiny, 8, 1, 4);
        using var optimizer = optim.Adam(online.parameters(), 1e-3);
        using var generator = TorchRandom.Generator(1);
        using (no_grad())
            shadow.parameters().First().fill_(float.NaN);
        TrainingCheckpoint.Save(checkpoint, "run", new TrainingCheckpointState(3, TimeSpan.Zero, []), generator, online, shadow, optimizer);
        var e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(checkpoint, "run", generator, online, shadow, optimizer));
        Assert.Contains("EMA network weights", e.Message);
        Assert.Contains(checkpoint, e.Message);
    }

    [Fact]
    public void FilesWrittenBeforeTheHash_LoadWithAWarningNamingTheFile()
    {
        string modelPath = PathOf("old-model.bin"), rewardPath = PathOf("old-reward.bin");
        using var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions());
        using var sealedModel = new MemoryStream();
        model.Save(sealedModel);
        File.WriteAllBytes(modelPath, Unsealed(sealedModel.ToArray(), DiffusionModel.ComponentKind, 1));
        var warnings = new List<string>();
        using (var loaded = DiffusionModel.Load(modelPath, warnings.Add))
            Assert.Equal(DiffusionModelTests.Weights(model.Denoiser), DiffusionModelTests.Weights(loaded.Denoiser));
        Assert.Contains(modelPath, Assert.Single(warnings));
        Assert.Contains("hash", warnings[0]);

        using var reward = NewReward();
        using var sealedReward = new MemoryStream();
        reward.Save(sealedReward);
        File.WriteAllBytes(rewardPath, Unsealed(sealedReward.ToArray(), RelativeRewardModel.PersistenceKind, 2));
        warnings.Clear();
        using (var loaded = RelativeRewardModel.Load(rewardPath, warning: warnings.Add))
            Assert.Equal(DiffusionModelTests.Weights(reward.Network), DiffusionModelTests.Weights(loaded.Network));
        Assert.Contains(rewardPath, Assert.Single(warnings));

        // Streams (e.g. inside a model zip, whose entry carries its own hash) load silently.
        using var stream = new MemoryStream(Unsealed(sealedModel.ToArray(), DiffusionModel.ComponentKind, 1));
        using (DiffusionModel.Load(stream))
        {
        }
    }

    [Fact]
    public void ATemporaryFileLeftByAKilledSave_IsRemovedByTheNextSave_ButALiveWritersIsNot()
    {
        string path = PathOf("model.bin");
        // What a save killed with SIGKILL leaves: its unique temporary file, holding part of a model, and no lock.
        string orphan = PathOf($".model.bin.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(orphan, new byte[1000]);
        File.SetLastWriteTimeUtc(orphan, DateTime.UtcNow.AddMinutes(-5));
        // A save in progress elsewhere: its temporary file is open with its lock.
        string live = PathOf($".model.bin.{Guid.NewGuid():N}.tmp");
        using var liveWriter = new FileStream(live, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        File.SetLastWriteTimeUtc(live, DateTime.UtcNow.AddMinutes(-5));
        // Files that only look alike.
        string other = PathOf(".model.bin.not-ours.tmp");
        File.WriteAllText(other, "x");
        File.SetLastWriteTimeUtc(other, DateTime.UtcNow.AddMinutes(-5));

        using (var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions()))
            model.Save(path);

        Assert.False(File.Exists(orphan));
        Assert.True(File.Exists(live));
        Assert.True(File.Exists(other));
        Assert.True(File.Exists(path));
    }
}
