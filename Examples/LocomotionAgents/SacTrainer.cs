using System.Diagnostics;
using System.Globalization;
using MLReward.Locomotion;

namespace MLReward.LocomotionAgents;

/// <summary>Settings of a <see cref="SacTrainer"/> run.</summary>
public sealed record SacTrainingOptions
{
    /// <summary>Task name ("cheetah", "hopper", "walker").</summary>
    public required string Environment { get; init; }

    /// <summary>Output folder: checkpoint.bin, replay.bin, episodes.csv, snapshots.csv, snapshots/*.policy.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>Total environment steps (a resumed run continues up to this count).</summary>
    public long TotalSteps { get; init; } = 300_000;

    /// <summary>Environment steps with uniformly random actions before the policy acts.</summary>
    public int RandomSteps { get; init; } = 10_000;

    /// <summary>Environment steps before the first update.</summary>
    public int UpdateAfter { get; init; } = 1_000;

    /// <summary>Gradient updates per environment step (after <see cref="UpdateAfter"/>).</summary>
    public int UpdatesPerStep { get; init; } = 1;

    /// <summary>Replay capacity.</summary>
    public int ReplayCapacity { get; init; } = 1_000_000;

    /// <summary>Environment steps between checkpoints (0: only at the end).</summary>
    public int CheckpointEvery { get; init; } = 10_000;

    /// <summary>Environment steps between policy snapshots with evaluation (0: none).</summary>
    public int SnapshotEvery { get; init; } = 10_000;

    /// <summary>Deterministic evaluation episodes per snapshot.</summary>
    public int EvaluationEpisodes { get; init; } = 5;

    /// <summary>Also write the replay buffer with each checkpoint (needed for an exact resume).</summary>
    public bool SaveReplayBuffer { get; init; } = true;

    /// <summary>Agent hyper-parameters; its seed also seeds the environment and exploration.</summary>
    public SacOptions Agent { get; init; } = new();
}

/// <summary>Trains a <see cref="SacAgent"/> on a locomotion task with logs, checkpoints, snapshots and resume.</summary>
public static class SacTrainer
{
    private const uint Magic = 0x4E52544D; // "MTRN"
    private const int FormatVersion = 1;

    /// <summary>Checkpoint file name inside the output folder.</summary>
    public const string CheckpointFile = "checkpoint.bin";

    /// <summary>Replay file name inside the output folder.</summary>
    public const string ReplayFile = "replay.bin";

