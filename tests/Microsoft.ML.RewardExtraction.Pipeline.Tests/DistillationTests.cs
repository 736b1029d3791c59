using System.IO.Compression;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace Microsoft.ML.RewardExtraction.Pipeline.Tests;

/// <summary>A trajectory with its label (expert or base walk).</summary>
public sealed class LabelledTrajectoryRow
{
    [VectorType(Synthetic.Length)]
    public float[] Trajectory { get; set; } = new float[Synthetic.Length];

    public bool Label { get; set; }

    public float NumericLabel { get; set; }

    /// <summary>Base and expert walks interleaved, as <see cref="Synthetic.Mixed"/>.</summary>
    public static List<LabelledTrajectoryRow> Mixed(int count, int seed) => Synthetic.Mixed(count, seed)
        .Select((row, i) => new LabelledTrajectoryRow { Trajectory = row.Trajectory, Label = i % 2 == 1, NumericLabel = i % 2 })
        .ToList();
}

/// <summary>The feature column as one float, not a vector.</summary>
public sealed class ScalarTrajectoryRow
{
    public float Trajectory { get; set; }
}

[Collection(TrainedCollection.Name)]
public class DistillationTests(TrainedModels models, ITestOutputHelper output)
{
    private const int Rows = 1000;

    private IDataView Data(int seed = 30) => models.Ml.Data.LoadFromEnumerable(LabelledTrajectoryRow.Mixed(Rows, seed));

    private static RewardDistillationEstimator.Options Options(DistillationLearner learner = DistillationLearner.FastTree) => new()
    {
        LabelColumnName = "Label",
        Learner = learner,
        Seed = 5,
    };

    [Fact]
    public void FastTree_FollowsTheTeacherOnHeldOutRows_AndTheMetricsAreTheLibrarysOwn()
    {
        var ml = models.Ml;
        var distilled = ml.RewardExtraction().DistillReward(models.Reward, Options()).Distill(Data());
        var m = distilled.Metrics;
        output.WriteLine(m.ToString());
        output.WriteLine($"AUC teacher {m.TeacherAreaUnderRocCurve:F3}, student {m.StudentAreaUnderRocCurve:F3}");

        Assert.Equal(Rows, m.TrainingRows + m.HeldOutRows);
        Assert.InRange(m.HeldOutRows, 140, 260);   // TestFraction 0.2 of 1000, drawn per row
        Assert.True(m.Spearman > 0.95, $"Spearman {m.Spearman}");
        Assert.True(m.Pearson > 0.95, $"Pearson {m.Pearson}");

        // The held-out rows carry the teacher's rewards: the metrics are recomputed here independently.
        var scored = distilled.Model.Transform(distilled.HeldOut);
        var teacher = scored.GetColumn<float>(RewardDistillationEstimator.TeacherRewardColumnName).ToArray();
        var student = scored.GetColumn<float>("Reward").ToArray();
        Assert.Equal(m.HeldOutRows, teacher.Length);
        Assert.Equal(Stats.Spearman(student, teacher), m.Spearman, 12);
        Assert.Equal(teacher, models.Reward.Transform(distilled.HeldOut).GetColumn<float>("Reward").ToArray());
        Assert.Equal(student, scored.GetColumn<float>("Score").ToArray());

        // The AUCs are the library's Evaluate on the held-out rows; the accuracies come from thresholds fitted on the
        // training rows, so they cannot exceed the held-out best balanced accuracy.
        var teacherHeldOut = ml.RewardExtraction().Evaluate(scored, "Label", RewardDistillationEstimator.TeacherRewardColumnName);
        var studentHeldOut = ml.RewardExtraction().Evaluate(scored, "Label", "Reward");
        Assert.Equal(teacherHeldOut.AreaUnderRocCurve, m.TeacherAreaUnderRocCurve);
        Assert.Equal(studentHeldOut.AreaUnderRocCurve, m.StudentAreaUnderRocCurve);
        Assert.InRange(m.TeacherAccuracy!.Value, 0.5, teacherHeldOut.BalancedAccuracy);
        Assert.InRange(m.StudentAccuracy!.Value, 0.5, studentHeldOut.BalancedAccuracy);
        Assert.True(m.TeacherAccuracy > 0.7, $"teacher accuracy {m.TeacherAccuracy}");   // 0.80 measured: the tiny teacher's own level
        Assert.True(Math.Abs(m.StudentAccuracy!.Value - m.TeacherAccuracy!.Value) < 0.05, m.ToString());
    }

    [Fact]
    public void TheDistilledModel_SavesWithoutMLRewardComponents_AndLoadsToTheSameScores()
    {
        var ml = models.Ml;
        var data = Data();
        var distilled = ml.RewardExtraction().DistillReward(models.Reward, Options()).Distill(data);
        var expected = distilled.Model.Transform(data).GetColumn<float>("Reward").ToArray();

        using var dir = new TempFolder();
        string path = Path.Combine(dir.Path, "distilled.zip");
        ml.Model.Save(distilled.Model, data.Schema, path);
        // Every component names the assembly that loads it; none may be MLReward's or TorchSharp's.
        using (var zip = ZipFile.OpenRead(path))
        {
            foreach (var entry in zip.Entries)
            {
                using var reader = new StreamReader(entry.Open(), Encoding.Latin1);
                string content = reader.ReadToEnd();
                Assert.DoesNotContain("RewardExtraction", content);
                Assert.DoesNotContain("TorchSharp", content);
            }
        }
        var loaded = new MLContext(seed: 9).Model.Load(path, out _);
        Assert.Equal(expected, loaded.Transform(data).GetColumn<float>("Reward").ToArray());

        // The same seed distils the same trees.
        var again = ml.RewardExtraction().DistillReward(models.Reward, Options()).Fit(data);
        Assert.Equal(expected, again.Transform(data).GetColumn<float>("Reward").ToArray());
    }

