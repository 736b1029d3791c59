using System.Text.RegularExpressions;

namespace Microsoft.ML.RewardExtraction;

/// <summary>Writes files so that a failed or interrupted write never leaves a truncated file at the target path, and a
/// killed writer's temporary file does not stay behind for good.</summary>
internal static partial class AtomicFile
{
    /// <summary>A temporary file younger than this is never taken for an orphan: it may be between its creation and its lock.</summary>
    private static readonly TimeSpan OrphanAge = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Runs <paramref name="write"/> on a temporary file beside <paramref name="path"/>, flushes it to disk and then moves it
    /// over <paramref name="path"/>. The temporary name is unique, so processes saving the same path at once do not write
    /// into each other's file; on failure it is removed and the target keeps its old content. A process killed while
    /// writing (kill -9, power loss) cannot remove its temporary file, so every write first deletes the temporary files of
    /// the same target that no live writer holds (see <see cref="RemoveOrphans"/>).
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        RemoveOrphans(full);
        string temporary = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            // FileShare.None holds a lock for as long as the file is written; the lock dies with the process.
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    /// <summary>
    /// Deletes the temporary files that writes of <paramref name="path"/> left behind: those named like
    /// <see cref="Write"/>'s, older than a few seconds, that can be opened exclusively (no writer holds their lock).
    /// Returns how many were deleted.
    /// </summary>
    internal static int RemoveOrphans(string path)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        string name = Path.GetFileName(full);
        if (!Directory.Exists(folder))
            return 0;
        int removed = 0;
        foreach (var candidate in Directory.EnumerateFiles(folder, $".{name}.*.tmp"))
        {
            string middle = Path.GetFileName(candidate)[(name.Length + 2)..^4];
            if (!TemporaryId().IsMatch(middle) || DateTime.UtcNow - File.GetLastWriteTimeUtc(candidate) < OrphanAge)
                continue;
            try
            {
                using (new FileStream(candidate, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                {
                }
                File.Delete(candidate);
                removed++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A live writer holds it, or it is not ours to delete: leave it.
            }
        }
        return removed;
    }

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex TemporaryId();
}
