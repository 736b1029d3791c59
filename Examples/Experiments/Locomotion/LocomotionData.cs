using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;
using MLReward.LocomotionAgents;

namespace MLReward.Experiments.Locomotion;

/// <summary>
/// Stage "data": episodes of the saved SAC policies (base: each base policy's, expert: the expert's; extra episodes of both
/// on other seeds held out for the reward check), and their H-step windows through the library's window transform, labelled
/// Expert.
/// </summary>
internal sealed class LocomotionData : IDisposable
{
    private const int HeldOutBaseEpisodesPerPolicy = 1;
    private const int HeldOutExpertEpisodes = 2;

    private readonly Dictionary<string, Policy> _policies;

    private LocomotionData(Dictionary<string, Policy> policies, string expertPolicy, BehaviourData @base, BehaviourData expert, BehaviourData heldOut)
    {
        _policies = policies;
        ExpertPolicyName = expertPolicy;
        Base = @base;
        Expert = expert;
        HeldOut = heldOut;
    }

    public string ExpertPolicyName { get; }
    public Policy ExpertPolicy => _policies[ExpertPolicyName];
    public BehaviourData Base { get; }
    public BehaviourData Expert { get; }
    /// <summary>Held-out episodes of both kinds (the expert's are labelled by their policy).</summary>
    public BehaviourData HeldOut { get; }

    /// <summary>The policies' files by role.</summary>
    public static Dictionary<string, string> PolicyPaths(LocomotionSettings s, string directory) =>
        s.BasePolicies.Append(s.ExpertPolicy).Distinct().ToDictionary(r => r, r => PolicyFiles.Resolve(directory, s.Environment, r));

    /// <summary>Records every episode: base policy p from seed stream base-data/p, the expert from expert-data, the held-out
    /// ones from their own streams.</summary>
    public static LocomotionData Record(LocomotionSettings s, SeedStreams seeds, IReadOnlyDictionary<string, string> paths, CancellationToken ct)
    {
        var policies = paths.ToDictionary(p => p.Key, p => Policy.Load(p.Value));
        try
        {
            var baseEpisodes = new List<RecordedEpisode>();
            var heldOut = new List<RecordedEpisode>();
            for (int p = 0; p < s.BasePolicies.Length; p++)
            {
                string name = s.BasePolicies[p];
                baseEpisodes.AddRange(BehaviourData.Record(s.Environment, policies[name], name, s.BaseEpisodesPerPolicy, seeds.For("base-data", p), s.DataEpisodeSteps, false, ct));
                heldOut.AddRange(BehaviourData.Record(s.Environment, policies[name], name, HeldOutBaseEpisodesPerPolicy, seeds.For("heldout-base-data", p), s.DataEpisodeSteps, false, ct));
            }
            var expert = policies[s.ExpertPolicy];
            var expertEpisodes = BehaviourData.Record(s.Environment, expert, s.ExpertPolicy, s.ExpertEpisodes, seeds.For("expert-data"), s.DataEpisodeSteps, false, ct);
            heldOut.AddRange(BehaviourData.Record(s.Environment, expert, s.ExpertPolicy, HeldOutExpertEpisodes, seeds.For("heldout-expert-data"), s.DataEpisodeSteps, false, ct));
            int o = expert.ObservationSize, a = expert.ActionSize;
            return new LocomotionData(policies, s.ExpertPolicy, new BehaviourData(o, a, baseEpisodes), new BehaviourData(o, a, expertEpisodes), new BehaviourData(o, a, heldOut));
        }
        catch
        {
            foreach (var policy in policies.Values)
                policy.Dispose();
            throw;
        }
    }

    /// <summary>Every H-step window of <paramref name="data"/>'s episodes ([action, observation] per step, label Expert).</summary>
    public IDataView Windows(MLContext ml, BehaviourData data, int horizon)
    {
        var transitions = data.ToDataView(ml, ExpertPolicyName);
        return ml.RewardExtraction().TrajectoryWindows(new TrajectoryWindowEstimator.Options
        {
            EpisodeColumnName = nameof(BehaviourData.StepRow.Episode),
            FeatureColumnNames = [nameof(BehaviourData.StepRow.Action), nameof(BehaviourData.StepRow.Observation)],
            LabelColumnName = nameof(BehaviourData.StepRow.Expert),
            Horizon = horizon,
        }).Fit(transitions).Transform(transitions);
    }

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"base {Base.Episodes.Count} episodes / {Base.Transitions} steps (return {Base.ReturnStatistics().Mean:F0}), expert {Expert.Episodes.Count} / {Expert.Transitions} (return {Expert.ReturnStatistics().Mean:F0})");

    public void Dispose()
    {
        foreach (var policy in _policies.Values)
            policy.Dispose();
    }
}
