using ScottPlot;

namespace MLReward.Experiments.Locomotion;

/// <summary>
/// Draws the return distributions of several conditions as a PNG with ScottPlot: every episode's return as a dot
/// (spread sideways by a fixed jitter so equal returns stay visible), the mean as a black bar with +- one standard error.
/// </summary>
public static class ReturnsPlot
{
    /// <summary>Renders <paramref name="conditions"/> to <paramref name="path"/>.</summary>
    public static void Save(IReadOnlyList<ConditionResult> conditions, string title, string path)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var random = new Random(0);
        var positions = new double[conditions.Count];
        var labels = new string[conditions.Count];
        for (int i = 0; i < conditions.Count; i++)
        {
            var condition = conditions[i];
            positions[i] = i;
            labels[i] = $"{condition.Name}\n(n = {condition.Episodes})";
            if (condition.Returns.Length == 0)
                continue;
            var xs = condition.Returns.Select(_ => i + (random.NextDouble() - 0.5) * 0.35).ToArray();
            var dots = plot.Add.ScatterPoints(xs, condition.Returns);
            dots.Color = palette.GetColor(i).WithAlpha(0.7);
            dots.MarkerSize = 7;
            dots.MarkerShape = MarkerShape.FilledCircle;

            var mean = plot.Add.Scatter(new[] { i - 0.25, i + 0.25 }, new[] { condition.MeanReturn, condition.MeanReturn });
            mean.Color = Colors.Black;
            mean.LineWidth = 3;
            mean.MarkerSize = 0;
            var error = plot.Add.ErrorBar(new[] { (double)i }, new[] { condition.MeanReturn }, new[] { condition.StandardError });
            error.Color = Colors.Black;
            error.LineWidth = 2;
        }
        plot.Axes.Bottom.SetTicks(positions, labels);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.SetLimitsX(-0.6, conditions.Count - 0.4);
        plot.Title(title, 13);
        plot.YLabel("episode return");
        plot.SavePng(path, Math.Max(520, 190 * conditions.Count), 480);
    }
}
