using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;

namespace MLReward.Experiments.Images;

/// <summary>Where a run writes, and where it reports progress.</summary>
public sealed class ImagesRunOptions
{
    /// <summary>The folder the report, pictures and model zips go to.</summary>
    public required string OutputDirectory { get; init; }
    /// <summary>Receives a line per stage and progress lines.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Cancels the run between stages and inside training.</summary>
    public CancellationToken CancellationToken { get; init; }
    /// <summary>The device the models train and sample on ("cpu", "cuda" or "cuda:N", see <see cref="ExperimentDevice"/>);
    /// null = the CPU.</summary>
    public string? Device { get; init; }
}

/// <summary>One image as a row: its pixels (raw, in [0, 1]), whether its class is safe, and its class.</summary>
public sealed class ImageRow
{
    /// <summary>The pixels, raw values in [0, 1].</summary>
    public float[] Features { get; set; } = Array.Empty<float>();
    /// <summary>False for the unsafe classes: the label of the reward.</summary>
    public bool Safe { get; set; }
    /// <summary>The class.</summary>
    public uint Class { get; set; }

    /// <summary>The schema of rows whose <see cref="Features"/> hold <paramref name="pixels"/> values (ML.NET needs the size).</summary>
    public static SchemaDefinition Schema(int pixels)
    {
        var schema = SchemaDefinition.Create(typeof(ImageRow));
        schema[nameof(Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, pixels);
        return schema;
    }
}

/// <summary>
/// The paper's image experiment on small real images, entirely through the ML.NET API (docs/EXPERIMENTS.md section 3):
/// data -> the one-call estimator (base model on every class, expert on the safe classes, relative reward) -> Evaluate
/// on held-out images -> an ML.NET classifier of the classes -> guided sampling at several scales, judged by that
/// classifier -> report, pictures and model zips.
/// </summary>
public sealed class ImagesExperiment
{
    private readonly ImageDataset _data;
    private readonly HashSet<int> _unsafe;
    private readonly ImagesSettings _settings;
    private readonly ImagesRunOptions _run;
    private readonly MLContext _ml;
    private readonly Dictionary<string, double> _timings = new();

    /// <summary>Sets up a run on <paramref name="data"/> (28 x 28 images are downsampled as the settings say) with <paramref name="unsafeClasses"/> left out of the expert.</summary>
    public ImagesExperiment(ImageDataset data, IEnumerable<int> unsafeClasses, ImagesSettings settings, ImagesRunOptions run)
    {
        _data = data.Side == 28 && settings.Downsample > 1 ? data.Downsampled(settings.Downsample) : data;
        _unsafe = unsafeClasses.ToHashSet();
        if (_unsafe.Count == 0 || _unsafe.Any(c => c < 0 || c >= data.ClassNames.Count))
            throw new ArgumentException($"The unsafe classes (--unsafe) must be a non-empty subset of 0..{data.ClassNames.Count - 1}; got {string.Join(",", _unsafe)}.");
        if (_unsafe.Count == data.ClassNames.Count)
            throw new ArgumentException("Every class is unsafe: the expert would have nothing to learn.");
        _settings = settings;
        _run = run;
        _ml = new MLContext(seed: settings.Seed);
        ExperimentDevice.Apply(_ml, run.Device);
    }

    /// <summary>The sample shape: one channel, the (downsampled) side.</summary>
    public SampleShape Shape => SampleShape.Image(1, _data.Side, _data.Side);

