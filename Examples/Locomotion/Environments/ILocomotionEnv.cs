namespace MLReward.Locomotion;

/// <summary>
/// A Gym-style continuous-control task: observations and actions are float vectors, actions are clipped to
/// [-1, 1] per component, episodes end when the task terminates or after <see cref="MaxEpisodeSteps"/> steps.
/// </summary>
public interface ILocomotionEnv : IDisposable
{
    /// <summary>A short name ("cheetah", "hopper", "walker").</summary>
    string Name { get; }

    /// <summary>Length of the observation vector.</summary>
    int ObservationSize { get; }

    /// <summary>Length of the action vector.</summary>
    int ActionSize { get; }

    /// <summary>Steps after which an episode is truncated (1000).</summary>
    int MaxEpisodeSteps { get; }

    /// <summary>Simulated seconds per environment step (physics timestep x frame skip).</summary>
    double ControlTimestep { get; }

    /// <summary>Steps taken since the last reset.</summary>
    int StepCount { get; }

    /// <summary>Starts an episode from the reference pose plus small uniform noise drawn from <paramref name="random"/>; returns the first observation.</summary>
    float[] Reset(Random random);

    /// <summary>Starts an episode with noise drawn from <c>new Random(seed)</c>: the same seed gives the same start.</summary>
    float[] Reset(int seed);

    /// <summary>Applies <paramref name="action"/> (clipped to [-1, 1]) for one control interval.</summary>
    /// <exception cref="ArgumentException">The action has the wrong length or a non-finite component.</exception>
    /// <exception cref="InvalidOperationException">No episode is running (call <see cref="Reset(int)"/>).</exception>
    LocomotionStep Step(ReadOnlySpan<float> action);
}

/// <summary>The outcome of one environment step.</summary>
/// <param name="Observation">The observation after the step.</param>
/// <param name="Reward">The step's reward.</param>
/// <param name="Terminated">The task ended (the hopper or the walker fell, or the physics diverged); no further steps.</param>
/// <param name="Truncated">The episode reached <see cref="ILocomotionEnv.MaxEpisodeSteps"/> without terminating.</param>
/// <param name="ForwardVelocity">Mean x velocity of the root over the step (the reward's forward term).</param>
public readonly record struct LocomotionStep(float[] Observation, double Reward, bool Terminated, bool Truncated, double ForwardVelocity)
{
    /// <summary>The episode is over (terminated or truncated).</summary>
    public bool Done => Terminated || Truncated;
}
