using Microsoft.ML;
using MLReward.Experiments;

namespace MLReward.Cli.Tests;

/// <summary>The model cache is a shortcut: a damaged entry costs a retraining and a warning that names it, never the run.
/// (The whole command meets one in <see cref="Maze2DQuickRunTests"/>.)</summary>
public sealed class ModelCacheTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "mlreward-cache-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void ACorruptCacheEntry_IsNamedDeletedAndRetrained()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new { X = 1f } });
        var model = ml.Transforms.CopyColumns("Y", "X").Fit(data);
        var warnings = new List<string>();
        var cache = new ModelStore(ml, Path.Combine(_root, "cache"), hashedNames: true, warnings.Add);
        cache.Save(model, data.Schema, "base", "k1");
        string path = cache.PathOf("base", "k1");
        File.WriteAllBytes(path, [1, 2, 3]);

        Assert.Null(cache.TryLoad<ITransformer>("base", "k1"));
        var warning = Assert.Single(warnings);
        Assert.StartsWith($"warning: the cached model '{path}' is corrupt and was deleted; training it again (", warning);
        Assert.False(File.Exists(path));
        Assert.False(File.Exists(path + ".key"));

        // What a run does next: train and save; the next run loads it without a word.
        var stores = new RunModelStores(ml, Path.Combine(_root, "out"), cache.Directory, null, warnings.Add);
        stores.Obtain("base", "k1", () => model, data.Schema, export: false, out bool reused);
        Assert.False(reused);
        stores.Obtain<ITransformer>("base", "k1", null, data.Schema, export: false, out reused);
        Assert.True(reused);
        Assert.Single(warnings);
    }
}
