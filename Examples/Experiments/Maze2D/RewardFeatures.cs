namespace MLReward.Experiments.Maze2D;

/// <summary>Which parts of a step [action x, action y, x, y, vx, vy] a per-state reward reads (its feature mask,
/// <see cref="GoalModels.FeatureMask"/>).</summary>
public enum RewardFeatures
{
    /// <summary>The whole step: action and observation.</summary>
    Transition = 0,
    /// <summary>The observation: position and velocity.</summary>
    Observation = 1,
    /// <summary>The position (x, y) only.</summary>
    Position = 2,
}
