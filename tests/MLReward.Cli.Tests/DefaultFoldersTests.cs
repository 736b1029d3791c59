using MLReward.Experiments;

namespace MLReward.Cli.Tests;

/// <summary>The folders mlreward uses when none is given (<see cref="DefaultFolders"/>).</summary>
public class DefaultFoldersTests
{
    [Fact]
    public void DefaultFolders_AreFoldersOfTheirOwn()
    {
        Assert.Equal(Path.Combine("/work/project", "runs", ".cache"), DefaultFolders.ModelCache("/work/project"));
        Assert.Equal(Path.Combine(Environment.CurrentDirectory, "runs", ".cache"), DefaultFolders.ModelCache());

        static Func<string, string?> Env(params (string Name, string Value)[] values) => name => values.FirstOrDefault(v => v.Name == name).Value;
        Assert.Equal("/home/u/.cache/mlreward", DefaultFolders.DataCache(Env(), "/home/u"));
        Assert.Equal("/xdg/mlreward", DefaultFolders.DataCache(Env(("XDG_CACHE_HOME", "/xdg")), "/home/u"));
        Assert.Equal("/data/sets", DefaultFolders.DataCache(Env(("MLREWARD_DATA", "/data/sets"), ("XDG_CACHE_HOME", "/xdg")), "/home/u"));
        // Empty or relative values and a missing home never give ~/.cache itself, nor a folder that moves with the current one.
        Assert.Equal("/home/u/.cache/mlreward", DefaultFolders.DataCache(Env(("MLREWARD_DATA", ""), ("XDG_CACHE_HOME", "cache")), "/home/u"));
        Assert.Equal(Path.Combine(Path.GetTempPath(), "mlreward"), DefaultFolders.DataCache(Env(), ""));
        Assert.Equal(DefaultFolders.DataCache(), MLReward.Experiments.Images.ImageDatasets.DefaultCache());
    }
}
