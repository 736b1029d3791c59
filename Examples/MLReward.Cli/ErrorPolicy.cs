using System.CommandLine;
using System.CommandLine.Parsing;
using System.Reflection;
using MLReward.Locomotion;

namespace MLReward.Cli;

/// <summary>The exit codes of every mlreward command.</summary>
internal static class ExitCodes
{
    /// <summary>The command did what it was asked.</summary>
    public const int Success = 0;

    /// <summary>The run failed: a file that cannot be read or written, a corrupt file, a missing native library, a full disk,
    /// a cancelled run, or any other error while running.</summary>
    public const int Failure = 1;

    /// <summary>The command line is wrong as written: an unknown option, a bad option value, options that do not go together,
    /// an input file that does not exist.</summary>
    public const int Usage = 2;
}

/// <summary>A command line that cannot run as written (see <see cref="ExitCodes.Usage"/>); the message names the option.</summary>
internal sealed class UsageException(string message, Exception? innerException = null) : Exception(message, innerException)
{
    /// <summary>
    /// Runs a command's setup, the step that turns option values into a run: an <see cref="ArgumentException"/> or
    /// <see cref="FormatException"/> thrown there is a bad option value, so it becomes a <see cref="UsageException"/>. The
    /// same exceptions thrown later, while running, are failures of the run (exit code 1), not of the command line.
    /// </summary>
    public static T Check<T>(Func<T> setup)
    {
        try
        {
            return setup();
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new UsageException(e.Message, e);
        }
    }
}

/// <summary>
/// The one place that turns what went wrong into what the user sees: one line <c>mlreward: error: &lt;message&gt;</c> on stderr
/// and an exit code (<see cref="ExitCodes"/>). Stack traces are for developers, printed after that line only when the
/// environment variable <c>MLREWARD_DEBUG</c> is set (to anything but 0 or false).
/// </summary>
internal static class ErrorPolicy
{
    /// <summary>What every error line starts with (worker processes' lines too, which the parent recognises by it).</summary>
    public const string Prefix = "mlreward: error: ";

    /// <summary>The environment variable that adds the exception's stack trace after the error line.</summary>
    public const string DebugVariable = "MLREWARD_DEBUG";

    /// <summary>Whether <see cref="DebugVariable"/> asks for stack traces.</summary>
    public static bool DebugRequested() =>
        Environment.GetEnvironmentVariable(DebugVariable) is { Length: > 0 } value && value != "0" && !value.Equals("false", StringComparison.OrdinalIgnoreCase);

    /// <summary>The exit code of <paramref name="exception"/>: <see cref="ExitCodes.Usage"/> for a <see cref="UsageException"/>,
    /// <see cref="ExitCodes.Failure"/> for everything else.</summary>
    public static int ExitCode(Exception exception) => Unwrap(exception) is UsageException ? ExitCodes.Usage : ExitCodes.Failure;

    /// <summary>Writes the error line (and with <paramref name="debug"/> the whole exception) to <paramref name="error"/>; returns
    /// the exit code.</summary>
    public static int Report(Exception exception, TextWriter error, bool debug)
    {
        error.WriteLine(Prefix + Describe(exception));
        if (debug)
            error.WriteLine(exception.ToString());
        error.Flush();
        return ExitCode(exception);
    }

    /// <summary>Writes the parse errors of <paramref name="parse"/> as one error line, each naming its option; returns
    /// <see cref="ExitCodes.Usage"/>.</summary>
    public static int ReportParseErrors(ParseResult parse, TextWriter error)
    {
        var messages = parse.Errors.Select(Describe).Distinct().ToList();
        if (messages.Count == 0)
            messages.Add("the command line could not be parsed");
        string command = parse.CommandResult.Command is RootCommand ? "mlreward" : $"mlreward {parse.CommandResult.Command.Name}";
        error.WriteLine($"{Prefix}{string.Join("; ", messages.Select(m => m.TrimEnd('.')))} (see '{command} --help')");
        error.Flush();
        return ExitCodes.Usage;
    }

    private static string Describe(ParseError error)
    {
        // System.CommandLine's messages do not always say which option they are about ("Argument 'x' not recognized").
        var option = error.SymbolResult switch
        {
            OptionResult o => o.Option,
            ArgumentResult { Parent: OptionResult o } => o.Option,
            _ => null,
        };
        string message = OneLine(error.Message);
        return option is null || message.Contains(option.Name, StringComparison.Ordinal) ? message : $"{option.Name}: {message}";
    }

