using MLReward.Locomotion;

namespace MLReward.Cli.Tests;

/// <summary>
/// How mlreward fails: one line "mlreward: error: ..." on stderr, no stack trace, nothing on stdout, exit code 2 for a wrong
/// command line and 1 for a failed run (<see cref="ErrorPolicy"/>). The process tests fail before any training starts.
/// </summary>
public sealed class CliErrorTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "mlreward-cli-errors-" + Guid.NewGuid().ToString("N")[..8]);

    public CliErrorTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>A regular file: a path under it can be neither created nor written, even by root (chmod does not stop root).</summary>
    private string RegularFile()
    {
        string file = Path.Combine(_root, "a-file");
        File.WriteAllText(file, "not a folder");
        return file;
    }

    [Theory]
    [InlineData("maze2d|--maze|nope", "mlreward: error: --maze: Argument 'nope' not recognized. Must be one of: 'umaze' 'medium' 'large' 'open' (see 'mlreward maze2d --help')")]
    [InlineData("maze2d|--bogus", "mlreward: error: Unrecognized command or argument '--bogus' (see 'mlreward maze2d --help')")]
    [InlineData("", "mlreward: error: Required command was not provided (see 'mlreward --help')")]
    [InlineData("maze2d-goal", "mlreward: error: Option '--job' is required")]
    [InlineData("score|--model|/nonexistent/reward.zip|--data|/nonexistent/t.csv", "mlreward: error: --model: file '/nonexistent/reward.zip' does not exist; --data: file '/nonexistent/t.csv' does not exist (see 'mlreward score --help')")]
    [InlineData("maze2d|--goal|2,1", "mlreward: error: --goal 2,1 is not a free position of maze 'umaze' (free cells: 1,1 1,2 1,3 2,3 3,1 3,2 3,3).")]
    [InlineData("maze2d|--threads|0", "mlreward: error: --threads must be at least 1; got 0.")]
    [InlineData("maze2d|--device|tpu", "mlreward: error: --device: 'tpu' is not a device: use \"cpu\", \"cuda\" or \"cuda:N\" (N = 0, 1, ...).")]
    [InlineData("locomotion|--preset|quick|--device|cuda:1", "mlreward: error: --device cuda:1: ")]
    [InlineData("locomotion|--set|Nope=1", "mlreward: error: Unknown setting 'Nope'. Settings: ")]
    [InlineData("locomotion|--sweep|1@x", "mlreward: error: --sweep item '1@x' is not SCALE or SCALE@T_STOPGRAD.")]
    [InlineData("images|--unsafe|5,x", "mlreward: error: --unsafe: 'x' is not a class number (e.g. --unsafe 5,7,9).")]
    public void UsageErrors_ExitWith2_AndOneLineOnStderr(string arguments, string expectedStart)
    {
        var result = CliProcess.Run(arguments.Split('|', StringSplitOptions.RemoveEmptyEntries));
        CliProcess.AssertFailsWithOneLine(result, 2, expectedStart);
        Assert.Equal("", result.Stdout);   // no help text either: the line says where the help is
    }

    [Fact]
    public void SampleCountBelowOne_IsAUsageError()
    {
        string model = Path.Combine(_root, "sampler.zip");
        File.WriteAllText(model, "never read: the options are checked first");
        var result = CliProcess.Run(["sample", "--model", model, "--count", "0"]);
        CliProcess.AssertFailsWithOneLine(result, 2, "mlreward: error: --count must be at least 1; got 0.");
    }

    [Theory]
    [InlineData("maze2d|--preset|quick|--goal|1,1|--no-cache")]
    [InlineData("locomotion|--preset|quick|--no-cache")]
    [InlineData("images|--preset|quick")]
    public void UnwritableOutFolder_FailsWith1_NamingTheFileInTheWay(string arguments)
    {
        string file = RegularFile();
        string output = Path.Combine(file, "out");
        var result = CliProcess.Run([.. arguments.Split('|'), "--out", output]);
        CliProcess.AssertFailsWithOneLine(result, 1, $"mlreward: error: --out: cannot write to folder '{output}': '{file}' is a file, not a folder");
        Assert.Equal("", result.Stdout);   // checked before the header, let alone the training
    }

    [Fact]
    public void UnwritableScoreOut_FailsWith1_BeforeScoring()
    {
        string file = RegularFile();
        string model = Path.Combine(_root, "reward.zip"), data = Path.Combine(_root, "t.csv");
        File.WriteAllText(model, "never read: the output is checked first");
        File.WriteAllText(data, "Episode,A\ne,1\n");
        string output = Path.Combine(file, "scores.csv");
        var result = CliProcess.Run(["score", "--model", model, "--data", data, "--out", output]);
        CliProcess.AssertFailsWithOneLine(result, 1, $"mlreward: error: --out: cannot write '{output}': '{file}' is a file, not a folder");
    }

    [Fact]
    public void UnwritableSampleOut_FailsWith1_BeforeSampling()
    {
        string file = RegularFile();
        string model = Path.Combine(_root, "sampler.zip");
        File.WriteAllText(model, "never read: the output is checked first");
        string output = Path.Combine(file, "samples.csv");
        var result = CliProcess.Run(["sample", "--model", model, "--out", output]);
        CliProcess.AssertFailsWithOneLine(result, 1, $"mlreward: error: --out: cannot write '{output}': '{file}' is a file, not a folder");
    }

    [Fact]
    public void ACorruptModelFile_FailsWith1_NamingIt()
    {
        string model = Path.Combine(_root, "sampler.zip");
        File.WriteAllBytes(model, [0x50, 0x4B, 1, 2, 3]);
        var result = CliProcess.Run(["sample", "--model", model]);
        CliProcess.AssertFailsWithOneLine(result, 1, $"mlreward: error: Cannot load model file '{model}': ");
    }

    [Fact]
    public void DebugVariable_AddsTheStackTrace_AfterTheSameLine()
    {
        string file = RegularFile();
        string output = Path.Combine(file, "out");
        var result = CliProcess.Run(["maze2d", "--goal", "1,1", "--out", output], new Dictionary<string, string> { [ErrorPolicy.DebugVariable] = "1" });
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith($"mlreward: error: --out: cannot write to folder '{output}'", result.ErrorLines[0]);
        Assert.Contains("   at MLReward.Cli.OutputPaths.PrepareFolder", result.Stderr);
    }

    [Fact]
    public void MissingMuJoCo_SaysTheAptLine()
    {
        // The loader takes the library named by MLREWARD_MUJOCO_LIBRARY and no other: naming a missing one forces the failure
        // on a machine that has MuJoCo.
        var result = CliProcess.Run(["locomotion", "--preset", "quick", "--no-cache", "--out", Path.Combine(_root, "out")],
            new Dictionary<string, string> { [MuJoCo.LibraryVariable] = "/nonexistent/libmujoco.so.2.2.2" }, TimeSpan.FromMinutes(2));
        CliProcess.AssertFailsWithOneLine(result, 1, "mlreward: error: MuJoCo 2.2.2 was not found (tried /nonexistent/libmujoco.so.2.2.2). ");
        Assert.Contains("`sudo apt-get install libmujoco2.2.2 libmujoco-dev`", result.Stderr);
    }

    [Fact]
    public void NativeLibraryFailures_BecomeOneLineThatSaysWhatToInstall()
    {
        var mujoco = new DllNotFoundException("Unable to load shared library 'libmujoco.so.2.2.2' or one of its dependencies.\nlibmujoco.so.2.2.2: cannot open shared object file");
        Assert.Equal("MuJoCo 2.2.2 could not be loaded (Unable to load shared library 'libmujoco.so.2.2.2' or one of its dependencies. "
            + "libmujoco.so.2.2.2: cannot open shared object file); install it with `sudo apt-get install libmujoco2.2.2 libmujoco-dev`", ErrorPolicy.Describe(mujoco));
        Assert.Equal(ExitCodes.Failure, ErrorPolicy.ExitCode(mujoco));
        Assert.Equal("a native library could not be loaded: Unable to load shared library 'LibTorchSharp'",
            ErrorPolicy.Describe(new DllNotFoundException("Unable to load shared library 'LibTorchSharp'")));
        var unavailable = new MuJoCoUnavailableException("MuJoCo 2.2.2 was not found (tried x). Install MuJoCo 2.2.2 with `sudo apt-get install libmujoco2.2.2 libmujoco-dev`.");
        Assert.Equal(unavailable.Message, ErrorPolicy.Describe(new AggregateException(unavailable)));
    }

    [Fact]
    public void AFullDisk_IsNamedWithTheFileBeingWritten()
    {
        // What .NET throws on Linux: errno 28 as the HResult, the path appended to the system's message.
        var linux = new IOException("No space left on device : '/data/runs/maze2d-umaze/report.json'", 28);
        Assert.Equal("no space left on device while writing /data/runs/maze2d-umaze/report.json", ErrorPolicy.Describe(linux));
        Assert.Equal(ExitCodes.Failure, ErrorPolicy.ExitCode(linux));
        // Windows: ERROR_DISK_FULL (0x70) as an HRESULT, a message without the path.
        var windows = new IOException("There is not enough space on the disk.", unchecked((int)0x80070070));
        Assert.True(ErrorPolicy.IsDiskFull(windows));
        Assert.Equal("no space left on device while writing C:\\runs\\base.zip", ErrorPolicy.DiskFull(windows, "C:\\runs\\base.zip"));
        // Found through the layers a training task or a worker adds.
        Assert.Equal("no space left on device while writing /tmp/x.zip",
            ErrorPolicy.Describe(new AggregateException(new IOException("No space left on device : '/tmp/x.zip'", 28))));
        Assert.False(ErrorPolicy.IsDiskFull(new IOException("The process cannot access the file '/tmp/x' because it is being used by another process.", 11)));
    }

    [Fact]
    public void ExitCodes_FollowOnePolicy()
    {
        Assert.Equal(ExitCodes.Usage, ErrorPolicy.ExitCode(new UsageException("--count must be at least 1")));
        var wrapped = Assert.Throws<UsageException>(() => UsageException.Check<int>(() => throw new ArgumentOutOfRangeException("Horizon", "Horizon must be even.")));
        Assert.IsType<ArgumentOutOfRangeException>(wrapped.InnerException);
        Assert.Throws<UsageException>(() => UsageException.Check<int>(() => throw new FormatException("--condition 'x' is not of the form STEP:FEATURE=VALUE")));
        Assert.Throws<IOException>(() => UsageException.Check<int>(() => throw new IOException("disk")));   // not the command line's fault
        // The same exceptions thrown while running are failures of the run.
        Assert.Equal(ExitCodes.Failure, ErrorPolicy.ExitCode(new ArgumentException("a bug")));
        Assert.Equal(ExitCodes.Failure, ErrorPolicy.ExitCode(new InvalidDataException("corrupt")));
        Assert.Equal(ExitCodes.Failure, ErrorPolicy.ExitCode(new OperationCanceledException()));
        Assert.Equal("cancelled", ErrorPolicy.Describe(new TaskCanceledException()));
        Assert.Equal("Could not find a part of the path '/nonexistent-root-folder/a/b.csv': folder '/nonexistent-root-folder' does not exist",
            ErrorPolicy.Describe(new DirectoryNotFoundException("Could not find a part of the path '/nonexistent-root-folder/a/b.csv'.")));

        var error = new StringWriter();
        Assert.Equal(ExitCodes.Failure, ErrorPolicy.Report(new InvalidOperationException("first\nsecond"), error, debug: false));
        Assert.Equal("mlreward: error: first second" + Environment.NewLine, error.ToString());
    }

    [Fact]
    public void AFailedWorker_IsReportedByItsOwnErrorLine()
    {
        string[] output = ["some log line", "mlreward: error: no space left on device while writing /r/expert-1_1.zip"];
        Assert.Equal("the worker for goal 3 failed (exit code 1): no space left on device while writing /r/expert-1_1.zip",
            ProcessGoalRunner.WorkerFailure(3, 1, output, debug: false));
        Assert.Equal("the worker for goal 0 failed (exit code 134): b | c | d", ProcessGoalRunner.WorkerFailure(0, 134, ["a", "b", "c", "d"], debug: false));
        Assert.Equal("the worker for goal 0 failed (exit code 137): it printed nothing", ProcessGoalRunner.WorkerFailure(0, 137, [], debug: false));
    }
}
