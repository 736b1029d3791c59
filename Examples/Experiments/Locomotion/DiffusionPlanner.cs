using System.Diagnostics;
using Microsoft.ML.RewardExtraction;
using MLReward.Locomotion;
using MLReward.LocomotionAgents;
using TorchSharp;
using static TorchSharp.torch;

namespace MLReward.Experiments.Locomotion;

/// <summary>Returns of a batch of episodes, where the time went, and what each episode did (its observations and actions,
/// for the per-episode diagnostics).</summary>
public sealed record EpisodeBatchResult(double[] Returns, int[] Lengths, bool[] Terminated, double SamplingSeconds, double EnvironmentSeconds, int EnvironmentSteps,
    IReadOnlyList<RecordedEpisode> Episodes)
{
    /// <summary>Mean return.</summary>
    public double Mean => Statistics.Mean(Returns);

    /// <summary>Standard error of the mean return.</summary>
    public double StandardError => Statistics.StandardError(Returns);
}

/// <summary>
/// Diffuser-style receding-horizon control with a trajectory diffusion model: at every environment step each running
/// episode's current observation is inpainted as the first step's observation of an H-step [action, observation] plan,
/// one plan per episode is sampled (all running episodes in one batch, so every reverse step is one batched forward, and
/// with reward guidance one batched reward gradient), and the plan's first action is executed.
/// Episode i resets with seed <c>seedBase + i</c> and draws all its sampling noise from its own torch generator seeded
/// the same way, so two conditions (e.g. unsteered and steered) meet the same starts and the same noise streams.
/// </summary>
public static class DiffusionPlanner
{
    /// <summary>Runs <paramref name="episodes"/> episodes of at most <paramref name="maxSteps"/> steps.</summary>
    /// <param name="environment">Task name.</param>
    /// <param name="model">The base diffusion model that plans (its normaliser maps observations and actions).</param>
    /// <param name="reward">The steering reward, or null for the unsteered planner.</param>
    /// <param name="guidance">Guidance settings (scale 0 = unsteered).</param>
    /// <param name="episodes">Episodes, run side by side.</param>
    /// <param name="maxSteps">Step cap per episode.</param>
    /// <param name="seedBase">Episode i uses seed seedBase + i for the reset and its noise.</param>
    /// <param name="progress">(environment step, running episodes) after every step.</param>
    /// <param name="cancellationToken">Checked every step.</param>
    public static EpisodeBatchResult Run(string environment, DiffusionModel model, RelativeRewardModel? reward, GuidanceOptions guidance,
        int episodes, int maxSteps, int seedBase, Action<int, int>? progress = null, CancellationToken cancellationToken = default)
    {
        var envs = new ILocomotionEnv[episodes];
        var generators = new Generator[episodes];
        var observations = new float[episodes][];
        var returns = new double[episodes];
        var lengths = new int[episodes];
        var terminated = new bool[episodes];
        var seenObservations = new List<float>[episodes];
        var takenActions = new List<float>[episodes];
        var sampler = new GuidedSampler(guidance);
        var normalizer = model.Normalizer;
        int horizon = model.Shape.Horizon, d = model.Shape.TransitionDimension;
        double samplingSeconds = 0, envSeconds = 0;
        int envSteps = 0;
        try
        {
            for (int i = 0; i < episodes; i++)
            {
                envs[i] = LocomotionTasks.Create(environment);
                observations[i] = envs[i].Reset(unchecked(seedBase + i));
                generators[i] = TorchRandom.Generator(unchecked(seedBase + i));
                seenObservations[i] = [];
                takenActions[i] = [];
            }
            int a = envs[0].ActionSize, o = envs[0].ObservationSize;
            if (a + o != d)
                throw new ArgumentException($"The model's transition dimension {d} is not action {a} + observation {o} of {environment}.");
            var active = Enumerable.Range(0, episodes).ToList();
            var clock = new Stopwatch();
            for (int step = 0; step < maxSteps && active.Count > 0; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = active.Count;
                float[] actions;
                clock.Restart();
                using (var scope = NewDisposeScope())
                {
                    var raw = new float[n * horizon * d];
                    for (int k = 0; k < n; k++)
                        Array.Copy(observations[active[k]], 0, raw, k * horizon * d + a, o);
                    var values = normalizer.Normalize(tensor(raw, new long[] { n, horizon, d }));
                    var mask = zeros(new long[] { n, horizon, d }, ScalarType.Bool);
                    mask.narrow(1, 0, 1).narrow(2, a, o).fill_(true);
                    var condition = new InpaintingCondition(values, mask);
                    var rows = active.Select(i => generators[i]).ToArray();
                    var plan = sampler.Sample(model, reward, rows, condition, cancellationToken);
                    var first = normalizer.Denormalize(plan).select(1, 0).narrow(1, 0, a).clamp(-1, 1).contiguous();
                    actions = first.data<float>().ToArray();
                }
                samplingSeconds += clock.Elapsed.TotalSeconds;
                clock.Restart();
                var still = new List<int>(n);
                for (int k = 0; k < n; k++)
                {
                    int i = active[k];
                    seenObservations[i].AddRange(observations[i]);
                    takenActions[i].AddRange(actions.AsSpan(k * a, a));
                    var result = envs[i].Step(actions.AsSpan(k * a, a));
                    returns[i] += result.Reward;
                    lengths[i]++;
                    envSteps++;
                    observations[i] = result.Observation;
                    if (result.Done)
                        terminated[i] = result.Terminated;
                    else
                        still.Add(i);
                }
                envSeconds += clock.Elapsed.TotalSeconds;
                active = still;
                progress?.Invoke(step + 1, active.Count);
            }
            var recorded = Enumerable.Range(0, episodes).Select(i => new RecordedEpisode(reward is null ? "planner" : "steered planner", unchecked(seedBase + i),
                seenObservations[i].ToArray(), takenActions[i].ToArray(), returns[i], lengths[i], terminated[i])).ToArray();
            return new EpisodeBatchResult(returns, lengths, terminated, samplingSeconds, envSeconds, envSteps, recorded);
        }
        finally
        {
            foreach (var env in envs)
                env?.Dispose();
            foreach (var g in generators)
                g?.Dispose();
        }
    }

    /// <summary>Runs a policy (stochastic unless <paramref name="deterministic"/>) on the same starts: episode i resets with
    /// seed seedBase + i and draws action noise from <c>new Random(seedBase + i)</c>.</summary>
    public static EpisodeBatchResult RunPolicy(string environment, Policy policy, bool deterministic, int episodes, int maxSteps, int seedBase,
        CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        var recorded = BehaviourData.Record(environment, policy, "policy", episodes, seedBase, maxSteps, deterministic, cancellationToken);
        return Summarize(recorded, clock);
    }

    /// <summary>Uniform random actions on the same starts as <see cref="Run"/> with <paramref name="seedBase"/>.</summary>
    public static EpisodeBatchResult RunRandom(string environment, int episodes, int maxSteps, int seedBase, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        return Summarize(BehaviourData.RecordRandom(environment, episodes, seedBase, maxSteps, cancellationToken), clock);
    }

    private static EpisodeBatchResult Summarize(IReadOnlyList<RecordedEpisode> recorded, Stopwatch clock)
    {
        return new EpisodeBatchResult(recorded.Select(e => e.Return).ToArray(), recorded.Select(e => e.Length).ToArray(),
            recorded.Select(e => e.Terminated).ToArray(), 0, clock.Elapsed.TotalSeconds, recorded.Sum(e => e.Length), recorded);
    }
}
