using System.Reflection;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction
{
    /// <summary>
    /// Checks the version of a transformer's entry before ML.NET's own check, so that a model written by a newer (or a
    /// no longer supported older) MLReward fails with an <see cref="InvalidDataException"/> that says which component,
    /// which format was found and which formats this build reads.
    /// </summary>
    internal static class ModelVersion
    {
        /// <summary>Throws unless the entry at <paramref name="ctx"/> is <paramref name="ver"/>'s component in a format this build reads.</summary>
        internal static void CheckReadable(ModelLoadContext ctx, VersionInfo ver)
        {
            Contracts.CheckValue(ctx, nameof(ctx));
            var header = ctx.Header;
            string where = string.IsNullOrEmpty(ctx.Directory) ? "the model" : $"entry '{ctx.Directory.Replace('\\', '/')}'";
            string build = $"MLReward {typeof(ModelVersion).Assembly.GetName().Version}";
            string readable = ver.VerWeCanReadBack == ver.VerWrittenCur
                ? $"format {Format(ver.VerWrittenCur)}"
                : $"formats {Format(ver.VerWeCanReadBack)} to {Format(ver.VerWrittenCur)}";
            if (header.ModelSignature != ver.ModelSignature)
                return;   // not ours: ML.NET's check reports it
            if (header.ModelVerReadable > ver.VerWrittenCur)
            {
                throw new InvalidDataException(
                    $"Component '{ver.LoaderSignature}' in {where} was written in format {Format(header.ModelVerWritten)} and needs a reader of format " +
                    $"{Format(header.ModelVerReadable)} or newer; {build} reads {readable}. The file was written by a newer version of MLReward: " +
                    "update Microsoft.ML.RewardExtraction to load it.");
            }
            if (header.ModelVerWritten < ver.VerWeCanReadBack)
            {
                throw new InvalidDataException(
                    $"Component '{ver.LoaderSignature}' in {where} was written in format {Format(header.ModelVerWritten)}; {build} reads {readable}. " +
                    "The file was written by an older version of MLReward that this one no longer reads: retrain the model or load it with that version.");
            }
        }

        private static string Format(uint version) => $"{version >> 16}.{version & 0xFFFF}";
    }
}
