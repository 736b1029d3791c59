using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.RewardExtraction;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Stage "base models": the base diffusion model of the layout and, with <see cref="Maze2DSettings.PairedReference"/>, the
/// reference model (the base model fine-tuned on base data with exactly the experts' schedule and seed), the model every
/// goal's reward is extracted against. Files: base.zip, reference.zip.
/// </summary>
internal sealed class BaseModels : IDisposable
{
    public const string BaseName = "base", ReferenceName = "reference";

    private BaseModels(DiffusionModelTransformer model, DiffusionModelTransformer? reference)
    {
        Model = model;
        ReferenceModel = reference;
    }

    /// <summary>The base model: the sampler's model and the expert models' starting point.</summary>
    public DiffusionModelTransformer Model { get; }

    /// <summary>The reference model, or null without <see cref="Maze2DSettings.PairedReference"/>.</summary>
    public DiffusionModelTransformer? ReferenceModel { get; }

    public bool Reused { get; private init; }
    public double Loss { get; private init; } = double.NaN;
    public double ModelSeconds { get; private init; }
    public double ReferenceSeconds { get; private init; }

    /// <summary>Trains or loads both models. In a worker (<paramref name="stored"/>) they must be stored already.</summary>
    public static BaseModels Prepare(Maze2DRunContext run, MazeData data, IExperimentObserver observer, bool stored)
    {
        var s = run.Settings;
        var clock = Stopwatch.StartNew();
        var progress = new ThrottledProgress(p => observer.Progress("base-model", p.Step, string.Create(CultureInfo.InvariantCulture, $"loss {p.AverageLoss:F4}")));
        if (!stored)
            observer.Started("base-model", $"Base diffusion model ({s.BaseTrainingSteps} steps)", s.BaseTrainingSteps);
        var model = run.Obtain<DiffusionModelTransformer>(BaseName, run.Key(BaseName), stored ? null : () =>
            run.Rx.DiffusionModel(run.DiffusionOptions(s.BaseTrainingSteps, s.BaseBatchSize, s.DiffusionLearningRate, s.DiffusionEmaStartStep,
                run.Seeds.For("base-model"), progress)).Fit(MazeWindows.View(run.Ml, data.Training)), export: !stored, out bool reused);
        if (!stored)
            observer.Finished("base-model", reused ? "loaded" : string.Create(CultureInfo.InvariantCulture, $"loss {progress.Last.AverageLoss:F4} ({clock.Elapsed.TotalSeconds:F0} s)"));
        double modelSeconds = clock.Elapsed.TotalSeconds;
        if (!s.PairedReference)
            return new BaseModels(model, null) { Reused = reused, Loss = reused ? double.NaN : progress.Last.AverageLoss, ModelSeconds = modelSeconds };

        clock.Restart();
        var referenceProgress = new ThrottledProgress(p => observer.Progress("reference-model", p.Step, string.Create(CultureInfo.InvariantCulture, $"loss {p.AverageLoss:F4}")));
        if (!stored)
            observer.Started("reference-model", $"Reference model (base fine-tuned like the experts, {s.ExpertTrainingSteps} steps)", s.ExpertTrainingSteps);
        var reference = run.Obtain<DiffusionModelTransformer>(ReferenceName, run.Key(ReferenceName), stored ? null : () =>
            run.Rx.DiffusionModel(run.DiffusionOptions(s.ExpertTrainingSteps, s.ExpertBatchSize, s.ExpertLearningRate, s.ExpertEmaStartStep,
                run.Seeds.For("fine-tuning"), referenceProgress, normalizeLike: model, initialModel: model)).Fit(MazeWindows.View(run.Ml, data.Training)),
            export: !stored, out _);
        if (!stored)
            observer.Finished("reference-model", string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds:F0} s"));
        return new BaseModels(model, reference) { Reused = reused, Loss = reused ? double.NaN : progress.Last.AverageLoss, ModelSeconds = modelSeconds, ReferenceSeconds = clock.Elapsed.TotalSeconds };
    }

    public void Dispose()
    {
        ReferenceModel?.Dispose();
        Model.Dispose();
    }
}
