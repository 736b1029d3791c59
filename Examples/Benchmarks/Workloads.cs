using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using TorchSharp;
using static TorchSharp.torch;

namespace MLReward.Benchmarks;

/// <summary>Settings of a benchmark run.</summary>
public sealed class BenchmarkOptions
{
    /// <summary>torch's intra-op threads (process-wide). Default 2, as the reference.</summary>
    public int Threads { get; init; } = 2;

    /// <summary>Timed seconds per workload (at least one timed iteration always runs). Default 10.</summary>
    public double Seconds { get; init; } = 10;

    /// <summary>Untimed iterations first; null = the reference's (2 for training steps, 1 otherwise).</summary>
    public int? Warmup { get; init; }

    /// <summary>W2-cached: pool size of the target cache. Default 4096 (64 batches).</summary>
    public int TargetCachePoolSize { get; init; } = 4096;

    /// <summary>W2-cached: steps between pool rebuilds. Default 1000.</summary>
    public int TargetCacheRefreshEvery { get; init; } = 1000;
}

/// <summary>
/// The five workloads of the PyTorch benchmark reference (docs/ARCHITECTURE.md section 7), run through MLReward's own code: W1 through
/// <see cref="DiffusionTrainer"/>, W2 through <see cref="RewardTrainer"/> (and W2-cached with its target cache), W3
/// through <see cref="GuidedSampler"/>, W4 through <see cref="RelativeRewardTransformer"/> over an IDataView (W4) and
/// through <see cref="RelativeRewardModel.Score(Tensor, int)"/> on raw batches (W4-raw), W5 through <see cref="RelativeRewardObjective.LossAt"/> and the library's Adam on a cached pool. The shapes are the reference's.
/// </summary>
public static class Workloads
{
    /// <summary>Trajectory horizon.</summary>
    public const int Horizon = 128;
    /// <summary>Transition dimension.</summary>
    public const int Transition = 6;
    /// <summary>Diffusion steps T.</summary>
    public const int DiffusionSteps = 64;
    /// <summary>Training samples the reference draws batches from.</summary>
    public const int DataRows = 1024;
    /// <summary>Trajectories scored per W4 pass.</summary>
    public const int ScoringRows = 8192;
    /// <summary>Rows per W4 scoring batch.</summary>
    public const int ScoringBatch = 1024;

    /// <summary>W5: horizon of the hopper's planning windows.</summary>
    public const int LocomotionHorizon = 16;
    /// <summary>W5: the hopper's transition dimension (3 actions + 11 observations).</summary>
    public const int LocomotionTransition = 14;
    /// <summary>W5: diffusion steps T of the locomotion models (the range of the pool's t).</summary>
    public const int LocomotionDiffusionSteps = 20;
    /// <summary>W5: rows of the cached (u, t, target) pool.</summary>
    public const int LocomotionPool = 4096;
    /// <summary>W5: batch size of the locomotion reward's training step.</summary>
    public const int LocomotionBatch = 128;

    /// <summary>Every workload name, in run order.</summary>
    public static readonly string[] All = { "W1", "W2", "W2-cached", "W3", "W4", "W4-raw", "W5" };

    /// <summary>The benchmark's trajectory shape.</summary>
    public static SampleShape Shape { get; } = SampleShape.Trajectory(Horizon, Transition);

    /// <summary>W5's trajectory shape: hopper windows.</summary>
    public static SampleShape LocomotionShape { get; } = SampleShape.Trajectory(LocomotionHorizon, LocomotionTransition);

