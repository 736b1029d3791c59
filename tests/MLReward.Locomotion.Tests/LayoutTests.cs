using System.Diagnostics;
using System.Text;
using Xunit.Abstractions;

namespace MLReward.Locomotion.Tests;

/// <summary>Compares the binding's 2.2.2 field offsets with offsetof() from the installed headers, when gcc and the headers are present.</summary>
public class LayoutTests(ITestOutputHelper output)
{
    private const string Header = "/usr/include/mujoco/mujoco.h";

    [SkippableFact]
    public void OffsetsMatchTheInstalledHeaders()
    {
        RequireMuJoCo.OrSkip();
        Skip.IfNot(File.Exists(Header), $"{Header} is absent: `{MuJoCo.InstallCommand}` installs it.");
        string? gcc = FindOnPath("gcc") ?? FindOnPath("cc");
        Skip.If(gcc is null, "no C compiler (gcc) on PATH to check the offsets with.");

        string dir = Directory.CreateTempSubdirectory("mlreward-mjlayout-").FullName;
        try
        {
            var source = new StringBuilder("#include <stdio.h>\n#include <stddef.h>\n#include <mujoco/mujoco.h>\nint main(void) {\n");
            source.Append("  printf(\"%d\\n\", mjVERSION_HEADER);\n");
            foreach (var (expr, _) in Layout222.All)
                source.Append($"  printf(\"%ld\\n\", (long)({expr}));\n");
            source.Append("  return 0;\n}\n");
            string c = Path.Combine(dir, "layout.c"), exe = Path.Combine(dir, "layout");
            File.WriteAllText(c, source.ToString());

            var (compileCode, compileOut) = Run(gcc!, $"-o {exe} {c}");
            Assert.True(compileCode == 0, $"gcc failed: {compileOut}");
            var (runCode, runOut) = Run(exe, "");
            Assert.Equal(0, runCode);

            string[] lines = runOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Skip.If(lines[0] != "222", $"installed headers are version {lines[0]}, not 2.2.2");
            for (int i = 0; i < Layout222.All.Count; i++)
            {
                var (expr, offset) = Layout222.All[i];
                output.WriteLine($"{expr} = {lines[i + 1]} (binding: {offset})");
                Assert.True(long.Parse(lines[i + 1]) == offset, $"{expr}: headers say {lines[i + 1]}, binding uses {offset}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static (int Code, string Output) Run(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr);
    }
}
