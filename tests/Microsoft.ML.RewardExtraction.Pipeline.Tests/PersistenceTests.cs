using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;
using TorchSharp;
using static Microsoft.ML.RewardExtraction.Pipeline.Tests.TestData;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

public class PersistenceTests(ITestOutputHelper output)
{
    private static (MLContext ml, IDataView data, TrajectoryWindowTransformer model) WindowModel()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Standard());
        var model = ml.RewardExtraction().TrajectoryWindows("Trajectory", "Episode", new[] { "Action", "Obs" }, horizon: 3).Fit(data);
        return (ml, data, model);
    }

    [Fact]
    public async Task FreshProcess_LoadsTheModel_WithNoRegistrationCall()
    {
        var (ml, data, model) = WindowModel();
        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "windows.zip");
        SafeModelSave.Save(ml, model, data.Schema, path);
        string expected = Format(ml, model.Transform(data));

        // This test assembly doubles as a program (Program.cs); run it in a new process with the same dotnet host.
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var start = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(Program).Assembly.Location);
        start.ArgumentList.Add("load-windows");
        start.ArgumentList.Add(path);
        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var stderrTask = process.StandardError.ReadToEndAsync(timeout.Token);
        string stdout = await process.StandardOutput.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        string stderr = await stderrTask;
        Assert.True(process.ExitCode == 0, $"loader process failed ({process.ExitCode}):\n{stdout}\n{stderr}");

        var lines = stdout.Split('\n', 3);
        Assert.Equal("transforms-loaded-before=False", lines[0]);
        Assert.Equal($"model-type={typeof(TrajectoryWindowTransformer).FullName}", lines[1]);
        Assert.Equal(expected, lines[2]);
        Assert.Equal(5, expected.Count(c => c == '\n'));
    }

    [Fact]
    public void WindowsChain_WithFastTree_SavesAndLoads()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Episodes((1, 12), (2, 9), (3, 15)));
        var pipeline = ml.RewardExtraction().TrajectoryWindows("Trajectory", "Episode", new[] { "Action", "Obs" }, horizon: 4)
            .Append(ml.Transforms.Conversion.ConvertType("Label", "StartStep", DataKind.Single))
            .Append(ml.Regression.Trainers.FastTree("Label", "Trajectory", numberOfLeaves: 2, numberOfTrees: 3, minimumExampleCountPerLeaf: 1));
        var model = pipeline.Fit(data);
        var expected = model.Transform(data).GetColumn<float>("Score").ToArray();
        Assert.Equal(9 + 6 + 12, expected.Length);

        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "chain.zip");
        SafeModelSave.Save(ml, model, data.Schema, path);
        var ml2 = new MLContext(seed: 2);
        var loaded = SafeModelSave.Load(ml2, path, out _);
        Assert.Equal(expected, loaded.Transform(ml2.Data.LoadFromEnumerable(Episodes((1, 12), (2, 9), (3, 15)))).GetColumn<float>("Score").ToArray());
    }

    [Fact]
    public void SafeSave_ThatFails_LeavesTheOldFileAndNoTemporaryFile()
    {
        var (ml, data, model) = WindowModel();
        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "model.zip");
        SafeModelSave.Save(ml, model, data.Schema, path);
        byte[] before = File.ReadAllBytes(path);

        Assert.Throws<InvalidOperationException>(() => SafeModelSave.Save(ml, new FailingTransformer(), data.Schema, path));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(new[] { "model.zip" }, Directory.GetFiles(dir.Path).Select(Path.GetFileName));

        string fresh = Path.Combine(dir.Path, "never.zip");
        Assert.Throws<InvalidOperationException>(() => SafeModelSave.Save(ml, new FailingTransformer(), data.Schema, fresh));
        Assert.False(File.Exists(fresh));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    /// <summary>A transformer whose Save writes some bytes and then fails.</summary>
    private sealed class FailingTransformer : ITransformer
    {
        public bool IsRowToRowMapper => false;
        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;
        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new NotSupportedException();
        public IDataView Transform(IDataView input) => input;
        void ICanSaveModel.Save(ModelSaveContext ctx)
        {
            ctx.Writer.Write(new byte[4096]);
            throw new InvalidOperationException("disk full (simulated)");
        }
    }

    [Fact]
    public void TruncatedZip_GivesAClearError_NamingTheFile()
    {
        var (ml, data, model) = WindowModel();
        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "cut.zip");
        SafeModelSave.Save(ml, model, data.Schema, path);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);

        // ML.NET itself fails with "Failed to open a zip archive"...
        var raw = Assert.Throws<FormatException>(() => new MLContext().Model.Load(path, out _));
        Assert.IsType<InvalidDataException>(raw.InnerException);
        // ...and SafeModelSave.Load says which file.
        var ex = Assert.Throws<InvalidDataException>(() => SafeModelSave.Load(new MLContext(), path, out _));
        Assert.Contains($"Cannot load model file '{path}': Failed to open a zip archive: End of Central Directory record could not be found.", ex.Message);
    }

    [Fact]
    public void ForeignZip_GivesAClearError_NamingTheFile()
    {
        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "foreign.zip");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using var writer = new StreamWriter(zip.CreateEntry("weights/model.pt").Open());
            writer.Write("not an ML.NET model");
        }

        var ex = Assert.Throws<InvalidDataException>(() => SafeModelSave.Load(new MLContext(), path, out _));
        output.WriteLine(ex.Message);
        Assert.Contains($"Cannot load model file '{path}': it is a zip archive but not an ML.NET model: " +
            "expected an entry 'TransformerChain/Model.key', it holds 'weights/model.pt'.", ex.Message);

        string text = Path.Combine(dir.Path, "notes.zip");
        File.WriteAllText(text, "plain text, not a zip at all");
        var ex2 = Assert.Throws<InvalidDataException>(() => SafeModelSave.Load(new MLContext(), text, out _));
        output.WriteLine(ex2.Message);
        Assert.Contains($"Cannot load model file '{text}': Failed to open a zip archive", ex2.Message);
    }

    // ----- ComponentStream: a torch module as a zip entry with a versioned header -----

    private static (MLContext ml, string path, TorchProbeTransformer probe) SaveProbe(TempFolder dir)
    {
        torch.manual_seed(7);
        var probe = new TorchProbeTransformer(torch.nn.Linear(3, 2), 3, 2);
        var ml = new MLContext(seed: 1);
        string path = Path.Combine(dir.Path, "probe.zip");
        SafeModelSave.Save(ml, probe, null, path);
        return (ml, path, probe);
    }

    [Fact]
    public void TorchComponent_RoundTripsExactly_InAFreshContext()
    {
        using var dir = new TempFolder();
        var (_, path, probe) = SaveProbe(dir);
        using (probe)
        {
            using var zip = ZipFile.OpenRead(path);
            Assert.Contains(zip.Entries, e => e.FullName == "TransformerChain/TorchState");

            torch.manual_seed(99);   // a different initialisation, overwritten by the load
            using var loaded = Assert.IsType<TorchProbeTransformer>(new MLContext(seed: 5).Model.Load(path, out _));
            Assert.Equal(probe.Module.weight!.data<float>().ToArray(), loaded.Module.weight!.data<float>().ToArray());
            Assert.Equal(probe.Module.bias!.data<float>().ToArray(), loaded.Module.bias!.data<float>().ToArray());
        }
    }

    private static void RewriteEntry(string path, string entryName, Func<byte[], byte[]?> rewrite)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Update);
        var entry = zip.GetEntry(entryName)!;
        byte[] bytes;
        using (var source = entry.Open())
        using (var copy = new MemoryStream())
        {
            source.CopyTo(copy);
            bytes = copy.ToArray();
        }
        entry.Delete();
        byte[]? replaced = rewrite(bytes);
        if (replaced != null)
        {
            using var target = zip.CreateEntry(entryName).Open();
            target.Write(replaced);
        }
    }

    /// <summary>The payload of a component entry (what the module wrote), header stripped.</summary>
    private static byte[] Payload(byte[] entry)
    {
        using var reader = new BinaryReader(new MemoryStream(entry));
        reader.ReadBytes(8);
        reader.ReadInt32();
        reader.ReadString();
        reader.ReadInt32();
        return reader.ReadBytes((int)reader.ReadInt64());
    }

    private static byte[] WithHeader(string kind, int version, byte[] payload)
    {
        using var stream = new MemoryStream();
        ComponentStream.Write(stream, kind, version, s => s.Write(payload));
        return stream.ToArray();
    }

    private InvalidDataException LoadFails(string path)
    {
        var ex = Assert.Throws<InvalidDataException>(() => SafeModelSave.Load(new MLContext(), path, out _));
        output.WriteLine(ex.Message);
        Assert.Contains($"Cannot load model file '{path}'", ex.Message);
        return ex;
    }

    [Fact]
    public void ComponentFromAnotherLibrary_NamesEntryExpectedAndFound()
    {
        using var dir = new TempFolder();
        var (_, path, probe) = SaveProbe(dir);
        probe.Dispose();
        RewriteEntry(path, "TransformerChain/TorchState", bytes => Encoding.ASCII.GetBytes("PYTORCH!").Concat(bytes.Skip(8)).ToArray());

        var ex = LoadFails(path);
        Assert.Contains("Model entry 'TransformerChain/TorchState' is not an MLReward component: expected it to start with 'MLRWCOMP', found 'PYTORCH!'", ex.Message);

        // Straight through ML.NET the same reason is in the exception chain.
        var raw = Assert.ThrowsAny<Exception>(() => new MLContext().Model.Load(path, out _));
        Assert.Contains(Chain(raw), e => e is InvalidDataException && e.Message.Contains("MLRWCOMP"));
    }

    private static IEnumerable<Exception> Chain(Exception ex)
    {
        for (Exception? e = ex; e != null; e = e.InnerException)
            yield return e;
    }

    [Fact]
    public void ComponentOfAnotherKind_OrNewerVersion_NamesExpectedAndFound()
    {
        using var dir = new TempFolder();
        var (_, path, probe) = SaveProbe(dir);
        probe.Dispose();
        string other = Path.Combine(dir.Path, "other.zip");
        File.Copy(path, other);

        RewriteEntry(path, "TransformerChain/TorchState", bytes => WithHeader("RewardNetwork", 1, Payload(bytes)));
        Assert.Contains("Model entry 'TransformerChain/TorchState' holds component 'RewardNetwork', expected 'TorchProbeLinear'", LoadFails(path).Message);

        RewriteEntry(other, "TransformerChain/TorchState", bytes => WithHeader(TorchProbeTransformer.Kind, 2, Payload(bytes)));
        var ex = LoadFails(other);
        Assert.Contains("holds component 'TorchProbeLinear' in format version 2; this version of MLReward reads version 1", ex.Message);
        Assert.Contains("newer version", ex.Message);
    }

    [Fact]
    public void TruncatedOrMissingComponent_IsNamed()
    {
        using var dir = new TempFolder();
        var (_, path, probe) = SaveProbe(dir);
        probe.Dispose();
        string missing = Path.Combine(dir.Path, "missing.zip");
        File.Copy(path, missing);

        RewriteEntry(path, "TransformerChain/TorchState", bytes => bytes[..^10]);
        var ex = LoadFails(path);
        Assert.Contains("Model entry 'TransformerChain/TorchState' is truncated: its header announces", ex.Message);

        RewriteEntry(missing, "TransformerChain/TorchState", _ => null);
        Assert.Contains("Model entry 'TransformerChain/TorchState' is missing: expected the data of component 'TorchProbeLinear'", LoadFails(missing).Message);
    }

    [Fact]
    public void ComponentStream_RejectsTrailingAndUnreadBytes_AndShortHeaders()
    {
        byte[] entry = WithHeader("K", 3, new byte[] { 1, 2, 3, 4 });
        Assert.Equal(3, ComponentStream.Read(new MemoryStream(entry), "e", "K", 1, 3, (s, v) => { s.ReadExactly(new byte[4]); return v; }));

        var unread = Assert.Throws<InvalidDataException>(() =>
            ComponentStream.Read(new MemoryStream(entry), "e", "K", 1, 3, (s, v) => s.ReadByte()));
        Assert.Contains("read 1 of its 4 payload bytes", unread.Message);

        var trailing = Assert.Throws<InvalidDataException>(() =>
            ComponentStream.Read(new MemoryStream(entry.Append((byte)0).ToArray()), "e", "K", 1, 3, (s, v) => { s.ReadExactly(new byte[4]); return 0; }));
        Assert.Contains("bytes after the 4-byte payload", trailing.Message);

        var shortHeader = Assert.Throws<InvalidDataException>(() =>
            ComponentStream.Read(new MemoryStream(entry[..10]), "e", "K", 1, 3, (s, v) => 0));
        Assert.Contains("Model entry 'e' is truncated: its component header is incomplete", shortHeader.Message);

        var empty = Assert.Throws<InvalidDataException>(() => ComponentStream.Read(new MemoryStream(), "e", "K", 1, 3, (s, v) => 0));
        Assert.Contains("found '' (0 bytes in all)", empty.Message);
    }
}
