using Microsoft.ML.RewardExtraction;

namespace MLReward.Experiments;

/// <summary>A model zip a run wrote: its file name, the input column(s) it reads, the sample shape, and what it is.</summary>
public sealed record ModelFile(string File, string InputColumn, string Shape, string Contents)
{
    /// <summary>A model reading the window column "Features" of <paramref name="shape"/>, saved as <paramref name="name"/>.zip.</summary>
    public static ModelFile Of(string name, string contents, SampleShape shape) => new($"{name}.zip", "Features", shape.ToString(), contents);
}