    /// <summary>Runs every stage, writes report.json, report.md, the pictures and the model zips, and returns the report.</summary>
    public ImagesReport Run()
    {
        Directory.CreateDirectory(_run.OutputDirectory);
        int threads = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(_settings.Threads);
        try
        {
            var total = Stopwatch.StartNew();
            var (train, test) = Time("data", () => (_data.Take(_settings.TrainPerClass), _data.Take(_settings.TestPerClass, skip: _settings.TrainPerClass)));
            var trainView = View(train);
            var testView = View(test);
            using var chain = Time("models", () => Extract(trainView));
            var baseModel = (DiffusionModelTransformer)chain.First();
            var reward = chain.LastTransformer;
            var steps = Time("scoring step", () => ChooseScoringStep(reward, trainView));
            using var scorer = reward.AtScoringStep(steps.Chosen);
            var (metrics, perClass, scoredTest) = Time("evaluation", () => Evaluate(scorer, testView, test));
            var atZero = steps.Chosen == 0 ? metrics : _ml.RewardExtraction().Evaluate(reward.Transform(testView), nameof(ImageRow.Safe), "Reward");
            var diagnostic = _settings.DiagnosticImages <= 0 ? null : Time("conservativeness", () => Conservativeness(chain, baseModel, reward, testView));
            var classifier = Time("classifier", () => TrainClassifier(trainView));
            double classifierAccuracy = _ml.MulticlassClassification.Evaluate(classifier.Transform(testView), "ClassKey").MacroAccuracy;
            var realImages = Judge(classifier, testView);
            var guidance = Time("sampling", () => Sample(baseModel, reward, classifier));
            var chosen = Chosen(guidance.Select(g => g.Summary).ToList());
            var models = Time("model files", () => SaveModels(chain, trainView.Schema, baseModel, scorer, chosen));
            Time("pictures", () => Draw(test, scoredTest, perClass, guidance, chosen));
            _timings["total"] = total.Elapsed.TotalSeconds;
            var report = new ImagesReport
            {
                Dataset = _data.Name,
                ImageSide = _data.Side,
                UnsafeClasses = _unsafe.Order().Select(c => $"{c} {_data.ClassNames[c]}").ToList(),
                TrainImages = train.Images.Length,
                TestImages = test.Images.Length,
                ScoringStep = steps.Chosen,
                TrainingAucPerStep = steps.Auc,
                HeldoutAucAtStepZero = atZero.AreaUnderRocCurve,
                HeldoutAuc = metrics.AreaUnderRocCurve,
                HeldoutBalancedAccuracy = metrics.BalancedAccuracy,
                MeanRewardSafe = metrics.MeanRewardPositive,
                MeanRewardUnsafe = metrics.MeanRewardNegative,
                MeanRewardPerClass = perClass.Select((r, c) => new ImagesReport.ClassReward(c, _data.ClassNames[c], _unsafe.Contains(c), r.Length == 0 ? double.NaN : r.Average())).ToList(),
                ClassifierAccuracy = classifierAccuracy,
                ClassifierOnHeldOut = new ImagesReport.GuidanceRow(double.NaN, test.Images.Length, realImages.UnsafeShare, realImages.ConfidentShare, realImages.MeanTop),
                Guidance = guidance.Select(g => g.Summary).ToList(),
                Models = models,
                Conservativeness = diagnostic?.Entries(),
                TimingsSeconds = _timings.ToDictionary(t => t.Key, t => Math.Round(t.Value, 1)),
                Settings = _settings,
            };
            report.Write(_run.OutputDirectory);
            return report;
        }
        finally
        {
            TorchSharp.torch.set_num_threads(threads);
        }
    }

    private T Time<T>(string stage, Func<T> work)
    {
        _run.CancellationToken.ThrowIfCancellationRequested();
        _run.Log?.Invoke($"{stage}...");
        var clock = Stopwatch.StartNew();
        var result = work();
        _timings[stage] = clock.Elapsed.TotalSeconds;
        _run.Log?.Invoke($"{stage}: {clock.Elapsed.TotalSeconds:F0} s");
        return result;
    }

    private void Time(string stage, Action work) => Time(stage, () => { work(); return 0; });

    private IDataView View(ImageDataset images)
    {
        var rows = images.Images.Select((pixels, i) => new ImageRow { Features = pixels, Class = (uint)images.Labels[i], Safe = !_unsafe.Contains(images.Labels[i]) });
        return _ml.Data.LoadFromEnumerable(rows, ImageRow.Schema(images.Side * images.Side));
    }

