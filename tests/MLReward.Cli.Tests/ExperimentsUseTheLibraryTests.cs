using System.Text.RegularExpressions;

namespace MLReward.Cli.Tests;

/// <summary>
/// The experiments are users of the library: whatever they train goes through its estimators. No optimiser, gradient, EMA or
/// training loop may come back under Examples/Experiments (the SAC agents that make the behaviour data live in
/// Examples/LocomotionAgents and are exempt).
/// </summary>
public class ExperimentsUseTheLibraryTests
{
    private static readonly (string Pattern, string What)[] Forbidden =
    [
        (@"\boptim\.", "a torch optimiser"),
        (@"\bautograd\b", "autograd"),
        (@"\.backward\(", "a backward pass"),
        (@"\bExponentialMovingAverage\b", "an EMA of weights"),
        (@"\bOptimizationLoop\b", "the core training loop"),
        (@"new\s+(DiffusionTrainer|RewardTrainer)\s*\(", "a core trainer (use the estimators)"),
        (@"class\s+\w*Trainer\b", "a trainer class"),
    ];

    [Fact]
    public void NoTrainingCodeLivesUnderExamplesExperiments()
    {
        string folder = Path.Combine(RepositoryRoot(), "Examples", "Experiments");
        var files = Directory.GetFiles(folder, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .ToArray();
        Assert.True(files.Length > 20, $"only {files.Length} source files found under {folder}");
        var found = new List<string>();
        foreach (var file in files)
        {
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                string code = lines[i].TrimStart();
                if (code.StartsWith("//", StringComparison.Ordinal))
                    continue;
                foreach (var (pattern, what) in Forbidden)
                    if (Regex.IsMatch(code, pattern))
                        found.Add($"{Path.GetRelativePath(folder, file)}:{i + 1}: {what}: {code}");
            }
        }
        Assert.True(found.Count == 0, "Training code under Examples/Experiments; move it into the library behind an estimator:\n" + string.Join("\n", found));
    }

    [Fact]
    public void TheCheckFindsWhatItLooksFor()
    {
        string[] offenders =
        [
            "using var optimizer = optim.Adam(parameters, 1e-3);",
            "var g = torch.autograd.grad(new[] { r }, new[] { x })[0];",
            "loss.backward();",
            "internal sealed class CachedTargetRewardTrainer",
            "var trainer = new RewardTrainer(options);",
        ];
        Assert.All(offenders, line => Assert.Contains(Forbidden, f => Regex.IsMatch(line, f.Pattern)));
        Assert.DoesNotContain(Forbidden, f => Regex.IsMatch("var reward = run.Rx.RelativeReward(base, expert, options).Fit(view);", f.Pattern));
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MLReward.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"No MLReward.sln above {AppContext.BaseDirectory}.");
    }
}
