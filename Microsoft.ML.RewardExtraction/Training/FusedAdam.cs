using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// TorchSharp's Adam with a fused update: per parameter one pass over (parameter, gradient, first and second moment)
/// instead of eight tensor operators and two temporaries, with the same formula (Kingma and Ba, as torch.optim.Adam:
/// m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)). The state is
/// TorchSharp's own (<see cref="TorchSharp.Modules.Adam.State"/>), and the class keeps the name <c>Adam</c>, so
/// checkpoints written with torch's Adam load here and vice versa. Weight decay, AMSGrad, maximize, and tensors the
/// kernels do not handle take TorchSharp's path.
/// </summary>
internal sealed class Adam : TorchSharp.Modules.Adam
{
    public Adam(IEnumerable<Parameter> parameters, double lr) : base(parameters, lr)
    {
    }

    public override Tensor step(Func<Tensor>? closure = null)
    {
        bool fusable = FusedKernels.Enabled && _parameter_groups.All(g => g.Options is Options o
            && o.weight_decay == 0 && o.amsgrad == false && o.maximize == false);
        if (!fusable)
            return base.step(closure!);
        Tensor? loss = null;
        if (closure is not null)
        {
            using (enable_grad())
                loss = closure();
        }
        using (no_grad())
        using (NewDisposeScope())
        {
            foreach (var group in _parameter_groups)
            {
                var o = (Options)group.Options;
                double beta1 = o.beta1!.Value, beta2 = o.beta2!.Value, eps = o.eps!.Value, lr = o.LearningRate!.Value;
                foreach (var parameter in group.Parameters)
                {
                    var grad = parameter.grad;
                    if (grad is null)
                        continue;
                    var state = (State)_state[parameter.Handle];
                    state.step += 1;
                    double correction1 = 1 - Math.Pow(beta1, state.step);
                    double correction2 = 1 - Math.Pow(beta2, state.step);
                    if (FusedKernels.Supports(parameter) && FusedKernels.Supports(grad) && FusedKernels.Supports(state.exp_avg)
                        && FusedKernels.Supports(state.exp_avg_sq))
                    {
                        FusedKernels.AdamStep(parameter, grad, state.exp_avg, state.exp_avg_sq, (float)beta1, (float)beta2,
                            (float)(lr / correction1), (float)(1 / Math.Sqrt(correction2)), (float)eps);
                        continue;
                    }
                    state.exp_avg.mul_(beta1).add_(grad, alpha: 1 - beta1);
                    state.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value: 1 - beta2);
                    var denom = (state.exp_avg_sq.sqrt() / Math.Sqrt(correction2)).add_(eps);
                    parameter.addcdiv_(state.exp_avg, denom, value: -lr / correction1);
                }
            }
        }
        return loss!;
    }
}
