using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// conv1d over [B, C_in, L] as one GEMM for the whole batch. libtorch's own CPU convolution (the path
/// <see cref="OneDnnWorkaround"/> selects) runs one small GEMM per sample, N = L columns each, far from the
/// BLAS's peak at the horizons a trajectory U-Net sees (L = 32..128). Here the input is copied once into a padded
/// channels-last buffer [B, L + 2p, C_in], in which output position l and tap k read C_in contiguous values starting
/// at row l*stride + k. The rows [l*stride .. l*stride + K) are therefore one contiguous run of K*C_in values, so
/// the im2col matrix [B*L_out, K*C_in] is a plain block copy, and the convolution is a single
/// <c>addmm</c> against the weight laid out as [C_out, K*C_in]. The backward pass is two GEMMs of the same size
/// plus K shifted additions (col2im), and the derivatives of those (a double backward) are again these three GEMMs.
/// Numbers match <c>F.conv1d</c> to float32 rounding; the tests check the values, all three gradients and second
/// derivatives against float64.
/// </summary>
internal static class TemporalConvolution
{
    /// <summary>The same result as <c>F.conv1d(x, weight, bias, stride, padding)</c> (no dilation, one group).</summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor? bias, long stride = 1, long padding = 0)
    {
        if (!Supports(x, weight, bias, stride, padding))
            return nn.functional.conv1d(x, weight, bias, stride, padding);
        bool tracked = is_grad_enabled() && (x.requires_grad || weight.requires_grad || (bias?.requires_grad ?? false));
        if (!tracked)
        {
            var output = Forward(x, weight, bias, stride, padding, out var channelsLast);
            channelsLast.Dispose();
            return output;
        }
        return Function.apply(x, weight, bias!, stride, padding);
    }

    /// <summary>Fused kernels on (<see cref="FusedKernels.Enabled"/>), float32 or float64 CPU tensors of matching shapes,
    /// and a kernel that fits the padded input; anything else goes to <c>F.conv1d</c>, which also reports shape errors
    /// in libtorch's words.</summary>
    private static bool Supports(Tensor x, Tensor weight, Tensor? bias, long stride, long padding)
        => FusedKernels.Enabled && x.device_type == DeviceType.CPU && weight.device_type == DeviceType.CPU
            && (x.dtype == ScalarType.Float32 || x.dtype == ScalarType.Float64) && weight.dtype == x.dtype
            && (bias is null || (bias.dtype == x.dtype && bias.device_type == DeviceType.CPU && bias.dim() == 1 && bias.shape[0] == weight.shape[0]))
            && x.dim() == 3 && weight.dim() == 3 && x.shape[1] == weight.shape[1] && x.shape[0] > 0
            && stride >= 1 && padding >= 0 && x.shape[2] + 2 * padding >= weight.shape[2];

    /// <summary>The padded channels-last copy [B, L + 2p, C_in] of x [B, C_in, L].</summary>
    private static Tensor ChannelsLast(Tensor x, long padding)
    {
        long batch = x.shape[0], inputs = x.shape[1], length = x.shape[2];
        var channelsLast = empty(new[] { batch, length + 2 * padding, inputs }, x.dtype);
        if (padding > 0)
        {
            channelsLast.narrow(1, 0, padding).zero_();
            channelsLast.narrow(1, padding + length, padding).zero_();
        }
        channelsLast.narrow(1, padding, length).copy_(x.transpose(1, 2));
        return channelsLast;
    }

    /// <summary>The im2col matrix [B*L_out, K*C_in] of a padded channels-last input, in this thread's workspace
    /// (or the input itself for a 1x1 convolution). Valid until the next call on this thread.</summary>
    private static Tensor Columns(Tensor channelsLast, long taps, long stride, long outputLength)
    {
        long batch = channelsLast.shape[0], padded = channelsLast.shape[1], inputs = channelsLast.shape[2];
        if (taps == 1 && stride == 1)
            return channelsLast.view(batch * padded, inputs);
        var columns = Workspace(ref t_columns, batch * outputLength, taps * inputs, channelsLast.dtype);
        columns.view(batch, outputLength, taps * inputs)
            .copy_(channelsLast.as_strided(new[] { batch, outputLength, taps * inputs }, new[] { padded * inputs, stride * inputs, 1L }));
        return columns;
    }

    /// <summary>The weight [C_out, C_in, K] as the tap-major matrix [C_out, K*C_in] the columns need.</summary>
    private static Tensor Kernel(Tensor weight)
        => weight.shape[2] == 1 ? weight.view(weight.shape[0], weight.shape[1]) : weight.permute(0, 2, 1).reshape(weight.shape[0], -1);

