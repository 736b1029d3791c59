using System.CommandLine;
using MLReward.Cli;

// Before any torch call: oneDNN picks its kernels when libtorch loads (see OneDnnWorkaround).
Microsoft.ML.RewardExtraction.OneDnnWorkaround.Apply();

var root = new RootCommand("mlreward: reward functions extracted from diffusion models (Nuti et al., NeurIPS 2023) on ML.NET and TorchSharp.")
{
    Maze2DCommand.Create(),
    Maze2DGoalCommand.Create(),
    LocomotionCommand.Create(),
    ImagesCommand.Create(),
    ScoreCommand.Create(),
    SampleCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
