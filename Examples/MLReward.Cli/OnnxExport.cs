using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace MLReward.Cli;

/// <summary>
/// Exports a distilled reward (ML.NET trees, <c>RewardDistillationEstimator</c>) to ONNX with ML.NET's own converter and
/// checks the file with ONNX Runtime. It lives in the CLI, not in the Estimators library, so that the converter (with
/// Google.Protobuf) and ONNX Runtime's native library are a dependency of this executable only, not of every library user
/// who distils a reward and scores it with ML.NET.
/// </summary>
internal static class OnnxExport
{
    /// <summary>How ONNX Runtime's outputs compare with ML.NET's on the same rows, and how fast it scores them.</summary>
    public sealed record Check(int Rows, double MaxAbsoluteDifference, double RowsPerSecond);

    /// <summary>Writes <paramref name="model"/> as ONNX to <paramref name="path"/>; its one input is
    /// <paramref name="featureColumnName"/> of <paramref name="data"/> (a [rows, length] float tensor).</summary>
    public static void Export(MLContext ml, ITransformer model, IDataView data, string featureColumnName, string path)
    {
        // The converter makes an ONNX input of every column of the data it is given: only the feature column is needed.
        var features = ml.Transforms.SelectColumns(featureColumnName).Fit(data).Transform(data);
        string temporary = path + ".tmp";
        using (var stream = File.Create(temporary))
            ml.Model.ConvertToOnnx(model, features, stream);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// Scores the rows of <paramref name="data"/> with the ONNX file (one batch, repeated for at least
    /// <paramref name="minimumTiming"/> after a warm-up run) and compares the reward with ML.NET's
    /// <paramref name="outputColumnName"/> for the same rows.
    /// </summary>
    public static Check Compare(MLContext ml, ITransformer model, string onnxPath, IDataView data, string featureColumnName, string outputColumnName,
        TimeSpan minimumTiming)
    {
        var features = data.GetColumn<float[]>(featureColumnName).ToArray();
        if (features.Length == 0)
            throw new InvalidDataException("Comparing ONNX with ML.NET needs at least one row.");
        var expected = model.Transform(data).GetColumn<float>(outputColumnName).ToArray();
        int length = features[0].Length;
        var input = new DenseTensor<float>(features.SelectMany(f => f).ToArray(), [features.Length, length]);
        using var session = new InferenceSession(onnxPath);
        // ML.NET's converter names an input after its column and an output after its column with ".output".
        string outputName = outputColumnName + ".output";
        if (!session.OutputMetadata.ContainsKey(outputName))
            throw new InvalidDataException($"'{onnxPath}' has no output '{outputName}' (outputs: {string.Join(", ", session.OutputMetadata.Keys)}).");
        var inputs = new[] { NamedOnnxValue.CreateFromTensor(featureColumnName, input) };
        float[] Run()
        {
            using var results = session.Run(inputs, [outputName]);
            return results.Single().AsEnumerable<float>().ToArray();
        }

        var actual = Run();   // also the warm-up: the first run allocates
        if (actual.Length != expected.Length)
            throw new InvalidDataException($"ONNX Runtime returned {actual.Length} values for {expected.Length} rows.");
        double maxDifference = expected.Zip(actual, (e, a) => (double)Math.Abs(e - a)).Max();
        var clock = Stopwatch.StartNew();
        long scored = 0;
        do
        {
            Run();
            scored += features.Length;
        }
        while (clock.Elapsed < minimumTiming);
        return new Check(features.Length, maxDifference, scored / clock.Elapsed.TotalSeconds);
    }
}