    private static Tensor Forward(Tensor x, Tensor weight, Tensor? bias, long stride, long padding, out Tensor channelsLast)
    {
        long batch = x.shape[0], outputs = weight.shape[0], taps = weight.shape[2];
        long outputLength = (x.shape[2] + 2 * padding - taps) / stride + 1;
        using var scope = NewDisposeScope();
        channelsLast = ChannelsLast(x, padding);
        var columns = Columns(channelsLast, taps, stride, outputLength);
        var kernel = Kernel(weight);
        var rows = bias is null ? columns.mm(kernel.t()) : addmm(bias, columns, kernel.t(), 1, 1);   // [B*L_out, C_out]
        var output = rows.view(batch, outputLength, outputs).transpose(1, 2).contiguous();
        channelsLast.MoveToOuterDisposeScope();
        return output.MoveToOuterDisposeScope();
    }

    // Per-thread scratch for the im2col matrices: freshly allocated multi-megabyte buffers cost more than the copy
    // into them (page faults, and on the project's machines GEMMs on new mappings ran up to 3x slower).
    [ThreadStatic] private static Tensor? t_columns;
    [ThreadStatic] private static Tensor? t_gradientColumns;

    private static Tensor Workspace(ref Tensor? slot, long rows, long columns, ScalarType type)
    {
        long needed = rows * columns;
        if (slot is null || slot.dtype != type || slot.numel() < needed)
        {
            slot?.Dispose();
            using (no_grad())
                slot = empty(needed, type).DetachFromDisposeScope();
        }
        return slot.narrow(0, 0, needed).view(rows, columns);
    }

    /// <summary>The input gradient of the convolution, conv_transpose1d(grad, weight) for an input of <paramref name="length"/>
    /// steps, differentiable again in both arguments.</summary>
    private static Tensor InputGradient(Tensor grad, Tensor weight, long length, long stride, long padding)
    {
        if (is_grad_enabled() && (grad.requires_grad || weight.requires_grad))
            return InputGradientFunction.apply(grad, weight, length, stride, padding);
        return InputGradientKernel(grad, weight, length, stride, padding);
    }

    /// <summary>The weight gradient of the convolution of <paramref name="x"/>, differentiable again in both arguments.</summary>
    private static Tensor WeightGradient(Tensor grad, Tensor x, long taps, long stride, long padding)
    {
        if (is_grad_enabled() && (grad.requires_grad || x.requires_grad))
            return WeightGradientFunction.apply(grad, x, taps, stride, padding);
        using var scope = NewDisposeScope();
        var channelsLast = ChannelsLast(x, padding);
        return WeightGradientKernel(grad, channelsLast, x.shape[1], taps, stride).MoveToOuterDisposeScope();
    }

    /// <summary>grad [B, C_out, L_out] as the GEMM rows [B*L_out, C_out].</summary>
    private static Tensor Rows(Tensor grad)
        => grad.transpose(1, 2).contiguous().view(grad.shape[0] * grad.shape[2], grad.shape[1]);

    private static Tensor WeightGradientKernel(Tensor grad, Tensor channelsLast, long inputChannels, long taps, long stride)
    {
        using var scope = NewDisposeScope();
        long outputs = grad.shape[1];
        var columns = Columns(channelsLast, taps, stride, grad.shape[2]);
        var gradKernel = Rows(grad).t().mm(columns);                                              // [C_out, K*C_in]
        var gradWeight = taps == 1
            ? gradKernel.view(outputs, inputChannels, 1)
            : gradKernel.view(outputs, taps, inputChannels).permute(0, 2, 1).contiguous();
        return gradWeight.MoveToOuterDisposeScope();
    }

    private static Tensor InputGradientKernel(Tensor grad, Tensor weight, long length, long stride, long padding)
    {
        long batch = grad.shape[0], outputLength = grad.shape[2];
        long inputChannels = weight.shape[1], taps = weight.shape[2];
        long padded = length + 2 * padding;
        using var scope = NewDisposeScope();
        var rows = Rows(grad);
        var kernel = Kernel(weight);
        Tensor gradPadded;
        if (taps == 1 && stride == 1)
            gradPadded = rows.mm(kernel).view(batch, padded, inputChannels);
        else
        {
            var gradColumns = Workspace(ref t_gradientColumns, batch * outputLength, taps * inputChannels, grad.dtype);
            gradColumns.addmm_(rows, kernel, beta: 0, alpha: 1);                                   // rows @ kernel: [B*L_out, K*C_in]
            // col2im: tap k of output row l came from padded row l*stride + k.
            gradPadded = zeros(new[] { batch, padded, inputChannels }, grad.dtype);
            var perTap = gradColumns.view(batch, outputLength, taps, inputChannels);
            for (long k = 0; k < taps; k++)
            {
                gradPadded.as_strided(new[] { batch, outputLength, inputChannels }, new[] { padded * inputChannels, stride * inputChannels, 1L }, k * inputChannels)
                    .add_(perTap.select(2, k), Scalars.One);
            }
        }
        return gradPadded.narrow(1, padding, length).transpose(1, 2).contiguous().MoveToOuterDisposeScope();
    }

