using System.CommandLine;
using MLReward.Cli;

var root = new RootCommand("mlreward: reward functions extracted from diffusion models (Nuti et al., NeurIPS 2023) on ML.NET and TorchSharp.")
{
    Maze2DCommand.Create(),
    LocomotionCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
