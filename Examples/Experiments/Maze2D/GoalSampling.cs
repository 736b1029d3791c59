using Microsoft.ML;
using Microsoft.ML.RewardExtraction;
using MLReward.Environments.Maze2D;

namespace MLReward.Experiments.Maze2D;

/// <summary>
/// Stage "sampling" of one goal: the saved sampler (the base model guided by the reward) against the base model unguided,
/// on the same seeds: the mean distance of the sampled positions to the goal, and a picture of the samples on the maze.
/// </summary>
internal static class GoalSampling
{
    private const int Samples = 64, Drawn = 16;

    public sealed record Result(double UnguidedGoalDistance, double GuidedGoalDistance);

    public static Result Run(Maze2DRunContext run, GuidedSamplingTransformer sampler, Vec2 goal, string picturePath)
    {
        var guided = SavedSampler.Sample(run.Ml, sampler, Samples, firstSeed: run.Seeds.For("sampling"));
        var unguided = SavedSampler.Sample(run.Ml, sampler, Samples, firstSeed: run.Seeds.For("sampling"), scale: 0);
        SampledTrajectoryPlot.Save(run.Layout, unguided.Take(Drawn).ToList(), guided.Take(Drawn).ToList(), sampler.Guidance.Scale, picturePath, goal);
        return new Result(MeanDistance(unguided, goal), MeanDistance(guided, goal));
    }

    /// <summary>The mean distance of every sampled position (x, y of each step) to <paramref name="goal"/>.</summary>
    public static double MeanDistance(IReadOnlyList<float[]> samples, Vec2 goal)
    {
        double sum = 0;
        long count = 0;
        foreach (var sample in samples)
            for (int step = 0; step < sample.Length / MazeWindows.StepDimension; step++)
            {
                var position = new Vec2(sample[step * MazeWindows.StepDimension + 2], sample[step * MazeWindows.StepDimension + 3]);
                sum += position.DistanceTo(goal);
                count++;
            }
        return sum / count;
    }
}
