using System.CommandLine;
using MLReward.Experiments;

namespace MLReward.Cli;

/// <summary>The <c>--device</c> option of every command that trains or runs models (docs/ARCHITECTURE.md, devices).</summary>
internal static class DeviceOption
{
    public static Option<string?> Create() => new("--device")
    {
        Description = "Where the models train and run: cpu (default), cuda or cuda:N. A GPU needs a CUDA build (-p:TorchBackend=cuda).",
    };

    /// <summary>The device named, checked before any work: not a device, or one this build cannot use, is a usage error
    /// (call it inside <see cref="UsageException.Check{T}"/>).</summary>
    public static string? Read(ParseResult result, Option<string?> option)
    {
        string? name = result.GetValue(option);
        try
        {
            ExperimentDevice.Validate(name);
        }
        catch (InvalidOperationException e)
        {
            throw new ArgumentException($"--device {name}: {e.Message}", e);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"--device: {e.Message}", e);
        }
        return name;
    }
}
