using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction.Tests;

public class PersistenceTests
{
    public PersistenceTests() => DiffusionModelTests.UseOneThread();

    private static byte[] Header(string kind, int version)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, true))
            ModelHeader.Write(writer, kind, version);
        return stream.ToArray();
    }

    private static int Read(byte[] bytes, string kind, int maxVersion)
        => ModelHeader.Read(new BinaryReader(new MemoryStream(bytes)), kind, maxVersion);

    [Fact]
    public void HeaderRoundTripsAndHasAFixedLayout()
    {
        var bytes = Header("DiffusionModel", 3);
        Assert.Equal("MLRW"u8.ToArray(), bytes[..4]);
        Assert.Equal(3, BitConverter.ToInt32(bytes, 4));
        Assert.Equal(14, BitConverter.ToInt32(bytes, 8));
        Assert.Equal("DiffusionModel", Encoding.ASCII.GetString(bytes, 12, 14));
        Assert.Equal(26, bytes.Length);
        Assert.Equal(3, Read(bytes, "DiffusionModel", 3));
        Assert.Equal(3, Read(bytes, "DiffusionModel", 5));
    }

    [Fact]
    public void HeaderErrorsSayWhatWasExpectedAndFound()
    {
        var e = Assert.Throws<InvalidDataException>(() => Read(Header("RelativeReward", 1), "DiffusionModel", 1));
        Assert.Contains("expected a \"DiffusionModel\", found a \"RelativeReward\"", e.Message);
        e = Assert.Throws<InvalidDataException>(() => Read(Header("DiffusionModel", 4), "DiffusionModel", 2));
        Assert.Contains("versions 1 to 2, found version 4", e.Message);
        e = Assert.Throws<InvalidDataException>(() => Read("{\"json\": true}"u8.ToArray(), "DiffusionModel", 1));
        Assert.Contains("found \"{\"js\"", e.Message);
        e = Assert.Throws<InvalidDataException>(() => Read([0x50, 0x4B, 0x03, 0x04, 0, 0], "DiffusionModel", 1));
        Assert.Contains("0x504B0304", e.Message);
        var bytes = Header("DiffusionModel", 1);
        for (int length = 0; length < bytes.Length; length++)
        {
            e = Assert.Throws<InvalidDataException>(() => Read(bytes[..length], "DiffusionModel", 1));
            Assert.Contains("Truncated", e.Message);
        }
        var corrupt = (byte[])bytes.Clone();
        BitConverter.GetBytes(1_000_000).CopyTo(corrupt, 8);
        Assert.Throws<InvalidDataException>(() => Read(corrupt, "DiffusionModel", 1));
        Assert.Throws<ArgumentException>(() => Header("bad\nkind", 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Header("Kind", 0));
    }

    [Fact]
    public void ModuleBlocksRoundTripAndDetectTruncation()
    {
        using var a = TorchRandom.Initialize(1, () => new MlpDenoiser(SampleShape.Trajectory(2, 2), 8, 1, 4));
        using var b = TorchRandom.Initialize(2, () => new MlpDenoiser(SampleShape.Trajectory(2, 2), 8, 1, 4));
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, true))
            ModuleSerializer.WriteModule(writer, a);
        var bytes = stream.ToArray();
        ModuleSerializer.ReadModule(new BinaryReader(new MemoryStream(bytes)), b, "test weights");
        Assert.Equal(DiffusionModelTests.Weights(a), DiffusionModelTests.Weights(b));
        var e = Assert.Throws<InvalidDataException>(() => ModuleSerializer.ReadModule(new BinaryReader(new MemoryStream(bytes[..^1])), b, "test weights"));
        Assert.Contains("test weights", e.Message);
        using var wider = new MlpDenoiser(SampleShape.Trajectory(2, 2), 9, 1, 4);
        e = Assert.Throws<InvalidDataException>(() => ModuleSerializer.ReadModule(new BinaryReader(new MemoryStream(bytes)), wider, "test weights"));
        Assert.Contains("test weights", e.Message);
    }

    [Fact]
    public void CheckpointOfAnotherKindIsRefused()
    {
        var path = Path.GetTempFileName();
        try
        {
            using (var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions()))
                model.Save(path);
            using var online = new MlpDenoiser(SampleShape.Trajectory(2, 2), 8, 1, 4);
            using var shadow = new MlpDenoiser(SampleShape.Trajectory(2, 2), 8, 1, 4);
            using var optimizer = optim.Adam(online.parameters(), 1e-3);
            using var g = TorchRandom.Generator(1);
            var e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(path, "run", g, online, shadow, optimizer));
            Assert.Contains("expected a \"TrainingCheckpoint\", found a \"DiffusionModel\"", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SavingToAFileReplacesItWholeAndLeavesNoPartialFile()
    {
        string dir = Directory.CreateTempSubdirectory("mlreward-save-").FullName;
        try
        {
            string path = Path.Combine(dir, "model.mlrd");
            File.WriteAllText(path, "an older, longer file that must not survive as a tail of the new one" + new string('x', 100_000));
            using var model = DiffusionModel.Create(DiffusionModelTests.TinyOptions());
            model.Save(path);
            using (var stream = new MemoryStream())
            {
                model.Save(stream);
                Assert.Equal(stream.ToArray(), File.ReadAllBytes(path));
            }
            Assert.Equal(["model.mlrd"], Directory.EnumerateFiles(dir).Select(Path.GetFileName));

            // A save that cannot complete leaves neither the target nor a partial file behind.
            string missing = Path.Combine(dir, "no-such-folder", "model.mlrd");
            Assert.ThrowsAny<IOException>(() => model.Save(missing));
            Assert.Equal(["model.mlrd"], Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
