using System.Collections.Concurrent;
using MLReward.Experiments;
using Spectre.Console;

namespace MLReward.Cli;

/// <summary>Reports an experiment's progress as timestamped lines: each task when it starts, at every fifth of its work, and
/// when it ends (for long runs whose output is read as a log).</summary>
internal sealed class ConsoleObserver : IExperimentObserver
{
    private readonly ConcurrentDictionary<string, (string Description, double Total, int Fifths)> _tasks = new();

    public void Started(string key, string description, double total)
    {
        _tasks[key] = (description, total, 0);
        Line($"{description}");
    }

    public void Progress(string key, double value, string? status = null)
    {
        if (!_tasks.TryGetValue(key, out var task) || task.Total <= 0)
            return;
        int fifths = (int)Math.Floor(5 * value / task.Total);
        if (fifths <= task.Fifths || fifths >= 5)
            return;
        _tasks[key] = task with { Fifths = fifths };
        Line($"  {task.Description}: {20 * fifths}%{(status is null ? "" : $", {status}")}");
    }

    public void Finished(string key, string? summary = null)
    {
        if (_tasks.TryRemove(key, out var task))
            Line($"  {task.Description}: done{(summary is null ? "" : $", {summary}")}");
    }

    public void Message(string text) => Line(text);

    private static void Line(string text) => AnsiConsole.MarkupLine($"[grey]{DateTime.Now:HH:mm:ss}[/] {Markup.Escape(text)}");
}
