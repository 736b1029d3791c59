using System.CommandLine;
using System.CommandLine.Invocation;

namespace MLReward.Cli;

/// <summary>The mlreward command line: its commands, and the one place where failures become an error line and an exit code
/// (<see cref="ErrorPolicy"/>).</summary>
internal static class CliApp
{
    /// <summary>The root command with every command.</summary>
    public static RootCommand CreateRootCommand() => new(
        "mlreward: reward functions extracted from diffusion models (Nuti et al., NeurIPS 2023) on ML.NET and TorchSharp. "
        + "Exit codes: 0 success, 1 the run failed, 2 the command line is wrong; errors are one line on stderr "
        + $"(set {ErrorPolicy.DebugVariable}=1 for the stack trace).")
    {
        Maze2DCommand.Create(),
        Maze2DGoalCommand.Create(),
        LocomotionCommand.Create(),
        ImagesCommand.Create(),
        ScoreCommand.Create(),
        DistillCommand.Create(),
        SampleCommand.Create(),
    };

    /// <summary>Parses and runs <paramref name="args"/>; errors go to <paramref name="error"/> as one line each run.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter error, CancellationToken cancellationToken = default)
    {
        var parse = CreateRootCommand().Parse(args);
        // System.CommandLine would print its errors and the help on stdout and exit with 1; usage errors are 2, on stderr.
        if (parse.Action is ParseErrorAction)
            return ErrorPolicy.ReportParseErrors(parse, error);
        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }, cancellationToken);
        }
        catch (Exception e)
        {
            return ErrorPolicy.Report(e, error, ErrorPolicy.DebugRequested());
        }
    }
}
