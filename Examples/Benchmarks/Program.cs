using System.Globalization;
using MLReward.Benchmarks;

// mlreward-bench [--threads 2] [--seconds 10] [--only W1,W2,W2-cached,W3,W4,W4-raw,W5] [--warmup N]
//                [--cache-pool 4096] [--cache-refresh 1000] [--memory-check [STEPS] (W2, or W5 with --only W5)] [--cached] [--profile [N]] [--paired] [--omp-default]
//                [--check-convolutions [ROUNDS]] [--soak [MINUTES]] [--soak-every SECONDS]
// Prints one JSON line per workload on stdout (the reference's keys plus CPU time and peak working set).

// Before any torch call: libtorch's OpenMP workers sleep when idle instead of spinning (see NativeThreading); --omp-default
// keeps libgomp's own policy (for comparisons).
// oneDNN's kernel choice (see OneDnnWorkaround) likewise, unless ONEDNN_MAX_CPU_ISA is set.
Microsoft.ML.RewardExtraction.OneDnnWorkaround.Apply();
string ompPolicy = args.Contains("--omp-default") ? "default (not changed)" : Microsoft.ML.RewardExtraction.NativeThreading.PreferPassiveWaiting();

int threads = 2;
double seconds = 10;
int? warmup = null;
string only = string.Join(",", Workloads.All);
int pool = 4096, refresh = 1000;
int? memorySteps = null;
bool cached = false;
int? profile = null;
int? convolutionRounds = null;
double? soakMinutes = null;
double soakEvery = 60;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
    switch (args[i])
    {
        case "--threads": threads = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--seconds": seconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--only": only = Next(); break;
        case "--warmup": warmup = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--cache-pool": pool = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--cache-refresh": refresh = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--cached": cached = true; break;
        case "--paired": Pacer.Enabled = true; break;
        case "--omp-default": break;
        case "--profile":
            profile = i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int r) ? (++i, r).r : 5;
            break;
        case "--memory-check":
            memorySteps = i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? (++i, n).n : 10_000;
            break;
        case "--check-convolutions":
            convolutionRounds = i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int c) ? (++i, c).c : 2;
            break;
        case "--soak":
            soakMinutes = i + 1 < args.Length && double.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out double m) ? (++i, m).m : 60;
            break;
        case "--soak-every": soakEvery = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "-h" or "--help":
            Console.WriteLine("mlreward-bench [--threads N] [--seconds S] [--only " + string.Join(",", Workloads.All) + "] [--warmup N] [--cache-pool P] [--cache-refresh K] [--memory-check [STEPS]] [--cached] [--check-convolutions [ROUNDS]] [--soak [MINUTES]] [--soak-every SECONDS]");
            return 0;
        default:
            Console.Error.WriteLine($"Unknown argument '{args[i]}'; see --help.");
            return 2;
    }
}
if (threads < 1 || !(seconds >= 0) || pool < 0 || refresh < 0)
{
    Console.Error.WriteLine("--threads must be >= 1; --seconds, --cache-pool and --cache-refresh must be >= 0.");
    return 2;
}

var options = new BenchmarkOptions { Threads = threads, Seconds = seconds, Warmup = warmup, TargetCachePoolSize = pool, TargetCacheRefreshEvery = refresh };
if (profile is int repetitions)
{
    foreach (var line in Profiling.Run(only, options, repetitions))
        Console.WriteLine(line);
    return 0;
}
if (convolutionRounds is int rounds)
{
    var check = ConvolutionCheck.Run(threads, rounds);
    Console.WriteLine(check);
    return (int)check["not_finite"]! + (int)check["unrepeatable"]! + (int)check["inaccurate"]! == 0 ? 0 : 1;
}
if (soakMinutes is double minutes)
{
    if (!(minutes > 0) || !(soakEvery > 0))
    {
        Console.Error.WriteLine("--soak and --soak-every must be positive.");
        return 2;
    }
    Console.WriteLine(Soak.Run(threads, TimeSpan.FromMinutes(minutes), TimeSpan.FromSeconds(soakEvery)));
    return 0;
}
if (memorySteps is int steps)
{
    // W2 (or W2-cached with --cached) unless --only names W5.
    bool trajectoryReward = only.Split(',', StringSplitOptions.TrimEntries).Contains("W5") && !only.Contains("W2", StringComparison.Ordinal);
    Console.WriteLine(trajectoryReward ? MemoryCheck.RunTrajectoryReward(options, steps) : MemoryCheck.Run(options, steps, cached));
    return 0;
}
foreach (var name in only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
{
    var result = Workloads.Run(name, options);
    result.Add("onednn_max_cpu_isa", Microsoft.ML.RewardExtraction.OneDnnWorkaround.Value ?? "unset");
    result.Add("convolutions", ConvolutionCheck.ConvolutionPath);
    result.Add("omp_wait_policy", Microsoft.ML.RewardExtraction.NativeThreading.WaitPolicy ?? "unset").Add("omp_setup", ompPolicy);
    Console.WriteLine(Pacer.Enabled ? "RESULT " + result : result.ToString());
    Console.Out.Flush();
}
return 0;
