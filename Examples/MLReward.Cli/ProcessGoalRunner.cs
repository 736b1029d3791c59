using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using MLReward.Experiments;
using MLReward.Experiments.Maze2D;

namespace MLReward.Cli;

/// <summary>
/// Runs goals in worker processes of this same executable (<c>mlreward maze2d-goal</c>), at most <see cref="Parallel"/> at a
/// time, one goal per process. TorchSharp objects must not be used by two threads of one process at once (see
/// <see cref="Maze2DRunOptions.Parallel"/>), and the networks are too small for torch's own threads to help, so whole
/// processes are what uses several cores. Workers report progress on stdout as <see cref="WorkerProtocol"/> lines.
/// </summary>
internal sealed class ProcessGoalRunner(int parallel) : IGoalRunner
{
    public int Parallel { get; } = Math.Max(1, parallel);

    public IReadOnlyList<Maze2DGoalResult> RunGoals(Maze2DJob job, IReadOnlyList<int> goalIndices, IExperimentObserver observer, CancellationToken cancellationToken)
    {
        string work = Path.Combine(job.OutputDirectory, ".workers");
        Directory.CreateDirectory(work);
        string jobPath = Path.Combine(work, "job.json");
        File.WriteAllText(jobPath, job.ToJson());
        var results = new Maze2DGoalResult[goalIndices.Count];
        var failures = new ConcurrentQueue<string>();
        using var gate = new SemaphoreSlim(Parallel);
        var tasks = new List<Task>();
        try
        {
            for (int k = 0; k < goalIndices.Count; k++)
            {
                int slot = k, index = goalIndices[k];
                tasks.Add(Task.Run(async () =>
                {
                    await gate.WaitAsync(cancellationToken);
                    try
                    {
                        if (!failures.IsEmpty)
                            return;
                        string resultPath = Path.Combine(work, $"goal-{index}.json");
                        var error = await RunWorker(jobPath, index, resultPath, observer, cancellationToken);
                        if (error is not null)
                            failures.Enqueue(error);
                        else
                            results[slot] = JsonSerializer.Deserialize<Maze2DGoalResult>(File.ReadAllText(resultPath), Maze2DReport.JsonOptions)
                                ?? throw new InvalidDataException($"Empty result for goal {index}.");
                    }
                    finally
                    {
                        gate.Release();
                    }
                }, cancellationToken));
            }
            try
            {
                Task.WaitAll(tasks.ToArray(), cancellationToken);
            }
            catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException))
            {
                throw new OperationCanceledException(cancellationToken);
            }
            if (failures.TryDequeue(out var failure))
                throw new InvalidOperationException(failure);
            return results;
        }
        finally
        {
            if (failures.IsEmpty && !cancellationToken.IsCancellationRequested)
                Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Runs one worker to its end; returns null on success or a description of the failure.</summary>
    private static async Task<string?> RunWorker(string jobPath, int index, string resultPath, IExperimentObserver observer, CancellationToken cancellationToken)
    {
        var start = WorkerStartInfo();
        foreach (var a in new[] { "maze2d-goal", "--job", jobPath, "--index", index.ToString(System.Globalization.CultureInfo.InvariantCulture), "--result", resultPath })
            start.ArgumentList.Add(a);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        using var process = new Process { StartInfo = start };
        var errors = new ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line && !WorkerProtocol.TryDispatch(line, observer))
                errors.Enqueue(line);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
                errors.Enqueue(line);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Only the worker this runner started (and its children) is ended.
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw;
        }
        process.WaitForExit();   // drains the redirected streams
        if (process.ExitCode == 0 && File.Exists(resultPath))
            return null;
        return WorkerFailure(index, process.ExitCode, errors.ToList(), ErrorPolicy.DebugRequested());
    }

    /// <summary>The parent's message for a failed worker: the worker's own error line (see <see cref="ErrorPolicy"/>), else
    /// the last lines it printed (a crash before the policy could report); with <paramref name="debug"/> also its output's
    /// tail, where the worker, which inherits the variable, printed its stack trace.</summary>
    internal static string WorkerFailure(int index, int exitCode, IReadOnlyList<string> output, bool debug)
    {
        string? reported = output.LastOrDefault(l => l.StartsWith(ErrorPolicy.Prefix, StringComparison.Ordinal));
        string detail = reported is not null ? reported[ErrorPolicy.Prefix.Length..]
            : output.Count > 0 ? string.Join(" | ", output.TakeLast(3)) : "it printed nothing";
        string message = $"the worker for goal {index} failed (exit code {exitCode}): {detail}";
        return debug ? message + Environment.NewLine + string.Join(Environment.NewLine, output.TakeLast(40)) : message;
    }

    /// <summary>How to start this executable again: the apphost directly, or `dotnet mlreward.dll` when run through the dotnet host.</summary>
    private static ProcessStartInfo WorkerStartInfo()
    {
        string host = Environment.ProcessPath ?? throw new InvalidOperationException("The path of this process is unknown.");
        var start = new ProcessStartInfo(host);
        if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            start.ArgumentList.Add(typeof(ProcessGoalRunner).Assembly.Location);
        return start;
    }
}

/// <summary>The progress lines a worker writes on stdout, and their dispatch to an observer in the parent.</summary>
internal static class WorkerProtocol
{
    private const string Prefix = "##mlreward ";

    public static bool TryDispatch(string line, IExperimentObserver observer)
    {
        if (!line.StartsWith(Prefix, StringComparison.Ordinal))
            return false;
        try
        {
            var message = JsonSerializer.Deserialize<Message>(line[Prefix.Length..]);
            if (message is null)
                return false;
            switch (message.Event)
            {
                case "start": observer.Started(message.Key ?? "", message.Text ?? "", message.Value); break;
                case "progress": observer.Progress(message.Key ?? "", message.Value, message.Text); break;
                case "end": observer.Finished(message.Key ?? "", message.Text); break;
                case "message": observer.Message(message.Text ?? ""); break;
                default: return false;
            }
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>An observer that writes protocol lines to a writer (a worker's stdout).</summary>
    public sealed class Writer(TextWriter output) : IExperimentObserver
    {
        private readonly object _lock = new();

        public void Started(string key, string description, double total) => Write(new Message { Event = "start", Key = key, Text = description, Value = total });
        public void Progress(string key, double value, string? status = null) => Write(new Message { Event = "progress", Key = key, Value = value, Text = status });
        public void Finished(string key, string? summary = null) => Write(new Message { Event = "end", Key = key, Text = summary });
        public void Message(string text) => Write(new Message { Event = "message", Text = text });

        private void Write(Message message)
        {
            lock (_lock)
            {
                output.WriteLine(Prefix + JsonSerializer.Serialize(message));
                output.Flush();
            }
        }
    }

    private sealed class Message
    {
        [System.Text.Json.Serialization.JsonPropertyName("e")] public string? Event { get; set; }
        [System.Text.Json.Serialization.JsonPropertyName("k")] public string? Key { get; set; }
        [System.Text.Json.Serialization.JsonPropertyName("t")] public string? Text { get; set; }
        [System.Text.Json.Serialization.JsonPropertyName("v")] public double Value { get; set; }
    }
}
