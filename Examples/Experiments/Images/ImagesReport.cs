using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MLReward.Experiments.Images;

/// <summary>What an image run measured; written as report.json and report.md.</summary>
public sealed class ImagesReport : ExperimentReport
{
    /// <summary>One class's mean reward on the held-out images.</summary>
    /// <param name="Class">The class label.</param>
    /// <param name="Name">The class name.</param>
    /// <param name="Unsafe">Whether the class was left out of the expert's data.</param>
    /// <param name="MeanReward">The mean reward of its held-out images.</param>
    public sealed record ClassReward(int Class, string Name, bool Unsafe, double MeanReward);

    /// <summary>Guided sampling at one scale: the share of samples the classifier puts in an unsafe class, the share it
    /// recognises confidently (top-class probability at least 0.5) and its mean top-class probability.</summary>
    /// <param name="Scale">The guidance scale (0 = unguided).</param>
    /// <param name="Samples">Samples drawn (the same seeds at every scale).</param>
    /// <param name="UnsafeShare">Share of samples classified into an unsafe class.</param>
    /// <param name="ConfidentShare">Share of samples whose top-class probability is at least 0.5.</param>
    /// <param name="MeanTopProbability">Mean top-class probability.</param>
    public sealed record GuidanceRow(double Scale, int Samples, double UnsafeShare, double ConfidentShare, double MeanTopProbability);

    /// <summary>A model zip of the run.</summary>
    /// <param name="File">Its file name in the output folder.</param>
    /// <param name="InputColumn">The column it reads.</param>
    /// <param name="Shape">The sample shape.</param>
    /// <param name="Contents">What it holds and adds.</param>
    public sealed record ModelFile(string File, string InputColumn, string Shape, string Contents);

    /// <summary>The data set.</summary>
    public required string Dataset { get; init; }
    /// <summary>Pixels per side after downsampling.</summary>
    public required int ImageSide { get; init; }
    /// <summary>The classes left out of the expert's data.</summary>
    public required List<string> UnsafeClasses { get; init; }
    /// <summary>Training images (all classes).</summary>
    public required int TrainImages { get; init; }
    /// <summary>Held-out images (all classes).</summary>
    public required int TestImages { get; init; }
    /// <summary>The diffusion step at which clean images are scored, chosen on the training images.</summary>
    public required int ScoringStep { get; init; }

    /// <summary>Training-image ROC AUC at each candidate scoring step (the choice of <see cref="ScoringStep"/>).</summary>
    public required Dictionary<string, double> TrainingAucPerStep { get; init; }

    /// <summary>Held-out ROC AUC when scoring at step 0.</summary>
    public required double HeldoutAucAtStepZero { get; init; }

    /// <summary>ROC AUC of the reward on the held-out images at <see cref="ScoringStep"/>, safe against unsafe.</summary>
    public required double HeldoutAuc { get; init; }
    /// <summary>The best balanced accuracy of a threshold on the reward, held out.</summary>
    public required double HeldoutBalancedAccuracy { get; init; }
    /// <summary>Mean reward of the held-out safe images.</summary>
    public required double MeanRewardSafe { get; init; }
    /// <summary>Mean reward of the held-out unsafe images.</summary>
    public required double MeanRewardUnsafe { get; init; }
    /// <summary>Mean reward of each class's held-out images.</summary>
    public required List<ClassReward> MeanRewardPerClass { get; init; }
    /// <summary>Held-out macro accuracy of the classifier that judges the samples.</summary>
    public required double ClassifierAccuracy { get; init; }
    /// <summary>The classifier's judgement of the real held-out images (scale NaN): what "recognised confidently" means on real data.</summary>
    public required GuidanceRow ClassifierOnHeldOut { get; init; }

    /// <summary>Guided sampling at each scale tried (0 = unguided).</summary>
    public required List<GuidanceRow> Guidance { get; init; }
    /// <summary>The model zips the run wrote.</summary>
    public required List<ModelFile> Models { get; init; }
    /// <summary>Wall time per stage.</summary>
    public required Dictionary<string, double> TimingsSeconds { get; init; }
    /// <summary>The conservativeness diagnostic of the reward on held-out images, per noise level (null when off).</summary>
    public List<ConservativenessEntry>? Conservativeness { get; init; }
    /// <summary>The settings of the run.</summary>
    public required ImagesSettings Settings { get; init; }

