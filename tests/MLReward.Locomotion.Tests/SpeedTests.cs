using System.Diagnostics;
using Xunit.Abstractions;

namespace MLReward.Locomotion.Tests;

[CollectionDefinition(nameof(SpeedTests), DisableParallelization = true)]
public class SpeedCollection;

/// <summary>Environment throughput, measured alone (no other test runs in parallel), printed in the test output.</summary>
[Collection(nameof(SpeedTests))]
public class SpeedTests(ITestOutputHelper output)
{
    private static float[] RandomAction(Random random, int size) =>
        Enumerable.Range(0, size).Select(_ => (float)(2 * random.NextDouble() - 1)).ToArray();

    [SkippableFact]
    public void MeasureSpeed()
    {
        RequireMuJoCo.OrSkip();
        foreach (string name in new[] { "cheetah", "hopper", "walker" })
        {
            using PlanarLocomotionEnv env = name switch { "cheetah" => new CheetahEnv(), "hopper" => new HopperEnv(), _ => new WalkerEnv() };
            var random = new Random(0);
            var actions = Enumerable.Range(0, 64).Select(_ => RandomAction(random, env.ActionSize)).ToArray();
            env.Reset(0);
            for (int i = 0; i < 200; i++)   // warm up (JIT)
                if (env.Step(actions[i % actions.Length]).Done)
                    env.Reset(i);
            int steps = 0;
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed.TotalSeconds < 0.5)
            {
                for (int i = 0; i < 100; i++, steps++)
                    if (env.Step(actions[steps % actions.Length]).Done)
                        env.Reset(steps);
            }
            double rate = steps / watch.Elapsed.TotalSeconds;
            output.WriteLine($"{name}: {rate:F0} env steps/s ({rate * env.FrameSkip:F0} mj_step/s, frame skip {env.FrameSkip}, dt {env.Model.Timestep})");
            Assert.True(rate > 100, $"{name} runs at only {rate:F0} steps/s");
        }
    }
}
