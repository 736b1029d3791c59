using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Forwards a core training loop's progress to ML.NET: a progress channel (step, loss, average loss), messages on
/// <c>mlContext.Log</c> at every tenth of the run, and the caller's own <see cref="IProgress{T}"/> if any. The
/// host's liveness check runs at each report, so ML.NET's cancellation reaches the loop.
/// </summary>
internal sealed class TrainingReporter : IProgress<TrainingProgress>, IDisposable
{
    private readonly IHost _host;
    private readonly IChannel _channel;
    private readonly IProgressChannel _progress;
    private readonly IProgress<TrainingProgress>? _user;
    private readonly string _what;
    private TrainingProgress _last;
    private int _nextLog;

    public TrainingReporter(IHost host, string what, IProgress<TrainingProgress>? user)
    {
        _host = host;
        _what = what;
        _user = user;
        _channel = host.Start(what);
        _progress = host.StartProgressChannel(what);
        _progress.SetHeader(new ProgressHeader(new[] { "Loss", "Average loss" }, new[] { "Step" }), entry =>
        {
            var last = _last;
            entry.SetProgress(0, last.Step, last.TotalSteps);
            entry.SetMetric(0, last.Loss);
            entry.SetMetric(1, last.AverageLoss);
        });
    }

    public IChannel Channel => _channel;

    public void Report(TrainingProgress value)
    {
        _host.CheckAlive();
        _last = value;
        _user?.Report(value);
        if (value.Step >= _nextLog || value.Step == value.TotalSteps)
        {
            _channel.Info($"{_what}: step {value.Step}/{value.TotalSteps}, loss {value.Loss:G4}, average {value.AverageLoss:G4}, {value.Elapsed.TotalSeconds:F1} s");
            _nextLog = value.Step + Math.Max(1, value.TotalSteps / 10);
        }
    }

    public void Dispose()
    {
        _progress.Dispose();
        _channel.Dispose();
    }
}