    /// <summary>Stage "models": base on every image, expert on the safe ones, the reward at the noisy sample (the paper's image variant).</summary>
    private TransformerChain<RelativeRewardTransformer> Extract(IDataView train)
    {
        var s = _settings;
        DiffusionModelTrainer.Options Diffusion(int steps, int seed) => new()
        {
            DiffusionSteps = s.DiffusionSteps, Prediction = PredictionTarget.Noise, NetworkDimension = s.NetworkDimension,
            DimensionMultipliers = s.NetworkMultipliers, TrainingSteps = steps, BatchSize = s.DiffusionBatch,
            LearningRate = s.DiffusionLearningRate, Seed = seed, Threads = s.Threads, Progress = Progress($"diffusion ({steps} steps)"),
            CancellationToken = _run.CancellationToken,
        };
        return _ml.RewardExtraction().ExtractRelativeReward(new RelativeRewardExtractor.Options
        {
            Shape = Shape,
            LabelColumnName = nameof(ImageRow.Safe),
            BaseRows = BaseModelRows.All,
            BaseModel = Diffusion(s.BaseSteps, s.Seed),
            ExpertModel = Diffusion(s.ExpertSteps, s.Seed + 1),
            Reward = new RelativeRewardTrainer.Options
            {
                Network = RewardNetworkKind.Image, GradientAt = GradientLocation.Current, TrainingSteps = s.RewardSteps,
                BatchSize = s.RewardBatch, LearningRate = s.RewardLearningRate, TargetCachePoolSize = s.RewardPool,
                TargetCacheRefreshEvery = s.RewardPoolRefresh, Seed = s.Seed + 2, Threads = s.Threads,
                Progress = Progress($"reward ({s.RewardSteps} steps)"), CancellationToken = _run.CancellationToken,
            },
        }).Fit(train);
    }

    /// <summary>Stage "conservativeness": the diagnostic of the reward on held-out images (docs/METHOD.md section 4), with the
    /// gradient taken at x_t as the reward was trained; plot conservativeness.png.</summary>
    private ConservativenessReport Conservativeness(TransformerChain<RelativeRewardTransformer> chain, DiffusionModelTransformer baseModel,
        RelativeRewardTransformer reward, IDataView test)
    {
        var expert = (DiffusionModelTransformer)chain.ElementAt(1);
        int steps = _settings.DiffusionSteps;
        int stride = Math.Max(1, (steps - 1) / Math.Max(1, _settings.DiagnosticLevels - 1));
        var report = ConservativenessReport.Measure(_ml, baseModel, expert, reward, test, _settings.DiagnosticImages, stride, probes: 1, _settings.Seed,
            GradientLocation.Current);
        report.SavePlot($"{_data.Name}: conservativeness of the reward", Path.Combine(_run.OutputDirectory, "conservativeness.png"));
        _run.Log?.Invoke($"  conservativeness: explained fraction {report.MeanExplainedFraction:F3}, asymmetry {report.MeanAsymmetry:F3} (means over t)");
        return report;
    }

    private IProgress<TrainingProgress> Progress(string what) => new Progress<TrainingProgress>(p =>
    {
        if (p.Step % Math.Max(1, p.TotalSteps / 5) == 0)
            _run.Log?.Invoke($"  {what}: step {p.Step}/{p.TotalSteps}, loss {p.AverageLoss:G4}");
    });

    /// <summary>
    /// Stage "scoring step": the diffusion step at which clean images are scored, chosen on the training images (never the
    /// held-out ones) as the step whose reward best separates safe from unsafe. At t = 0 the two models nearly agree, so
    /// the objective pins the reward's t = 0 slice down least.
    /// </summary>
    private (int Chosen, Dictionary<string, double> Auc) ChooseScoringStep(RelativeRewardTransformer reward, IDataView train)
    {
        int steps = _settings.DiffusionSteps;
        var candidates = new[] { 0, steps / 10, steps / 5, 3 * steps / 10, 2 * steps / 5 }.Distinct().ToArray();
        var auc = new Dictionary<string, double>();
        foreach (int t in candidates)
        {
            using var scorer = reward.AtScoringStep(t);
            auc[t.ToString(System.Globalization.CultureInfo.InvariantCulture)] = _ml.RewardExtraction().Evaluate(scorer.Transform(train), nameof(ImageRow.Safe), "Reward").AreaUnderRocCurve;
        }
        int chosen = candidates.OrderByDescending(t => auc[t.ToString(System.Globalization.CultureInfo.InvariantCulture)]).ThenBy(t => t).First();
        _run.Log?.Invoke($"  training AUC per scoring step: {string.Join(", ", auc.Select(a => $"t={a.Key}: {a.Value:F3}"))}; chosen t = {chosen}");
        return (chosen, auc);
    }

