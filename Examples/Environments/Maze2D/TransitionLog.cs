using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLReward.Environments.Maze2D;

/// <summary>One logged transition: the observation before the step, the action taken, and the reward after it.</summary>
/// <param name="EpisodeId">Episode id.</param>
/// <param name="Step">Step index within the episode (0-based).</param>
/// <param name="ActionX">Action, first axis.</param>
/// <param name="ActionY">Action, second axis.</param>
/// <param name="X">Observation: position x.</param>
/// <param name="Y">Observation: position y.</param>
/// <param name="VelocityX">Observation: velocity x.</param>
/// <param name="VelocityY">Observation: velocity y.</param>
/// <param name="Reward">Reward.</param>
public readonly record struct Transition(int EpisodeId, int Step, float ActionX, float ActionY, float X, float Y, float VelocityX, float VelocityY, float Reward)
{
    /// <summary>The action [ax, ay].</summary>
    public float[] Action => [ActionX, ActionY];

    /// <summary>The observation [x, y, vx, vy].</summary>
    public float[] Observation => [X, Y, VelocityX, VelocityY];

    /// <summary>The position (x, y).</summary>
    public Vec2 Position => new(X, Y);
}

/// <summary>
/// A log of transitions (episode id, step, action[2], observation[4], reward), stored column-wise. Episodes are the
/// contiguous runs of equal episode ids. Converts to an ML.NET <see cref="IDataView"/> and to / from CSV.
/// </summary>
public sealed class TransitionLog
{
    /// <summary>Column name of the episode id (Int32).</summary>
    public const string EpisodeIdColumn = "EpisodeId";
    /// <summary>Column name of the step index (Int32).</summary>
    public const string StepColumn = "Step";
    /// <summary>Column name of the action (float vector of 2).</summary>
    public const string ActionColumn = "Action";
    /// <summary>Column name of the observation (float vector of 4).</summary>
    public const string ObservationColumn = "Observation";
    /// <summary>Column name of the reward (float).</summary>
    public const string RewardColumn = "Reward";

    /// <summary>Header line of the CSV format.</summary>
    public const string CsvHeader = "EpisodeId,Step,Action_0,Action_1,Observation_0,Observation_1,Observation_2,Observation_3,Reward";

    private int[] _episode;
    private int[] _step;
    private float[] _action;
    private float[] _observation;
    private float[] _reward;

    /// <summary>Creates an empty log.</summary>
    public TransitionLog(int capacity = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _episode = new int[capacity];
        _step = new int[capacity];
        _action = new float[2 * capacity];
        _observation = new float[4 * capacity];
        _reward = new float[capacity];
    }

    /// <summary>Number of transitions.</summary>
    public int Count { get; private set; }

    /// <summary>Number of episodes (contiguous runs of equal episode ids).</summary>
    public int EpisodeCount { get; private set; }

    /// <summary>Appends a transition.</summary>
    public void Add(int episodeId, int step, ReadOnlySpan<float> action, ReadOnlySpan<float> observation, float reward)
    {
        if (action.Length != PointMass.ActionSize) throw new ArgumentException($"Action must have {PointMass.ActionSize} elements.", nameof(action));
        if (observation.Length != PointMass.ObservationSize) throw new ArgumentException($"Observation must have {PointMass.ObservationSize} elements.", nameof(observation));
        if (Count == _episode.Length) Grow();
        if (Count == 0 || _episode[Count - 1] != episodeId) EpisodeCount++;
        _episode[Count] = episodeId;
        _step[Count] = step;
        action.CopyTo(_action.AsSpan(2 * Count, 2));
        observation.CopyTo(_observation.AsSpan(4 * Count, 4));
        _reward[Count] = reward;
        Count++;
    }

    /// <summary>Appends a transition.</summary>
    public void Add(in Transition t) =>
        Add(t.EpisodeId, t.Step, [t.ActionX, t.ActionY], [t.X, t.Y, t.VelocityX, t.VelocityY], t.Reward);

    private void Grow()
    {
        int n = Math.Max(16, _episode.Length * 2);
        Array.Resize(ref _episode, n);
        Array.Resize(ref _step, n);
        Array.Resize(ref _action, 2 * n);
        Array.Resize(ref _observation, 4 * n);
        Array.Resize(ref _reward, n);
    }

    private void Check(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
    }

    /// <summary>The transition at <paramref name="index"/>.</summary>
    public Transition this[int index]
    {
        get
        {
            Check(index);
            return new Transition(_episode[index], _step[index], _action[2 * index], _action[2 * index + 1],
                _observation[4 * index], _observation[4 * index + 1], _observation[4 * index + 2], _observation[4 * index + 3], _reward[index]);
        }
    }

    /// <summary>Episode id of transition <paramref name="index"/>.</summary>
    public int GetEpisodeId(int index) { Check(index); return _episode[index]; }

    /// <summary>Step of transition <paramref name="index"/>.</summary>
    public int GetStep(int index) { Check(index); return _step[index]; }

    /// <summary>Action of transition <paramref name="index"/> (a view, 2 values).</summary>
    public ReadOnlySpan<float> GetAction(int index) { Check(index); return _action.AsSpan(2 * index, 2); }

    /// <summary>Observation of transition <paramref name="index"/> (a view, 4 values).</summary>
    public ReadOnlySpan<float> GetObservation(int index) { Check(index); return _observation.AsSpan(4 * index, 4); }

    /// <summary>Reward of transition <paramref name="index"/>.</summary>
    public float GetReward(int index) { Check(index); return _reward[index]; }

