using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MLReward.Experiments;

/// <summary>
/// What every report.json begins with, so that a reader can tell which layout it reads and which build wrote it
/// (<c>schema_version</c>, <c>tool_version</c>, <c>commit</c>), and the JSON conventions the three experiments share.
/// </summary>
public abstract class ExperimentReport
{
    /// <summary>The layout of report.json. 2: these header fields, and enums written by name (in 1, locomotion wrote them as
    /// numbers). Bump it whenever a field changes meaning or type, so that scripts comparing runs can refuse what they
    /// cannot read.</summary>
    public const int CurrentSchemaVersion = 2;

    /// <summary>The layout of this report (<see cref="CurrentSchemaVersion"/> when written).</summary>
    [JsonPropertyOrder(-3)]
    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    /// <summary>The version of the program that wrote the report (<see cref="BuildInfo.ToolVersion"/>).</summary>
    [JsonPropertyOrder(-2)]
    public string ToolVersion { get; init; } = BuildInfo.ToolVersion;

    /// <summary>The git commit the program was built from (<see cref="BuildInfo.Commit"/>).</summary>
    [JsonPropertyOrder(-1)]
    public string Commit { get; init; } = BuildInfo.Commit;

    /// <summary>
    /// New JSON options with the conventions of every report.json: snake_case property names, enums by name (the names
    /// <c>--set</c> accepts), indented, NaN and infinities as strings; <paramref name="customize"/> adds a report's own
    /// (null handling, dictionary keys).
    /// </summary>
    public static JsonSerializerOptions CreateJsonOptions(Action<JsonSerializerOptions>? customize = null)
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            WriteIndented = true,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            Converters = { new JsonStringEnumConverter() },
        };
        customize?.Invoke(options);
        return options;
    }
}

/// <summary>What the build embedded about itself: the version and the git commit (see MLReward.Experiments.csproj).</summary>
public static class BuildInfo
{
    /// <summary>What <see cref="ToolVersion"/> and <see cref="Commit"/> say when the build could not tell.</summary>
    public const string Unknown = "unknown";

    private static readonly Assembly s_assembly = typeof(BuildInfo).Assembly;

    /// <summary>The informational version without its "+commit" suffix (the commit is <see cref="Commit"/>). Every project of
    /// the repository has the same version, so this is also the version of the mlreward command.</summary>
    public static string ToolVersion { get; } =
        s_assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] is { Length: > 0 } version
            ? version : Unknown;

    /// <summary>The commit embedded at build time (the SDK reads it from the git checkout; no git at run time), or "unknown"
    /// for a build outside a git checkout.</summary>
    public static string Commit { get; } =
        s_assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "SourceRevisionId")?.Value is { Length: > 0 } commit
            ? commit : Unknown;
}
