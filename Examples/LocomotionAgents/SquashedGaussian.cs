using static TorchSharp.torch;

namespace MLReward.LocomotionAgents;

/// <summary>
/// Log-density of a = tanh(u), u ~ N(mean, diag(exp(logStd))^2), by change of variables:
/// log p(a) = sum_i [log N(u_i; mean_i, std_i) - log(1 - tanh(u_i)^2)], where
/// log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) is used for numerical stability.
/// </summary>
public static class SquashedGaussian
{
    private static readonly double HalfLog2Pi = 0.5 * Math.Log(2 * Math.PI);

    /// <summary>Log-probability of tanh(<paramref name="u"/>), summed over the last dimension.</summary>
    public static Tensor LogProb(Tensor u, Tensor mean, Tensor logStd)
    {
        using var scope = NewDisposeScope();
        Tensor z = (u - mean) / logStd.exp();
        Tensor gaussian = -0.5 * z.square() - logStd - HalfLog2Pi;
        Tensor logDetJacobian = 2.0 * (Math.Log(2.0) - u - nn.functional.softplus(-2.0 * u));
        return (gaussian - logDetJacobian).sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>The same quantity for one sample in plain double arithmetic (reference for tests and tools).</summary>
    public static double LogProb(ReadOnlySpan<double> u, ReadOnlySpan<double> mean, ReadOnlySpan<double> logStd)
    {
        double total = 0;
        for (int i = 0; i < u.Length; i++)
        {
            double z = (u[i] - mean[i]) / Math.Exp(logStd[i]);
            double t = Math.Tanh(u[i]);
            total += -0.5 * z * z - logStd[i] - HalfLog2Pi - Math.Log(1 - t * t);
        }
        return total;
    }
}
