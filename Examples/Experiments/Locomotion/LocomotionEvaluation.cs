using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.RewardExtraction;
using static TorchSharp.torch;

namespace MLReward.Experiments.Locomotion;

/// <summary>
/// Stages "reward check" and "planning": the reward's AUC on held-out windows (the library's Evaluate), then the base planner
/// unsteered and steered by the reward, the expert policy and (diagnostic) the expert model as planner, each on the same
/// episode seeds (the steered planner at the scale chosen on episodes of their own, when there are candidates), and the
/// optional scale sweep on the first episodes.
/// </summary>
internal static class LocomotionEvaluation
{
    /// <summary>The reward on the held-out windows, expert against base.</summary>
    public static RewardCheck CheckReward(LocomotionRunContext run, LocomotionData data, RelativeRewardTransformer reward)
    {
        var heldOut = data.Windows(run.Ml, data.HeldOut, run.Settings.Horizon);
        var metrics = run.Rx.Evaluate(reward.Transform(heldOut), nameof(BehaviourData.StepRow.Expert), reward.OutputColumnName);
        return new RewardCheck
        {
            BaseWindows = (int)metrics.NegativeCount,
            ExpertWindows = (int)metrics.PositiveCount,
            MeanBaseReward = metrics.MeanRewardNegative,
            MeanExpertReward = metrics.MeanRewardPositive,
            Auc = metrics.AreaUnderRocCurve,
            BalancedAccuracy = metrics.BalancedAccuracy,
        };
    }

    /// <summary>The conservativeness diagnostic of the reward on the held-out windows (null when <see cref="LocomotionSettings.DiagnosticRows"/>
    /// is 0). The models' difference is measured without the planner's conditioning on the first observation.</summary>
    public static ConservativenessReport? Conservativeness(LocomotionRunContext run, LocomotionData data, LocomotionModels models, string plotPath)
    {
        var s = run.Settings;
        if (s.DiagnosticRows <= 0)
            return null;
        var heldOut = data.Windows(run.Ml, data.HeldOut, s.Horizon);
        var report = ConservativenessReport.Measure(run.Ml, models.Base, models.Expert, models.Reward, heldOut, s.DiagnosticRows, s.DiagnosticStride,
            s.DiagnosticProbes, run.Seeds.For("conservativeness"));
        report.SavePlot($"{s.Environment}: conservativeness of the reward", plotPath);
        return report;
    }

    public sealed record Conditions(ConditionResult Unsteered, ConditionResult Steered, ConditionResult Expert, ConditionResult Random, ConditionResult? ExpertPlanner,
        List<ConditionResult> Sweep, List<ConditionResult> ScaleSelection, Dictionary<string, double> Seconds);

    public static Conditions Plan(LocomotionRunContext run, LocomotionModels models, LocomotionData data)
    {
        var s = run.Settings;
        var seconds = new Dictionary<string, double>();
        int seed = run.Seeds.For("evaluation-episodes");
        var clock = Stopwatch.StartNew();
        ConditionResult Condition(string key, string name, DiffusionModelTransformer model, RelativeRewardTransformer? reward, double scale, int stop, int episodes)
        {
            clock.Restart();
            var result = PlanEpisodes(run, name, model, reward, scale, stop, episodes, seed);
            seconds[key] = clock.Elapsed.TotalSeconds;
            return ConditionResult.From(name, result, seconds[key], reward is null ? 0 : scale, reward is null ? null : stop);
        }
        var selection = new List<ConditionResult>();
        double scale = s.GuidanceScale;
        if (s.ScaleCandidates.Length > 0)
        {
            // The scale is chosen on episodes of its own: none of the reported episodes has a say in it.
            var selectionClock = Stopwatch.StartNew();
            int selectionSeed = run.Seeds.For("scale-selection-episodes");
            foreach (double candidate in s.ScaleCandidates)
            {
                string name = string.Create(CultureInfo.InvariantCulture, $"scale selection {candidate:G3}");
                clock.Restart();
                var result = PlanEpisodes(run, name, models.Base, models.Reward, candidate, s.StopGradientBelow, s.SelectionEpisodes, selectionSeed,
                    Math.Min(s.SelectionSteps, s.EvaluationSteps));
                selection.Add(ConditionResult.From(name, result, clock.Elapsed.TotalSeconds, candidate, s.StopGradientBelow));
            }
            scale = selection.MaxBy(r => r.MeanReturn)!.Scale ?? s.GuidanceScale;
            seconds["scale_selection_rollouts"] = selectionClock.Elapsed.TotalSeconds;
            run.Log(string.Create(CultureInfo.InvariantCulture, $"scale selection on {s.SelectionEpisodes} episodes of their own (<= {Math.Min(s.SelectionSteps, s.EvaluationSteps)} steps): {string.Join(", ", selection.Select(r => $"{r.Scale:G3}: {r.MeanReturn:F1}"))}; steering with {scale:G3}"));
        }
        var unsteered = Condition("unsteered_rollouts", "unsteered base planner", models.Base, null, 0, 0, s.EvaluationEpisodes);
        var steered = Condition("steered_rollouts", "steered base planner", models.Base, models.Reward, scale, s.StopGradientBelow, s.EvaluationEpisodes);
        clock.Restart();
        var expertRun = DiffusionPlanner.RunPolicy(s.Environment, data.ExpertPolicy, false, s.EvaluationEpisodes, s.EvaluationSteps, seed, run.CancellationToken);
        seconds["expert_rollouts"] = clock.Elapsed.TotalSeconds;
        var expert = ConditionResult.From("expert policy", expertRun, seconds["expert_rollouts"]);
        clock.Restart();
        var randomRun = DiffusionPlanner.RunRandom(s.Environment, s.EvaluationEpisodes, s.EvaluationSteps, seed, run.CancellationToken);
        seconds["random_rollouts"] = clock.Elapsed.TotalSeconds;
        var random = ConditionResult.From("uniform random actions", randomRun, seconds["random_rollouts"]);
        var expertPlanner = s.ExpertPlannerDiagnostic
            ? Condition("expert_planner_rollouts", "expert diffusion planner (diagnostic)", models.Expert, null, 0, 0, s.EvaluationEpisodes)
            : null;

        var sweep = new List<ConditionResult>();
        if (s.ScaleSweep.Length > 0)
        {
            var sweepClock = Stopwatch.StartNew();
            int n = Math.Min(s.SweepEpisodes, s.EvaluationEpisodes);
            sweep.Add(Subset(unsteered, n));
            for (int i = 0; i < s.ScaleSweep.Length; i++)
            {
                var result = Condition("sweep", string.Create(CultureInfo.InvariantCulture, $"sweep {s.ScaleSweep[i]}@{s.SweepStopGradient(i)}"),
                    models.Base, models.Reward, s.ScaleSweep[i], s.SweepStopGradient(i), n);
                sweep.Add(result);
                run.Log(string.Create(CultureInfo.InvariantCulture, $"sweep scale {s.ScaleSweep[i]}, t_stopgrad {s.SweepStopGradient(i)}: {result.MeanReturn:F1} +- {result.StandardError:F1} (unsteered on these episodes {sweep[0].MeanReturn:F1})"));
            }
            seconds.Remove("sweep");
            seconds["sweep_rollouts"] = sweepClock.Elapsed.TotalSeconds;
        }
        return new Conditions(unsteered, steered, expert, random, expertPlanner, sweep, selection, seconds);
    }

