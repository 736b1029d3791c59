using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using SkiaSharp;

namespace MLReward.Experiments.Images;

/// <summary>
/// Image files on disk as rows a reward reads: each file decoded (PNG, JPEG, BMP, ...), converted to grey
/// ((R + G + B) / 3, so a grey-scale file gives back its own values), divided by 255, row-major, in the model's
/// column. Every file must have the model's size; a file that cannot be decoded or has another size is an error naming it.
/// </summary>
public static class ImageFolder
{
    /// <summary>The image files directly in <paramref name="folder"/> (png, jpg, jpeg, bmp, gif, webp), sorted by name.</summary>
    public static string[] Files(string folder)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"No folder '{folder}'.");
        var extensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };
        return Directory.GetFiles(folder).Where(f => extensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The grey values of <paramref name="path"/> in [0, 1], row-major; it must be <paramref name="side"/> pixels square.</summary>
    public static float[] Read(string path, int side)
    {
        using var bitmap = SKBitmap.Decode(path) ?? throw new InvalidDataException($"'{path}' is not an image this program can decode.");
        if (bitmap.Width != side || bitmap.Height != side)
            throw new InvalidDataException($"'{path}' is {bitmap.Width} x {bitmap.Height} pixels; the model reads {side} x {side} images.");
        var values = new float[side * side];
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
            {
                var color = bitmap.GetPixel(x, y);
                values[y * side + x] = (color.Red + color.Green + color.Blue) / 3 * (1f / 255);
            }
        return values;
    }

    /// <summary>The rows of the files: <see cref="ImageRow.Features"/> sized for <paramref name="side"/> x <paramref name="side"/>.</summary>
    public static IDataView Load(MLContext ml, IReadOnlyList<string> files, int side)
    {
        return ml.Data.LoadFromEnumerable(files.Select(f => new ImageRow { Features = Read(f, side) }), ImageRow.Schema(side * side));
    }
}

/// <summary>Scores image files with a saved reward (a reward zip, or a chain ending in one), as <c>mlreward score --images</c> does.</summary>
public static class ImageScoring
{
    /// <summary>The reward of every image file in <paramref name="folder"/>, in file-name order.</summary>
    /// <exception cref="InvalidDataException">The model is not an image reward, or a file is not an image of its size.</exception>
    public static IReadOnlyList<(string File, float Reward)> Score(MLContext ml, string modelPath, string folder)
    {
        var model = SafeModelSave.Load(ml, modelPath, out _);   // names the file when it is not a readable model
        try
        {
            var reward = model as Microsoft.ML.RewardExtraction.RelativeRewardTransformer
                ?? (model as IEnumerable<ITransformer>)?.OfType<Microsoft.ML.RewardExtraction.RelativeRewardTransformer>().LastOrDefault()
                ?? throw new InvalidDataException($"'{modelPath}' holds no relative reward (found {model.GetType().Name}).");
            var shape = reward.Shape;
            if (shape.Kind != Microsoft.ML.RewardExtraction.SampleShapeKind.Image || shape.Dimensions[0] != 1 || shape.Dimensions[1] != shape.Dimensions[2])
                throw new InvalidDataException($"'{modelPath}' scores {shape}; scoring image files needs a one-channel square image reward.");
            var files = ImageFolder.Files(folder);
            if (files.Length == 0)
                throw new InvalidDataException($"No image files (png, jpg, jpeg, bmp, gif, webp) in '{folder}'.");
            IDataView rows = ImageFolder.Load(ml, files, shape.Dimensions[1]);
            if (reward.FeatureColumnName != nameof(ImageRow.Features))
                rows = ml.Transforms.CopyColumns(reward.FeatureColumnName, nameof(ImageRow.Features)).Fit(rows).Transform(rows);
            var rewards = reward.Transform(rows).GetColumn<float>(reward.OutputColumnName).ToArray();
            return files.Select((f, i) => (Path.GetFileName(f), rewards[i])).ToList();
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }
}
