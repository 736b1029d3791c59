using Microsoft.ML.RewardExtraction;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.RewardExtraction.Tests;

/// <summary>
/// The fused kernels compute the same functions as the torch operators they replace: forward values, gradients and the
/// double backward of the relative reward objective agree with the plain torch path to float rounding. The switch
/// (<see cref="FusedKernels.Enabled"/>) is per thread, so flipping it here does not affect tests running beside these.
/// </summary>
public sealed class FusedKernelTests
{
    public FusedKernelTests() => DiffusionModelTests.UseOneThread();

    private static T WithKernels<T>(bool enabled, Func<T> body)
    {
        bool saved = FusedKernels.Enabled;
        FusedKernels.Enabled = enabled;
        try
        {
            return body();
        }
        finally
        {
            FusedKernels.Enabled = saved;
        }
    }

    private static void AssertClose(Tensor expected, Tensor actual, double relative, double absolute = 1e-6)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = expected.abs().max().item<float>();
        double error = (expected - actual).abs().max().item<float>();
        Assert.True(error <= absolute + relative * scale, $"max abs error {error} (scale {scale})");
    }

    [Fact]
    public void MishAndItsDerivativesMatchTorch()
    {
        using var scope = NewDisposeScope();
        var x = linspace(-40, 40, 200_001);
        using (no_grad())
        {
            AssertClose(F.mish(x), FusedKernels.MishInPlace(x.clone()), 1e-6);
            AssertClose(FusedMish.CompositeDerivative(x), FusedMish.Derivative(x), 1e-5, 1e-6);
        }
        // Gradients through the autograd function, first and second order, against torch's mish.
        var a = x.clone().requires_grad_(true);
        var b = x.clone().requires_grad_(true);
        var ga = torch.autograd.grad(new[] { F.mish(a).mul(a.cos()).sum() }, new[] { a }, retain_graph: true, create_graph: true)[0];
        var gb = torch.autograd.grad(new[] { FusedMish.Apply(b).mul(b.cos()).sum() }, new[] { b }, retain_graph: true, create_graph: true)[0];
        AssertClose(ga, gb, 1e-5, 1e-5);
        var ha = torch.autograd.grad(new[] { ga.square().sum() }, new[] { a })[0];
        var hb = torch.autograd.grad(new[] { gb.square().sum() }, new[] { b })[0];
        AssertClose(ha, hb, 1e-4, 1e-4);
    }

    [Fact]
    public void FusedGroupNormMishMatchesTorch()
    {
        using var scope = NewDisposeScope();
        using var generator = TorchRandom.Generator(1);
        var x = randn(new long[] { 3, 32, 20 }, generator: generator).mul_(3).add_(1);
        var w = randn(new long[] { 32 }, generator: generator);
        var b = randn(new long[] { 32 }, generator: generator);
        var after = randn(new long[] { 3, 32 }, generator: generator);
        using var noGrad = no_grad();
        var expected = F.mish(F.group_norm(x, 8, w, b, 1e-5)) + after.unsqueeze(-1);
        var actual = FusedKernels.GroupNormMishInPlace(x.clone(), 8, w, b, 1e-5, after);
        AssertClose(expected, actual, 2e-6, 2e-6);
    }

    [Fact]
    public void GroupNormMishGradientsMatchTorchToSecondOrder()
    {
        using var scope = NewDisposeScope();
        using var generator = TorchRandom.Generator(3);
        var x0 = randn(new long[] { 2, 16, 10 }, generator: generator).mul_(2);
        var w0 = randn(new long[] { 16 }, generator: generator);
        var b0 = randn(new long[] { 16 }, generator: generator);
        Tensor[] Run(bool fused)
        {
            var x = x0.clone().requires_grad_(true);
            var w = w0.clone().requires_grad_(true);
            var b = b0.clone().requires_grad_(true);
            var y = fused ? FusedGroupNormMish.Apply(x, 4, w, b, 1e-5) : F.mish(F.group_norm(x, 4, w, b, 1e-5));
            var first = torch.autograd.grad(new[] { y.mul(x.cos()).sum() }, new[] { x, w, b }, retain_graph: true, create_graph: true);
            var second = torch.autograd.grad(new[] { first[0].square().sum() + first[1].sum() }, new[] { x, w })[0];
            return new[] { y.detach(), first[0].detach(), first[1].detach(), first[2].detach(), second };
        }
        var plain = Run(false);
        var fusedResult = Run(true);
        for (int i = 0; i < plain.Length; i++)
            AssertClose(plain[i], fusedResult[i], 1e-4, 1e-5);
    }

    [Fact]
    public void TemporalUNetIsTheSameWithAndWithoutKernels()
    {
        using var scope = NewDisposeScope();
        var shape = SampleShape.Trajectory(16, 3);
        using var net = TorchRandom.Initialize(4, () => new TemporalUNet(shape, 16, 1, 2));
        using var generator = TorchRandom.Generator(2);
        var x = randn(new long[] { 5, 16, 3 }, generator: generator);
        var t = randint(0, 20, new long[] { 5 }, generator: generator);
        using (no_grad())
            AssertClose(WithKernels(false, () => net.call(x, t)), WithKernels(true, () => net.call(x, t)), 1e-5, 1e-6);
        Tensor[] Gradients(bool kernels) => WithKernels(kernels, () =>
        {
            net.zero_grad();
            net.call(x, t).square().mean().backward();
            return net.parameters().Select(p => p.grad!.clone()).ToArray();
        });
        var plain = Gradients(false);
        var fused = Gradients(true);
        for (int i = 0; i < plain.Length; i++)
            AssertClose(plain[i], fused[i], 1e-4, 1e-6);
    }

    [Fact]
    public void RelativeRewardLossAndGradientsAreTheSameWithAndWithoutKernels()
    {
        using var scope = NewDisposeScope();
        var shape = SampleShape.Trajectory(8, 3);
        var options = new DiffusionModelOptions { Shape = shape, DiffusionSteps = 10, Denoiser = new DenoiserOptions { Kind = DenoiserKind.TemporalUNet, Dimension = 8, Multipliers = [1, 2] } };
        using var baseModel = DiffusionModel.Create(new DiffusionModelOptions { Shape = shape, DiffusionSteps = 10, Denoiser = options.Denoiser, Seed = 1 });
        using var expertModel = DiffusionModel.Create(new DiffusionModelOptions { Shape = shape, DiffusionSteps = 10, Denoiser = options.Denoiser, Seed = 2 });
        using var reward = TorchRandom.Initialize(3, () => new StateReward(shape, StateRewardOptions.Benchmark));
        var objective = new RelativeRewardObjective(baseModel, expertModel, reward);
        using var generator = TorchRandom.Generator(5);
        var x0 = rand(new long[] { 6, 8, 3 }, generator: generator).mul_(2).sub_(1);
        var t = randint(0, 10, new long[] { 6 }, generator: generator);
        var noise = randn(new long[] { 6, 8, 3 }, generator: generator);
        (float Loss, Tensor[] Grads) Run(bool kernels) => WithKernels(kernels, () =>
        {
            reward.zero_grad();
            var loss = objective.Loss(x0, t, noise);
            loss.backward();
            // The output bias does not influence the input gradient: its grad stays null.
            return (loss.item<float>(), reward.parameters().Select(p => p.grad is null ? zeros(1) : p.grad.clone()).ToArray());
        });
        var plain = Run(false);
        var fused = Run(true);
        Assert.Equal(plain.Loss, fused.Loss, 1e-4f * Math.Max(1f, Math.Abs(plain.Loss)));
        for (int i = 0; i < plain.Grads.Length; i++)
            AssertClose(plain.Grads[i], fused.Grads[i], 1e-4, 1e-6);
    }

    [Fact]
    public void FusedAdamFollowsTorchSharpAdamAndSharesItsStateFormat()
    {
        using var scope = NewDisposeScope();
        var shape = SampleShape.Trajectory(8, 3);
        using var a = TorchRandom.Initialize(6, () => new StateReward(shape, StateRewardOptions.Benchmark));
        using var b = TorchRandom.Initialize(6, () => new StateReward(shape, StateRewardOptions.Benchmark));
        using var plain = optim.Adam(a.parameters(), 1e-2);
        using var fused = new Adam(b.parameters(), 1e-2);
        using var generator = TorchRandom.Generator(8);
        // The same gradients for both (independent of the weights, so only Adam's own arithmetic differs).
        for (int step = 0; step < 5; step++)
        {
            var grads = a.parameters().Select(p => randn(p.shape, generator: generator).mul_(Math.Pow(10, -step))).ToArray();
            foreach (var (net, optimizer) in new (StateReward, optim.Optimizer)[] { (a, plain), (b, fused) })
            {
                optimizer.zero_grad();
                var parameters = net.parameters().ToArray();
                using (no_grad())
                {
                    for (int i = 0; i < parameters.Length; i++)
                        parameters[i].grad = grads[i].clone();
                }
                optimizer.step();
            }
        }
        var pa = a.parameters().ToArray();
        var pb = b.parameters().ToArray();
        for (int i = 0; i < pa.Length; i++)
            AssertClose(pa[i].detach(), pb[i].detach(), 1e-5, 1e-6);

        // The fused optimiser writes TorchSharp's Adam state format (same type name), so either loads the other's state.
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
            fused.save_state_dict(writer);
        buffer.Position = 0;
        using (var reader = new BinaryReader(buffer))
            ((TorchSharp.Modules.OptimizerHelper)plain).load_state_dict(reader);
    }
}
