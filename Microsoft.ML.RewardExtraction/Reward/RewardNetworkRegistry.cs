using System.Collections.Concurrent;
using System.Reflection;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Maps a reward network's <see cref="RewardNetwork.ArchitectureName"/> to the loader that rebuilds an untrained network
/// of that architecture from its shape and the bytes <see cref="RewardNetwork.SaveArchitecture"/> wrote. The built-in
/// networks are registered already. A network type of your own needs no registration when it has a public constructor
/// <c>(SampleShape shape, BinaryReader architecture)</c>: model files also record the type, which is then loaded and
/// constructed. Register a loader when the type has no such constructor, or to load a name under another type.
/// </summary>
public static class RewardNetworkRegistry
{
    private static readonly ConcurrentDictionary<string, Func<SampleShape, BinaryReader, RewardNetwork>> Loaders = new(StringComparer.Ordinal)
    {
        [nameof(StateReward)] = StateReward.Load,
        [nameof(TrajectoryReward)] = TrajectoryReward.Load,
        [nameof(ImageReward)] = ImageReward.Load,
        [FeatureMaskedReward.Name] = FeatureMaskedReward.Load,
    };

    private static readonly HashSet<string> BuiltIn = new(Loaders.Keys, StringComparer.Ordinal);

    /// <summary>Registers (or replaces) the loader of architecture <paramref name="name"/>.</summary>
    /// <param name="name">The <see cref="RewardNetwork.ArchitectureName"/> the networks report.</param>
    /// <param name="load">Builds an untrained network for a shape from the bytes <see cref="RewardNetwork.SaveArchitecture"/> wrote.</param>
    /// <exception cref="ArgumentException">The name is empty or belongs to a built-in network.</exception>
    public static void Register(string name, Func<SampleShape, BinaryReader, RewardNetwork> load)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(load);
        if (BuiltIn.Contains(name))
            throw new ArgumentException($"'{name}' is a built-in reward network architecture and cannot be registered again.", nameof(name));
        Loaders[name] = load;
    }

    /// <summary>Whether a loader is registered under <paramref name="name"/>.</summary>
    public static bool IsRegistered(string name) => name is not null && Loaders.ContainsKey(name);

    /// <summary>
    /// Builds an untrained network of architecture <paramref name="name"/>: the registered loader, or else the public
    /// constructor (SampleShape, BinaryReader) of <paramref name="typeName"/> (an assembly-qualified name), which must
    /// derive from <see cref="RewardNetwork"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">No loader is registered and the type cannot be found or constructed.</exception>
    internal static RewardNetwork Create(string name, string? typeName, SampleShape shape, BinaryReader architecture)
    {
        if (Loaders.TryGetValue(name, out var load))
            return load(shape, architecture);
        var constructor = LoadingConstructor(name, typeName);
        try
        {
            return (RewardNetwork)constructor.Invoke(new object[] { shape, architecture });
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }

    private static ConstructorInfo LoadingConstructor(string name, string? typeName)
    {
        string register = $"register a loader with RewardNetworkRegistry.Register(\"{name}\", ...) before loading";
        if (string.IsNullOrEmpty(typeName))
            throw new InvalidDataException($"The reward network architecture '{name}' is not registered; {register}.");
        Type? type;
        try
        {
            type = Type.GetType(typeName, throwOnError: false);
        }
        catch (Exception e) when (e is FileLoadException or BadImageFormatException or ArgumentException)
        {
            type = null;
        }
        if (type is null)
            throw new InvalidDataException($"The reward network architecture '{name}' is not registered and its type '{typeName}' cannot be found; " +
                $"make its assembly available to the application or {register}.");
        if (!typeof(RewardNetwork).IsAssignableFrom(type) || type.IsAbstract)
            throw new InvalidDataException($"The type '{type.FullName}' recorded for reward network architecture '{name}' is not a concrete {nameof(RewardNetwork)}.");
        return type.GetConstructor(new[] { typeof(SampleShape), typeof(BinaryReader) })
            ?? throw new InvalidDataException($"The reward network architecture '{name}' is not registered and its type '{type.FullName}' has no public " +
                $"constructor (SampleShape shape, BinaryReader architecture); add one or {register}.");
    }
}
