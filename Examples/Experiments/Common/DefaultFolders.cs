namespace MLReward.Experiments;

/// <summary>
/// Where mlreward keeps what it reuses between runs when no folder is given. Each kind has a folder of its own: a shared
/// folder such as <c>~/.cache</c> belongs to every program of the user, and mlreward's files must neither mix with theirs nor
/// be removed with them.
/// </summary>
public static class DefaultFolders
{
    /// <summary>The environment variable that names the data set cache.</summary>
    public const string DataVariable = "MLREWARD_DATA";

    /// <summary>The model cache: <c>runs/.cache</c> under <paramref name="currentDirectory"/>, beside the default output folders
    /// (<c>runs/&lt;experiment&gt;</c>), whatever <c>--out</c> says: an output folder may be anywhere (the home folder, /tmp),
    /// and a <c>.cache</c> beside it would be that folder's shared one.</summary>
    public static string ModelCache(string currentDirectory) =>
        Path.Combine(Path.GetFullPath(currentDirectory), "runs", ".cache");

    /// <summary>The model cache of the current folder.</summary>
    public static string ModelCache() => ModelCache(Environment.CurrentDirectory);

    /// <summary>
    /// The data set cache: <c>$MLREWARD_DATA</c>, else <c>$XDG_CACHE_HOME/mlreward</c>, else <c>~/.cache/mlreward</c>; without
    /// a home folder, <c>mlreward</c> in the temporary folder. Empty and relative values of the variables are ignored (the XDG
    /// specification asks for that: a relative cache folder would move with the current folder).
    /// </summary>
    public static string DataCache(Func<string, string?> environment, string? home)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (environment(DataVariable) is { Length: > 0 } data)
            return Path.GetFullPath(data);
        string? cacheRoot = environment("XDG_CACHE_HOME") is { Length: > 0 } xdg && Path.IsPathFullyQualified(xdg) ? xdg
            : home is { Length: > 0 } && Path.IsPathFullyQualified(home) ? Path.Combine(home, ".cache")
            : null;
        return Path.Combine(cacheRoot ?? Path.GetTempPath(), "mlreward");
    }

    /// <summary>The data set cache of this process's environment.</summary>
    public static string DataCache() =>
        DataCache(Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));
}
