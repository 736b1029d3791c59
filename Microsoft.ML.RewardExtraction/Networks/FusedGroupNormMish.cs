using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// mish(GroupNorm(x; groups, weight, bias, eps)) for x [B, C, L], plus optional terms added after it, as one differentiable
/// operation: the forward is the
/// same fused kernel the inference path runs (so a forward with and without autograd gives identical numbers), the
/// backward one fused pass for x, weight and bias (torch runs GroupNorm, Mish and both of their backwards separately).
/// With <c>create_graph</c> the backward is rebuilt from torch operators, so higher derivatives stay available.
/// </summary>
internal static class FusedGroupNormMish
{
    /// <summary>Whether the fused operation applies to these tensors (else use torch's group_norm and mish).</summary>
    public static bool Supports(Tensor x, Tensor weight, Tensor bias, Tensor? perChannel = null, Tensor? elementwise = null)
        => x.dim() == 3 && FusedKernels.Supports(x) && FusedKernels.Supports(weight) && FusedKernels.Supports(bias)
            && FusedKernels.CanAddPerChannel(perChannel, x.shape[0], x.shape[1])
            && (elementwise is null || (FusedKernels.Supports(elementwise) && elementwise.shape.SequenceEqual(x.shape)));

    /// <summary>
    /// mish(group_norm(x)) + perChannel[:, :, None] + elementwise (the optional terms added after the Mish, in that order),
    /// differentiable in every tensor argument. Without autograd and with <paramref name="overwrite"/> the result is
    /// written over x.
    /// </summary>
    public static Tensor Apply(Tensor x, int groups, Tensor weight, Tensor bias, double eps, Tensor? perChannel = null,
        Tensor? elementwise = null, bool overwrite = false)
    {
        bool tracked = is_grad_enabled() && (x.requires_grad || weight.requires_grad || bias.requires_grad
            || (perChannel?.requires_grad ?? false) || (elementwise?.requires_grad ?? false));
        if (!tracked)
        {
            var output = overwrite ? x : empty_like(x);
            FusedKernels.GroupNormMish(x, output, groups, weight, bias, eps, perChannel, elementwise, null);
            return output;
        }
        return Function.apply(x, weight, bias, perChannel!, elementwise!, groups, eps);
    }

    /// <summary>The same function from torch operators (for higher-order derivatives).</summary>
    private static Tensor Composite(Tensor x, int groups, Tensor weight, Tensor bias, double eps)
        => nn.functional.mish(nn.functional.group_norm(x, groups, weight, bias, eps));

    private sealed class Function : SingleTensorFunction<Function>
    {
        public override string Name => "FusedGroupNormMish";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var x = (Tensor)vars[0];
            var weight = (Tensor)vars[1];
            var bias = (Tensor)vars[2];
            var perChannel = vars[3] as Tensor;
            var elementwise = vars[4] as Tensor;
            int groups = (int)vars[5];
            double eps = (double)vars[6];
            var statistics = new double[2 * x.shape[0] * groups];
            var output = empty_like(x);
            FusedKernels.GroupNormMish(x, output, groups, weight, bias, eps, perChannel, elementwise, statistics);
            ctx.save_for_backward(new List<Tensor> { x, weight, bias });
            ctx.save_data("groups", groups);
            ctx.save_data("eps", eps);
            ctx.save_data("statistics", statistics);
            ctx.save_data("terms", (perChannel is not null ? 1 : 0) | (elementwise is not null ? 2 : 0));
            return output;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor grad)
        {
            var saved = ctx.get_saved_variables();
            Tensor x = saved[0], weight = saved[1], bias = saved[2];
            int groups = (int)ctx.get_data("groups");
            double eps = (double)ctx.get_data("eps");
            int terms = (int)ctx.get_data("terms");
            // The terms added after the Mish: d/dperChannel = sum of grad over the length, d/delementwise = grad.
            Tensor? gradPerChannel = (terms & 1) != 0 ? grad.sum(2) : null;
            Tensor? gradElementwise = (terms & 2) != 0 ? grad : null;
            if (is_grad_enabled())
            {
                // create_graph: the vector-Jacobian product of the composite, itself differentiable.
                var inputs = new[] { x, weight, bias };
                var grads = torch.autograd.grad(new[] { Composite(x, groups, weight, bias, eps) }, inputs, new[] { grad },
                    retain_graph: true, create_graph: true, allow_unused: true);
                return new List<Tensor> { grads[0], grads[1], grads[2], gradPerChannel!, gradElementwise!, null!, null! };
            }
            var statistics = (double[])ctx.get_data("statistics");
            var g = grad.contiguous();
            var gradX = empty_like(x);
            var gradWeight = empty_like(weight);
            var gradBias = empty_like(bias);
            FusedKernels.GroupNormMishBackward(x, g, groups, weight, bias, statistics, gradX, gradWeight, gradBias);
            return new List<Tensor> { gradX, gradWeight, gradBias, gradPerChannel!, gradElementwise!, null!, null! };
        }
    }
}
