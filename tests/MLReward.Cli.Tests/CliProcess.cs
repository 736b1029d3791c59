using System.Diagnostics;

namespace MLReward.Cli.Tests;

/// <summary>Runs mlreward.dll (copied next to the tests) in a process of its own, as a user does, keeping stdout and stderr
/// apart: what goes to which is part of the behaviour under test.</summary>
internal static class CliProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        /// <summary>The non-empty lines of stderr.</summary>
        public string[] ErrorLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        public override string ToString() => $"exit code {ExitCode}\n--- stdout:\n{Stdout}\n--- stderr:\n{Stderr}";
    }

    public static Result Run(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        // MLREWARD_TEST_CLI names another build's mlreward.dll, to check that a test fails on the code before a change.
        string dll = Environment.GetEnvironmentVariable("MLREWARD_TEST_CLI") is { Length: > 0 } other ? other
            : Path.Combine(AppContext.BaseDirectory, "mlreward.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(dll);
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        start.Environment["COLUMNS"] = "160";
        start.Environment.Remove("MLREWARD_DEBUG");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var limit = timeout ?? TimeSpan.FromMinutes(1);
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"mlreward did not finish within {limit}.");
        }
        process.WaitForExit();
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Asserts the contract of a failure: the exit code, exactly one line on stderr, starting with
    /// <paramref name="expectedStart"/>, no stack frame anywhere, and nothing about the error on stdout.</summary>
    public static void AssertFailsWithOneLine(Result result, int exitCode, string expectedStart)
    {
        Assert.True(result.ExitCode == exitCode, result.ToString());
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith(expectedStart, line);
        Assert.DoesNotContain("   at ", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stdout);
        Assert.DoesNotContain("error", result.Stdout, StringComparison.OrdinalIgnoreCase);
    }
}
