using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;

namespace MLReward.Experiments;

/// <summary>Marks a setting that does not change the models a run trains (evaluation, reporting, labels), so that
/// <see cref="ModelStore.Key"/> leaves it out.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class NotInModelKeyAttribute : Attribute
{
}

/// <summary>Marks a setting that changes only the models of the given roles (e.g. a reward setting, which leaves the diffusion
/// models as they are), so that <see cref="ModelStore.Key"/> puts it in those roles' keys only. An unmarked setting is in
/// every key.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ModelKeyOfAttribute(params string[] roles) : Attribute
{
    /// <summary>The roles whose models the setting changes.</summary>
    public IReadOnlyList<string> Roles { get; } = roles;
}

/// <summary>
/// A folder of ML.NET model zips, each saved with the key of what made it. Three uses share it: the model cache
/// (<c>name-hash.zip</c>, reused by any later run with the same key), a run's output folder (<c>name.zip</c>, the models
/// the run hands back) and <c>--models DIR</c> (an earlier run's output, reused only when its keys match).
/// </summary>
public sealed class ModelStore
{
    private readonly MLContext _ml;
    private readonly bool _hashedNames;
    private readonly Action<string>? _warn;

    /// <summary>A store in <paramref name="directory"/> (created when missing). With <paramref name="hashedNames"/> every key
    /// gets a file of its own (a cache); without, a name holds the model of the last key saved under it.
    /// <paramref name="warn"/> receives a line when a damaged cache entry is discarded.</summary>
    public ModelStore(MLContext ml, string directory, bool hashedNames, Action<string>? warn = null)
    {
        _ml = ml ?? throw new ArgumentNullException(nameof(ml));
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = Path.GetFullPath(directory);
        _hashedNames = hashedNames;
        _warn = warn;
    }

    /// <summary>The folder.</summary>
    public string Directory { get; }

    /// <summary>
    /// The key of the model of <paramref name="role"/>: a hash of the settings record, the role and what else determines the
    /// model (a goal, the data's source). Every public property of the record is in it, so that a new or changed setting makes a
    /// new key and can never be served a model trained without it. Left out are only the properties marked
    /// <see cref="NotInModelKeyAttribute"/> (what a run does with its models, such as the evaluation episodes) and, for other
    /// roles, those marked <see cref="ModelKeyOfAttribute"/> (a reward setting changes the reward, not the diffusion models).
    /// </summary>
    public static string Key<TSettings>(TSettings settings, string role, params object[] parts) where TSettings : notnull
    {
        ArgumentException.ThrowIfNullOrEmpty(role);
        var values = new SortedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var property in typeof(TSettings).GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.IsDefined(typeof(NotInModelKeyAttribute), inherit: true))
                continue;
            if (property.GetCustomAttributes(typeof(ModelKeyOfAttribute), inherit: true) is [ModelKeyOfAttribute only] && !only.Roles.Contains(role))
                continue;
            values[property.Name] = property.GetValue(settings);
        }
        var text = new StringBuilder(JsonSerializer.Serialize(values)).Append('|').Append(role);
        foreach (var part in parts)
            text.Append('|').Append(FormattableString.Invariant($"{part}"));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..24];
    }

    /// <summary>The zip file of <paramref name="name"/> under <paramref name="key"/>.</summary>
    public string PathOf(string name, string key) => Path.Combine(Directory, _hashedNames ? $"{name}-{key}.zip" : $"{name}.zip");

    /// <summary>Whether the store holds <paramref name="name"/> saved under <paramref name="key"/>.</summary>
    public bool Contains(string name, string key)
    {
        string path = PathOf(name, key);
        return File.Exists(path) && File.Exists(KeyFile(path)) && File.ReadAllText(KeyFile(path)).Trim() == key;
    }

    /// <summary>
    /// Loads <paramref name="name"/> if it was saved under <paramref name="key"/>; null when it is missing. A damaged
    /// zip in a cache counts as missing: it is reported (naming the file), deleted, and retrained by the caller; elsewhere it
    /// is an error naming the file.
    /// </summary>
    public T? TryLoad<T>(string name, string key) where T : class, ITransformer
    {
        if (!Contains(name, key))
            return null;
        string path = PathOf(name, key);
        try
        {
            var model = SafeModelSave.Load(_ml, path, out _);
            return model as T ?? throw new InvalidDataException($"'{path}' holds a {model.GetType().Name}, not a {typeof(T).Name}.");
        }
        catch (InvalidDataException e) when (_hashedNames)
        {
            // A cache entry is only a shortcut, so a damaged one (a disk error, a file truncated by hand) costs a retraining,
            // not the run; deleting it keeps the next run from tripping over it again if this one stops before saving.
            _warn?.Invoke($"warning: the cached model '{path}' is corrupt and was deleted; training it again "
                + $"({e.Message.Replace($"Cannot load model file '{path}': ", "", StringComparison.Ordinal)})");
            Discard(path);
            return null;
        }
        catch (FileNotFoundException) when (_hashedNames)
        {
            return null;   // deleted by another process (a worker discarding it) since Contains saw it
        }
    }

    private static void Discard(string zip)
    {
        foreach (var file in new[] { zip, KeyFile(zip) })
        {
            try
            {
                File.Delete(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The retrained model's save replaces it anyway.
            }
        }
    }

    /// <summary>Loads <paramref name="name"/>, which must have been saved under <paramref name="key"/>: an earlier run's model
    /// reused in place of training. Throws, naming the file, when it is missing or was made with other settings.</summary>
    public T Load<T>(string name, string key) where T : class, ITransformer
    {
        string path = PathOf(name, key);
        if (!File.Exists(path))
            throw new FileNotFoundException($"'{path}' does not exist: the models folder lacks '{name}'.", path);
        if (!Contains(name, key))
            throw new InvalidDataException($"'{path}' was trained with other settings (key {ReadKey(path)}, this run needs {key}); " +
                "run with the settings of the run that wrote it, or without --models.");
        return TryLoad<T>(name, key)!;
    }

    /// <summary>Saves <paramref name="model"/> as <paramref name="name"/> under <paramref name="key"/> (atomically: a reader never
    /// sees half a file; parallel writers of one entry leave one whole copy). Returns the zip's path.</summary>
    public string Save(ITransformer model, DataViewSchema? inputSchema, string name, string key)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string path = PathOf(name, key);
        SafeModelSave.Save(_ml, model, inputSchema, path);
        AtomicText(KeyFile(path), key + "\n");
        return path;
    }

    private static string KeyFile(string zip) => zip + ".key";

    private static string ReadKey(string zip) => File.Exists(KeyFile(zip)) ? File.ReadAllText(KeyFile(zip)).Trim() : "none";

    private static void AtomicText(string path, string text)
    {
        string temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temporary, text);
        File.Move(temporary, path, overwrite: true);
    }
}

