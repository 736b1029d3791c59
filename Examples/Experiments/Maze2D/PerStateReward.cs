using Microsoft.ML.RewardExtraction;
using TorchSharp;
using static TorchSharp.torch;

namespace MLReward.Experiments.Maze2D;

/// <summary>Which parts of a trajectory row [action x, action y, x, y, vx, vy] the per-state reward reads.</summary>
public enum RewardFeatures
{
    /// <summary>The whole row: action and observation.</summary>
    Transition = 0,
    /// <summary>The observation: position and velocity.</summary>
    Observation = 1,
    /// <summary>The position (x, y) only.</summary>
    Position = 2,
}

/// <summary>
/// The per-state reward of the Maze2D experiment: the core <see cref="StateReward"/> with window 1 applied to each row of a
/// trajectory after the features it must not read are set to zero, R(x, t) = mean_i r(mask * x_i, t). Its input gradient is
/// zero in the masked features, so the relative reward objective fits only the unmasked components of mu_expert - mu_base
/// (<see cref="Mask"/> is passed to the trainer to leave the others out of the loss).
/// </summary>
public sealed class PerStateReward : RewardNetwork
{
    private readonly StateReward inner;
    private readonly Tensor mask;

    /// <summary>Creates the network for <paramref name="shape"/> (6 features per row).</summary>
    public PerStateReward(SampleShape shape, RewardFeatures features, IReadOnlyList<int> hiddenSizes) : base(nameof(PerStateReward), shape)
    {
        Features = features;
        inner = new StateReward(shape, new StateRewardOptions { Window = 1, HiddenSizes = hiddenSizes.ToArray() });
        var values = new float[shape.TransitionDimension];
        for (int f = 0; f < values.Length; f++)
            values[f] = features switch
            {
                RewardFeatures.Transition => 1,
                RewardFeatures.Observation => f >= 2 ? 1 : 0,
                _ => f is 2 or 3 ? 1 : 0,
            };
        mask = tensor(values);
        register_buffer(nameof(mask), mask);
        RegisterComponents();
    }

    /// <summary>The features read.</summary>
    public RewardFeatures Features { get; }

    /// <summary>1 for the features read, 0 for the others: [6].</summary>
    public Tensor Mask => mask;

    /// <summary>x [B, H, D], t [B] -> rewards [B] (mean over the H states).</summary>
    public override Tensor forward(Tensor x, Tensor t) => inner.call(x * mask, t);

    /// <summary>The reward of every state: x [B, L, D], t [B] -> [B, L] (any number L of rows).</summary>
    public Tensor StateRewards(Tensor x, Tensor t) => inner.WindowRewards(x * mask, t);
}
