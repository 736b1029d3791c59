using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// How far two diffusion models are from the method's assumption at one noise level (docs/METHOD.md section 4).
/// <see cref="ExplainedFraction"/>: 1 - E||grad R - d||^2 / E||d - mean d||^2, where d = mu_expert - mu_base, the share of the
/// models' difference the reward explains (1 = all of it; NaN when d does not vary over the points).
/// <see cref="Asymmetry"/>: ||(J - J^T)/2||_F / ||J||_F for J = dd/dx, pooled over the points: 0 for a gradient field, 1 for
/// a pure rotation (NaN when J is zero, e.g. a constant difference).
/// </summary>
/// <param name="Step">The diffusion step t.</param>
/// <param name="Samples">Points used.</param>
/// <param name="ExplainedFraction">The share of the difference's variance the reward's gradient explains.</param>
/// <param name="Asymmetry">The antisymmetric share of the difference's Jacobian (Hutchinson estimate).</param>
public sealed record ConservativenessAtStep(int Step, int Samples, double ExplainedFraction, double Asymmetry);

/// <summary>
/// The conservativeness diagnostic: per noise level, how much of mu_expert - mu_base the reward explains and how far the
/// difference is from a gradient field. The relative reward exists when the difference is a gradient field; otherwise
/// the reward fits its L2 projection onto gradient fields, and these two numbers say how much is lost.
/// The Jacobian's antisymmetric part is estimated with Gaussian probe vectors v (Hutchinson): E||(J v - J^T v)/2||^2 =
/// ||(J - J^T)/2||_F^2 and E(||J v||^2 + ||J^T v||^2)/2 = ||J||_F^2, a pair whose ratio never leaves [0, 1]; J^T v is a vector-Jacobian product and J v one more through the
/// double-backward trick, so no Jacobian is ever formed.
/// </summary>
public static class ConservativenessDiagnostic
{
    /// <summary>Measures the diagnostic of a reward extracted from <paramref name="baseModel"/> and <paramref name="expertModel"/>.</summary>
    /// <param name="baseModel">The base model (its forward process makes x_t).</param>
    /// <param name="expertModel">The expert model.</param>
    /// <param name="reward">The reward, in the base model's normalised space.</param>
    /// <param name="normalizedData">Held-out samples [N, ...shape], normalised with the base model's normaliser.</param>
    /// <param name="steps">The noise levels to measure; null = every step.</param>
    /// <param name="probes">Probe vectors per point for the asymmetry (at least 1).</param>
    /// <param name="seed">Seeds the noise and the probes.</param>
    /// <param name="gradientAt">Where the reward's gradient is compared (as it was trained).</param>
    public static IReadOnlyList<ConservativenessAtStep> Measure(DiffusionModel baseModel, DiffusionModel expertModel, RelativeRewardModel reward,
        Tensor normalizedData, IReadOnlyList<int>? steps = null, int probes = 4, long seed = 0, GradientLocation gradientAt = GradientLocation.BaseMean)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(expertModel);
        ArgumentNullException.ThrowIfNull(reward);
        ArgumentNullException.ThrowIfNull(normalizedData);
        RelativeRewardObjective.CheckCompatible(baseModel, expertModel);
        if (!reward.Shape.Equals(baseModel.Shape))
            throw new ArgumentException($"The reward is built for {reward.Shape} but the models sample {baseModel.Shape}.", nameof(reward));
        baseModel.Shape.CheckBatch(normalizedData, "Diagnostic data");
        int total = baseModel.Diffusion.Steps;
        var chosen = steps ?? Enumerable.Range(0, total).ToArray();
        int bad = chosen.FirstOrDefault(t => t < 0 || t >= total, -1);
        if (chosen.Any(t => t < 0 || t >= total))
            throw new ArgumentOutOfRangeException(nameof(steps), bad, $"Every step must lie in 0..{total - 1}.");
        using var generator = TorchRandom.Generator(seed);
        var x0 = normalizedData.to(ScalarType.Float32);
        var results = new List<ConservativenessAtStep>();
        foreach (int step in chosen)
        {
            using var scope = NewDisposeScope();
            var t = full(x0.shape[0], step, dtype: ScalarType.Int64);
            var noise = randn(x0.shape, generator: generator);
            var current = baseModel.Diffusion.QSample(x0, t, noise);
            Tensor Difference(Tensor x) => expertModel.ReverseMean(x, t) - baseModel.ReverseMean(x, t);
            Tensor RewardGradient(Tensor x)
            {
                using var noGrad = no_grad();
                return reward.Gradient(gradientAt == GradientLocation.BaseMean ? baseModel.ReverseMean(x, t) : x, t);
            }
            results.Add(Measure(step, current, Difference, RewardGradient, probes, generator));
        }
        return results;
    }

    /// <summary>The diagnostic of a difference field <paramref name="difference"/> and a reward gradient at the points <paramref name="x"/>.</summary>
    internal static ConservativenessAtStep Measure(int step, Tensor x, Func<Tensor, Tensor> difference, Func<Tensor, Tensor> rewardGradient,
        int probes, torch.Generator generator)
    {
        if (probes < 1)
            throw new ArgumentOutOfRangeException(nameof(probes), probes, "At least one probe vector is needed.");
        using var scope = NewDisposeScope();
        long n = x.shape[0];
        double explained;
        using (no_grad())
        {
            var d = difference(x).to(ScalarType.Float64);
            var g = rewardGradient(x).to(ScalarType.Float64);
            double residual = (g - d).square().sum().ToDouble() / n;
            double spread = (d - d.mean(new long[] { 0 }, keepdim: true)).square().sum().ToDouble() / n;
            explained = spread > 0 ? 1 - residual / spread : double.NaN;
        }

        double antisymmetric = 0, whole = 0;
        using (enable_grad())
        {
            for (int p = 0; p < probes; p++)
            {
                var v = randn(x.shape, generator: generator).to(x.dtype);
                var leaf = x.detach().requires_grad_(true);
                var y = difference(leaf);
                var jtv = autograd.grad(new[] { (y * v).sum() }, new[] { leaf }, retain_graph: true)[0];
                // J v = d/dw (J^T w . v) with w a leaf of its own: the double-backward trick.
                var w = zeros_like(y).requires_grad_(true);
                var transposed = autograd.grad(new[] { (y * w).sum() }, new[] { leaf }, create_graph: true)[0];
                var jv = autograd.grad(new[] { (transposed * v).sum() }, new[] { w })[0];
                // ||J||_F^2 = ||S||_F^2 + ||A||_F^2 for J's symmetric and antisymmetric parts, and the same probes estimate
                // both parts: (||J v||^2 + ||J^T v||^2) / 2 = ||S v||^2 + ||A v||^2. Estimating the whole this way keeps the
                // ratio in [0, 1] however few probes there are (||J v||^2 alone can fall below ||A v||^2).
                antisymmetric += (jv - jtv).to(ScalarType.Float64).square().sum().ToDouble() / 4;
                whole += (jv.to(ScalarType.Float64).square().sum().ToDouble() + jtv.to(ScalarType.Float64).square().sum().ToDouble()) / 2;
            }
        }
        double asymmetry = whole > 0 ? Math.Sqrt(antisymmetric / whole) : double.NaN;
        return new ConservativenessAtStep(step, (int)n, explained, asymmetry);
    }
}
