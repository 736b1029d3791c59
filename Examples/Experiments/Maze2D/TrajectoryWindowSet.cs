using MLReward.Environments.Maze2D;
using TorchSharp;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Trajectory windows cut from a <see cref="TransitionLog"/>: H consecutive transitions of one episode, each row
/// [action x, action y, x, y, vx, vy] (the transition layout of docs/EXPERIMENTS.md section 1), stored row-major as raw (unnormalised) floats.
/// Windows never cross an episode boundary; episodes shorter than H give none.
/// </summary>
public sealed class TrajectoryWindowSet
{
    /// <summary>Floats per trajectory row: action (2) then observation (4).</summary>
    public const int TransitionDimension = PointMass.ActionSize + PointMass.ObservationSize;

    private TrajectoryWindowSet(int horizon, float[] data, int[] episodes, int count)
    {
        Horizon = horizon;
        Data = data;
        EpisodeIds = episodes;
        Count = count;
    }

    /// <summary>H, rows per window.</summary>
    public int Horizon { get; }

    /// <summary>Number of windows.</summary>
    public int Count { get; }

    /// <summary>The windows, Count x H x 6, row-major.</summary>
    public float[] Data { get; }

    /// <summary>The episode each window was cut from.</summary>
    public int[] EpisodeIds { get; }

    /// <summary>Floats per window (H x 6).</summary>
    public int WindowLength => Horizon * TransitionDimension;

    /// <summary>The raw values of window <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Window(int index) => Data.AsSpan(index * WindowLength, WindowLength);

    /// <summary>
    /// Cuts windows of <paramref name="horizon"/> rows starting every <paramref name="stride"/> steps of each episode that
    /// <paramref name="includeEpisode"/> accepts (all when null). With <paramref name="coverTail"/> the last window of an episode
    /// is aligned with its end when the stride does not reach it, so that every transition of the episode lies in a window.
    /// </summary>
    public static TrajectoryWindowSet Cut(TransitionLog log, int horizon, int stride, Func<int, bool>? includeEpisode = null, bool coverTail = false)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentOutOfRangeException.ThrowIfLessThan(horizon, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        var starts = new List<int>();
        var episodes = new List<int>();
        foreach (var (id, first, length) in log.Episodes())
        {
            if (length < horizon || (includeEpisode is not null && !includeEpisode(id)))
                continue;
            int last = length - horizon;
            for (int s = 0; s <= last; s += stride)
            {
                starts.Add(first + s);
                episodes.Add(id);
            }
            if (coverTail && last % stride != 0)
            {
                starts.Add(first + last);
                episodes.Add(id);
            }
        }
        int windowLength = horizon * TransitionDimension;
        var data = new float[(long)starts.Count * windowLength];
        var actions = log.Actions;
        var observations = log.Observations;
        for (int w = 0; w < starts.Count; w++)
        {
            var destination = data.AsSpan(w * windowLength, windowLength);
            for (int r = 0; r < horizon; r++)
            {
                int i = starts[w] + r;
                var row = destination.Slice(r * TransitionDimension, TransitionDimension);
                actions.Slice(2 * i, 2).CopyTo(row);
                observations.Slice(4 * i, 4).CopyTo(row[2..]);
            }
        }
        return new TrajectoryWindowSet(horizon, data, episodes.ToArray(), starts.Count);
    }

    /// <summary>The windows as a float tensor [Count, H, 6] (a copy).</summary>
    public torch.Tensor ToTensor() =>
        torch.tensor(Data, new long[] { Count, Horizon, TransitionDimension }, torch.ScalarType.Float32);

    /// <summary>The windows whose indices are given, as a new set.</summary>
    public TrajectoryWindowSet Select(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var data = new float[(long)indices.Count * WindowLength];
        var episodes = new int[indices.Count];
        for (int k = 0; k < indices.Count; k++)
        {
            Window(indices[k]).CopyTo(data.AsSpan(k * WindowLength, WindowLength));
            episodes[k] = EpisodeIds[indices[k]];
        }
        return new TrajectoryWindowSet(Horizon, data, episodes, indices.Count);
    }

    /// <summary>At most <paramref name="maximum"/> windows drawn without replacement (all, in order, when there are fewer).</summary>
    public TrajectoryWindowSet Subsample(int maximum, int seed)
    {
        if (Count <= maximum)
            return this;
        var rng = new Random(seed);
        var indices = Enumerable.Range(0, Count).ToArray();
        rng.Shuffle(indices);
        var chosen = indices.Take(maximum).ToArray();
        Array.Sort(chosen);
        return Select(chosen);
    }
}

/// <summary>A split of a log's episodes into training and held-out episodes (never a window in both).</summary>
public sealed class EpisodeSplit
{
    private readonly HashSet<int> _heldOut;

    private EpisodeSplit(HashSet<int> heldOut, int total)
    {
        _heldOut = heldOut;
        TotalEpisodes = total;
    }

    /// <summary>Episodes in the log.</summary>
    public int TotalEpisodes { get; }

    /// <summary>Held-out episodes.</summary>
    public int HeldOutEpisodes => _heldOut.Count;

    /// <summary>Whether episode <paramref name="id"/> is held out.</summary>
    public bool IsHeldOut(int id) => _heldOut.Contains(id);

    /// <summary>Whether episode <paramref name="id"/> is for training.</summary>
    public bool IsTraining(int id) => !_heldOut.Contains(id);

    /// <summary>Holds out a seeded random <paramref name="fraction"/> of the episodes (at least one when there are two or more).</summary>
    public static EpisodeSplit Create(TransitionLog log, double fraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (!(fraction is > 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The held-out fraction must lie in (0, 1).");
        var ids = log.Episodes().Select(e => e.EpisodeId).Distinct().ToArray();
        var rng = new Random(seed);
        rng.Shuffle(ids);
        int count = ids.Length < 2 ? 0 : Math.Clamp((int)Math.Round(fraction * ids.Length), 1, ids.Length - 1);
        return new EpisodeSplit(ids.Take(count).ToHashSet(), ids.Length);
    }
}
