using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using MLReward.Experiments;
using Xunit.Abstractions;

namespace MLReward.Cli.Tests;

/// <summary><c>mlreward distill</c> on a tiny reward (windows of 4 steps of 2 values, a few training steps), and the ONNX
/// export it uses, checked against ML.NET's own scores.</summary>
public sealed class DistillCommandTests : IDisposable
{
    private const int Horizon = 4, Dimension = 2, Episodes = 40, Steps = 12;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "mlreward-distill-" + Guid.NewGuid().ToString("N"));
    private readonly string _model, _csv;

    private readonly ITestOutputHelper _output;

    public DistillCommandTests(ITestOutputHelper output)
    {
        _output = output;
        Directory.CreateDirectory(_root);
        _model = Path.Combine(_root, "reward.zip");
        _csv = Path.Combine(_root, "transitions.csv");
        var ml = new MLContext(1);
        var rows = Enumerable.Range(0, 80).Select(i => new Row
        {
            Features = Enumerable.Range(0, Horizon * Dimension).Select(k => (float)Math.Sin(0.7 * i + k)).ToArray(),
            Label = i % 2 == 0,
        }).ToList();
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, Horizon * Dimension);
        var view = ml.Data.LoadFromEnumerable(rows, schema);
        var options = new RelativeRewardExtractor.Options { Shape = SampleShape.Trajectory(Horizon, Dimension) };
        options.BaseModel.TrainingSteps = options.ExpertModel.TrainingSteps = options.Reward.TrainingSteps = 2;
        using var chain = ml.RewardExtraction().ExtractRelativeReward(options).Fit(view);
        ml.Model.Save(chain.LastTransformer, view.Schema, _model);

        // Expert episodes drift toward (1, 1), base episodes wander; the label is constant per episode.
        var random = new Random(3);
        var lines = new List<string> { "Episode,X,Y,Label" };
        for (int e = 0; e < Episodes; e++)
        {
            bool expert = e % 2 == 0;
            double x = random.NextDouble() * 2 - 1, y = random.NextDouble() * 2 - 1;
            for (int t = 0; t < Steps; t++)
            {
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"ep{e},{x:R},{y:R},{(expert ? "true" : "false")}"));
                x += expert ? 0.3 * (1 - x) : 0.3 * (random.NextDouble() - 0.5);
                y += expert ? 0.3 * (1 - y) : 0.3 * (random.NextDouble() - 0.5);
            }
        }
        File.WriteAllLines(_csv, lines);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData(DistillationLearner.FastTree)]
    [InlineData(DistillationLearner.LightGbm)]
    public void OnnxExport_ScoresAsMLNetDoes(DistillationLearner learner)
    {
        var ml = new MLContext(2);
        using var loaded = (IDisposable)ml.Model.Load(_model, out _);
        var reward = TrajectoryScoring.FindReward((ITransformer)loaded, _model);
        var windows = TrajectoryScoring.ReadWindows(ml, reward, _model, _csv, labelColumn: "Label");
        var distilled = ml.RewardExtraction().DistillReward(reward, new RewardDistillationEstimator.Options
        {
            LabelColumnName = "Label",
            EpisodeColumnName = TrajectoryScoring.EpisodeColumnName,
            Learner = learner,
            Seed = 1,
        }).Distill(windows);
        Assert.Equal(Episodes * (Steps - Horizon + 1), distilled.Metrics.TrainingRows + distilled.Metrics.HeldOutRows);

        string onnx = Path.Combine(_root, $"reward-{learner}.onnx");
        OnnxExport.Export(ml, distilled.Model, distilled.HeldOut, distilled.FeatureColumnName, onnx);
        var check = OnnxExport.Compare(ml, distilled.Model, onnx, distilled.HeldOut, distilled.FeatureColumnName, distilled.OutputColumnName, TimeSpan.Zero);
        Assert.Equal(distilled.Metrics.HeldOutRows, check.Rows);
        Assert.True(check.MaxAbsoluteDifference <= 1e-5, $"max |ONNX - ML.NET| = {check.MaxAbsoluteDifference}");
        Assert.True(check.RowsPerSecond > 0);
    }

    [Fact]
    public void Distill_WritesAModelThatScoresLikeTheStudent_AndAnOnnxFileThatAgrees()
    {
        string output = Path.Combine(_root, "out", "reward-distilled.zip"), onnx = Path.Combine(_root, "out", "reward.onnx");
        var result = CliProcess.Run(["distill", "--model", _model, "--data", _csv, "--out", output, "--onnx", onnx, "--label-column", "Label"]);
        _output.WriteLine(result.Stdout);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("", result.Stderr);
        Assert.Contains($"measured on", result.Stdout);
        Assert.Matches(@"Spearman \(student vs teacher\) +-?[01]\.\d{4}", result.Stdout);
        Assert.Matches(@"preference accuracy +[01]\.\d{4} +[01]\.\d{4}", result.Stdout);
        var difference = Regex.Match(result.Stdout, @"max \|ONNX Runtime - ML\.NET\| on [\d,]+ held-out windows: (\S+);");
        Assert.True(difference.Success, result.Stdout);
        Assert.True(double.Parse(difference.Groups[1].Value, CultureInfo.InvariantCulture) <= 1e-5, difference.Value);
        Assert.Matches(@"ONNX Runtime scores [\d,]+ windows/s", result.Stdout);
        Assert.True(File.Exists(onnx));

        // The saved student asks for the window vector alone and scores every window of the file.
        var ml = new MLContext(3);
        var student = ml.Model.Load(output, out var inputSchema);
        Assert.Equal(["Features"], inputSchema.Select(c => c.Name));
        using var teacher = (IDisposable)ml.Model.Load(_model, out _);
        var windows = TrajectoryScoring.ReadWindows(ml, TrajectoryScoring.FindReward((ITransformer)teacher, _model), _model, _csv, labelColumn: "Label");
        var rewards = student.Transform(windows).GetColumn<float>("Reward").ToArray();
        Assert.Equal(Episodes * (Steps - Horizon + 1), rewards.Length);
        Assert.True(rewards.Distinct().Count() > 1);
    }

    [Theory]
    [InlineData("--test-fraction|1", "--test-fraction must lie strictly between 0 and 1; got 1.")]
    [InlineData("--learner|xgboost", "--learner")]
    [InlineData("--trees|0", "--trees must be at least 1; got 0.")]
    [InlineData("--leaves|1", "--leaves must be at least 2; got 1.")]
    [InlineData("--label-column|Expert", "has no label column 'Expert'")]
    public void BadArguments_FailWithOneLine(string arguments, string message)
    {
        var result = CliProcess.Run(["distill", "--model", _model, "--data", _csv, "--out", Path.Combine(_root, "d.zip"), .. arguments.Split('|')]);
        Assert.NotEqual(0, result.ExitCode);
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("mlreward: error: ", line);
        Assert.Contains(message, line);
    }

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
        public bool Label { get; set; }
    }
}
