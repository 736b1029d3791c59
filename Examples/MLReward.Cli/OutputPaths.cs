namespace MLReward.Cli;

/// <summary>
/// Checks where a command will write before it starts working, so that a wrong <c>--out</c> fails at once, naming the option,
/// the path and what is wrong with it, rather than after the training, with a .NET message that says neither.
/// </summary>
internal static class OutputPaths
{
    /// <summary>Creates the output folder <paramref name="folder"/> of option <paramref name="option"/> and writes (and deletes) a
    /// file in it; throws an <see cref="IOException"/> saying why it cannot be written.</summary>
    public static void PrepareFolder(string folder, string option)
    {
        try
        {
            if (File.Exists(folder))
                throw new IOException($"'{folder}' is a file, not a folder");
            Directory.CreateDirectory(folder);
            // Creating a folder succeeds in a read-only one that exists already: only a write tells.
            using (File.Create(Path.Combine(folder, $".mlreward-write-test-{Guid.NewGuid():N}"), 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{option}: cannot write to folder '{folder}': {Reason(e, folder)}", e);
        }
    }

    /// <summary>Checks that the file <paramref name="file"/> of option <paramref name="option"/> can be created: not a folder, and
    /// its folder exists or can be made (it is made). The file itself is written later, by the command.</summary>
    public static void PrepareFile(string file, string option)
    {
        try
        {
            if (Directory.Exists(file))
                throw new IOException($"'{file}' is a folder; give a file name");
            if (Path.GetDirectoryName(Path.GetFullPath(file)) is { } folder)
                Directory.CreateDirectory(folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{option}: cannot write '{file}': {Reason(e, file)}", e);
        }
    }

    private static string Reason(Exception e, string path) =>
        ErrorPolicy.WhyUnreachable(path)
        ?? (e is IOException io && ErrorPolicy.IsDiskFull(io) ? "no space left on device" : e.Message.TrimEnd('.'));
}