    // The convolution is bilinear in (input, weight), so every derivative of it, of any order, is again one of three
    // GEMM operations: the convolution, its input gradient and its weight gradient. Each is a function whose backward
    // calls the other two, so that a double backward (the reward objective's) stays on batched GEMMs instead of
    // libtorch's per-sample convolution kernels.
    private sealed class Function : SingleTensorFunction<Function>
    {
        public override string Name => "TemporalConvolution";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var x = (Tensor)vars[0];
            var weight = (Tensor)vars[1];
            var bias = vars[2] as Tensor;
            long stride = (long)vars[3], padding = (long)vars[4];
            var output = Forward(x, weight, bias, stride, padding, out var channelsLast);
            // The padded input, K times smaller than its im2col matrix, which backward rebuilds.
            var saved = new List<Tensor> { x, weight, channelsLast };
            if (bias is not null)
                saved.Add(bias);
            ctx.save_for_backward(saved);
            ctx.save_data("stride", stride);
            ctx.save_data("padding", padding);
            // Not disposed here: TorchSharp commits the saved list to native SavedVariables after forward returns.
            return output;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor grad)
        {
            var saved = ctx.get_saved_variables();
            Tensor x = saved[0], weight = saved[1], channelsLast = saved[2];
            Tensor? bias = saved.Count > 3 ? saved[3] : null;
            long stride = (long)ctx.get_data("stride"), padding = (long)ctx.get_data("padding");
            var gradBias = bias is null ? null : grad.sum(new long[] { 0, 2 });
            if (is_grad_enabled())
            {
                // create_graph: the same GEMMs as differentiable operations. Inside an input-gradient pass the weight and
                // bias gradients would be thrown away (TorchSharp's functions cannot ask the engine which are needed).
                bool parameters = !InputGradientPass.Active;
                return new List<Tensor>
                {
                    InputGradient(grad, weight, x.shape[2], stride, padding),
                    parameters ? WeightGradient(grad, x, weight.shape[2], stride, padding) : null!,
                    parameters ? gradBias! : null!, null!, null!,
                };
            }
            var gradWeight = WeightGradientKernel(grad, channelsLast, x.shape[1], weight.shape[2], stride);
            var gradX = InputGradientKernel(grad, weight, x.shape[2], stride, padding);
            return new List<Tensor> { gradX, gradWeight, gradBias!, null!, null! };
        }
    }

    /// <summary>conv_transpose1d(grad, weight) as a differentiable operation: its derivative in grad is the convolution
    /// of the incoming gradient, in the weight the weight gradient of that convolution.</summary>
    private sealed class InputGradientFunction : SingleTensorFunction<InputGradientFunction>
    {
        public override string Name => "TemporalConvolutionInputGradient";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var grad = (Tensor)vars[0];
            var weight = (Tensor)vars[1];
            long length = (long)vars[2], stride = (long)vars[3], padding = (long)vars[4];
            ctx.save_for_backward(new List<Tensor> { grad, weight });
            ctx.save_data("stride", stride);
            ctx.save_data("padding", padding);
            return InputGradientKernel(grad, weight, length, stride, padding);
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor outer)
        {
            var saved = ctx.get_saved_variables();
            Tensor grad = saved[0], weight = saved[1];
            long stride = (long)ctx.get_data("stride"), padding = (long)ctx.get_data("padding");
            return new List<Tensor>
            {
                Apply(outer, weight, null, stride, padding),
                WeightGradient(grad, outer, weight.shape[2], stride, padding),
                null!, null!, null!,
            };
        }
    }

    /// <summary>The weight gradient as a differentiable operation: its derivative in grad is the convolution of x with the
    /// incoming weight gradient, in x the input gradient of that convolution.</summary>
    private sealed class WeightGradientFunction : SingleTensorFunction<WeightGradientFunction>
    {
        public override string Name => "TemporalConvolutionWeightGradient";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var grad = (Tensor)vars[0];
            var x = (Tensor)vars[1];
            long taps = (long)vars[2], stride = (long)vars[3], padding = (long)vars[4];
            ctx.save_for_backward(new List<Tensor> { grad, x });
            ctx.save_data("stride", stride);
            ctx.save_data("padding", padding);
            using var scope = NewDisposeScope();
            var channelsLast = ChannelsLast(x, padding);
            return WeightGradientKernel(grad, channelsLast, x.shape[1], taps, stride).MoveToOuterDisposeScope();
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor outer)
        {
            var saved = ctx.get_saved_variables();
            Tensor grad = saved[0], x = saved[1];
            long stride = (long)ctx.get_data("stride"), padding = (long)ctx.get_data("padding");
            return new List<Tensor>
            {
                Apply(x, outer, null, stride, padding),
                InputGradient(grad, outer, x.shape[2], stride, padding),
                null!, null!, null!,
            };
        }
    }
}
