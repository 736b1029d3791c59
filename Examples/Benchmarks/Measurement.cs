using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.ML.RewardExtraction;

namespace MLReward.Benchmarks;

/// <summary>Wall-clock and process CPU time (user + system, all threads) of the timed iterations of one workload.</summary>
public sealed record Measurement(int Iterations, double Seconds, double CpuSeconds)
{
    /// <summary>Iterations per wall-clock second.</summary>
    public double PerSecond => Iterations / Seconds;

    /// <summary>Process CPU seconds (user + system) per iteration: more robust than wall time on a loaded machine.</summary>
    public double CpuSecondsPerIteration => CpuSeconds / Iterations;
}

/// <summary>
/// Paired mode (<c>--paired</c>, driven by paired.py): before every timed iteration the process prints <c>READY</c> and
/// waits for <c>go</c> (or <c>stop</c>) on stdin, and after it prints <c>ITER wall cpu</c>. The driver alternates two
/// processes (the reference and this one) iteration by iteration, so both see the same load on a shared machine.
/// </summary>
public static class Pacer
{
    /// <summary>Whether iterations wait for the driver.</summary>
    public static bool Enabled { get; set; }

    /// <summary>Waits for the driver's turn; false when it says stop (or closes stdin). Always true when not paired.</summary>
    public static bool Next()
    {
        if (!Enabled)
            return true;
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        var line = Console.In.ReadLine();
        return line is not null && line.Trim() == "go";
    }

    /// <summary>Reports one timed iteration to the driver.</summary>
    public static void Done(double wall, double cpu)
    {
        if (!Enabled)
            return;
        Console.Out.WriteLine(FormattableString.Invariant($"ITER {wall:R} {cpu:R}"));
        Console.Out.Flush();
    }
}

/// <summary>Clocks shared by the workloads.</summary>
public static class Clock
{
    /// <summary>CPU time (user + system) the process has used so far, over all its threads.</summary>
    public static double ProcessCpuSeconds()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime.TotalSeconds;
    }

    /// <summary>The process's peak resident set (VmHWM) in MiB.</summary>
    public static double PeakWorkingSetMiB()
    {
        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64 / (1024.0 * 1024.0);
    }

    /// <summary>The process's current resident set (VmRSS) in MiB.</summary>
    public static double WorkingSetMiB()
    {
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64 / (1024.0 * 1024.0);
    }

    /// <summary>
    /// The reference's <c>timed</c>: <paramref name="warmup"/> untimed calls, then calls until <paramref name="seconds"/> have
    /// passed (at least one timed call, unlike the reference, so that tiny budgets still measure something).
    /// </summary>
    public static Measurement Time(Action iteration, double seconds, int warmup)
    {
        for (int i = 0; i < warmup; i++)
            iteration();
        if (Pacer.Enabled)
        {
            // Paired: the driver decides how many iterations run; only the iterations themselves are timed.
            int count = 0;
            double wallSum = 0, cpuSum = 0;
            while (Pacer.Next())
            {
                double c0 = ProcessCpuSeconds();
                var w = Stopwatch.StartNew();
                iteration();
                double dw = w.Elapsed.TotalSeconds, dc = ProcessCpuSeconds() - c0;
                Pacer.Done(dw, dc);
                wallSum += dw;
                cpuSum += dc;
                count++;
            }
            return new Measurement(Math.Max(count, 1), Math.Max(wallSum, 1e-9), cpuSum);
        }
        double cpu = ProcessCpuSeconds();
        var clock = Stopwatch.StartNew();
        int n = 0;
        do
        {
            iteration();
            n++;
        }
        while (clock.Elapsed.TotalSeconds < seconds);
        double wall = clock.Elapsed.TotalSeconds;
        return new Measurement(n, wall, ProcessCpuSeconds() - cpu);
    }
}

/// <summary>
/// Times a training loop that owns its iteration (the core's trainers) through its progress reports: the clock starts
/// when step <c>warmup</c> (at least 1) has been reported and the run is cancelled once the budget is spent; the
/// trainers check their token before starting a step, so no extra step runs.
/// </summary>
public sealed class StepClock : IProgress<TrainingProgress>
{
    private readonly double _seconds;
    private readonly int _warmup;
    private readonly CancellationTokenSource _cancel = new();
    private readonly Stopwatch _clock = new();
    private double _cpuStart;
    private double _stepCpu, _pairedWall, _pairedCpu;
    private Measurement? _result;

