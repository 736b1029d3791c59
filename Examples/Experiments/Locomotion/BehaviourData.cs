using Microsoft.ML;
using Microsoft.ML.Data;
using MLReward.Locomotion;
using MLReward.LocomotionAgents;
using static TorchSharp.torch;

namespace MLReward.Experiments.Locomotion;

/// <summary>One recorded episode: observations o_0..o_{L-1} and the actions a_0..a_{L-1} taken at them.</summary>
public sealed record RecordedEpisode(string Policy, int Seed, float[] Observations, float[] Actions, double Return, int Length, bool Terminated);

/// <summary>Episodes of one or more policies in one task, and the diffusion samples cut from them.</summary>
public sealed class BehaviourData
{
    /// <summary>Wraps recorded episodes (all of one task).</summary>
    public BehaviourData(int observationSize, int actionSize, IReadOnlyList<RecordedEpisode> episodes)
    {
        ObservationSize = observationSize;
        ActionSize = actionSize;
        Episodes = episodes;
    }

    /// <summary>Observation length.</summary>
    public int ObservationSize { get; }

    /// <summary>Action length.</summary>
    public int ActionSize { get; }

    /// <summary>Floats per trajectory step: [action, observation].</summary>
    public int TransitionDimension => ActionSize + ObservationSize;

    /// <summary>The episodes.</summary>
    public IReadOnlyList<RecordedEpisode> Episodes { get; }

    /// <summary>Environment steps in all episodes.</summary>
    public int Transitions => Episodes.Sum(e => e.Length);

    /// <summary>Number of windows of <paramref name="horizon"/> steps that lie inside one episode.</summary>
    public int WindowCount(int horizon) => Episodes.Sum(e => Math.Max(0, e.Length - horizon + 1));

    /// <summary>
    /// All windows of <paramref name="horizon"/> consecutive steps inside an episode (start stride 1), each step
    /// [a_t, o_t]: a raw float32 tensor [N, H, A + O].
    /// </summary>
    public Tensor Windows(int horizon)
    {
        int d = TransitionDimension, n = WindowCount(horizon);
        if (n == 0)
            throw new InvalidOperationException($"No episode is at least {horizon} steps long.");
        var buffer = new float[(long)n * horizon * d];
        long w = 0;
        foreach (var e in Episodes)
        {
            for (int start = 0; start + horizon <= e.Length; start++, w++)
            {
                for (int k = 0; k < horizon; k++)
                {
                    int t = start + k;
                    long offset = (w * horizon + k) * d;
                    Array.Copy(e.Actions, t * ActionSize, buffer, offset, ActionSize);
                    Array.Copy(e.Observations, t * ObservationSize, buffer, offset + ActionSize, ObservationSize);
                }
            }
        }
        return tensor(buffer, new long[] { n, horizon, d });
    }

    /// <summary>
    /// The episodes as ML.NET rows, one per step: Episode (its index), Action, Observation (known-size vectors) and Expert
    /// (whether <paramref name="expertPolicy"/> acted), the input of the library's window transform.
    /// </summary>
    public IDataView ToDataView(MLContext ml, string expertPolicy)
    {
        ArgumentNullException.ThrowIfNull(ml);
        var schema = SchemaDefinition.Create(typeof(StepRow));
        schema[nameof(StepRow.Action)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, ActionSize);
        schema[nameof(StepRow.Observation)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, ObservationSize);
        return ml.Data.LoadFromEnumerable(Steps(expertPolicy), schema);
    }

    private IEnumerable<StepRow> Steps(string expertPolicy)
    {
        for (int e = 0; e < Episodes.Count; e++)
        {
            var episode = Episodes[e];
            for (int t = 0; t < episode.Length; t++)
                yield return new StepRow
                {
                    Episode = e,
                    Action = episode.Actions.AsSpan(t * ActionSize, ActionSize).ToArray(),
                    Observation = episode.Observations.AsSpan(t * ObservationSize, ObservationSize).ToArray(),
                    Expert = episode.Policy == expertPolicy,
                };
        }
    }

    /// <summary>One step as a row of <see cref="ToDataView"/>.</summary>
    public sealed class StepRow
    {
        /// <summary>The episode.</summary>
        public int Episode { get; set; }
        /// <summary>The action taken.</summary>
        public float[] Action { get; set; } = [];
        /// <summary>The observation it was taken in.</summary>
        public float[] Observation { get; set; } = [];
        /// <summary>Whether the expert policy acted.</summary>
        public bool Expert { get; set; }
    }

    /// <summary>Mean and standard error of the episode returns of <paramref name="policy"/> (all when null).</summary>
    public (double Mean, double StandardError, int Count) ReturnStatistics(string? policy = null)
    {
        var returns = Episodes.Where(e => policy is null || e.Policy == policy).Select(e => e.Return).ToArray();
        return (returns.Length == 0 ? double.NaN : returns.Average(), Statistics.StandardError(returns), returns.Length);
    }

