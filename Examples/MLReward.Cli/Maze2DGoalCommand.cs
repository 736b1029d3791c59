using System.CommandLine;
using System.Text.Json;
using MLReward.Experiments;
using MLReward.Experiments.Maze2D;

namespace MLReward.Cli;

/// <summary><c>mlreward maze2d-goal</c> (hidden): the worker that <see cref="ProcessGoalRunner"/> starts for one goal.</summary>
internal static class Maze2DGoalCommand
{
    public static Command Create()
    {
        var job = new Option<FileInfo>("--job") { Description = "The job file written by the parent.", Required = true };
        var index = new Option<int>("--index") { Description = "The goal's index in the job.", Required = true };
        var result = new Option<FileInfo>("--result") { Description = "Where to write the goal's result (JSON).", Required = true };
        var command = new Command("maze2d-goal", "Worker: runs one goal of a maze2d job (started by `mlreward maze2d --parallel N`).")
        {
            job, index, result,
        };
        command.Hidden = true;
        // Failures go through ErrorPolicy like any command's: one "mlreward: error:" line on stderr, which the parent
        // (ProcessGoalRunner) quotes in its own error.
        command.SetAction((parse, cancellationToken) =>
        {
            var experiment = Maze2DExperiment.FromJob(Maze2DJob.FromJson(File.ReadAllText(parse.GetValue(job)!.FullName)));
            var goal = experiment.RunGoal(parse.GetValue(index), new WorkerProtocol.Writer(Console.Out), cancellationToken);
            File.WriteAllText(parse.GetValue(result)!.FullName, JsonSerializer.Serialize(goal, Maze2DReport.JsonOptions));
            return Task.FromResult(ExitCodes.Success);
        });
        return command;
    }
}