    /// <summary>
    /// Runs (or, with <paramref name="resume"/> and a checkpoint present, continues) training until
    /// <see cref="SacTrainingOptions.TotalSteps"/> or cancellation; writes a final checkpoint and returns the agent's last evaluation.
    /// A resumed run starts a new episode and reseeds exploration from (seed, steps done).
    /// </summary>
    public static EpisodeSummary? Run(SacTrainingOptions options, bool resume, TextWriter log, CancellationToken cancellation = default)
    {
        Directory.CreateDirectory(options.OutputDirectory);
        string snapshotDir = Path.Combine(options.OutputDirectory, "snapshots");
        Directory.CreateDirectory(snapshotDir);
        string checkpointPath = Path.Combine(options.OutputDirectory, CheckpointFile);
        string replayPath = Path.Combine(options.OutputDirectory, ReplayFile);

        using ILocomotionEnv env = LocomotionTasks.Create(options.Environment);
        using ILocomotionEnv evalEnv = LocomotionTasks.Create(options.Environment);
        SacAgent agent;
        ReplayBuffer buffer;
        long envSteps = 0;
        int episodes = 0;
        if (resume && File.Exists(checkpointPath))
        {
            using (var reader = new BinaryReader(File.OpenRead(checkpointPath)))
            {
                if (reader.ReadUInt32() != Magic || reader.ReadInt32() != FormatVersion)
                    throw new InvalidDataException("Not a training checkpoint of this version.");
                string name = reader.ReadString();
                if (!string.Equals(name, env.Name, StringComparison.OrdinalIgnoreCase))
                    throw new InvalidDataException($"The checkpoint is for '{name}', not '{env.Name}'.");
                envSteps = reader.ReadInt64();
                episodes = reader.ReadInt32();
                agent = SacAgent.LoadCheckpoint(reader);
            }
            if (File.Exists(replayPath))
            {
                using var reader = new BinaryReader(File.OpenRead(replayPath));
                buffer = ReplayBuffer.Load(reader);
            }
            else
            {
                buffer = new ReplayBuffer(env.ObservationSize, env.ActionSize, options.ReplayCapacity);
            }
            log.WriteLine($"resumed at {envSteps} env steps, {agent.UpdateCount} updates, {episodes} episodes, replay {buffer.Count}");
        }
        else
        {
            agent = new SacAgent(env.ObservationSize, env.ActionSize, options.Agent);
            buffer = new ReplayBuffer(env.ObservationSize, env.ActionSize, options.ReplayCapacity);
            File.WriteAllText(Path.Combine(options.OutputDirectory, "episodes.csv"), "episode,env_steps,return,length,terminated,alpha,critic_loss,entropy,mean_q,seconds\n");
            File.WriteAllText(Path.Combine(options.OutputDirectory, "snapshots.csv"), "env_steps,updates,file,eval_mean,eval_se,eval_sd,eval_episodes,eval_length,seconds\n");
            log.WriteLine($"new run: {env.Name} obs {env.ObservationSize} act {env.ActionSize}, {options.TotalSteps} steps, seed {options.Agent.Seed}");
        }

        using var episodeLog = new StreamWriter(Path.Combine(options.OutputDirectory, "episodes.csv"), append: true) { AutoFlush = true };
        using var snapshotLog = new StreamWriter(Path.Combine(options.OutputDirectory, "snapshots.csv"), append: true) { AutoFlush = true };
        var random = new Random(HashCode.Combine(options.Agent.Seed, envSteps));
        var clock = Stopwatch.StartNew();
        var updateClock = new Stopwatch();
        long updatesAtStart = agent.UpdateCount;
        SacUpdateStats stats = default;
        EpisodeSummary? lastEvaluation = null;
        var recentReturns = new Queue<double>();

        float[] obs = env.Reset(random);
        double episodeReturn = 0;
        int episodeLength = 0;
        var action = new float[env.ActionSize];
        try
        {
            while (envSteps < options.TotalSteps && !cancellation.IsCancellationRequested)
            {
                if (envSteps < options.RandomSteps)
                {
                    for (int i = 0; i < action.Length; i++)
                        action[i] = (float)(2 * random.NextDouble() - 1);
                }
                else
                {
                    action = agent.Act(obs, deterministic: false, random);
                }
                LocomotionStep step = env.Step(action);
                buffer.Add(obs, action, (float)step.Reward, step.Observation, step.Terminated);
                envSteps++;
                episodeReturn += step.Reward;
                episodeLength++;
                obs = step.Observation;
                if (step.Done)
                {
                    episodes++;
                    episodeLog.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{episodes},{envSteps},{episodeReturn:F2},{episodeLength},{(step.Terminated ? 1 : 0)},{stats.Alpha:G4},{stats.CriticLoss:G4},{stats.Entropy:G4},{stats.MeanQ:G4},{clock.Elapsed.TotalSeconds:F0}"));
                    recentReturns.Enqueue(episodeReturn);
                    if (recentReturns.Count > 10)
                        recentReturns.Dequeue();
                    obs = env.Reset(random);
                    episodeReturn = 0;
                    episodeLength = 0;
                }

                if (envSteps >= options.UpdateAfter)
                {
                    updateClock.Start();
                    for (int k = 0; k < options.UpdatesPerStep; k++)
                        stats = agent.Update(buffer, random);
                    updateClock.Stop();
                }

                if (options.SnapshotEvery > 0 && envSteps % options.SnapshotEvery == 0)
                {
                    string file = $"{env.Name}-{envSteps:D7}.policy";
                    using (var stream = File.Create(Path.Combine(snapshotDir, file)))
                        agent.SavePolicy(stream, env.Name, envSteps);
                    lastEvaluation = Rollouts.Evaluate(evalEnv, agent, options.EvaluationEpisodes);
                    snapshotLog.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{envSteps},{agent.UpdateCount},{file},{lastEvaluation.Mean:F2},{lastEvaluation.StandardError:F2},{lastEvaluation.StandardDeviation:F2},{lastEvaluation.Returns.Count},{lastEvaluation.MeanLength:F0},{clock.Elapsed.TotalSeconds:F0}"));
                    long updates = agent.UpdateCount - updatesAtStart;
                    double msPerUpdate = updates > 0 ? updateClock.Elapsed.TotalMilliseconds / updates : double.NaN;
                    log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"[{clock.Elapsed.TotalSeconds:F0}s] steps {envSteps} episodes {episodes} train(last10) {(recentReturns.Count > 0 ? recentReturns.Average() : double.NaN):F1} eval {lastEvaluation} alpha {stats.Alpha:G3} qloss {stats.CriticLoss:G3} H {stats.Entropy:F2} Q {stats.MeanQ:F1} | {msPerUpdate:F1} ms/update"));
                    log.Flush();
                }

                if (options.CheckpointEvery > 0 && envSteps % options.CheckpointEvery == 0)
                    SaveCheckpoint(options, agent, buffer, env.Name, envSteps, episodes);
            }
            SaveCheckpoint(options, agent, buffer, env.Name, envSteps, episodes);
            log.WriteLine($"stopped at {envSteps} env steps ({agent.UpdateCount} updates, {clock.Elapsed.TotalSeconds:F0} s)");
            return lastEvaluation;
        }
        finally
        {
            agent.Dispose();
        }
    }

    private static void SaveCheckpoint(SacTrainingOptions options, SacAgent agent, ReplayBuffer buffer, string env, long envSteps, int episodes)
    {
        string path = Path.Combine(options.OutputDirectory, CheckpointFile);
        string temporary = path + ".tmp";
        using (var writer = new BinaryWriter(File.Create(temporary)))
        {
            writer.Write(Magic);
            writer.Write(FormatVersion);
            writer.Write(env);
            writer.Write(envSteps);
            writer.Write(episodes);
            agent.SaveCheckpoint(writer);
        }
        if (options.SaveReplayBuffer)
        {
            string replay = Path.Combine(options.OutputDirectory, ReplayFile);
            using (var writer = new BinaryWriter(File.Create(replay + ".tmp")))
                buffer.Save(writer);
            File.Move(replay + ".tmp", replay, overwrite: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