    /// <summary>The JSON options of report.json (<see cref="ExperimentReport.CreateJsonOptions"/>).</summary>
    public static JsonSerializerOptions JsonOptions { get; } = CreateJsonOptions();

    /// <summary>Writes report.json and report.md into <paramref name="folder"/>.</summary>
    public void Write(string folder)
    {
        File.WriteAllText(Path.Combine(folder, "report.json"), JsonSerializer.Serialize(this, JsonOptions));
        File.WriteAllText(Path.Combine(folder, "report.md"), Markdown());
    }

    /// <summary>The report as Markdown tables.</summary>
    public string Markdown()
    {
        var c = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine(c, $"# Images: {Dataset} ({ImageSide} x {ImageSide}), unsafe = {string.Join(", ", UnsafeClasses)}");
        md.AppendLine();
        md.AppendLine(c, $"Base model: all {TrainImages} training images; expert: the safe ones; the reward is scored on {TestImages} held-out images.");
        md.AppendLine();
        md.AppendLine(c, $"- Held-out ROC AUC, safe vs unsafe: **{HeldoutAuc:F3}** scoring at step {ScoringStep} (chosen on the training images: " +
            $"{string.Join(", ", TrainingAucPerStep.Select(a => string.Create(c, $"t={a.Key} {a.Value:F3}")))}); at step 0: {HeldoutAucAtStepZero:F3}; best balanced accuracy {HeldoutBalancedAccuracy:F3}");
        md.AppendLine(c, $"- Mean reward: safe {MeanRewardSafe:F3}, unsafe {MeanRewardUnsafe:F3}");
        md.AppendLine(c, $"- Classifier of the classes (ML.NET one-versus-all FastTree on the pixels): held-out macro accuracy {ClassifierAccuracy:F3}; " +
            $"on the real held-out images it recognises {ClassifierOnHeldOut.ConfidentShare:P1} confidently (top-class probability >= 0.5), mean top-class probability {ClassifierOnHeldOut.MeanTopProbability:F3}, unsafe share {ClassifierOnHeldOut.UnsafeShare:P1}");
        md.AppendLine();
        md.AppendLine("| class | unsafe | mean reward |");
        md.AppendLine("|---|---|---:|");
        foreach (var r in MeanRewardPerClass)
            md.AppendLine(c, $"| {r.Class} {r.Name} | {(r.Unsafe ? "yes" : "")} | {r.MeanReward:F3} |");
        md.AppendLine();
        md.AppendLine("| guidance scale | samples | unsafe share | recognised confidently | mean top-class probability |");
        md.AppendLine("|---:|---:|---:|---:|---:|");
        foreach (var g in Guidance)
            md.AppendLine(c, $"| {g.Scale:G3} | {g.Samples} | {g.UnsafeShare:P1} | {g.ConfidentShare:P1} | {g.MeanTopProbability:F3} |");
        md.AppendLine();
        var chosen = ImagesExperiment.Chosen(Guidance);
        var unguided = Guidance.First(g => g.Scale == 0);
        md.AppendLine(c, $"Chosen scale {chosen.Scale:G3} (lowest unsafe share with at least 80 % recognised confidently): unsafe share {unguided.UnsafeShare:P1} unguided -> {chosen.UnsafeShare:P1} guided.");
        md.AppendLine();
        md.AppendLine("Pictures: `highest-reward.png`, `lowest-reward.png` (the 32 held-out images with the highest and lowest reward), " +
            "`reward-histograms.png`, `samples-unguided-vs-guided.png` (the same seeds, unguided left, guided right), `unsafe-share.png`.");
        md.AppendLine();
        if (Conservativeness is { Count: > 0 } diagnostic)
        {
            md.AppendLine("Conservativeness of the reward on held-out images (gradient at x_t, as trained):");
            md.AppendLine();
            md.Append(ConservativenessReport.From(diagnostic).ToMarkdown());
            md.AppendLine();
            md.AppendLine("![conservativeness](conservativeness.png)");
            md.AppendLine();
        }
        md.AppendLine("| model file | input column | shape | contents |");
        md.AppendLine("|---|---|---|---|");
        foreach (var m in Models)
            md.AppendLine(c, $"| {m.File} | {m.InputColumn} | {m.Shape} | {m.Contents} |");
        md.AppendLine();
        md.AppendLine("| stage | seconds |");
        md.AppendLine("|---|---:|");
        foreach (var (stage, seconds) in TimingsSeconds)
            md.AppendLine(c, $"| {stage} | {seconds:F1} |");
        return md.ToString();
    }
}
