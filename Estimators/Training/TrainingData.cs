using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// What an estimator's Fit trains on: the feature column read through a cursor into <see cref="TrainingSamples"/> of
/// <see cref="TrainerOptionsBase.ShuffleBufferSize"/> rows, so data larger than memory stream while smaller data are read once.
/// </summary>
internal sealed class TrainingData : IDisposable
{
    private readonly TrainingRows.RowStream _rows;
    private readonly string _columnName;
    private bool _skippedReported;

    private TrainingData(TrainingRows.RowStream rows, TrainingSamples samples, string columnName)
    {
        _rows = rows;
        Samples = samples;
        _columnName = columnName;
    }

    /// <summary>Checks the feature column and fills the buffer (reading every row when they fit).</summary>
    public static TrainingData Open(IHost host, IDataView input, TrainerOptionsBase options, SampleShape shape)
    {
        var rows = TrainingRows.Stream(host, input, options.FeatureColumnName, shape, options.InvalidValues);
        return new TrainingData(rows, TrainingSamples.Load(shape, rows, options.ShuffleBufferSize), options.FeatureColumnName);
    }

    /// <summary>The samples the core trainer draws from.</summary>
    public TrainingSamples Samples { get; }

    /// <summary>Fits a normaliser on every valid row: on the buffer when it holds them all, else in one more pass over the
    /// data (the statistics are streamable, and equal either way).</summary>
    public Normalizer FitNormalizer(NormalizerKind kind)
        => Samples.HoldsAll ? Normalizer.Fit(kind, Samples.Shape, Samples.Resident) : Normalizer.Fit(kind, Samples.Shape, _rows);

    /// <summary>"N samples", and how they stream when they do not fit.</summary>
    public string Describe() => Samples.HoldsAll
        ? $"{Samples.ResidentRows} samples"
        : $"{(_rows.Rows is { } count ? $"{count} samples" : "more samples than the buffer holds")} streamed through a shuffle buffer of {Samples.BufferSize}";

    /// <summary>Warns once about rows left out for NaN or infinity, as soon as a whole pass has counted them.</summary>
    public void ReportSkipped(IChannel channel)
    {
        if (_skippedReported || _rows.Skipped is not { } skipped)
            return;
        _skippedReported = true;
        if (skipped > 0)
            channel.Warning($"Left {skipped} rows holding NaN or infinity in column '{_columnName}' out of training.");
    }

    public void Dispose() => Samples.Dispose();
}
