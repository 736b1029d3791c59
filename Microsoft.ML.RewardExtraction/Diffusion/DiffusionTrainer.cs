using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Trains a <see cref="DiffusionModel"/>'s denoiser (docs/METHOD.md section 2): per step a batch of normalised samples drawn
/// uniformly with replacement from the rows <see cref="TrainingSamples"/> holds (all of them, unless the data stream
/// through a bounded buffer), t uniform in {0..T-1}, x_t = q_sample(x0, t, eps), L2 between the network output and
/// the target (x0 or eps), Adam on an online copy of the network, and Diffuser's EMA rule into the model's own
/// denoiser, which therefore holds the EMA weights afterwards. All randomness (batch indices, t, noise) comes from one
/// <see cref="torch.Generator"/> seeded with <see cref="OptimizationOptions.Seed"/>, drawn in a fixed order, so a
/// run is reproducible bit for bit and a checkpoint of data held in memory resumes exactly.
/// </summary>
public sealed class DiffusionTrainer
{
    private readonly DiffusionTrainingOptions _options;

    /// <summary>Creates a trainer with <paramref name="options"/> (validated now).</summary>
    public DiffusionTrainer(DiffusionTrainingOptions? options = null)
    {
        _options = options ?? new DiffusionTrainingOptions();
        _options.Validate();
    }

    /// <summary>The settings.</summary>
    public DiffusionTrainingOptions Options => _options;