    /// <summary>Runs one workload by name and returns its JSON line.</summary>
    public static JsonLine Run(string workload, BenchmarkOptions options)
    {
        torch.set_num_threads(options.Threads);
        var line = workload.ToUpperInvariant() switch
        {
            "W1" => W1(options),
            "W2" => W2(options, cached: false),
            "W2-CACHED" => W2(options, cached: true),
            "W3" => W3(options),
            "W4" => W4(options, throughDataView: true),
            "W4-RAW" => W4(options, throughDataView: false),
            "W5" => W5(options),
            _ => throw new ArgumentException($"Unknown workload '{workload}'; expected one of {string.Join(", ", All)}."),
        };
        line.Add("impl", "mlreward")
            .Add("torchsharp", typeof(torch).Assembly.GetName().Version?.ToString(3) ?? "?")
            .Add("threads", options.Threads)
            .Add("peak_working_set_mb", Math.Round(Clock.PeakWorkingSetMiB(), 1));
        return line;
    }

    /// <summary>A diffusion model of the reference's shape: TemporalUNet(dim 32, mults 1,4,8), T = 64, cosine, x0, clamp.</summary>
    public static DiffusionModel CreateModel(int seed) => DiffusionModel.Create(new DiffusionModelOptions
    {
        Shape = Shape,
        DiffusionSteps = DiffusionSteps,
        Schedule = NoiseScheduleKind.Cosine,
        Target = PredictionTarget.Start,
        ClipDenoised = true,
        Denoiser = new DenoiserOptions { Kind = DenoiserKind.TemporalUNet, Dimension = 32, Multipliers = [1, 4, 8] },
        Seed = seed,
    });

    /// <summary>The reference's state reward (76,033 parameters), seeded.</summary>
    public static StateReward CreateReward(int seed) => TorchRandom.Initialize(seed, () => new StateReward(Shape, StateRewardOptions.Benchmark));

    /// <summary>The reference's W5 reward (584,865 parameters for hopper windows): the locomotion experiments'
    /// <see cref="TrajectoryReward"/> with dim 32 and mults 1,2,4, seeded.</summary>
    public static TrajectoryReward CreateTrajectoryReward(int seed) => TorchRandom.Initialize(seed,
        () => new TrajectoryReward(LocomotionShape, new TrajectoryRewardOptions { Dimension = 32, DimensionMultipliers = [1, 2, 4] }));

    /// <summary>
    /// W5's objective around <paramref name="reward"/>. Its two diffusion models never run: the targets come from W5's
    /// random pool, as the reference's do, and the models (small MLP denoisers) only give <see cref="RelativeRewardObjective.LossAt"/>
    /// its shape.
    /// </summary>
    public static RelativeRewardObjective CreateLocomotionObjective(RewardNetwork reward)
    {
        DiffusionModel Model(int seed) => DiffusionModel.Create(new DiffusionModelOptions
        {
            Shape = LocomotionShape,
            DiffusionSteps = LocomotionDiffusionSteps,
            Denoiser = new DenoiserOptions { Kind = DenoiserKind.Mlp, HiddenWidth = 16, HiddenLayers = 1 },
            Seed = seed,
        });
        return new RelativeRewardObjective(Model(1), Model(2), reward);
    }

    /// <summary>W5's cached pool, as the reference draws it: u ~ N(0, 1), target ~ 0.01 N(0, 1), t uniform in 0..T-1.</summary>
    public static (Tensor At, Tensor T, Tensor Target) LocomotionPoolData(long seed)
    {
        using var generator = TorchRandom.Generator(seed);
        var shape = LocomotionShape.BatchShape(LocomotionPool);
        var at = randn(shape, generator: generator);
        var target = randn(shape, generator: generator).mul_(0.01);
        var t = randint(0, LocomotionDiffusionSteps, new long[] { LocomotionPool }, dtype: ScalarType.Int64, generator: generator);
        return (at, t, target);
    }

    /// <summary>Uniform data in [-1, 1], [rows, H, D].</summary>
    public static Tensor UniformData(long rows, long seed)
    {
        using var generator = TorchRandom.Generator(seed);
        return rand(new long[] { rows, Horizon, Transition }, generator: generator).mul_(2).sub_(1);
    }