    [Fact]
    public void LightGbm_AlsoFollowsTheTeacher()
    {
        var m = models.Ml.RewardExtraction().DistillReward(models.Reward, Options(DistillationLearner.LightGbm)).Distill(Data()).Metrics;
        output.WriteLine(m.ToString());
        Assert.True(m.Spearman > 0.95, $"Spearman {m.Spearman}");
    }

    [Fact]
    public void WithoutALabel_OnlyFidelity_AndTheEpisodeColumnKeepsEpisodesTogether()
    {
        var ml = models.Ml;
        var m = ml.RewardExtraction().DistillReward(models.Reward).Distill(Data()).Metrics;
        Assert.Null(m.TeacherAccuracy);
        Assert.Null(m.StudentAccuracy);
        Assert.Null(m.TeacherAreaUnderRocCurve);

        // Ten rows per "episode": the held-out rows are whole episodes.
        var rows = LabelledTrajectoryRow.Mixed(Rows, 31).Select((r, i) => new { r.Trajectory, Episode = (uint)(i / 10) });
        var episodes = ml.Data.LoadFromEnumerable(rows.Select(r => new EpisodeTrajectoryRow { Trajectory = r.Trajectory, Episode = r.Episode }));
        var distilled = ml.RewardExtraction().DistillReward(models.Reward, new RewardDistillationEstimator.Options { EpisodeColumnName = "Episode", Seed = 3 })
            .Distill(episodes);
        var counts = distilled.HeldOut.GetColumn<uint>("Episode").GroupBy(e => e).Select(g => g.Count()).ToArray();
        Assert.NotEmpty(counts);
        Assert.All(counts, c => Assert.Equal(10, c));
        Assert.Equal(Rows, distilled.Metrics.TrainingRows + distilled.Metrics.HeldOutRows);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(-0.5)]
    [InlineData(double.NaN)]
    public void TestFractionOutsideZeroOne_IsRejectedAtConstruction(double fraction)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => models.Ml.RewardExtraction().DistillReward(models.Reward,
            new RewardDistillationEstimator.Options { TestFraction = fraction }));
        Assert.Contains("TestFraction", e.Message);
        Assert.Contains("must lie strictly between 0 and 1", e.Message);
    }

    [Fact]
    public void OtherBadOptions_NameTheOption()
    {
        var rx = models.Ml.RewardExtraction();
        foreach (var (options, name) in new (RewardDistillationEstimator.Options, string)[]
        {
            (new() { NumberOfTrees = 0 }, "NumberOfTrees"),
            (new() { NumberOfLeaves = 1 }, "NumberOfLeaves"),
            (new() { MinimumExampleCountPerLeaf = 0 }, "MinimumExampleCountPerLeaf"),
            (new() { LearningRate = 0 }, "LearningRate"),
            (new() { Learner = (DistillationLearner)7 }, "Learner"),
            (new() { OutputColumnName = "" }, "OutputColumnName"),
            (new() { OutputColumnName = RewardDistillationEstimator.TeacherRewardColumnName }, "OutputColumnName"),
            (new() { LabelColumnName = "Reward" }, "LabelColumnName"),
        })
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => rx.DistillReward(models.Reward, options));
            Assert.Contains(name, e.Message);
        }
    }

    [Fact]
    public void WrongColumns_FailWithMLNetWording()
    {
        var ml = models.Ml;
        var rx = ml.RewardExtraction();
        const string expected = "expected Vector<Single, 16> (Trajectory(H=8, D=2))";

        var wrongName = ml.Data.LoadFromEnumerable(new[] { new WrongNameRow() });
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => rx.DistillReward(models.Reward).Distill(wrongName));
        Assert.Contains($"Could not find input column 'Trajectory': {expected}. The input has columns 'Path'.", missing.Message);

        var scalar = ml.Data.LoadFromEnumerable(new[] { new ScalarTrajectoryRow() });
        var notVector = Assert.Throws<ArgumentOutOfRangeException>(() => rx.DistillReward(models.Reward).Fit(scalar));
        Assert.Contains($"Schema mismatch for input column 'Trajectory': {expected}, got Single.", notVector.Message);

        var data = Data();
        var noLabel = Assert.Throws<ArgumentOutOfRangeException>(() => rx.DistillReward(models.Reward, labelColumnName: "Expert").Distill(data));
        Assert.Contains("Could not find label column 'Expert'", noLabel.Message);
        var numeric = Assert.Throws<ArgumentOutOfRangeException>(() => rx.DistillReward(models.Reward, labelColumnName: "NumericLabel").Distill(data));
        Assert.Contains("Schema mismatch for label column 'NumericLabel': expected Boolean, got Single", numeric.Message);
        var noEpisode = Assert.Throws<ArgumentOutOfRangeException>(() =>
            rx.DistillReward(models.Reward, new RewardDistillationEstimator.Options { EpisodeColumnName = "Episode" }).GetOutputSchema(SchemaShape.Create(data.Schema)));
        Assert.Contains("Could not find episode column 'Episode'", noEpisode.Message);
    }
}

/// <summary>A trajectory with its episode id.</summary>
public sealed class EpisodeTrajectoryRow
{
    [VectorType(Synthetic.Length)]
    public float[] Trajectory { get; set; } = new float[Synthetic.Length];

    public uint Episode { get; set; }
}
