using System.CommandLine;

namespace MLReward.Cli;

/// <summary>Options that name an input file or folder: one that does not exist is a usage error (exit code 2), reported
/// while parsing, before any work, as "--option: file '...' does not exist".</summary>
internal static class ExistingPaths
{
    public static void MustExist<T>(this Option<T> option) where T : FileSystemInfo? => option.Validators.Add(result =>
    {
        if (result.GetValueOrDefault<T>() is { Exists: false } path)
        {
            bool folder = path is DirectoryInfo;
            bool other = folder ? File.Exists(path.FullName) : Directory.Exists(path.FullName);
            result.AddError($"{(folder ? "folder" : "file")} '{path.FullName}' does not exist{(other ? $" (it is a {(folder ? "file" : "folder")})" : "")}.");
        }
    });
}
