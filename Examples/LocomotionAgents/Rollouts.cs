using System.Globalization;
using MLReward.Locomotion;

namespace MLReward.LocomotionAgents;

/// <summary>Creates the locomotion tasks by name.</summary>
public static class LocomotionTasks
{
    /// <summary>The task names: "cheetah", "hopper", "walker".</summary>
    public static IReadOnlyList<string> Names { get; } = ["cheetah", "hopper", "walker"];

    /// <summary>A new environment for <paramref name="name"/> (case-insensitive).</summary>
    public static ILocomotionEnv Create(string name) => name.ToLowerInvariant() switch
    {
        "cheetah" => new CheetahEnv(),
        "hopper" => new HopperEnv(),
        "walker" => new WalkerEnv(),
        _ => throw new ArgumentException($"Unknown task '{name}' (expected one of: {string.Join(", ", Names)}).", nameof(name)),
    };
}

/// <summary>Return statistics over episodes.</summary>
/// <param name="Returns">Undiscounted return of each episode.</param>
/// <param name="Lengths">Steps of each episode.</param>
public sealed record EpisodeSummary(IReadOnlyList<double> Returns, IReadOnlyList<int> Lengths)
{
    /// <summary>Mean return.</summary>
    public double Mean => Returns.Count == 0 ? double.NaN : Returns.Average();

    /// <summary>Sample standard deviation of the returns.</summary>
    public double StandardDeviation
    {
        get
        {
            if (Returns.Count < 2)
                return 0;
            double mean = Mean;
            return Math.Sqrt(Returns.Sum(r => (r - mean) * (r - mean)) / (Returns.Count - 1));
        }
    }

    /// <summary>Standard error of the mean return.</summary>
    public double StandardError => Returns.Count == 0 ? double.NaN : StandardDeviation / Math.Sqrt(Returns.Count);

    /// <summary>Mean episode length.</summary>
    public double MeanLength => Lengths.Count == 0 ? double.NaN : Lengths.Average();

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"return {Mean:F1} +- {StandardError:F1} (sd {StandardDeviation:F1}, n {Returns.Count}), length {MeanLength:F0}");
}

/// <summary>Runs policies in an environment: evaluation and behaviour-data generation.</summary>
public static class Rollouts
{
    /// <summary>Seeds of evaluation episodes start here (episode i resets with seed + i).</summary>
    public const int DefaultEvaluationSeed = 1_000_000;

    /// <summary>
    /// Runs <paramref name="episodes"/> episodes; episode i resets with seed <paramref name="seed"/> + i and, for a
    /// stochastic policy, draws its action noise from <c>new Random(seed + i)</c>. <paramref name="onStep"/> sees every transition.
    /// </summary>
    public static EpisodeSummary Run(ILocomotionEnv env, Func<float[], Random, float[]> policy, int episodes, int seed,
        Action<int, int, float[], float[], LocomotionStep>? onStep = null)
    {
        var returns = new List<double>(episodes);
        var lengths = new List<int>(episodes);
        for (int e = 0; e < episodes; e++)
        {
            var random = new Random(unchecked(seed + e));
            float[] obs = env.Reset(unchecked(seed + e));
            double total = 0;
            int t = 0;
            while (true)
            {
                float[] action = policy(obs, random);
                LocomotionStep step = env.Step(action);
                onStep?.Invoke(e, t, obs, action, step);
                total += step.Reward;
                t++;
                obs = step.Observation;
                if (step.Done)
                    break;
            }
            returns.Add(total);
            lengths.Add(t);
        }
        return new EpisodeSummary(returns, lengths);
    }

    /// <summary>Evaluates <paramref name="policy"/> (mean actions unless <paramref name="deterministic"/> is false).</summary>
    public static EpisodeSummary Evaluate(ILocomotionEnv env, Policy policy, int episodes, bool deterministic = true, int seed = DefaultEvaluationSeed) =>
        Run(env, (o, r) => policy.Act(o, deterministic, r), episodes, seed);

    /// <summary>
    /// Evaluates the uniform random policy: every action component drawn from U(-1, 1) with the episode's
    /// <c>new Random(seed + i)</c>, the reference that D4RL-style normalised scores put at 0.
    /// </summary>
    public static EpisodeSummary EvaluateRandom(ILocomotionEnv env, int episodes, int seed = DefaultEvaluationSeed) =>
        Run(env, (_, r) =>
        {
            var action = new float[env.ActionSize];
            for (int i = 0; i < action.Length; i++)
                action[i] = (float)(2 * r.NextDouble() - 1);
            return action;
        }, episodes, seed);

    /// <summary>Evaluates the agent's current actor.</summary>
    public static EpisodeSummary Evaluate(ILocomotionEnv env, SacAgent agent, int episodes, bool deterministic = true, int seed = DefaultEvaluationSeed) =>
        Run(env, (o, r) => agent.Act(o, deterministic, r), episodes, seed);

    /// <summary>
    /// Writes transitions of <paramref name="episodes"/> episodes as CSV with a header:
    /// episode, step, obs_0..obs_{O-1}, act_0..act_{A-1}, reward, terminal (1 when the episode terminated at this
    /// step, 0 otherwise, including the last step of a truncated episode). Floats use the invariant culture, round-trip precision.
    /// </summary>
    public static EpisodeSummary WriteDataset(ILocomotionEnv env, Policy policy, int episodes, int seed, bool deterministic, TextWriter writer)
    {
        if (policy.ObservationSize != env.ObservationSize || policy.ActionSize != env.ActionSize)
            throw new ArgumentException($"The policy ({policy.Environment}: {policy.ObservationSize} -> {policy.ActionSize}) does not fit {env.Name} ({env.ObservationSize} -> {env.ActionSize}).");
        writer.WriteLine(string.Join(",", DatasetHeader(env.ObservationSize, env.ActionSize)));
        var line = new System.Text.StringBuilder();
        return Run(env, (o, r) => policy.Act(o, deterministic, r), episodes, seed, (e, t, obs, action, step) =>
        {
            line.Clear();
            line.Append(e).Append(',').Append(t);
            foreach (float v in obs)
                line.Append(',').Append(v.ToString("R", CultureInfo.InvariantCulture));
            foreach (float v in action)
                line.Append(',').Append(v.ToString("R", CultureInfo.InvariantCulture));
            line.Append(',').Append(step.Reward.ToString("R", CultureInfo.InvariantCulture));
            line.Append(',').Append(step.Terminated ? '1' : '0');
            writer.WriteLine(line);
        });
    }

    /// <summary>Column names of <see cref="WriteDataset"/>.</summary>
    public static IEnumerable<string> DatasetHeader(int observationSize, int actionSize) =>
        new[] { "episode", "step" }
            .Concat(Enumerable.Range(0, observationSize).Select(i => $"obs_{i}"))
            .Concat(Enumerable.Range(0, actionSize).Select(i => $"act_{i}"))
            .Concat(new[] { "reward", "terminal" });
}
