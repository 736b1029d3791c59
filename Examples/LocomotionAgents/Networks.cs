using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLReward.LocomotionAgents;

/// <summary>Builders shared by the actor and the critics.</summary>
internal static class Mlp
{
    /// <summary>Linear + ReLU for every hidden size, then a linear output layer.</summary>
    public static Sequential Build(string name, int input, IReadOnlyList<int> hidden, int output)
    {
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        int width = input;
        for (int i = 0; i < hidden.Count; i++)
        {
            layers.Add(($"fc{i}", nn.Linear(width, hidden[i])));
            layers.Add(($"relu{i}", nn.ReLU()));
            width = hidden[i];
        }
        layers.Add(("out", nn.Linear(width, output)));
        return nn.Sequential(layers);
    }
}

/// <summary>
/// Gaussian policy network: observation -> (mean, log std) of the pre-squash action u; the action is tanh(u).
/// The log standard deviation is clamped to [<see cref="LogStdMin"/>, <see cref="LogStdMax"/>].
/// </summary>
public sealed class GaussianActor : nn.Module<Tensor, (Tensor Mean, Tensor LogStd)>
{
    /// <summary>Lower clamp of the log standard deviation.</summary>
    public const double LogStdMin = -20;

    /// <summary>Upper clamp of the log standard deviation.</summary>
    public const double LogStdMax = 2;

    private readonly Sequential trunk;

    /// <summary>Creates the network (weights from the current torch seed).</summary>
    public GaussianActor(int observationSize, int actionSize, IReadOnlyList<int> hidden) : base(nameof(GaussianActor))
    {
        ObservationSize = observationSize;
        ActionSize = actionSize;
        trunk = Mlp.Build("trunk", observationSize, hidden, 2 * actionSize);
        RegisterComponents();
    }

    /// <summary>Observation length.</summary>
    public int ObservationSize { get; }

    /// <summary>Action length.</summary>
    public int ActionSize { get; }

    /// <inheritdoc />
    public override (Tensor Mean, Tensor LogStd) forward(Tensor observation)
    {
        using var scope = NewDisposeScope();
        Tensor output = trunk.forward(observation);
        Tensor[] parts = output.chunk(2, dim: -1);
        Tensor logStd = parts[1].clamp(LogStdMin, LogStdMax);
        return (parts[0].MoveToOuterDisposeScope(), logStd.MoveToOuterDisposeScope());
    }

    /// <summary>Reparameterised squashed sample and its log-probability (see <see cref="SquashedGaussian"/>).</summary>
    public (Tensor Action, Tensor LogProb) Sample(Tensor observation, Generator? generator = null)
    {
        var (mean, logStd) = forward(observation);
        Tensor noise = randn(mean.shape, dtype: mean.dtype, device: mean.device, generator: generator);
        Tensor u = mean + logStd.exp() * noise;
        return (u.tanh(), SquashedGaussian.LogProb(u, mean, logStd));
    }
}

/// <summary>Two independent Q networks Q_i(s, a) with the same layout (clipped double Q).</summary>
public sealed class TwinCritic : nn.Module<Tensor, Tensor, (Tensor Q1, Tensor Q2)>
{
    private readonly Sequential q1;
    private readonly Sequential q2;

    /// <summary>Creates both networks (weights from the current torch seed).</summary>
    public TwinCritic(int observationSize, int actionSize, IReadOnlyList<int> hidden) : base(nameof(TwinCritic))
    {
        q1 = Mlp.Build("q1", observationSize + actionSize, hidden, 1);
        q2 = Mlp.Build("q2", observationSize + actionSize, hidden, 1);
        RegisterComponents();
    }

    /// <summary>Q values of shape [batch] from both networks.</summary>
    public override (Tensor Q1, Tensor Q2) forward(Tensor observation, Tensor action)
    {
        using var scope = NewDisposeScope();
        Tensor input = cat(new[] { observation, action }, dim: -1);
        Tensor a = q1.forward(input).squeeze(-1);
        Tensor b = q2.forward(input).squeeze(-1);
        return (a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope());
    }
}