    /// <summary>
    /// Fits a normaliser of <paramref name="normalizer"/> kind on <paramref name="rawData"/>, builds an untrained model
    /// from <paramref name="modelOptions"/>, and trains it.
    /// </summary>
    /// <param name="modelOptions">Shape, T, network, initialisation seed.</param>
    /// <param name="rawData">Raw samples [N, ...shape].</param>
    /// <param name="normalizer">How the data are mapped to the model's space. Default limits to [-1, 1] (Diffuser's).</param>
    /// <param name="progress">Receives one report per step.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <param name="condition">A template whose mask marks entries known at sampling time (see <see cref="Train(DiffusionModel, Tensor, IProgress{TrainingProgress}?, CancellationToken, InpaintingCondition?)"/>).</param>
    public DiffusionModel Fit(DiffusionModelOptions modelOptions, Tensor rawData, NormalizerKind normalizer = NormalizerKind.Limits,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default, InpaintingCondition? condition = null)
    {
        ArgumentNullException.ThrowIfNull(modelOptions);
        ArgumentNullException.ThrowIfNull(rawData);
        var shape = modelOptions.Shape ?? throw new ArgumentException($"{nameof(DiffusionModelOptions)}.{nameof(DiffusionModelOptions.Shape)} is required.", nameof(modelOptions));
        CheckData(shape, rawData, "training data");
        var fitted = Normalizer.Fit(normalizer, shape, rawData);
        var model = DiffusionModel.Create(modelOptions, fitted);
        try
        {
            using var normalized = fitted.Normalize(rawData);
            Train(model, normalized, progress, cancellationToken, condition);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Trains <paramref name="model"/> in place on normalised samples; afterwards <see cref="DiffusionModel.Denoiser"/>
    /// holds the EMA weights.
    /// </summary>
    /// <param name="model">The model (typically from <see cref="DiffusionModel.Create"/>); its denoiser must be one of
    /// the library's networks (the online copy is rebuilt from its options).</param>
    /// <param name="normalizedData">Samples [N, ...shape] in the model's normalised space, float32, on the CPU (batches are
    /// moved to the model's device as they are drawn) or on the model's device.</param>
    /// <param name="progress">Receives one report per step.</param>
    /// <param name="cancellationToken">Checked before every step; on cancellation a checkpoint is written (when a path
    /// is set) and <see cref="OperationCanceledException"/> is thrown.</param>
    /// <param name="condition">Conditioning by inpainting: entries where the mask (shape [...shape] or [1, ...shape]) is
    /// true are overwritten on the noisy input with the sample's own clean values, as Diffuser does; for x0 prediction
    /// they are also overwritten on the prediction, so they carry no loss. Values are ignored.</param>
    /// <exception cref="ArgumentException">Data of the wrong shape, empty, or with NaN/infinity (the message names the sample).</exception>
    public DiffusionTrainingResult Train(DiffusionModel model, Tensor normalizedData, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default, InpaintingCondition? condition = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(normalizedData);
        CheckData(model.Shape, normalizedData, "training data");
        var device = model.Diffusion.Device;
        if (normalizedData.device_type != DeviceType.CPU && !ComputeDevice.Same(normalizedData.device, device))
            throw new ArgumentException($"The training data are on {normalizedData.device} but the model is on {device}; pass them on the CPU or on the model's device.", nameof(normalizedData));
        using var scope = NewDisposeScope();
        var data = normalizedData.dtype == ScalarType.Float32 ? normalizedData : normalizedData.to(ScalarType.Float32);
        using var samples = TrainingSamples.InMemory(model.Shape, data);
        return Train(model, samples, progress, cancellationToken, condition);
    }

    /// <summary>
    /// Trains <paramref name="model"/> in place on <paramref name="samples"/>, which may stream data larger than memory through
    /// a bounded buffer (<see cref="TrainingSamples.Load"/>); with all the data held, the same as <see cref="Train(DiffusionModel, Tensor, IProgress{TrainingProgress}?, CancellationToken, InpaintingCondition?)"/>
    /// on them, bit for bit. A checkpoint of a streamed run resumes with the stream read from its start again, so it continues
    /// the same objective but not the same batches.
    /// </summary>
    /// <param name="model">The model (see the tensor overload).</param>
    /// <param name="samples">The training samples; their batches (after <see cref="TrainingSamples.Normalizer"/>) must lie in the
    /// model's normalised space.</param>
    /// <param name="progress">Receives one report per step.</param>
    /// <param name="cancellationToken">Checked before every step (see the tensor overload).</param>
    /// <param name="condition">Conditioning by inpainting (see the tensor overload).</param>
    public DiffusionTrainingResult Train(DiffusionModel model, TrainingSamples samples, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default, InpaintingCondition? condition = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(samples);
        if (!samples.Shape.Equals(model.Shape))
            throw new ArgumentException($"The training samples have shape {samples.Shape} but the model samples {model.Shape}.", nameof(samples));
        var device = model.Diffusion.Device;
        var mask = ConditionMask(model.Shape, condition)?.to(device);
        var options = _options;
        if (options.LossWeights is { } lossWeights && lossWeights.Length != model.Shape.Length)
            throw new ArgumentException($"{nameof(DiffusionTrainingOptions.LossWeights)} has {lossWeights.Length} entries but a sample of shape {model.Shape} has {model.Shape.Length}.", nameof(model));
        var networkOptions = DenoiserOptions.From(model.Denoiser);
        using var outer = NewDisposeScope();
        using var online = TorchRandom.Initialize(options.Seed, () => networkOptions.Create(model.Shape));
        if (device.type != DeviceType.CPU)
            online.to(device);
        CopyWeights(model.Denoiser, online);
        online.train();
        var batchShape = model.Shape.BatchShape(options.BatchSize);
        var diffusion = model.Diffusion;
        using var weights = options.LossWeights is null ? null : tensor(options.LossWeights, model.Shape.BatchShape(1)).to(device);
        bool onCpu = device.type == DeviceType.CPU;
        Tensor StepLoss(int step, torch.Generator generator)
        {
            // Fixed draw order: batch indices, steps, noise; drawn on the CPU generator on every device, so a seed gives
            // the same batches everywhere.
            var start0 = samples.Draw(options.BatchSize, generator);
            var t = randint(0, diffusion.Steps, new long[] { options.BatchSize }, ScalarType.Int64, CPU, generator: generator);
            var noise = randn(batchShape, ScalarType.Float32, CPU, generator: generator);
            if (start0.dtype != ScalarType.Float32)
                start0 = start0.to(ScalarType.Float32);
            if (!onCpu)
            {
                start0 = start0.to(device);
                t = t.to(device);
                noise = noise.to(device);
            }
            var noisy = diffusion.QSample(start0, t, noise);
            if (mask is not null)
                noisy = where(mask, start0, noisy);
            var prediction = online.call(noisy, t);
            if (mask is not null && diffusion.Target == PredictionTarget.Start)
                prediction = where(mask, start0, prediction);
            var target = diffusion.TrainingTarget(start0, noise);
            return weights is null ? F.mse_loss(prediction, target) : prediction.sub(target).pow_(2).mul_(weights).mean();
        }

        var outcome = OptimizationLoop.Run(options, RunDescription(model, networkOptions, samples.Description, mask is not null), online, model.Denoiser,
            StepLoss, "diffusion", progress, cancellationToken);
        model.Denoiser.eval();
        return new DiffusionTrainingResult(outcome.CompletedSteps, outcome.ResumedFromStep, outcome.AverageLoss, outcome.Elapsed);
    }

    /// <summary>Throws <see cref="ArgumentException"/> if <paramref name="data"/> is not a non-empty finite [N, ...shape] batch.</summary>
    internal static void CheckData(SampleShape shape, Tensor data, string what)
    {
        shape.CheckBatch(data, what);
        if (data.shape[0] < 1)
            throw new ArgumentException($"The {what} hold no samples.", nameof(data));
        if (!data.is_floating_point())
            throw new ArgumentException($"The {what} must be floating point; got {data.dtype}.", nameof(data));
        // In chunks of rows, so that the boolean mask never costs more than a few MB.
        long rows = data.shape[0], chunk = Math.Max(1, (1 << 22) / Math.Max(1, shape.Length));
        for (long first = 0; first < rows; first += chunk)
        {
            using var scope = NewDisposeScope();
            var block = data.narrow(0, first, Math.Min(chunk, rows - first));
            var finite = block.isfinite().flatten(1).all(1);
            if (finite.all().item<bool>())
                continue;
            long sample = first + finite.logical_not().nonzero()[0, 0].item<long>();
            var row = data[sample].flatten();
            long position = row.isfinite().logical_not().nonzero()[0, 0].item<long>();
            float value = row[position].to(ScalarType.Float32).item<float>();
            throw new ArgumentException($"Sample {sample} of the {what} contains a non-finite value ({value.ToString(CultureInfo.InvariantCulture)}) at position {position}.", nameof(data));
        }
    }

    private static Tensor? ConditionMask(SampleShape shape, InpaintingCondition? condition)
    {
        if (condition is null)
            return null;
        var mask = condition.Mask;
        var dims = shape.BatchShape(1);
        bool ok = mask.dim() == dims.Length - 1
            ? mask.shape.SequenceEqual(dims.Skip(1))
            : mask.dim() == dims.Length && mask.shape.SequenceEqual(dims);
        if (!ok)
            throw new ArgumentException($"A training condition's mask must have shape [{string.Join(", ", dims.Skip(1))}] or [{string.Join(", ", dims)}]; got [{string.Join(", ", mask.shape)}].", nameof(condition));
        return mask.dim() == dims.Length - 1 ? mask.unsqueeze(0) : mask;
    }

    private static void CopyWeights(nn.Module source, nn.Module destination)
    {
        using var _ = no_grad();
        var from = source.parameters().ToArray();
        var to = destination.parameters().ToArray();
        for (int i = 0; i < from.Length; i++)
            to[i].copy_(from[i]);
        var fromBuffers = source.buffers().ToArray();
        var toBuffers = destination.buffers().ToArray();
        for (int i = 0; i < fromBuffers.Length; i++)
            toBuffers[i].copy_(fromBuffers[i]);
    }

    private static string WeightsDescription(float[]? weights)
    {
        if (weights is null)
            return "uniform";
        // FNV-1a over the bits: HashCode is randomised per process, and checkpoints are resumed by other processes.
        ulong hash = 14695981039346656037;
        foreach (float w in weights)
            hash = (hash ^ (uint)BitConverter.SingleToInt32Bits(w)) * 1099511628211;
        return string.Create(CultureInfo.InvariantCulture, $"{weights.Length}:{hash:x16}");
    }

    private string RunDescription(DiffusionModel model, DenoiserOptions network, string samples, bool conditioned)
    {
        var o = _options;
        var c = CultureInfo.InvariantCulture;
        return string.Create(c, $"diffusion; shape={model.Shape}; schedule={model.Diffusion.Schedule}; target={model.Diffusion.Target}; clip={model.Diffusion.ClipDenoised}; network={network}; samples={samples}; batch={o.BatchSize}; lr={o.LearningRate:R}; gradclip={o.GradientClipNorm:R}; ema={o.EmaDecay:R}/{o.EmaUpdateEvery}/{o.EmaStartStep}; seed={o.Seed}; conditioned={conditioned}; weights={WeightsDescription(o.LossWeights)}");
    }
}
