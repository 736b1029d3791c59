using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using static TorchSharp.torch;

namespace MLReward.Benchmarks;

/// <summary>
/// The long-run memory check a service or a long experiment relies on: through the ML.NET layer, round after round, a relative
/// reward is trained (<c>rx.RelativeReward(...).Fit</c>) and a data set is scored through <c>Transform</c> by that reward and
/// by the base model; nothing is kept between rounds. The resident set is sampled every <c>every</c>; after the warm-up (the
/// first tenth of the run) its growth must stay small: baseline = median of the first tenth of the samples after warm-up,
/// final = median of the last tenth.
/// </summary>
public static class Soak
{
    private const int Horizon = 16, Dimension = 6, Rows = 2048;

    /// <summary>Runs the soak for <paramref name="duration"/>, reporting each sample on stderr.</summary>
    public static JsonLine Run(int threads, TimeSpan duration, TimeSpan every)
    {
        set_num_threads(threads);
        var ml = new MLContext(seed: 1);
        var rx = ml.RewardExtraction();
        var shape = SampleShape.Trajectory(Horizon, Dimension);
        var all = ml.Data.LoadFromEnumerable(Windows(Rows, seed: 1), Schema());
        // The predicate says which rows to drop.
        var experts = ml.Data.FilterByCustomPredicate<Window>(all, w => !w.IsExpert);
        var bases = ml.Data.FilterByCustomPredicate<Window>(all, w => w.IsExpert);
        DiffusionModelTrainer.Options Diffusion(int seed, DiffusionModelTransformer? like) => new()
        {
            Shape = shape, DiffusionSteps = 20, Network = DenoiserKind.TemporalUNet, NetworkDimension = 16, DimensionMultipliers = [1, 2],
            TrainingSteps = 200, BatchSize = 32, Seed = seed, NormalizeLike = like,
        };
        using var baseModel = rx.DiffusionModel(Diffusion(1, null)).Fit(bases);
        using var expertModel = rx.DiffusionModel(Diffusion(2, baseModel)).Fit(experts);

        var clock = Stopwatch.StartNew();
        var samples = new List<(double Seconds, int Round, double Rss, double Native, double Managed)>();
        var nextSample = TimeSpan.Zero;
        int round = 0;
        double checksum = 0;
        while (clock.Elapsed < duration)
        {
            using (var scope = NewDisposeScope())
            {
                using var reward = rx.RelativeReward(baseModel, expertModel, new RelativeRewardTrainer.Options
                {
                    HiddenSizes = [64, 64], TrainingSteps = 100, BatchSize = 64, LearningRate = 1e-3, TargetCachePoolSize = 1024, Seed = round,
                }).Fit(all);
                checksum += reward.Transform(all).GetColumn<float>("Reward").Sum();
                checksum += baseModel.Transform(all).GetColumn<float>("DenoisingError").Sum();
            }
            round++;
            if (clock.Elapsed >= nextSample)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                var sample = (clock.Elapsed.TotalSeconds, round, Clock.WorkingSetMiB(), MemoryCheck.NativeHeapInUseMiB(), GC.GetTotalMemory(false) / 1048576.0);
                samples.Add(sample);
                Console.Error.WriteLine(FormattableString.Invariant(
                    $"soak: {sample.Item1 / 60:F1} min, round {round}, working set {sample.Item3:F1} MiB, native heap in use {sample.Item4:F1} MiB, managed heap {sample.Item5:F1} MiB"));
                nextSample += every;
            }
        }
        var settled = samples.Where(s => s.Seconds >= duration.TotalSeconds / 10).ToArray();
        if (settled.Length == 0)
            settled = [.. samples];
        int window = Math.Max(1, settled.Length / 10);
        static double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted[sorted.Length / 2];
        }
        double rss0 = Median(settled.Take(window).Select(s => s.Rss)), rss1 = Median(settled.TakeLast(window).Select(s => s.Rss));
        double native0 = Median(settled.Take(window).Select(s => s.Native)), native1 = Median(settled.TakeLast(window).Select(s => s.Native));
        return new JsonLine()
            .Add("name", "soak")
            .Add("minutes", Math.Round(clock.Elapsed.TotalMinutes, 2))
            .Add("rounds", round)
            .Add("samples", samples.Count)
            .Add("working_set_after_warm_up_mb", Math.Round(rss0, 1))
            .Add("working_set_final_mb", Math.Round(rss1, 1))
            .Add("working_set_growth_percent", Math.Round(100 * (rss1 - rss0) / rss0, 2))
            .Add("working_set_max_mb", Math.Round(samples.Max(s => s.Rss), 1))
            .Add("native_heap_growth_percent", Math.Round(100 * (native1 - native0) / native0, 2))
            .Add("managed_heap_final_mb", Math.Round(samples[^1].Managed, 1))
            .Add("checksum", checksum)
            .Add("threads", threads)
            .Add("trace", string.Join(";", samples.Select(s => FormattableString.Invariant($"{s.Seconds / 60:F1}:{s.Rss:F0}"))));
    }

    /// <summary>One training window: H x D values and its behaviour.</summary>
    private sealed class Window
    {
        public float[] Features { get; set; } = [];
        public bool IsExpert { get; set; }
    }

    private static SchemaDefinition Schema()
    {
        var schema = SchemaDefinition.Create(typeof(Window));
        schema[nameof(Window.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, Horizon * Dimension);
        return schema;
    }

    /// <summary>Smooth random walks; the expert's drift toward +1 in every feature, the base's without drift.</summary>
    private static List<Window> Windows(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<Window>(count);
        for (int i = 0; i < count; i++)
        {
            bool expert = i % 2 == 1;
            var values = new float[Horizon * Dimension];
            for (int d = 0; d < Dimension; d++)
            {
                double x = random.NextDouble() * 2 - 1;
                for (int h = 0; h < Horizon; h++)
                {
                    x += (expert ? 0.1 * (1 - x) : 0) + 0.1 * (random.NextDouble() * 2 - 1);
                    values[h * Dimension + d] = (float)x;
                }
            }
            rows.Add(new Window { Features = values, IsExpert = expert });
        }
        return rows;
    }
}