    /// <summary>The one-line message for <paramref name="exception"/>: its own message, or a clearer one for the failures
    /// whose .NET message does not say what to do (a full disk, a path through a file, a missing native library).</summary>
    public static string Describe(Exception exception)
    {
        var e = Unwrap(exception);
        string message = e switch
        {
            OperationCanceledException => "cancelled",
            MuJoCoUnavailableException => e.Message,   // says what was tried and the apt line
            DllNotFoundException when e.Message.Contains("mujoco", StringComparison.OrdinalIgnoreCase) =>
                $"MuJoCo 2.2.2 could not be loaded ({e.Message}); install it with `{MuJoCo.InstallCommand}`",
            DllNotFoundException => $"a native library could not be loaded: {e.Message}",
            IOException io when IsDiskFull(io) => DiskFull(io),
            DirectoryNotFoundException => Explain(e.Message),
            _ => e.Message,
        };
        return OneLine(message);
    }

    /// <summary>Whether <paramref name="exception"/> is a full disk: ENOSPC (errno 28, which .NET puts in HResult on Unix),
    /// ERROR_DISK_FULL or ERROR_HANDLE_DISK_FULL on Windows, or the system's message for them.</summary>
    public static bool IsDiskFull(IOException exception)
    {
        const int ENOSPC = 28, ErrorDiskFull = 0x70, ErrorHandleDiskFull = 0x27;
        int code = exception.HResult;
        bool windowsCode = (code & unchecked((int)0xFFFF0000)) == unchecked((int)0x80070000) && (code & 0xFFFF) is ErrorDiskFull or ErrorHandleDiskFull;
        return code == ENOSPC || windowsCode
            || exception.Message.Contains("No space left on device", StringComparison.OrdinalIgnoreCase)
            || exception.Message.Contains("not enough space on the disk", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>"no space left on device while writing &lt;path&gt;": the path from the exception's message (.NET appends
    /// <c> : '&lt;path&gt;'</c> to the system's message), else <paramref name="path"/>.</summary>
    public static string DiskFull(IOException exception, string? path = null)
    {
        string? file = QuotedPath(exception.Message) ?? path;
        return file is null ? $"no space left on device while writing ({exception.Message})" : $"no space left on device while writing {file}";
    }

    /// <summary>Why <paramref name="path"/> cannot be reached: "'&lt;folder&gt;' is a file, not a folder" for the first of its
    /// parents that is a file, or "folder '&lt;folder&gt;' does not exist" for the first that is missing; null when its folder
    /// exists.</summary>
    public static string? WhyUnreachable(string path)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        string? missing = null;
        while (folder is not null && !Directory.Exists(folder))
        {
            if (File.Exists(folder))
                return $"'{folder}' is a file, not a folder";
            missing = folder;
            folder = Path.GetDirectoryName(folder);
        }
        return missing is null ? null : $"folder '{missing}' does not exist";
    }

    /// <summary>"Could not find a part of the path 'p'." says neither which part nor why; this adds it.</summary>
    private static string Explain(string message) =>
        QuotedPath(message) is { } path && WhyUnreachable(path) is { } why ? $"{message.TrimEnd('.')}: {why}" : message;

    private static string? QuotedPath(string message)
    {
        int end = message.LastIndexOf('\'');
        int start = end > 0 ? message.LastIndexOf('\'', end - 1) : -1;
        return start >= 0 && end > start + 1 ? message[(start + 1)..end] : null;
    }

    /// <summary>The exception that says what happened, not how it travelled (tasks, reflection, type initialisers).</summary>
    private static Exception Unwrap(Exception exception)
    {
        while (true)
        {
            switch (exception)
            {
                case AggregateException aggregate when aggregate.Flatten().InnerExceptions is [var only]:
                    exception = only;
                    break;
                case TargetInvocationException { InnerException: { } inner }:
                    exception = inner;
                    break;
                case TypeInitializationException { InnerException: { } inner }:
                    exception = inner;
                    break;
                default:
                    return exception;
            }
        }
    }

    /// <summary>Messages with line breaks (System.CommandLine's lists, a worker's output) as one line.</summary>
    private static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).TrimEnd();
}
