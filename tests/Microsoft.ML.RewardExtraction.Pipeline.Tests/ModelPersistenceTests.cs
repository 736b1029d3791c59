using System.Globalization;
using System.IO.Compression;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

[Collection(TrainedCollection.Name)]
public class ModelPersistenceTests(TrainedModels models, ITestOutputHelper output)
{
    /// <summary>The rows the fresh-process test scores (also used by Program.cs).</summary>
    public static List<TrajectoryRow> FreshProcessRows() => Synthetic.Mixed(6, seed: 42);

    public static string FormatRewards(IEnumerable<float> rewards)
        => string.Join("\n", rewards.Select(r => r.ToString("R", CultureInfo.InvariantCulture))) + "\n";

    private IDataView Test => models.Ml.Data.LoadFromEnumerable(Synthetic.Mixed(50, seed: 40));

    private IDataView SeedRows => models.Ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6).Select(i => new SeededRow { Seed = i }));

    private static T SaveAndLoad<T>(ITransformer model, DataViewSchema? schema, TempFolder dir, string name) where T : ITransformer
    {
        string path = Path.Combine(dir.Path, name);
        new MLContext(seed: 1).Model.Save(model, schema, path);
        return Assert.IsType<T>(new MLContext(seed: 99).Model.Load(path, out _));
    }

    [Fact]
    public void EveryTransformer_SavesAndLoads_GivingIdenticalOutputs()
    {
        using var dir = new TempFolder();
        using (var loaded = SaveAndLoad<DiffusionModelTransformer>(models.Base, Test.Schema, dir, "base.zip"))
        {
            Assert.Equal(("Trajectory", "DenoisingError", 64, 4), (loaded.FeatureColumnName, loaded.OutputColumnName, loaded.BatchSize, loaded.NoiseLevels));
            Assert.Equal(Synthetic.Shape, loaded.Shape);
            Assert.Equal(models.Base.Transform(Test).GetColumn<float>("DenoisingError"), loaded.Transform(Test).GetColumn<float>("DenoisingError"));
        }
        using (var loaded = SaveAndLoad<RelativeRewardTransformer>(models.Reward, Test.Schema, dir, "reward.zip"))
        {
            Assert.Equal(("Trajectory", "Reward", 0), (loaded.FeatureColumnName, loaded.OutputColumnName, loaded.ScoringStep));
            Assert.Equal(models.Reward.Transform(Test).GetColumn<float>("Reward"), loaded.Transform(Test).GetColumn<float>("Reward"));
        }
        var inpaint = models.Ml.Data.LoadFromEnumerable(Enumerable.Range(0, 3).Select(i => new ConditionRow { Seed = i, Condition = { [0] = 0.5f }, ConditionMask = { [0] = 1 } }));
        using var sampler = models.Ml.RewardExtraction().GuidedSampling(models.Base, models.Reward, new GuidedSamplingEstimator.Options
        {
            GuidanceScale = 0.4, StopGradientBelow = 2, Seed = 3, BatchSize = 2, SeedColumnName = "Seed",
            ConditionColumnName = "Condition", ConditionMaskColumnName = "ConditionMask",
        }).Fit(inpaint);
        using (var loaded = SaveAndLoad<GuidedSamplingTransformer>(sampler, inpaint.Schema, dir, "sampler.zip"))
        {
            Assert.Equal((0.4, 2, "Seed", "Condition", "ConditionMask", 2), (loaded.Guidance.Scale, loaded.Guidance.StopGradientBelow,
                loaded.SeedColumnName, loaded.ConditionColumnName, loaded.ConditionMaskColumnName, loaded.BatchSize));
            Assert.Equal(sampler.Transform(inpaint).GetColumn<float[]>("Sample"), loaded.Transform(inpaint).GetColumn<float[]>("Sample"));
        }
    }

    [Fact]
    public void AChainOfAllThree_SavesAndLoads_AndItsZipHoldsTheWeightsAsEntries()
    {
        using var sampler = models.Ml.RewardExtraction().GuidedSampling(models.Base, models.Reward, new GuidedSamplingEstimator.Options { GuidanceScale = 0.2, Seed = 1, BatchSize = 8 }).Fit(Test);
        var chain = new TransformerChain<ITransformer>(models.Base, models.Reward, sampler);   // not disposed: it does not own the shared models
        var expected = chain.Transform(Test);
        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "chain.zip");
        SafeModelSave.Save(models.Ml, chain, Test.Schema, path);

        using (var zip = ZipFile.OpenRead(path))
        {
            output.WriteLine($"{path}: {new FileInfo(path).Length} bytes");
            foreach (var entry in zip.Entries)
                output.WriteLine($"  {entry.FullName,-50} {entry.Length,9} bytes");
            var names = zip.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("TransformerChain/Transform_000/DiffusionModel", names);
            Assert.Contains("TransformerChain/Transform_001/RewardModel", names);
            Assert.Contains("TransformerChain/Transform_001/Normalizer", names);
            Assert.Contains("TransformerChain/Transform_002/BaseModel", names);
            Assert.Contains("TransformerChain/Transform_002/RewardModel", names);
        }

        using var loaded = Assert.IsType<TransformerChain<ITransformer>>(SafeModelSave.Load(new MLContext(seed: 5), path, out var schema));
        Assert.Equal(new[] { typeof(DiffusionModelTransformer), typeof(RelativeRewardTransformer), typeof(GuidedSamplingTransformer) }, loaded.Select(t => t.GetType()));
        var actual = loaded.Transform(Test);
        Assert.Equal(expected.GetColumn<float>("DenoisingError"), actual.GetColumn<float>("DenoisingError"));
        Assert.Equal(expected.GetColumn<float>("Reward"), actual.GetColumn<float>("Reward"));
        Assert.Equal(expected.GetColumn<float[]>("Sample"), actual.GetColumn<float[]>("Sample"));
    }

    [Fact]
    public void LoadedDiffusionModels_FeedRelativeReward_AndALoadedReward_FeedsGuidedSampling()
    {
        using var dir = new TempFolder();
        using var loadedBase = SaveAndLoad<DiffusionModelTransformer>(models.Base, null, dir, "base.zip");
        using var loadedExpert = SaveAndLoad<DiffusionModelTransformer>(models.Expert, null, dir, "expert.zip");
        var ml = new MLContext(seed: 3);
        var options = Synthetic.RewardOptions(seed: 11, steps: 20);
        using var fromLoaded = ml.RewardExtraction().RelativeReward(loadedBase, loadedExpert, options).Fit(models.MixedData);
        using var fromOriginal = ml.RewardExtraction().RelativeReward(models.Base, models.Expert, Synthetic.RewardOptions(seed: 11, steps: 20)).Fit(models.MixedData);
        Assert.Equal(fromOriginal.Transform(Test).GetColumn<float>("Reward"), fromLoaded.Transform(Test).GetColumn<float>("Reward"));

        using var loadedReward = SaveAndLoad<RelativeRewardTransformer>(models.Reward, null, dir, "reward.zip");
        var guidance = new GuidedSamplingEstimator.Options { GuidanceScale = 0.3, Seed = 4, SeedColumnName = "Seed", BatchSize = 3 };
        using var guidedByLoaded = ml.RewardExtraction().GuidedSampling(loadedBase, loadedReward, guidance).Fit(SeedRows);
        using var guidedByOriginal = ml.RewardExtraction().GuidedSampling(models.Base, models.Reward, guidance).Fit(SeedRows);
        Assert.Equal(guidedByOriginal.Transform(SeedRows).GetColumn<float[]>("Sample"), guidedByLoaded.Transform(SeedRows).GetColumn<float[]>("Sample"));
    }

    [Fact]
    public async Task FreshProcess_LoadsTheRewardChain_AndPredicts_WithNoRegistrationCall()
    {
        var ml = models.Ml;
        var rows = FreshProcessRows();
        var data = ml.Data.LoadFromEnumerable(rows);
        var chain = new TransformerChain<ITransformer>(models.Base, models.Reward);
        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "reward-chain.zip");
        SafeModelSave.Save(ml, chain, data.Schema, path);
        string expected = FormatRewards(models.Reward.Transform(data).GetColumn<float>("Reward"));

        var (exitCode, stdout, stderr) = await FreshProcess.Run("score-reward", path);
        output.WriteLine(stdout);
        Assert.True(exitCode == 0, $"loader process failed ({exitCode}):\n{stdout}\n{stderr}");
        var parts = stdout.Split("---\n");
        Assert.StartsWith("transforms-loaded-before=False\nmodel-type=Microsoft.ML.Data.TransformerChain`1[[Microsoft.ML.ITransformer", parts[0]);
        Assert.Contains("stages=DiffusionModelTransformer,RelativeRewardTransformer", parts[0]);
        Assert.Equal(expected, parts[1]);   // Transform: the same batch as here, bit for bit
        Stats.AssertClose(parts[1].Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray(),
            parts[2].Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray());
    }

    // ----- files that are not (this version's) models -----

    private string SavedReward(TempFolder dir, string name = "reward.zip")
    {
        string path = Path.Combine(dir.Path, name);
        SafeModelSave.Save(models.Ml, models.Reward, Test.Schema, path);
        return path;
    }

    private InvalidDataException LoadFails(string path)
    {
        var ex = Assert.Throws<InvalidDataException>(() => SafeModelSave.Load(new MLContext(), path, out _));
        output.WriteLine(ex.Message);
        Assert.Contains($"Cannot load model file '{path}'", ex.Message);
        return ex;
    }

    private static void Rewrite(string path, string entryName, Func<byte[], byte[]> rewrite)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Update);
        var entry = zip.GetEntry(entryName) ?? throw new InvalidOperationException($"no entry {entryName}");
        byte[] bytes;
        using (var source = entry.Open())
        using (var copy = new MemoryStream())
        {
            source.CopyTo(copy);
            bytes = copy.ToArray();
        }
        entry.Delete();
        using var target = zip.CreateEntry(entryName).Open();
        target.Write(rewrite(bytes));
    }

    [Fact]
    public void TruncatedZip_OrTruncatedWeights_GiveAClearErrorNamingTheFile()
    {
        using var dir = new TempFolder();
        string path = SavedReward(dir);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length * 2 / 3)]);
        Assert.Contains("Failed to open a zip archive", LoadFails(path).Message);

        string cut = SavedReward(dir, "cut-weights.zip");
        Rewrite(cut, "TransformerChain/RewardModel", b => b[..(b.Length - 100)]);
        Assert.Contains("Model entry 'TransformerChain/RewardModel' is truncated", LoadFails(cut).Message);
    }

    [Fact]
    public void WeightsFromAnotherLibrary_GiveAClearError()
    {
        using var dir = new TempFolder();
        string path = SavedReward(dir);
        // A PyTorch pickle where MLReward's component should be.
        Rewrite(path, "TransformerChain/RewardModel", _ => new byte[] { 0x80, 0x02, 0x63, 0x74, 0x6F, 0x72, 0x63, 0x68, 0x0A });
        Assert.Contains("Model entry 'TransformerChain/RewardModel' is not an MLReward component: expected it to start with 'MLRWCOMP', found '\\x80\\x02ctorch'", LoadFails(path).Message);

    }

    [Fact]
    public void AModelOfANewerVersion_GivesAClearError()
    {
        using var dir = new TempFolder();
        // The transformer's own version (ML.NET's model header of the entry): written by a newer MLReward.
        string path = SavedReward(dir);
        Rewrite(path, "TransformerChain/Model.key", bytes =>
        {
            int at = IndexOf(bytes, Encoding.ASCII.GetBytes("MLRWRWRD"));
            Assert.True(at >= 0);
            BitConverter.GetBytes(0x00020001u).CopyTo(bytes, at + 8);    // version written
            BitConverter.GetBytes(0x00020001u).CopyTo(bytes, at + 12);   // version readable
            return bytes;
        });
        var ex = LoadFails(path);
        Assert.Contains("Component 'RelativeRewardXf' in entry 'TransformerChain' was written in format 2.1 and needs a reader of format 2.1 or newer; " +
            "MLReward 1.0.0.0 reads format 1.1. The file was written by a newer version of MLReward", ex.Message);

        // The weights' component format: written by a newer MLReward.
        string newer = SavedReward(dir, "newer.zip");
        Rewrite(newer, "TransformerChain/RewardModel", bytes =>
        {
            using var reader = new BinaryReader(new MemoryStream(bytes));
            reader.ReadBytes(8);
            reader.ReadInt32();
            string kind = reader.ReadString();
            reader.ReadInt32();
            long length = reader.ReadInt64();
            reader.ReadBytes(32);   // the payload's SHA-256
            byte[] payload = reader.ReadBytes((int)length);
            using var stream = new MemoryStream();
            ComponentStream.Write(stream, kind, 2, s => s.Write(payload));
            return stream.ToArray();
        });
        var component = LoadFails(newer);
        Assert.Contains("Model entry 'TransformerChain/RewardModel' holds component 'RelativeReward' in format version 2; this version of MLReward reads version 1. The file was written by a newer version of MLReward", component.Message);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle))
                return i;
        }
        return -1;
    }

    [Fact]
    public void AFlippedByteInsideTheWeights_IsCaughtByTheHash_NamingTheFileAndTheEntry()
    {
        using var dir = new TempFolder();
        string path = SavedReward(dir);
        // One byte in the middle of the compressed weights: zip's CRC is only checked by readers that read an entry to its end.
        Rewrite(path, "TransformerChain/RewardModel", bytes => { bytes[bytes.Length / 2] ^= 0x10; return bytes; });
        var ex = LoadFails(path);
        Assert.Contains("Model entry 'TransformerChain/RewardModel' is corrupted: the SHA-256 of its", ex.Message);
        Assert.Contains("'RelativeReward' payload", ex.Message);
    }

    [Fact]
    public void WeightsThatAreNaN_WithAValidHash_DoNotLoad()
    {
        var ml = new MLContext(seed: 1);
        using var dir = new TempFolder();
        string path = SavedReward(dir);
        using var reward = (RelativeRewardTransformer)SafeModelSave.Load(ml, path, out var schema);
        using (TorchSharp.torch.no_grad())
            reward.Model.Network.parameters().First().fill_(float.NaN);
        string poisoned = Path.Combine(dir.Path, "nan.zip");
        ml.Model.Save(reward, schema, poisoned);
        var ex = LoadFails(poisoned);
        Assert.Contains("hold NaN or infinite values", ex.Message);
    }

    [Fact]
    public void AComponentWithoutAHash_StillLoads_WithAWarning()
    {
        // Header version 1: magic, version, kind, format version, length, payload (no hash).
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(ComponentStream.Magic);
            writer.Write(1);
            writer.Write("K");
            writer.Write(1);
            writer.Write(4L);
            writer.Write(new byte[] { 1, 2, 3, 4 });
        }
        var warnings = new List<string>();
        stream.Position = 0;
        int value = ComponentStream.Read(stream, "e", "K", 1, 1, (s, v) => { s.ReadExactly(new byte[4]); return 7; }, warnings.Add);
        Assert.Equal(7, value);
        Assert.Contains(warnings, w => w.Contains("written before MLReward recorded a hash"));
    }

    [Fact]
    public void ADamagedComponentHeader_IsCaughtByTheHash_EvenWhereItStillParses()
    {
        // Format version 1 damaged into 2, where the reader accepts both: the header still parses, so only a hash that
        // covers the header tells the damage from a genuine version-2 payload.
        using var stream = new MemoryStream();
        ComponentStream.Write(stream, "K", 1, s => s.Write(new byte[] { 1, 2, 3, 4 }));
        var entry = stream.ToArray();
        int formatVersionAt = ComponentStream.Magic.Length + 4 + 2;
        Assert.Equal(1, BitConverter.ToInt32(entry, formatVersionAt));
        entry[formatVersionAt] = 2;
        var ex = Assert.Throws<InvalidDataException>(() =>
            ComponentStream.Read(new MemoryStream(entry), "e", "K", 1, 2, (s, v) => { s.ReadExactly(new byte[4]); return v; }));
        Assert.Contains("Model entry 'e' is corrupted: the SHA-256 of its header and 4-byte 'K' payload", ex.Message);
    }

    [Fact]
    public void ATemporaryFileLeftByAKilledSave_IsRemovedByTheNextSave()
    {
        var ml = new MLContext(seed: 1);
        using var dir = new TempFolder();
        string path = SavedReward(dir);
        // What `kill -9` during a save leaves beside the target: a unique temporary file that no process holds.
        string orphan = Path.Combine(dir.Path, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(orphan, new byte[4096]);
        File.SetLastWriteTimeUtc(orphan, DateTime.UtcNow.AddHours(-1));
        using var reward = (RelativeRewardTransformer)SafeModelSave.Load(ml, path, out var schema);
        SafeModelSave.Save(ml, reward, schema, path);
        Assert.False(File.Exists(orphan));
        Assert.Equal([Path.GetFileName(path)], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void AFailedSave_LeavesNoFileBehind()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Synthetic.Mixed(20, seed: 1));
        var model = ml.RewardExtraction().DiffusionModel(Synthetic.DiffusionOptions(steps: 1)).Fit(data);
        model.Dispose();
        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "disposed.zip");
        var chain = new TransformerChain<ITransformer>(ml.Transforms.CopyColumns("Copy", "Trajectory").Fit(data), model);
        var ex = Assert.Throws<ObjectDisposedException>(() => SafeModelSave.Save(ml, chain, data.Schema, path));
        output.WriteLine(ex.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
