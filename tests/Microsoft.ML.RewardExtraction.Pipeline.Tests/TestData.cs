using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>One logged time step: an episode id, a scalar action and a 2-d observation.</summary>
public sealed class Step
{
    public int Episode { get; set; }

    public float Action { get; set; }

    [VectorType(2)]
    public float[] Obs { get; set; } = new float[2];
}

/// <summary>A step whose observation is double (the wrong type for windows).</summary>
public sealed class DoubleStep
{
    public int Episode { get; set; }

    public float Action { get; set; }

    [VectorType(2)]
    public double[] Obs { get; set; } = new double[2];
}

/// <summary>A step with a text episode id.</summary>
public sealed class TextStep
{
    public string Episode { get; set; } = "";

    public float Action { get; set; }
}

/// <summary>A step with a 64-bit episode id.</summary>
public sealed class LongStep
{
    public long Episode { get; set; }

    public float Action { get; set; }
}

/// <summary>One output window, read back with CreateEnumerable.</summary>
public sealed class Window
{
    public int Episode { get; set; }

    public int StartStep { get; set; }

    public float[] Trajectory { get; set; } = Array.Empty<float>();
}

public static class TestData
{
    /// <summary>The step of episode e at time t: action 10e+t, observation (100e+t, -(100e+t)).</summary>
    public static Step MakeStep(int episode, int t)
        => new() { Episode = episode, Action = 10 * episode + t, Obs = new float[] { 100 * episode + t, -(100 * episode + t) } };

    /// <summary>The 3 values (action, obs0, obs1) of step t of episode e.</summary>
    public static float[] Values(int episode, int t)
        => new float[] { 10 * episode + t, 100 * episode + t, -(100 * episode + t) };

    /// <summary>Episodes given as (id, length), their rows consecutive in this order.</summary>
    public static List<Step> Episodes(params (int id, int length)[] episodes)
    {
        var rows = new List<Step>();
        foreach (var (id, length) in episodes)
        {
            for (int t = 0; t < length; t++)
                rows.Add(MakeStep(id, t));
        }
        return rows;
    }

    /// <summary>Episode 1 (4 steps), episode 2 (2 steps), episode 7 (5 steps).</summary>
    public static List<Step> Standard() => Episodes((1, 4), (2, 2), (7, 5));

    /// <summary>The expected window of episode e starting at step start: steps start..start+horizon-1, the last
    /// existing step repeated where the episode has fewer steps.</summary>
    public static float[] ExpectedWindow(int episode, int start, int horizon, int length)
        => Enumerable.Range(start, horizon).SelectMany(t => Values(episode, Math.Min(t, length - 1))).ToArray();

    public static List<Window> Windows(MLContext ml, IDataView view)
        => ml.Data.CreateEnumerable<Window>(view, reuseRowObject: false).ToList();

    /// <summary>A line per window: "episode start v0 v1 ...", floats in round-trip format.</summary>
    public static string Format(MLContext ml, IDataView view)
    {
        var sb = new StringBuilder();
        foreach (var w in Windows(ml, view))
        {
            sb.Append(w.Episode.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(w.StartStep.ToString(CultureInfo.InvariantCulture));
            foreach (var v in w.Trajectory)
                sb.Append(' ').Append(v.ToString("R", CultureInfo.InvariantCulture));
            sb.Append('\n');
        }
        return sb.ToString();
    }
}