/// <summary>
/// The three stores of a run: its output folder, the cache and an earlier run's models (--models). A model is taken from the
/// models folder (which must hold it under the same key), else from the cache, else trained (and cached); the output folder
/// receives it either way.
/// </summary>
public sealed class RunModelStores(MLContext ml, string outputDirectory, string? cacheDirectory, string? modelsDirectory,
    Action<string>? warn = null)
{
    /// <summary>The run's output folder (plain names).</summary>
    public ModelStore Output { get; } = new(ml, outputDirectory, hashedNames: false);

    /// <summary>The cache (names with the key's hash), or null.</summary>
    public ModelStore? Cache { get; } = cacheDirectory is null ? null : new ModelStore(ml, cacheDirectory, hashedNames: true, warn);

    /// <summary>An earlier run's output folder, or null.</summary>
    public ModelStore? Models { get; } = modelsDirectory is null ? null : new ModelStore(ml, modelsDirectory, hashedNames: false);

    /// <summary>
    /// The model <paramref name="name"/> with key <paramref name="key"/>, loaded or made by <paramref name="train"/> (null: it
    /// must be stored already, as in a worker process). With <paramref name="export"/> it is also written to the output folder
    /// (with <paramref name="inputSchema"/>). <paramref name="reused"/> tells whether it was loaded.
    /// </summary>
    public T Obtain<T>(string name, string key, Func<T>? train, DataViewSchema? inputSchema, bool export, out bool reused) where T : class, ITransformer
    {
        T? model = Models?.Load<T>(name, key) ?? Cache?.TryLoad<T>(name, key);
        reused = model is not null;
        if (model is null)
        {
            if (train is null)
                throw new InvalidOperationException($"The model '{name}' is not in the cache ({Cache?.PathOf(name, key) ?? "no cache"}).");
            model = train();
            Cache?.Save(model, inputSchema, name, key);
        }
        if (export && Models?.Directory != Output.Directory)
            Output.Save(model, inputSchema, name, key);
        return model;
    }
}
