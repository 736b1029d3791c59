using System.IO.Compression;
using System.Reflection;

namespace Microsoft.ML.RewardExtraction
{
    /// <summary>
    /// Saves and loads ML.NET model files so that a failure never leaves a half-written file behind and load errors
    /// name the file.
    /// </summary>
    public static class SafeModelSave
    {
        /// <summary>
        /// Saves <paramref name="model"/> like <c>mlContext.Model.Save</c>, but writes a temporary file in the same
        /// folder first (flushed to disk) and renames it to <paramref name="path"/> only when everything was written.
        /// If saving fails, <paramref name="path"/> is untouched (an existing file keeps its old content) and the
        /// temporary file is removed; one left by a killed save of the same path is removed by the next save.
        /// </summary>
        /// <param name="mlContext">The ML.NET context.</param>
        /// <param name="model">The transformer or transformer chain to save.</param>
        /// <param name="inputSchema">The schema of the data the model takes, or <see langword="null"/>.</param>
        /// <param name="path">Where the model zip goes; its folder must exist.</param>
        public static void Save(MLContext mlContext, ITransformer model, DataViewSchema? inputSchema, string path)
        {
            ArgumentNullException.ThrowIfNull(mlContext);
            ArgumentNullException.ThrowIfNull(model);
            ArgumentException.ThrowIfNullOrEmpty(path);

            string fullPath = Path.GetFullPath(path);
            string folder = Path.GetDirectoryName(fullPath)!;
            if (!Directory.Exists(folder))
                throw new DirectoryNotFoundException($"Cannot save the model to '{fullPath}': folder '{folder}' does not exist.");
            AtomicFile.Write(fullPath, stream => mlContext.Model.Save(model, inputSchema, stream));
        }

        /// <summary>
        /// Loads a model like <c>mlContext.Model.Load</c>. When the file is not a readable model (truncated,
        /// corrupted, written by another library or by a newer version), throws an <see cref="InvalidDataException"/>
        /// whose message names <paramref name="path"/> and carries the most specific reason found.
        /// </summary>
        /// <param name="mlContext">The ML.NET context.</param>
        /// <param name="path">The model zip.</param>
        /// <param name="inputSchema">The input schema saved with the model (may be <see langword="null"/>).</param>
        /// <returns>The loaded transformer.</returns>
        /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
        /// <exception cref="InvalidDataException">The file is not a model this library and ML.NET can read.</exception>
        public static ITransformer Load(MLContext mlContext, string path, out DataViewSchema inputSchema)
        {
            ArgumentNullException.ThrowIfNull(mlContext);
            ArgumentException.ThrowIfNullOrEmpty(path);
            string fullPath = Path.GetFullPath(path);
            if (!File.Exists(fullPath))
                throw new FileNotFoundException($"Model file '{fullPath}' does not exist.", fullPath);

            try
            {
                using var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read);
                return mlContext.Model.Load(stream, out inputSchema);
            }
            catch (Exception ex) when (ex is InvalidDataException or FormatException or InvalidOperationException
                or TargetInvocationException or EndOfStreamException)
            {
                // ML.NET wraps loader failures (reflection, "Error during class instantiation"): keep the data errors.
                var reasons = new List<string>();
                for (Exception? e = ex; e != null; e = e.InnerException)
                {
                    string message = e.Message.TrimEnd('.');
                    if (e is InvalidDataException or FormatException or EndOfStreamException && !reasons.Contains(message))
                        reasons.Add(message);
                }
                if (reasons.Count == 0)
                    reasons.Add(DescribeForeignZip(fullPath) ?? ex.Message.TrimEnd('.'));
                throw new InvalidDataException($"Cannot load model file '{fullPath}': {string.Join(": ", reasons)}.", ex);
            }
        }

        /// <summary>For a readable zip without any ML.NET model entry, says so and lists a few of its entries.</summary>
        private static string? DescribeForeignZip(string path)
        {
            try
            {
                using var zip = ZipFile.OpenRead(path);
                if (zip.Entries.Any(e => e.Name == "Model.key"))
                    return null;
                var names = zip.Entries.Take(5).Select(e => $"'{e.FullName}'").ToList();
                string found = names.Count == 0 ? "it is empty" : $"it holds {string.Join(", ", names)}{(zip.Entries.Count > 5 ? ", ..." : "")}";
                return $"it is a zip archive but not an ML.NET model: expected an entry 'TransformerChain/Model.key', {found}";
            }
            catch (InvalidDataException)
            {
                return null;
            }
        }
    }
}