    /// <summary>
    /// Records <paramref name="episodes"/> episodes of <paramref name="policy"/> in a new <paramref name="environment"/>
    /// task: episode i resets with seed <paramref name="seed"/> + i and, for stochastic actions, draws its action noise
    /// from <c>new Random(seed + i)</c> (as <see cref="Rollouts.Run"/>); at most <paramref name="maxSteps"/> steps each.
    /// </summary>
    public static IReadOnlyList<RecordedEpisode> Record(string environment, Policy policy, string policyName, int episodes, int seed,
        int maxSteps, bool deterministic, CancellationToken cancellationToken = default)
    {
        using var env = LocomotionTasks.Create(environment);
        if (policy.ObservationSize != env.ObservationSize || policy.ActionSize != env.ActionSize)
            throw new ArgumentException($"The policy '{policyName}' ({policy.Environment}: {policy.ObservationSize} -> {policy.ActionSize}) does not fit {env.Name} ({env.ObservationSize} -> {env.ActionSize}).");
        return Record(env, (obs, random) => policy.Act(obs, deterministic, random), policyName, episodes, seed, maxSteps, cancellationToken);
    }

    /// <summary>Episodes of uniform random actions in [-1, 1] (episode i: reset and action draws from seed + i): the zero of
    /// D4RL-style normalised scores.</summary>
    public static IReadOnlyList<RecordedEpisode> RecordRandom(string environment, int episodes, int seed, int maxSteps, CancellationToken cancellationToken = default)
    {
        using var env = LocomotionTasks.Create(environment);
        int size = env.ActionSize;
        return Record(env, (_, random) =>
        {
            var action = new float[size];
            for (int i = 0; i < size; i++)
                action[i] = (float)(2 * random.NextDouble() - 1);
            return action;
        }, "random", episodes, seed, maxSteps, cancellationToken);
    }

    private static IReadOnlyList<RecordedEpisode> Record(ILocomotionEnv env, Func<float[], Random, float[]> act, string policyName, int episodes, int seed,
        int maxSteps, CancellationToken cancellationToken)
    {
        int o = env.ObservationSize, a = env.ActionSize;
        var result = new List<RecordedEpisode>(episodes);
        for (int e = 0; e < episodes; e++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int episodeSeed = unchecked(seed + e);
            var random = new Random(episodeSeed);
            var observations = new List<float>(maxSteps * o);
            var actions = new List<float>(maxSteps * a);
            float[] obs = env.Reset(episodeSeed);
            double total = 0;
            bool terminated = false;
            int t = 0;
            while (t < maxSteps)
            {
                float[] action = act(obs, random);
                for (int i = 0; i < a; i++)
                    action[i] = Math.Clamp(action[i], -1f, 1f);
                var step = env.Step(action);
                observations.AddRange(obs);
                actions.AddRange(action);
                total += step.Reward;
                t++;
                obs = step.Observation;
                if (step.Done)
                {
                    terminated = step.Terminated;
                    break;
                }
            }
            result.Add(new RecordedEpisode(policyName, episodeSeed, observations.ToArray(), actions.ToArray(), total, t, terminated));
        }
        return result;
    }
}

/// <summary>Finds the task's policy files: <c>&lt;folder&gt;/&lt;task&gt;-&lt;name&gt;.policy</c>.</summary>
public static class PolicyFiles
{
    /// <summary>
    /// The default policy folder: <c>Policies</c> beside the running assembly (the LocomotionAgents project copies its
    /// policies there), else <c>Examples/LocomotionAgents/Policies</c> found upwards from the working directory.
    /// </summary>
    public static string DefaultDirectory()
    {
        string local = Path.Combine(AppContext.BaseDirectory, "Policies");
        if (Directory.Exists(local) && Directory.EnumerateFiles(local, "*.policy").Any())
            return local;
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "Examples", "LocomotionAgents", "Policies");
            if (Directory.Exists(candidate))
                return candidate;
        }
        return local;
    }

    /// <summary>The path of <paramref name="task"/>'s policy <paramref name="name"/>; throws <see cref="FileNotFoundException"/> with the folder's contents if absent.</summary>
    public static string Resolve(string directory, string task, string name)
    {
        string path = Path.Combine(directory, $"{task}-{name}.policy");
        if (File.Exists(path))
            return path;
        string present = Directory.Exists(directory)
            ? string.Join(", ", Directory.EnumerateFiles(directory, "*.policy").Select(Path.GetFileName).Order())
            : "the folder does not exist";
        throw new FileNotFoundException($"Policy file {path} not found (present: {(present.Length == 0 ? "none" : present)}). Pass --policies DIR.", path);
    }
}
