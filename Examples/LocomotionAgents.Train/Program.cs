using System.Globalization;
using MLReward.LocomotionAgents;
using static TorchSharp.torch;

// locomotion-agents: SAC training, policy evaluation and behaviour-data generation for the locomotion tasks.
const string Usage = """
usage:
  locomotion-agents train --env cheetah|hopper|walker --steps N --out DIR [--resume] [--seed S] [--random-steps N]
                          [--update-after N] [--checkpoint-every N] [--snapshot-every N] [--eval-episodes N]
                          [--no-replay-save] [--threads N]
  locomotion-agents eval  --policy FILE [--episodes N] [--stochastic] [--seed S] [--threads N]
  locomotion-agents eval  --random --env NAME [--episodes N] [--seed S]
  locomotion-agents data  --policy FILE --episodes N --out FILE.csv [--env NAME] [--deterministic] [--seed S] [--threads N]
""";

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    Console.WriteLine(Usage);
    return args.Length == 0 ? 1 : 0;
}

try
{
    var options = ParseOptions(args.AsSpan(1));
    set_num_threads(GetInt(options, "threads", 1));
    switch (args[0])
    {
        case "train":
            return Train(options);
        case "eval":
            return Evaluate(options);
        case "data":
            return Data(options);
        default:
            Console.Error.WriteLine($"unknown command '{args[0]}'\n{Usage}");
            return 1;
    }
}
catch (Exception e) when (e is ArgumentException or FormatException or InvalidDataException or FileNotFoundException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

static int Train(Dictionary<string, string?> o)
{
    string env = Get(o, "env");
    var training = new SacTrainingOptions
    {
        Environment = env,
        OutputDirectory = Get(o, "out"),
        TotalSteps = GetLong(o, "steps", 300_000),
        RandomSteps = GetInt(o, "random-steps", 10_000),
        UpdateAfter = GetInt(o, "update-after", 1_000),
        CheckpointEvery = GetInt(o, "checkpoint-every", 10_000),
        SnapshotEvery = GetInt(o, "snapshot-every", 10_000),
        EvaluationEpisodes = GetInt(o, "eval-episodes", 5),
        SaveReplayBuffer = !o.ContainsKey("no-replay-save"),
        Agent = new SacOptions { Seed = GetInt(o, "seed", 0) },
    };
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
    using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(
        System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; cancel.Cancel(); });
    var last = SacTrainer.Run(training, o.ContainsKey("resume"), Console.Out, cancel.Token);
    Console.WriteLine(last is null ? "no evaluation yet" : $"last evaluation: {last}");
    return 0;
}

static int Evaluate(Dictionary<string, string?> o)
{
    if (o.ContainsKey("random"))
    {
        using var randomEnv = LocomotionTasks.Create(Get(o, "env"));
        var random = Rollouts.EvaluateRandom(randomEnv, GetInt(o, "episodes", 10), GetInt(o, "seed", Rollouts.DefaultEvaluationSeed));
        Console.WriteLine($"{randomEnv.Name}, uniform random actions: {random}");
        Console.WriteLine("returns: " + string.Join(" ", random.Returns.Select(r => r.ToString("F1", CultureInfo.InvariantCulture))));
        return 0;
    }
    using var policy = Policy.Load(Get(o, "policy"));
    using var env = LocomotionTasks.Create(o.TryGetValue("env", out var e) && e is not null ? e : policy.Environment);
    bool deterministic = !o.ContainsKey("stochastic");
    var summary = Rollouts.Evaluate(env, policy, GetInt(o, "episodes", 10), deterministic, GetInt(o, "seed", Rollouts.DefaultEvaluationSeed));
    Console.WriteLine($"{policy.Environment} policy ({policy.TrainingSteps} training steps), {(deterministic ? "mean" : "sampled")} actions: {summary}");
    Console.WriteLine("returns: " + string.Join(" ", summary.Returns.Select(r => r.ToString("F1", CultureInfo.InvariantCulture))));
    return 0;
}

static int Data(Dictionary<string, string?> o)
{
    using var policy = Policy.Load(Get(o, "policy"));
    using var env = LocomotionTasks.Create(o.TryGetValue("env", out var e) && e is not null ? e : policy.Environment);
    string path = Get(o, "out");
    bool deterministic = o.ContainsKey("deterministic");
    using var writer = new StreamWriter(path);
    var summary = Rollouts.WriteDataset(env, policy, GetInt(o, "episodes", 10), GetInt(o, "seed", 0), deterministic, writer);
    Console.WriteLine($"wrote {summary.Lengths.Sum()} transitions of {summary.Returns.Count} episodes to {path}: {summary}");
    return 0;
}

static Dictionary<string, string?> ParseOptions(ReadOnlySpan<string> args)
{
    var flags = new HashSet<string> { "resume", "stochastic", "deterministic", "no-replay-save", "random" };
    var result = new Dictionary<string, string?>();
    for (int i = 0; i < args.Length; i++)
    {
        if (!args[i].StartsWith("--", StringComparison.Ordinal))
            throw new ArgumentException($"unexpected argument '{args[i]}'");
        string name = args[i][2..];
        if (flags.Contains(name))
            result[name] = null;
        else if (i + 1 < args.Length)
            result[name] = args[++i];
        else
            throw new ArgumentException($"--{name} needs a value");
    }
    return result;
}

static string Get(Dictionary<string, string?> o, string name) =>
    o.TryGetValue(name, out var v) && v is not null ? v : throw new ArgumentException($"--{name} is required");

static int GetInt(Dictionary<string, string?> o, string name, int fallback) =>
    o.TryGetValue(name, out var v) && v is not null ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

static long GetLong(Dictionary<string, string?> o, string name, long fallback) =>
    o.TryGetValue(name, out var v) && v is not null ? long.Parse(v, CultureInfo.InvariantCulture) : fallback;
