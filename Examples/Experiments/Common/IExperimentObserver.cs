namespace MLReward.Experiments;

/// <summary>Receives the progress of an experiment run: tasks that start, advance and finish, and lines of information.
/// May be called from several threads (the Maze2D goals report from worker processes).</summary>
public interface IExperimentObserver
{
    /// <summary>A task (identified by <paramref name="key"/>) starts; its progress runs from 0 to <paramref name="total"/>.</summary>
    void Started(string key, string description, double total);

    /// <summary>Progress of a task.</summary>
    void Progress(string key, double value, string? status = null);

    /// <summary>A task ends.</summary>
    void Finished(string key, string? summary = null);

    /// <summary>A line of information.</summary>
    void Message(string text);
}

/// <summary>An observer that ignores everything.</summary>
public sealed class NullObserver : IExperimentObserver
{
    /// <summary>The instance.</summary>
    public static readonly NullObserver Instance = new();

    private NullObserver()
    {
    }

    /// <inheritdoc/>
    public void Started(string key, string description, double total) { }

    /// <inheritdoc/>
    public void Progress(string key, double value, string? status = null) { }

    /// <inheritdoc/>
    public void Finished(string key, string? summary = null) { }

    /// <inheritdoc/>
    public void Message(string text) { }
}