    /// <summary>Creates a clock that skips <paramref name="warmup"/> steps and then times steps for <paramref name="seconds"/>.</summary>
    public StepClock(double seconds, int warmup)
    {
        _seconds = seconds;
        _warmup = Math.Max(1, warmup);
    }

    /// <summary>Pass to the trainer.</summary>
    public CancellationToken Token => _cancel.Token;

    /// <summary>Called after each step (optional extra observer, e.g. a memory probe).</summary>
    public Action<int>? AfterStep { get; init; }

    /// <summary>Wall and CPU seconds added to every step reported in paired mode (e.g. an amortised pool rebuild).</summary>
    public (double Wall, double Cpu) ExtraPerStep { get; init; }

    /// <summary>The timed steps, once the budget is spent (or after the run if it ended first).</summary>
    public Measurement Result => _result ?? throw new InvalidOperationException("No step was timed.");

    /// <inheritdoc/>
    public void Report(TrainingProgress value)
    {
        AfterStep?.Invoke(value.Step);
        if (value.Step < _warmup || _result is not null)
            return;
        if (Pacer.Enabled)
        {
            if (value.Step > _warmup)
            {
                double dw = _clock.Elapsed.TotalSeconds, dc = Clock.ProcessCpuSeconds() - _stepCpu;
                Pacer.Done(dw + ExtraPerStep.Wall, dc + ExtraPerStep.Cpu);
                _pairedWall += dw;
                _pairedCpu += dc;
            }
            if (!Pacer.Next() || value.Step == value.TotalSteps)
            {
                _result = new Measurement(Math.Max(value.Step - _warmup, 1), Math.Max(_pairedWall, 1e-9), _pairedCpu);
                _cancel.Cancel();
                return;
            }
            _stepCpu = Clock.ProcessCpuSeconds();
            _clock.Restart();
            return;
        }
        if (value.Step == _warmup)
        {
            _cpuStart = Clock.ProcessCpuSeconds();
            _clock.Restart();
            return;
        }
        double wall = _clock.Elapsed.TotalSeconds;
        if (wall >= _seconds || value.Step == value.TotalSteps)
        {
            _result = new Measurement(value.Step - _warmup, wall, Clock.ProcessCpuSeconds() - _cpuStart);
            _cancel.Cancel();
        }
    }

    /// <summary>Runs <paramref name="train"/> and returns the timing, treating the clock's own cancellation as the normal end.</summary>
    public Measurement Run(Action<IProgress<TrainingProgress>, CancellationToken> train)
    {
        try
        {
            train(this, Token);
        }
        catch (OperationCanceledException) when (_cancel.IsCancellationRequested)
        {
        }
        return Result;
    }
}

/// <summary>One JSON line with the reference's keys, in insertion order.</summary>
public sealed class JsonLine
{
    private readonly List<KeyValuePair<string, object>> _fields = new();

    /// <summary>Adds or replaces a field.</summary>
    public JsonLine Add(string key, object value)
    {
        int i = _fields.FindIndex(f => f.Key == key);
        if (i >= 0)
            _fields[i] = new(key, value);
        else
            _fields.Add(new(key, value));
        return this;
    }

    /// <summary>The value of a field, or null.</summary>
    public object? this[string key] => _fields.FirstOrDefault(f => f.Key == key).Value;

    /// <summary>The fields in order.</summary>
    public IReadOnlyList<KeyValuePair<string, object>> Fields => _fields;

    /// <summary>Compact JSON.</summary>
    public override string ToString()
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            foreach (var (key, value) in _fields)
            {
                switch (value)
                {
                    case string s: writer.WriteString(key, s); break;
                    case int i: writer.WriteNumber(key, i); break;
                    case long l: writer.WriteNumber(key, l); break;
                    case double d: writer.WriteNumber(key, double.IsFinite(d) ? d : 0); break;
                    case bool b: writer.WriteBoolean(key, b); break;
                    default: writer.WriteString(key, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)); break;
                }
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
