using MLReward.Experiments;

namespace MLReward.Cli.Tests;

/// <summary>What every report.json begins with, and its JSON conventions (<see cref="ExperimentReport"/>). The quick runs
/// (Maze2DQuickTests, LocomotionQuickTests, ImagesTests) check the same fields in the reports they write.</summary>
public class ReportHeaderTests
{
    [Fact]
    public void ReportsStartWithTheSchemaVersion_TheToolVersion_AndTheCommit_AndWriteEnumsByName()
    {
        var report = new MLReward.Experiments.Maze2D.Maze2DReport
        {
            Maze = "umaze",
            Layout = ["#####"],
            Preset = "quick",
            Settings = MLReward.Experiments.Maze2D.Maze2DSettings.Quick,
            Base = new MLReward.Experiments.Maze2D.Maze2DBaseResult { TimingsSeconds = [] },
            Goals = [],
            Summary = new MLReward.Experiments.Maze2D.Maze2DSummary(),
        };
        string json = report.ToJson();
        Assert.StartsWith($"{{\n  \"schema_version\": 2,\n  \"tool_version\": \"{BuildInfo.ToolVersion}\",\n  \"commit\": \"{BuildInfo.Commit}\",\n  \"experiment\": \"maze2d\"",
            json.ReplaceLineEndings("\n"));
        Assert.Contains("\"reward_features\": \"Transition\"", json);

        // The version is the command's (one version for the whole repository), the commit the checkout's (or "unknown").
        string cliVersion = typeof(CliApp).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .Cast<System.Reflection.AssemblyInformationalVersionAttribute>().Single().InformationalVersion;
        Assert.Equal(cliVersion.Split('+')[0], BuildInfo.ToolVersion);
        Assert.Matches("^([0-9a-f]{40}|unknown)$", BuildInfo.Commit);

        // Locomotion wrote its enums as numbers before schema 2.
        string locomotion = System.Text.Json.JsonSerializer.Serialize(MLReward.Experiments.Locomotion.LocomotionSettings.For("cheetah", "quick"),
            MLReward.Experiments.Locomotion.LocomotionReport.JsonOptions);
        Assert.Contains("\"normalizer\": \"Gaussian\"", locomotion);
        Assert.True(typeof(ExperimentReport).IsAssignableFrom(typeof(MLReward.Experiments.Images.ImagesReport)));
    }
}