    /// <summary>The planner on <paramref name="episodes"/> episodes (episode i: reset and sampling noise from seed + i), reported
    /// to the observer as a task.</summary>
    private static EpisodeBatchResult PlanEpisodes(LocomotionRunContext run, string name, DiffusionModelTransformer model, RelativeRewardTransformer? reward,
        double scale, int stopGrad, int episodes, int seed, int? steps = null)
    {
        var s = run.Settings;
        int maxSteps = steps ?? s.EvaluationSteps;
        var guidance = new GuidanceOptions { Scale = reward is null ? 0 : scale, StopGradientBelow = stopGrad, GuideSteps = s.GuideSteps, SamplingSteps = s.SamplingSteps };
        var clock = Stopwatch.StartNew();
        run.Observer.Started(name, $"{name}: {episodes} episodes x <= {maxSteps} steps", maxSteps);
        var result = DiffusionPlanner.Run(s.Environment, model.Model, reward?.Model, guidance, episodes, maxSteps, seed,
            (step, running) => run.Observer.Progress(name, step, string.Create(CultureInfo.InvariantCulture, $"{running} running, {clock.Elapsed.TotalSeconds:F0} s")),
            run.CancellationToken);
        run.Observer.Finished(name, string.Create(CultureInfo.InvariantCulture,
            $"return {result.Mean:F1} +- {result.StandardError:F1} in {clock.Elapsed.TotalSeconds:F1} s (sampling {result.SamplingSeconds:F1} s, simulation {result.EnvironmentSeconds:F1} s)"));
        return result;
    }

    private static ConditionResult Subset(ConditionResult r, int n)
    {
        var returns = r.Returns.Take(n).ToArray();
        var lengths = r.Lengths.Take(n).ToArray();
        return new ConditionResult
        {
            Name = r.Name, Scale = 0, StopGradientBelow = null, Episodes = returns.Length,
            MeanReturn = Statistics.Mean(returns), StandardError = Statistics.StandardError(returns),
            StandardDeviation = Math.Sqrt(Statistics.Variance(returns)), MeanLength = lengths.Average(), Returns = returns, Lengths = lengths,
        };
    }

    /// <summary>Sizes, returns, and how far <paramref name="data"/>'s windows reach beyond the base windows' per-entry range
    /// (raw space) and from 0 after the base normaliser.</summary>
    public static DataSummary Summarize(BehaviourData data, BehaviourData baseData, int horizon, Normalizer normalizer)
    {
        using var scope = NewDisposeScope();
        var raw = data.Windows(horizon);
        var baseRaw = baseData.Windows(horizon);
        var outside = raw.lt(baseRaw.amin(new long[] { 0 }, keepdim: true)).logical_or_(raw.gt(baseRaw.amax(new long[] { 0 }, keepdim: true)));
        return new DataSummary
        {
            EpisodesPerPolicy = data.Episodes.GroupBy(e => e.Policy).ToDictionary(g => g.Key, g => g.Count()),
            MeanReturnPerPolicy = data.Episodes.GroupBy(e => e.Policy).ToDictionary(g => g.Key, g => g.Average(e => e.Return)),
            Transitions = data.Transitions,
            Windows = data.WindowCount(horizon),
            OutsideBaseLimits = outside.to(ScalarType.Float64).mean().item<double>(),
            MaxAbsNormalized = normalizer.Normalize(raw).abs().max().to(ScalarType.Float64).item<double>(),
        };
    }
}