    /// <summary>Number of scalars in a module's parameters.</summary>
    public static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());

    private static JsonLine Line(string workload, string name, Measurement m) => new JsonLine()
        .Add("workload", workload)
        .Add("name", name);

    private static void AddTiming(JsonLine line, Measurement m, string countKey)
    {
        line.Add(countKey, m.Iterations)
            .Add("seconds", m.Seconds)
            .Add("per_second", m.PerSecond)
            .Add("cpu_seconds", m.CpuSeconds)
            .Add("cpu_seconds_per_iteration", m.CpuSecondsPerIteration);
    }

    /// <summary>W1: one Adam step of the TemporalUNet on a batch of 32 (x0 prediction, MSE), through <see cref="DiffusionTrainer"/>.</summary>
    public static JsonLine W1(BenchmarkOptions options)
    {
        const int batch = 32;
        using var scope = NewDisposeScope();
        using var model = CreateModel(seed: 0);
        var data = UniformData(DataRows, seed: 0);
        var trainer = new DiffusionTrainer(new DiffusionTrainingOptions
        {
            TrainingSteps = int.MaxValue,
            BatchSize = batch,
            LearningRate = 2e-4,
            Seed = 0,
        });
        var clock = new StepClock(options.Seconds, options.Warmup ?? 2);
        var m = clock.Run((progress, token) => trainer.Train(model, data, progress, token));
        var line = Line("W1", "diffusion_train_step", m).Add("unet_params", ParameterCount(model.Denoiser));
        AddTiming(line, m, "steps");
        return line.Add("samples_per_second", m.PerSecond * batch);
    }

    /// <summary>W2: one reward-extraction step (two frozen U-Nets, batch 64, double backward, Adam) through <see cref="RewardTrainer"/>;
    /// with <paramref name="cached"/> the trainer's target cache replaces the U-Net forwards by a pool refreshed every K steps.</summary>
    public static JsonLine W2(BenchmarkOptions options, bool cached)
    {
        const int batch = 64;
        using var scope = NewDisposeScope();
        using var baseModel = CreateModel(seed: 1);
        using var expertModel = CreateModel(seed: 2);
        using var reward = CreateReward(seed: 3);
        var data = UniformData(DataRows, seed: 0);
        var trainerOptions = new RewardTrainingOptions
        {
            TrainingSteps = int.MaxValue,
            BatchSize = batch,
            LearningRate = 2e-4,
            Seed = 0,
        };
        if (cached)
        {
            trainerOptions.TargetCachePoolSize = options.TargetCachePoolSize;
            trainerOptions.TargetCacheRefreshEvery = options.TargetCacheRefreshEvery;
        }
        var trainer = new RewardTrainer(trainerOptions);
        // The cached run builds its pool in the warm-up; a timed window of a few seconds rarely contains a rebuild, so the
        // rebuild is timed on its own and its cost per step (build / K) is added to the reported step time.
        Measurement? build = null;
        if (cached)
        {
            var objective = new RelativeRewardObjective(baseModel, expertModel, reward);
            using var pool = new TargetCache(objective, data, options.TargetCachePoolSize, options.TargetCacheRefreshEvery, 0, CPU);
            double cpu0 = Clock.ProcessCpuSeconds();
            var wall = System.Diagnostics.Stopwatch.StartNew();
            pool.Prepare(options.TargetCacheRefreshEvery * 7);
            build = new Measurement(1, wall.Elapsed.TotalSeconds, Clock.ProcessCpuSeconds() - cpu0);
        }
        int every = Math.Max(1, options.TargetCacheRefreshEvery);
        var clock = new StepClock(options.Seconds, options.Warmup ?? 2)
        {
            // Paired mode reports each step with its share of the rebuild.
            ExtraPerStep = build is null ? (0, 0) : (build.Seconds / every, build.CpuSeconds / every),
        };
        var m = clock.Run((progress, token) =>
        {
            using var trained = trainer.Train(baseModel, expertModel, reward, data, progress, token);
        });
        var line = Line(cached ? "W2-cached" : "W2", "reward_extraction_step", m)
            .Add("reward_params", ParameterCount(reward))
            .Add("unet_params", ParameterCount(baseModel.Denoiser));
        if (build is null)
        {
            AddTiming(line, m, "steps");
            return line.Add("samples_per_second", m.PerSecond * batch);
        }
        var amortised = new Measurement(m.Iterations, m.Seconds + m.Iterations * build.Seconds / every, m.CpuSeconds + m.Iterations * build.CpuSeconds / every);
        AddTiming(line, amortised, "steps");
        return line.Add("samples_per_second", amortised.PerSecond * batch)
            .Add("per_second_without_rebuilds", m.PerSecond)
            .Add("cpu_seconds_per_iteration_without_rebuilds", m.CpuSecondsPerIteration)
            .Add("pool_build_seconds", build.Seconds)
            .Add("pool_build_cpu_seconds", build.CpuSeconds)
            .Add("target_cache_pool", options.TargetCachePoolSize)
            .Add("target_cache_refresh_every", options.TargetCacheRefreshEvery)
            .Add("note", "per_second and cpu_seconds_per_iteration include the pool rebuild amortised over K steps");
    }

    /// <summary>W3: 64 trajectories, 64 reverse steps, each with a base forward and the reward gradient (scale 0.1), through <see cref="GuidedSampler"/>.</summary>
    public static JsonLine W3(BenchmarkOptions options)
    {
        const int batch = 64;
        using var scope = NewDisposeScope();
        using var baseModel = CreateModel(seed: 1);
        using var reward = new RelativeRewardModel(CreateReward(seed: 3), baseModel.Diffusion.Schedule);
        var sampler = new GuidedSampler(new GuidanceOptions { Scale = 0.1, ScaleByVariance = true });
        using var generator = TorchRandom.Generator(0);
        var m = Clock.Time(() =>
        {
            using var s = NewDisposeScope();
            sampler.Sample(baseModel, reward, batch, generator);
        }, options.Seconds, options.Warmup ?? 1);
        var line = Line("W3", "guided_sampling", m)
            .Add("unet_params", ParameterCount(baseModel.Denoiser))
            .Add("reward_params", ParameterCount(reward.Network));
        AddTiming(line, m, "batches");
        return line.Add("trajectories_per_second", m.PerSecond * batch);
    }

    /// <summary>
    /// W5: one training step of the locomotion reward from cached targets, as the reference's: 128 rows of a random
    /// (u, t, target) pool, the library's <see cref="RelativeRewardObjective.LossAt"/> (reward at u, its input gradient with
    /// create_graph, MSE to the target), backward and the library's Adam (lr 2e-4). This is the inner step of
    /// <see cref="RewardTrainer"/> with a target cache, without the pool rebuild and the EMA copy, which the reference has not.
    /// </summary>
    public static JsonLine W5(BenchmarkOptions options)
    {
        using var step = new TrajectoryRewardStep();
        var m = Clock.Time(step.Run, options.Seconds, options.Warmup ?? 2);
        var line = Line("W5", "trajectory_reward_step", m).Add("reward_params", ParameterCount(step.Reward))
            .Add("autograd_function_nodes_alive", MemoryCheck.AliveFunctionNodes());
        AddTiming(line, m, "steps");
        return line.Add("samples_per_second", m.PerSecond * LocomotionBatch);
    }

    /// <summary>W5's model, pool and optimiser, and one training step on them (<see cref="Run"/>).</summary>
    public sealed class TrajectoryRewardStep : IDisposable
    {
        private readonly DisposeScope _scope = NewDisposeScope();
        private readonly RelativeRewardObjective _objective;
        private readonly Tensor _poolAt, _poolT, _poolTarget;
        private readonly Adam _optimizer;
        private readonly Generator _generator = TorchRandom.Generator(0);

        public TrajectoryRewardStep()
        {
            Reward = CreateTrajectoryReward(seed: 5);
            _objective = CreateLocomotionObjective(Reward);
            (_poolAt, _poolT, _poolTarget) = LocomotionPoolData(seed: 0);
            _optimizer = new Adam(Reward.parameters().ToArray(), 2e-4);
            Reward.train();
        }

        /// <summary>The reward being trained.</summary>
        public TrajectoryReward Reward { get; }

        /// <summary>One step: 128 pool rows, the objective's loss, backward, Adam.</summary>
        public void Run()
        {
            using var step = NewDisposeScope();
            var rows = randint(0, LocomotionPool, new long[] { LocomotionBatch }, dtype: ScalarType.Int64, generator: _generator);
            var loss = _objective.LossAt(_poolAt.index_select(0, rows), _poolT.index_select(0, rows), _poolTarget.index_select(0, rows));
            _optimizer.zero_grad();
            loss.backward();
            _optimizer.step();
        }

        public void Dispose()
        {
            _optimizer.Dispose();
            _generator.Dispose();
            Reward.Dispose();
            _scope.Dispose();
        }
    }

    /// <summary>One trajectory per row, flattened (H * D = 768 values).</summary>
    public sealed class TrajectoryRow
    {
        /// <summary>The trajectory, row-major [H, D].</summary>
        [VectorType(Horizon * Transition)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    /// <summary>W4's transformer: the reference's reward (identity normaliser), scoring at t = 0 in batches of 1024.</summary>
    public static RelativeRewardTransformer CreateScoringTransformer(MLContext mlContext, RelativeRewardModel reward)
        => new(mlContext, reward, new IdentityNormalizer(Shape), nameof(TrajectoryRow.Features), "Reward",
            ScoringBatch, InvalidRowHandling.Error, scoringStep: 0);

    /// <summary>An in-memory IDataView with one Vector&lt;Single, 768&gt; column holding <paramref name="data"/>'s rows.</summary>
    public static IDataView InMemoryView(MLContext mlContext, Tensor data)
    {
        var values = data.contiguous().data<float>().ToArray();
        int length = Horizon * Transition;
        var rows = new TrajectoryRow[data.shape[0]];
        for (int i = 0; i < rows.Length; i++)
            rows[i] = new TrajectoryRow { Features = values.AsSpan(i * length, length).ToArray() };
        return mlContext.Data.LoadFromEnumerable(rows);
    }

    /// <summary>Reads the Reward column of every row of <paramref name="scored"/> through a cursor; returns the rewards.</summary>
    public static float[] ReadRewards(IDataView scored, float[]? into = null)
    {
        var column = scored.Schema["Reward"];
        var rewards = into ?? new float[scored.GetRowCount() ?? 0];
        using var cursor = scored.GetRowCursor(new[] { column });
        var getter = cursor.GetGetter<float>(column);
        float value = 0;
        int i = 0;
        while (cursor.MoveNext())
        {
            getter(ref value);
            rewards[i++] = value;
        }
        return rewards;
    }

    /// <summary>Rewards of <paramref name="data"/> [N, H, D] at t = 0 through the core's batched forward, in batches of 1024.</summary>
    public static void ScoreRaw(RelativeRewardModel reward, Tensor data, float[] into)
    {
        long rows = data.shape[0];
        for (long start = 0; start < rows; start += ScoringBatch)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(ScoringBatch, rows - start);
            var scores = reward.Score(data.narrow(0, start, count), 0);
            scores.data<float>().CopyTo(into, (int)start);
        }
    }

    /// <summary>W4: the reward at t = 0 of 8192 trajectories in batches of 1024, without gradients: through the ML.NET
    /// transformer and a cursor over an in-memory IDataView, or through the core's raw batched forward.</summary>
    public static JsonLine W4(BenchmarkOptions options, bool throughDataView)
    {
        using var scope = NewDisposeScope();
        var data = UniformData(ScoringRows, seed: 4);
        var mlContext = new MLContext(seed: 0);
        var reward = new RelativeRewardModel(CreateReward(seed: 3), NoiseSchedule.Cosine(DiffusionSteps));
        using var transformer = CreateScoringTransformer(mlContext, reward);   // owns the reward model
        var rewards = new float[ScoringRows];
        Measurement m;
        if (throughDataView)
        {
            var view = InMemoryView(mlContext, data);
            var scored = transformer.Transform(view);
            m = Clock.Time(() => ReadRewards(scored, rewards), options.Seconds, options.Warmup ?? 1);
        }
        else
        {
            m = Clock.Time(() => ScoreRaw(reward, data, rewards), options.Seconds, options.Warmup ?? 1);
        }
        var line = Line(throughDataView ? "W4" : "W4-raw", "reward_scoring", m)
            .Add("reward_params", ParameterCount(reward.Network))
            .Add("path", throughDataView ? "RelativeRewardTransformer cursor over IDataView" : "RelativeRewardModel.Score batches");
        AddTiming(line, m, "passes");
        return line.Add("trajectories_per_second", m.PerSecond * ScoringRows)
            .Add("reward_checksum", rewards.Sum(r => (double)r));
    }
}

