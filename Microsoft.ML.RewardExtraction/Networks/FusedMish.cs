using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Mish, x tanh(softplus(x)), with the fused kernels of <see cref="FusedKernels"/> in every direction autograd needs:
/// the forward and the gradient are one pass each (torch computes exp, log1p and tanh separately, and with
/// <c>create_graph</c> differentiates a composite of a dozen element-wise operators). The derivative is itself a
/// differentiable function (<see cref="MishDerivativeFunction"/>), so double backward (the relative reward objective's
/// gradient of an input gradient) stays exact and fused; beyond the second derivative torch's composite takes over.
/// Falls back to <c>torch.nn.functional.mish</c> for tensors the kernels do not handle (non-float32, non-CPU, kernels off).
/// </summary>
internal static unsafe class FusedMish
{
    /// <summary>mish(x), differentiable.</summary>
    public static Tensor Apply(Tensor x)
    {
        if (!FusedKernels.Supports(x))
            return nn.functional.mish(x);
        if (!is_grad_enabled() || !x.requires_grad)
        {
            var y = empty_like(x);
            FusedKernels.Mish(FusedKernels.Data(x), FusedKernels.Data(y), x.numel());
            return y;
        }
        return MishFunction.apply(x);
    }

    /// <summary>mish'(x), differentiable (second derivative fused, higher ones by torch's composite).</summary>
    public static Tensor Derivative(Tensor x)
    {
        x = x.contiguous();
        if (!FusedKernels.Supports(x))
            return CompositeDerivative(x);
        if (!is_grad_enabled() || !x.requires_grad)
        {
            var y = empty_like(x);
            FusedKernels.MishDerivative(FusedKernels.Data(x), FusedKernels.Data(y), x.numel());
            return y;
        }
        return MishDerivativeFunction.apply(x);
    }

    /// <summary>mish'(x) from torch operators (differentiable to any order): tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2).</summary>
    internal static Tensor CompositeDerivative(Tensor x)
    {
        using var scope = NewDisposeScope();
        var tsp = nn.functional.softplus(x).tanh();
        var result = tsp + x * x.sigmoid() * (1 - tsp * tsp);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>mish''(x) from torch operators: s q (2 + x (1 - s) - 2 x s T), s = sigmoid(x), T = tanh(softplus(x)), q = 1 - T^2.</summary>
    internal static Tensor CompositeSecondDerivative(Tensor x)
    {
        using var scope = NewDisposeScope();
        var s = x.sigmoid();
        var tsp = nn.functional.softplus(x).tanh();
        var q = 1 - tsp * tsp;
        var result = s * q * (2 + x * (1 - s) - 2 * x * s * tsp);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>g * f(x) for a kernel f, as a new contiguous tensor.</summary>
    internal static unsafe Tensor Backward(Tensor grad, Tensor x, bool second)
    {
        var g = grad.contiguous();
        var xc = x.contiguous();
        if (!FusedKernels.Supports(g) || !FusedKernels.Supports(xc) || !g.shape.SequenceEqual(xc.shape))
            return grad * (second ? CompositeSecondDerivative(x) : CompositeDerivative(x));
        var result = empty_like(xc);
        if (second)
            FusedKernels.MishDerivativeBackward(FusedKernels.Data(g), FusedKernels.Data(xc), FusedKernels.Data(result), xc.numel());
        else
            FusedKernels.MishBackward(FusedKernels.Data(g), FusedKernels.Data(xc), FusedKernels.Data(result), xc.numel());
        return result;
    }

    internal sealed unsafe class MishFunction : SingleTensorFunction<MishFunction>
    {
        public override string Name => "FusedMish";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var x = (Tensor)vars[0];
            ctx.save_for_backward(new List<Tensor> { x });
            var y = empty_like(x);
            FusedKernels.Mish(FusedKernels.Data(x), FusedKernels.Data(y), x.numel());
            return y;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor grad)
        {
            var x = ctx.get_saved_variables()[0];
            // With create_graph the gradient must itself be differentiable in x (and in grad).
            if (is_grad_enabled())
                return new List<Tensor> { grad * Derivative(x) };
            return new List<Tensor> { Backward(grad, x, second: false) };
        }
    }

    internal sealed unsafe class MishDerivativeFunction : SingleTensorFunction<MishDerivativeFunction>
    {
        public override string Name => "FusedMishDerivative";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var x = (Tensor)vars[0];
            ctx.save_for_backward(new List<Tensor> { x });
            var y = empty_like(x);
            FusedKernels.MishDerivative(FusedKernels.Data(x), FusedKernels.Data(y), x.numel());
            return y;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor grad)
        {
            var x = ctx.get_saved_variables()[0];
            if (is_grad_enabled())
                return new List<Tensor> { grad * CompositeSecondDerivative(x) };
            return new List<Tensor> { Backward(grad, x, second: true) };
        }
    }
}
