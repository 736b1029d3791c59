using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.RewardExtraction;
using ScottPlot;

namespace MLReward.Experiments;

/// <summary>
/// The conservativeness diagnostic of one extracted reward (docs/METHOD.md section 4) as the experiments report it: measured
/// with the catalog's <c>Conservativeness</c> on held-out rows, written to report.json (one entry per noise level), to
/// report.md (a table) and as a plot against t.
/// </summary>
public sealed class ConservativenessReport
{
    private ConservativenessReport(IReadOnlyList<ConservativenessAtStep> steps, double seconds)
    {
        Steps = steps;
        Seconds = seconds;
    }

    /// <summary>Per noise level: explained fraction and asymmetry.</summary>
    public IReadOnlyList<ConservativenessAtStep> Steps { get; }

    /// <summary>Time taken to measure.</summary>
    public double Seconds { get; }

    /// <summary>Mean explained fraction over the measured levels (the finite ones).</summary>
    public double MeanExplainedFraction => Mean(Steps.Select(s => s.ExplainedFraction));

    /// <summary>Mean asymmetry over the measured levels (the finite ones).</summary>
    public double MeanAsymmetry => Mean(Steps.Select(s => s.Asymmetry));

    /// <summary>Measures the diagnostic of <paramref name="reward"/> (extracted from <paramref name="baseModel"/>, the model the
    /// reward's difference was taken against, and <paramref name="expertModel"/>) on at most <paramref name="maxRows"/> rows of
    /// <paramref name="heldOut"/>, at every <paramref name="stride"/>-th noise level; <paramref name="gradientAt"/> as the reward was trained.</summary>
    public static ConservativenessReport Measure(MLContext ml, DiffusionModelTransformer baseModel, DiffusionModelTransformer expertModel,
        RelativeRewardTransformer reward, IDataView heldOut, int maxRows, int stride, int probes, int seed,
        GradientLocation gradientAt = GradientLocation.BaseMean)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int steps = baseModel.Model.Diffusion.Steps;
        var levels = Enumerable.Range(0, steps).Where(t => t % Math.Max(1, stride) == 0 || t == steps - 1).ToArray();
        var rows = ml.Data.TakeRows(heldOut, maxRows);
        var measured = ml.RewardExtraction().Conservativeness(baseModel, expertModel, reward, rows, levels, probes, seed, gradientAt);
        return new ConservativenessReport(measured, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The report.json entries, one per noise level.</summary>
    public List<ConservativenessEntry> Entries() =>
        Steps.Select(s => new ConservativenessEntry { Step = s.Step, ExplainedFraction = Round(s.ExplainedFraction), Asymmetry = Round(s.Asymmetry), Samples = s.Samples }).ToList();

    /// <summary>Rebuilds a report from its entries (e.g. read back from a worker's result).</summary>
    public static ConservativenessReport From(IEnumerable<ConservativenessEntry> entries, double seconds = double.NaN) =>
        new(entries.Select(e => new ConservativenessAtStep(e.Step, e.Samples, e.ExplainedFraction, e.Asymmetry)).ToList(), seconds);

    /// <summary>A markdown table of the levels, with a one-line reading aid.</summary>
    public string ToMarkdown()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("Explained fraction: the share of mu_expert - mu_base that the reward's gradient explains (1 = all). Asymmetry: the antisymmetric share of the difference's Jacobian (0 = a gradient field, 1 = a rotation).");
        sb.AppendLine();
        sb.AppendLine("| t | explained fraction | asymmetry |");
        sb.AppendLine("|---:|---:|---:|");
        foreach (var s in Steps)
            sb.AppendLine(string.Create(c, $"| {s.Step} | {s.ExplainedFraction:F3} | {s.Asymmetry:F3} |"));
        sb.AppendLine(string.Create(c, $"| mean | {MeanExplainedFraction:F3} | {MeanAsymmetry:F3} |"));
        return sb.ToString();
    }

    /// <summary>Plots both numbers against t.</summary>
    public void SavePlot(string title, string path)
    {
        var plot = new Plot();
        double[] t = Steps.Select(s => (double)s.Step).ToArray();
        var explained = plot.Add.Scatter(t, Steps.Select(s => Finite(s.ExplainedFraction)).ToArray());
        explained.LegendText = "explained fraction";
        explained.LineWidth = 2;
        var asymmetry = plot.Add.Scatter(t, Steps.Select(s => Finite(s.Asymmetry)).ToArray());
        asymmetry.LegendText = "asymmetry of the difference";
        asymmetry.LineWidth = 2;
        plot.Axes.SetLimitsY(Math.Min(0, Steps.Select(s => Finite(s.ExplainedFraction)).Where(double.IsFinite).DefaultIfEmpty(0).Min()) - 0.05, 1.05);
        plot.ShowLegend(Alignment.LowerRight);
        plot.Title(title, 13);
        plot.XLabel("noise level t");
        plot.SavePng(path, 640, 420);
    }

    private static double Finite(double value) => double.IsFinite(value) ? value : double.NaN;

    private static double Round(double value) => double.IsFinite(value) ? Math.Round(value, 4) : double.NaN;

    private static double Mean(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToArray();
        return finite.Length == 0 ? double.NaN : finite.Average();
    }
}

/// <summary>One noise level of the diagnostic in report.json.</summary>
public sealed class ConservativenessEntry
{
    /// <summary>The noise level t.</summary>
    public int Step { get; init; }

    /// <summary>1 - E||grad R - d||^2 / E||d - mean d||^2 for d = mu_expert - mu_base.</summary>
    public double ExplainedFraction { get; init; }

    /// <summary>||(J - J^T)/2||_F / ||J||_F of the difference's Jacobian (Hutchinson estimate).</summary>
    public double Asymmetry { get; init; }

    /// <summary>Held-out rows used.</summary>
    public int Samples { get; init; }
}
