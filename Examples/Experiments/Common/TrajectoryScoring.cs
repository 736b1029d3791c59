using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;

namespace MLReward.Experiments;

/// <summary>
/// Scores the transitions of a CSV file with a saved trajectory reward, as <c>mlreward score --data</c> does: the file is read
/// with ML.NET's text loader (a header row; one row per step, the steps of an episode in order and together), cut into the
/// windows the reward was trained on with the library's window transform, and scored. Every column but the episode column is a
/// step feature, in file order, unless the features are named.
/// </summary>
public static class TrajectoryScoring
{
    /// <summary>One window's reward.</summary>
    public sealed record WindowReward(string Episode, int StartStep, float Reward);

    /// <summary>One episode's summed window rewards.</summary>
    public sealed record EpisodeReward(string Episode, int Windows, double Reward);

    /// <summary>The reward of every window (stride <paramref name="stride"/>) of every episode of <paramref name="csvPath"/>.</summary>
    /// <exception cref="InvalidDataException">The model holds no trajectory reward, or the file's columns do not fit it.</exception>
    public static IReadOnlyList<WindowReward> Score(MLContext ml, string modelPath, string csvPath, string episodeColumn = "Episode",
        IReadOnlyList<string>? featureColumns = null, int stride = 1, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        var model = SafeModelSave.Load(ml, modelPath, out _);   // names the file when it is not a readable model
        try
        {
            var reward = FindReward(model, modelPath);
            var shape = reward.Shape;
            var windows = ReadWindows(ml, reward, modelPath, csvPath, episodeColumn, featureColumns, stride);
            var scored = reward.Transform(windows);
            var result = new List<WindowReward>();
            using var cursor = scored.GetRowCursor(scored.Schema.Where(c => c.Name is EpisodeColumnName or "StartStep" || c.Name == reward.OutputColumnName));
            var episode = cursor.GetGetter<ReadOnlyMemory<char>>(scored.Schema[EpisodeColumnName]);
            var start = cursor.GetGetter<int>(scored.Schema["StartStep"]);
            var value = cursor.GetGetter<float>(scored.Schema[reward.OutputColumnName]);
            ReadOnlyMemory<char> e = default;
            int s = 0;
            float r = 0;
            while (cursor.MoveNext())
            {
                cancellationToken.ThrowIfCancellationRequested();
                episode(ref e);
                start(ref s);
                value(ref r);
                result.Add(new WindowReward(e.ToString(), s, r));
                if (result.Count % 1000 == 0)
                    progress?.Report(result.Count);
            }
            progress?.Report(result.Count);
            if (result.Count == 0)
                throw new InvalidDataException($"'{csvPath}' has no episode of at least {shape.Horizon} steps, the reward's window.");
            return result;
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }

    /// <summary>The episode column of <see cref="ReadWindows"/>' windows (text, the file's episode ids).</summary>
    public const string EpisodeColumnName = "__Episode";

    /// <summary>The trajectory reward <paramref name="model"/> holds: the model itself, or the last reward of a chain.</summary>
    /// <exception cref="InvalidDataException">The model holds no trajectory reward.</exception>
    public static RelativeRewardTransformer FindReward(ITransformer model, string modelPath)
    {
        var reward = model as RelativeRewardTransformer
            ?? (model as IEnumerable<ITransformer>)?.OfType<RelativeRewardTransformer>().LastOrDefault()
            ?? throw new InvalidDataException($"'{modelPath}' holds no relative reward (found {model.GetType().Name}).");
        if (reward.Shape.Kind != SampleShapeKind.Trajectory)
            throw new InvalidDataException($"'{modelPath}' scores {reward.Shape}; scoring transitions needs a trajectory reward.");
        return reward;
    }

    /// <summary>
    /// The windows <paramref name="reward"/> scores, cut from the transitions of <paramref name="csvPath"/> (lazily): the
    /// episode (<see cref="EpisodeColumnName"/>), <c>StartStep</c>, the reward's feature column and, when
    /// <paramref name="labelColumn"/> names a Boolean column of the file (constant over each episode), that label.
    /// </summary>
    /// <exception cref="InvalidDataException">The file's columns do not fit the reward.</exception>
    public static IDataView ReadWindows(MLContext ml, RelativeRewardTransformer reward, string modelPath, string csvPath, string episodeColumn = "Episode",
        IReadOnlyList<string>? featureColumns = null, int stride = 1, string? labelColumn = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        var shape = reward.Shape;
        var header = ReadHeader(csvPath);
        int episodeIndex = Array.IndexOf(header, episodeColumn);
        if (episodeIndex < 0)
            throw new InvalidDataException($"'{csvPath}' has no episode column '{episodeColumn}' (columns: {string.Join(", ", header)}); name it with --episode-column.");
        int labelIndex = labelColumn is null ? -1 : Array.IndexOf(header, labelColumn);
        if (labelColumn is not null && labelIndex < 0)
            throw new InvalidDataException($"'{csvPath}' has no label column '{labelColumn}' (columns: {string.Join(", ", header)}).");
        var features = featureColumns?.ToArray() ?? header.Where((_, i) => i != episodeIndex && i != labelIndex).ToArray();
        foreach (var f in features)
            if (Array.IndexOf(header, f) < 0)
                throw new InvalidDataException($"'{csvPath}' has no feature column '{f}' (columns: {string.Join(", ", header)}).");
        if (features.Length != shape.TransitionDimension)
            throw new InvalidDataException($"'{modelPath}' reads {shape.TransitionDimension} values per step, but '{csvPath}' gives {features.Length} " +
                $"feature columns ({string.Join(", ", features)}); name the right ones with --features.");

        var columns = new List<TextLoader.Column> { new(EpisodeColumnName, DataKind.String, episodeIndex) };
        columns.AddRange(features.Select((f, k) => new TextLoader.Column($"__Feature{k}", DataKind.Single, Array.IndexOf(header, f))));
        if (labelColumn is not null)
            columns.Add(new TextLoader.Column(labelColumn, DataKind.Boolean, labelIndex));
        var transitions = ml.Data.LoadFromTextFile(csvPath, columns.ToArray(), separatorChar: ',', hasHeader: true, allowQuoting: true);
        return ml.RewardExtraction().TrajectoryWindows(new TrajectoryWindowEstimator.Options
        {
            EpisodeColumnName = EpisodeColumnName,
            FeatureColumnNames = features.Select((_, k) => $"__Feature{k}").ToArray(),
            OutputColumnName = reward.FeatureColumnName,
            Horizon = shape.Horizon,
            Stride = stride,
            LabelColumnName = labelColumn,
        }).Fit(transitions).Transform(transitions);
    }

    /// <summary>The window rewards summed per episode, in the order episodes first appear.</summary>
    public static IReadOnlyList<EpisodeReward> PerEpisode(IReadOnlyList<WindowReward> windows) =>
        windows.GroupBy(w => w.Episode).Select(g => new EpisodeReward(g.Key, g.Count(), g.Sum(w => (double)w.Reward))).ToList();

    /// <summary>Writes window rewards as CSV (Episode, StartStep, Reward).</summary>
    public static void WriteWindows(TextWriter writer, IEnumerable<WindowReward> windows)
    {
        writer.WriteLine("Episode,StartStep,Reward");
        foreach (var w in windows)
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{w.Episode},{w.StartStep},{w.Reward:R}"));
    }

    /// <summary>Writes episode rewards as CSV (Episode, Windows, Reward).</summary>
    public static void WriteEpisodes(TextWriter writer, IEnumerable<EpisodeReward> episodes)
    {
        writer.WriteLine("Episode,Windows,Reward");
        foreach (var e in episodes)
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{e.Episode},{e.Windows},{e.Reward:R}"));
    }

    private static string[] ReadHeader(string csvPath)
    {
        if (!File.Exists(csvPath))
            throw new FileNotFoundException($"No file '{csvPath}'.", csvPath);
        using var reader = new StreamReader(csvPath);
        var line = reader.ReadLine();
        if (string.IsNullOrWhiteSpace(line))
            throw new InvalidDataException($"'{csvPath}' is empty; it needs a header row naming its columns.");
        return line.Split(',').Select(c => c.Trim().Trim('"')).ToArray();
    }
}