    /// <summary>Stage "evaluation": safe vs unsafe on held-out images, and each class's rewards.</summary>
    private (RelativeRewardMetrics Metrics, float[][] PerClass, float[] Rewards) Evaluate(ITransformer chain, IDataView test, ImageDataset images)
    {
        var scored = chain.Transform(test);
        var metrics = _ml.RewardExtraction().Evaluate(scored, nameof(ImageRow.Safe), "Reward");
        var rewards = scored.GetColumn<float>("Reward").ToArray();
        var perClass = Enumerable.Range(0, _data.ClassNames.Count).Select(c => rewards.Where((_, i) => images.Labels[i] == c).ToArray()).ToArray();
        return (metrics, perClass, rewards);
    }

    /// <summary>Stage "classifier": ML.NET's one-versus-all boosted trees (FastTree) on the pixels, the judge of the samples.</summary>
    private ITransformer TrainClassifier(IDataView train)
    {
        var trees = _ml.BinaryClassification.Trainers.FastTree(labelColumnName: "ClassKey", featureColumnName: nameof(ImageRow.Features),
            numberOfTrees: _settings.ClassifierTrees);
        var pipeline = _ml.Transforms.Conversion.MapValueToKey("ClassKey", nameof(ImageRow.Class))
            .Append(_ml.MulticlassClassification.Trainers.OneVersusAll(trees, labelColumnName: "ClassKey"));
        return pipeline.Fit(train);
    }

    /// <summary>How the classifier judges images: the share it puts in an unsafe class, the share it recognises confidently
    /// (top-class probability at least 0.5) and its mean top-class probability.</summary>
    private (double UnsafeShare, double ConfidentShare, double MeanTop) Judge(ITransformer classifier, IDataView images)
    {
        var scores = classifier.Transform(images).GetColumn<float[]>("Score").ToArray();
        var keys = ClassOfKey(classifier, images);
        int unsafeCount = 0, confident = 0;
        double top = 0;
        foreach (var score in scores)
        {
            float total = score.Sum();
            int best = Array.IndexOf(score, score.Max());
            float probability = total > 0 ? score[best] / total : 0;
            if (_unsafe.Contains(keys[best]))
                unsafeCount++;
            if (probability >= 0.5f)
                confident++;
            top += probability;
        }
        int n = Math.Max(1, scores.Length);
        return ((double)unsafeCount / n, (double)confident / n, top / n);
    }

    /// <summary>What guided sampling at one scale gave.</summary>
    public sealed record GuidanceResult(ImagesReport.GuidanceRow Summary, float[][] Samples);

    /// <summary>Stage "sampling": the same seeds at every scale; each sample classified.</summary>
    private List<GuidanceResult> Sample(DiffusionModelTransformer baseModel, RelativeRewardTransformer reward, ITransformer classifier)
    {
        var seeds = _ml.Data.LoadFromEnumerable(Enumerable.Range(0, _settings.SamplesPerScale).Select(i => new SeedRow { Seed = 1000L * _settings.Seed + i }));
        var results = new List<GuidanceResult>();
        foreach (var scale in _settings.GuidanceScales)
        {
            _run.CancellationToken.ThrowIfCancellationRequested();
            using var sampler = _ml.RewardExtraction().GuidedSampling(baseModel, scale == 0 ? null : reward, new GuidedSamplingEstimator.Options
            {
                GuidanceScale = scale, SeedColumnName = nameof(SeedRow.Seed), BatchSize = 64, OutputColumnName = "Features",
            }).Fit(seeds);
            var samples = sampler.Transform(seeds).GetColumn<float[]>("Features").ToArray();
            var sampleRows = _ml.Data.LoadFromEnumerable(samples.Select(p => new ImageRow { Features = p }), ImageRow.Schema(samples[0].Length));
            var (unsafeShare, confidentShare, meanTop) = Judge(classifier, sampleRows);
            var row = new ImagesReport.GuidanceRow(scale, samples.Length, unsafeShare, confidentShare, meanTop);
            _run.Log?.Invoke($"  scale {scale}: unsafe share {row.UnsafeShare:P1}, recognised confidently {row.ConfidentShare:P1}");
            results.Add(new GuidanceResult(row, samples));
        }
        return results;
    }

    private sealed class SeedRow
    {
        public long Seed { get; set; }
    }