    /// <summary>All actions, row-major (Count x 2).</summary>
    public ReadOnlySpan<float> Actions => _action.AsSpan(0, 2 * Count);

    /// <summary>All observations, row-major (Count x 4).</summary>
    public ReadOnlySpan<float> Observations => _observation.AsSpan(0, 4 * Count);

    /// <summary>All rewards.</summary>
    public ReadOnlySpan<float> Rewards => _reward.AsSpan(0, Count);

    /// <summary>All transitions in order.</summary>
    public IEnumerable<Transition> Transitions
    {
        get
        {
            for (int i = 0; i < Count; i++) yield return this[i];
        }
    }

    /// <summary>The episodes as (id, index of the first transition, number of transitions), in order.</summary>
    public IEnumerable<(int EpisodeId, int Start, int Length)> Episodes()
    {
        int start = 0;
        for (int i = 1; i <= Count; i++)
        {
            if (i == Count || _episode[i] != _episode[start])
            {
                yield return (_episode[start], start, i - start);
                start = i;
            }
        }
    }

    /// <summary>
    /// The log as an ML.NET data view with columns EpisodeId (Int32), Step (Int32), Action (Single vector of 2),
    /// Observation (Single vector of 4) and Reward (Single). The view reads this log lazily: do not modify the log
    /// while the view is in use.
    /// </summary>
    public IDataView ToDataView(MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return mlContext.Data.LoadFromEnumerable(Rows());
    }

    private IEnumerable<TransitionRow> Rows()
    {
        int n = Count;
        for (int i = 0; i < n; i++)
            yield return new TransitionRow
            {
                EpisodeId = _episode[i],
                Step = _step[i],
                Action = _action.AsSpan(2 * i, 2).ToArray(),
                Observation = _observation.AsSpan(4 * i, 4).ToArray(),
                Reward = _reward[i],
            };
    }

    /// <summary>Reads a data view with the columns of <see cref="ToDataView"/> back into a log.</summary>
    public static TransitionLog FromDataView(MLContext mlContext, IDataView data)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(data);
        var log = new TransitionLog();
        foreach (var r in mlContext.Data.CreateEnumerable<TransitionRow>(data, reuseRowObject: true))
            log.Add(r.EpisodeId, r.Step, r.Action, r.Observation, r.Reward);
        return log;
    }

    /// <summary>Writes the log as CSV (header <see cref="CsvHeader"/>, invariant culture, round-trip floats).</summary>
    public void WriteCsv(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.Write(CsvHeader);
        writer.Write('\n');
        var sb = new StringBuilder(128);
        var ci = CultureInfo.InvariantCulture;
        for (int i = 0; i < Count; i++)
        {
            sb.Clear();
            sb.Append(_episode[i].ToString(ci)).Append(',').Append(_step[i].ToString(ci));
            for (int k = 0; k < 2; k++) sb.Append(',').Append(_action[2 * i + k].ToString("R", ci));
            for (int k = 0; k < 4; k++) sb.Append(',').Append(_observation[4 * i + k].ToString("R", ci));
            sb.Append(',').Append(_reward[i].ToString("R", ci)).Append('\n');
            writer.Write(sb);
        }
    }

    /// <summary>Saves the log as a CSV file.</summary>
    public void SaveCsv(string path)
    {
        using var w = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 16);
        WriteCsv(w);
    }

    /// <summary>Reads a log written by <see cref="WriteCsv"/>.</summary>
    public static TransitionLog ReadCsv(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var header = reader.ReadLine();
        if (header is null || header.Trim() != CsvHeader)
            throw new FormatException($"Not a transition log: the first line must be '{CsvHeader}'.");
        var log = new TransitionLog();
        var ci = CultureInfo.InvariantCulture;
        Span<float> a = stackalloc float[2];
        Span<float> o = stackalloc float[4];
        string? line;
        int lineNo = 1;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNo++;
            if (line.Length == 0) continue;
            var f = line.Split(',');
            if (f.Length != 9) throw new FormatException($"Line {lineNo}: expected 9 fields, found {f.Length}.");
            try
            {
                int ep = int.Parse(f[0], NumberStyles.Integer, ci);
                int st = int.Parse(f[1], NumberStyles.Integer, ci);
                for (int k = 0; k < 2; k++) a[k] = float.Parse(f[2 + k], NumberStyles.Float, ci);
                for (int k = 0; k < 4; k++) o[k] = float.Parse(f[4 + k], NumberStyles.Float, ci);
                float r = float.Parse(f[8], NumberStyles.Float, ci);
                log.Add(ep, st, a, o, r);
            }
            catch (FormatException e)
            {
                throw new FormatException($"Line {lineNo}: {e.Message}", e);
            }
        }
        return log;
    }

    /// <summary>Loads a CSV file written by <see cref="SaveCsv"/>.</summary>
    public static TransitionLog LoadCsv(string path)
    {
        using var r = new StreamReader(path, Encoding.UTF8, true, 1 << 16);
        return ReadCsv(r);
    }

    /// <summary>Row type of the ML.NET view (public for ML.NET's reflection; prefer <see cref="ToDataView"/>).</summary>
    public sealed class TransitionRow
    {
        /// <summary>Episode id.</summary>
        public int EpisodeId { get; set; }

        /// <summary>Step within the episode.</summary>
        public int Step { get; set; }

        /// <summary>Action [ax, ay].</summary>
        [VectorType(2)]
        public float[] Action { get; set; } = new float[2];

        /// <summary>Observation [x, y, vx, vy].</summary>
        [VectorType(4)]
        public float[] Observation { get; set; } = new float[4];

        /// <summary>Reward.</summary>
        public float Reward { get; set; }
    }
}
