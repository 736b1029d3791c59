using MLReward.Cli;

// Before any torch call: oneDNN picks its kernels when libtorch loads (see OneDnnWorkaround).
Microsoft.ML.RewardExtraction.OneDnnWorkaround.Apply();

return await CliApp.RunAsync(args, Console.Error);