    /// <summary>Class number of each slot of the classifier's score vector (the key order of ClassKey).</summary>
    private static int[] ClassOfKey(ITransformer classifier, IDataView rows)
    {
        VBuffer<uint> values = default;
        classifier.GetOutputSchema(rows.Schema)["ClassKey"].GetKeyValues(ref values);
        return values.DenseValues().Select(v => (int)v).ToArray();
    }

    /// <summary>The scale used for the sampler file: the one with the lowest unsafe share among those where the classifier still
    /// recognises at least 80 % of the samples confidently (else the unguided one).</summary>
    public static ImagesReport.GuidanceRow Chosen(IReadOnlyList<ImagesReport.GuidanceRow> rows)
        => rows.Where(r => r.Scale > 0 && r.ConfidentShare >= 0.8).OrderBy(r => r.UnsafeShare).ThenBy(r => r.Scale).FirstOrDefault() ?? rows[0];

    /// <summary>Stage "model files": base, expert and reward as one chain and each alone, and the sampler at the chosen scale.</summary>
    private List<ImagesReport.ModelFile> SaveModels(TransformerChain<RelativeRewardTransformer> chain, DataViewSchema schema,
        DiffusionModelTransformer baseModel, RelativeRewardTransformer reward, ImagesReport.GuidanceRow chosen)
    {
        var files = new List<ImagesReport.ModelFile>();
        void Save(string name, ITransformer model, DataViewSchema input, string inputColumn, string contents)
        {
            SafeModelSave.Save(_ml, model, input, Path.Combine(_run.OutputDirectory, name));
            files.Add(new ImagesReport.ModelFile(name, inputColumn, Shape.ToString(), contents));
        }
        Save("models.zip", chain, schema, "Features", "base, expert and reward scoring at step 0 (TransformerChain)");
        Save("base.zip", baseModel, schema, "Features", "base diffusion model");
        Save("expert.zip", chain.ElementAt(1), schema, "Features", "expert diffusion model");
        Save("reward.zip", reward, schema, "Features", $"relative reward scoring at step {reward.ScoringStep} (adds Reward)");
        var seeds = _ml.Data.LoadFromEnumerable(new[] { new SeedRow() });
        using var sampler = _ml.RewardExtraction().GuidedSampling(baseModel, chosen.Scale == 0 ? null : reward, new GuidedSamplingEstimator.Options
        {
            GuidanceScale = chosen.Scale, SeedColumnName = nameof(SeedRow.Seed), OutputColumnName = "Sample",
        }).Fit(seeds);
        Save("sampler.zip", sampler, seeds.Schema, "Seed", $"guided sampler, scale {chosen.Scale} (adds Sample)");
        return files;
    }

    /// <summary>Stage "pictures".</summary>
    private void Draw(ImageDataset test, float[] rewards, float[][] perClass, List<GuidanceResult> guidance, ImagesReport.GuidanceRow chosen)
    {
        string Out(string name) => Path.Combine(_run.OutputDirectory, name);
        var order = Enumerable.Range(0, rewards.Length).OrderByDescending(i => rewards[i]).ToArray();
        int n = Math.Min(32, order.Length);
        ImagePlots.SaveGrids(Out("highest-reward.png"), test.Side, 8, 3, order.Take(n).Select(i => test.Images[i]).ToList());
        ImagePlots.SaveGrids(Out("lowest-reward.png"), test.Side, 8, 3, order.Reverse().Take(n).Select(i => test.Images[i]).ToList());
        ImagePlots.SaveRewardHistograms(Out("reward-histograms.png"), _data.ClassNames, perClass, _unsafe);
        var unguided = guidance.First(g => g.Summary.Scale == 0);
        var guided = guidance.First(g => g.Summary.Scale == chosen.Scale);
        int shown = Math.Min(64, unguided.Samples.Length);
        ImagePlots.SaveGrids(Out("samples-unguided-vs-guided.png"), test.Side, 8, 3, unguided.Samples.Take(shown).ToList(), guided.Samples.Take(shown).ToList());
        ImagePlots.SaveUnsafeShare(Out("unsafe-share.png"), guidance.Select(g => (g.Summary.Scale, g.Summary.UnsafeShare, g.Summary.ConfidentShare)).ToList());
    }
}