/// <summary>Working-set probe of a long W2 run (<c>--memory-check</c>).</summary>
public static class MemoryCheck
{
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "mallinfo2")]
    private static extern MallInfo2 MallInfo();

    /// <summary>Bytes the native heap has handed out and not got back (glibc mallinfo2: in-use arena bytes + mmapped
    /// blocks), in MiB; -1 where unavailable. Unlike the resident set it does not move with fragmentation or trimming,
    /// so it shows a leak of native memory (tensors) directly.</summary>
    public static double NativeHeapInUseMiB()
    {
        try
        {
            var info = MallInfo();
            return ((double)info.UordBlks + info.HBlkHd) / (1024.0 * 1024.0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return -1;
        }
    }

    /// <summary>Runs <paramref name="steps"/> W2 steps through <see cref="RewardTrainer"/> and samples its memory (<see cref="Sample"/>).</summary>
    public static JsonLine Run(BenchmarkOptions options, int steps, bool cached, int every = 100)
    {
        torch.set_num_threads(options.Threads);
        using var scope = NewDisposeScope();
        using var baseModel = Workloads.CreateModel(seed: 1);
        using var expertModel = Workloads.CreateModel(seed: 2);
        using var reward = Workloads.CreateReward(seed: 3);
        var data = Workloads.UniformData(Workloads.DataRows, seed: 0);
        var trainerOptions = new RewardTrainingOptions { TrainingSteps = steps, BatchSize = 64, LearningRate = 2e-4, Seed = 0 };
        if (cached)
        {
            trainerOptions.TargetCachePoolSize = options.TargetCachePoolSize;
            trainerOptions.TargetCacheRefreshEvery = options.TargetCacheRefreshEvery;
        }
        return Sample(cached ? "W2-cached" : "W2", options, steps, every, onStep =>
        {
            using var trained = new RewardTrainer(trainerOptions).Train(baseModel, expertModel, reward, data, new Progress(onStep));
        });
    }

    /// <summary>Runs <paramref name="steps"/> W5 steps (the locomotion reward from cached targets) and samples its memory.</summary>
    public static JsonLine RunTrajectoryReward(BenchmarkOptions options, int steps, int every = 100)
    {
        torch.set_num_threads(options.Threads);
        using var step = new Workloads.TrajectoryRewardStep();
        return Sample("W5", options, steps, every, onStep =>
        {
            for (int i = 1; i <= steps; i++)
            {
                step.Run();
                onStep(i);
            }
        });
    }

    /// <summary>Runs <paramref name="train"/> (which reports each finished step), sampling every <paramref name="every"/>
    /// steps the resident set, the native heap in use and the managed heap. Baseline = median of the samples in the first
    /// 10% after warm-up (step <c>steps / 20</c>, at least 50), final = median of the last 10%.</summary>
    private static JsonLine Sample(string workload, BenchmarkOptions options, int steps, int every, Action<Action<int>> train)
    {
        int warm = Math.Max(50, steps / 20);
        every = Math.Max(1, Math.Min(every, Math.Max(1, steps / 50)));
        var samples = new List<(int Step, double Rss, double Native, double Managed)>();
        void OnStep(int step)
        {
            if (step < warm || (step % every != 0 && step != steps && step != warm))
                return;
            var sample = (step, Clock.WorkingSetMiB(), NativeHeapInUseMiB(), GC.GetTotalMemory(false) / 1048576.0);
            samples.Add(sample);
            if (step % (every * 10) == 0)
                Console.Error.WriteLine(FormattableString.Invariant(
                    $"memory-check: step {step}/{steps} working set {sample.Item2:F1} MiB, native heap in use {sample.Item3:F1} MiB, managed heap {sample.Item4:F1} MiB, autograd function nodes alive {AliveFunctionNodes()}"));
        }
        double cpu = Clock.ProcessCpuSeconds();
        var wall = System.Diagnostics.Stopwatch.StartNew();
        train(OnStep);
        static double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted.Length == 0 ? double.NaN : sorted[sorted.Length / 2];
        }
        int window = Math.Max(1, samples.Count / 10);
        var first = samples.Take(window).ToArray();
        var last = samples.Skip(samples.Count - window).ToArray();
        double rss0 = Median(first.Select(s => s.Rss)), rss1 = Median(last.Select(s => s.Rss));
        double native0 = Median(first.Select(s => s.Native)), native1 = Median(last.Select(s => s.Native));
        return new JsonLine()
            .Add("workload", workload)
            .Add("name", "memory_check")
            .Add("steps", steps)
            .Add("seconds", wall.Elapsed.TotalSeconds)
            .Add("cpu_seconds_per_iteration", (Clock.ProcessCpuSeconds() - cpu) / steps)
            .Add("warm_up_steps", warm)
            .Add("samples", samples.Count)
            .Add("working_set_baseline_mb", Math.Round(rss0, 1))
            .Add("working_set_final_mb", Math.Round(rss1, 1))
            .Add("working_set_growth_percent", Math.Round(100 * (rss1 - rss0) / rss0, 2))
            .Add("working_set_min_mb", Math.Round(samples.Min(s => s.Rss), 1))
            .Add("working_set_max_mb", Math.Round(samples.Max(s => s.Rss), 1))
            .Add("native_heap_baseline_mb", Math.Round(native0, 1))
            .Add("native_heap_final_mb", Math.Round(native1, 1))
            .Add("native_heap_growth_percent", Math.Round(100 * (native1 - native0) / native0, 2))
            .Add("managed_heap_final_mb", Math.Round(samples[^1].Managed, 1))
            .Add("peak_working_set_mb", Math.Round(Clock.PeakWorkingSetMiB(), 1))
            .Add("autograd_function_nodes_alive", AliveFunctionNodes())
            .Add("threads", options.Threads)
            .Add("impl", "mlreward");
    }

    /// <summary>TorchSharp's count of custom autograd function nodes not yet released (-1 if it cannot be read): a leak
    /// of graphs through custom functions would show here.</summary>
    public static int AliveFunctionNodes()
    {
        var node = typeof(torch.autograd).GetNestedType("Node", System.Reflection.BindingFlags.NonPublic);
        var field = node?.GetField("AliveNodes", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static);
        return field?.GetValue(null) is System.Collections.ICollection list ? list.Count : -1;
    }

    private sealed class Progress(Action<int> onStep) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onStep(value.Step);
    }
}
