using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLReward.Benchmarks;

/// <summary>
/// <c>mlreward-bench --check-convolutions [ROUNDS]</c>: whether this machine's float32 convolutions, as the library configures
/// them (<see cref="Microsoft.ML.RewardExtraction.OneDnnWorkaround"/>; <c>MLREWARD_ONEDNN_CONVOLUTIONS=1</c> and
/// <c>ONEDNN_MAX_CPU_ISA</c> select oneDNN and its kernels instead), give finite, repeatable and correct results for the
/// shapes the project's networks use. Every case runs the forward, the input and weight gradients, and the gradient of the input gradient (the
/// double backward of reward extraction), twice, and compares them with the same computation in float64 (which libtorch
/// runs on its own GEMM-based path, not oneDNN). Prints one line per failing case and a JSON summary.
/// </summary>
public static class ConvolutionCheck
{
    private sealed record Case(string Kind, int Batch, int InputChannels, int OutputChannels, int Length, int Kernel, int Stride, int Padding)
    {
        public override string ToString() => FormattableString.Invariant(
            $"{Kind} B{Batch} {InputChannels}->{OutputChannels} L{Length} k{Kernel} s{Stride} p{Padding}");
    }

    private static readonly string[] OutputNames = ["forward", "input gradient", "weight gradient", "double backward"];

    /// <summary>"libtorch", "onednn" or "unknown": where this process's convolutions run.</summary>
    public static string ConvolutionPath => Microsoft.ML.RewardExtraction.OneDnnWorkaround.ConvolutionsUseOneDnn switch
    {
        true => "onednn",
        false => "libtorch",
        null => "unknown",
    };

    private static IEnumerable<Case> Cases()
    {
        int[] batches = [1, 3, 24, 64];
        int[] lengths = [1, 2, 4, 8, 16, 32, 64];
        (int In, int Out)[] widths = [(6, 32), (14, 32), (23, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128), (256, 128)];
        foreach (int b in batches)
            foreach (int l in lengths)
                foreach (var (cin, cout) in widths)
                {
                    yield return new Case("conv", b, cin, cout, l, 5, 1, 2);
                    yield return new Case("conv", b, cin, cout, l, 1, 1, 0);
                    if (cin == cout)
                    {
                        if (l >= 2)
                            yield return new Case("conv", b, cin, cout, l, 3, 2, 1);
                        yield return new Case("convT", b, cin, cout, l, 4, 2, 1);
                    }
                }
    }

    /// <summary>Runs every case <paramref name="rounds"/> times on <paramref name="threads"/> threads.</summary>
    public static JsonLine Run(int threads, int rounds)
    {
        torch.set_num_threads(threads);
        Microsoft.ML.RewardExtraction.OneDnnWorkaround.EnsureSafeConvolutions();   // as every network of the library does
        int total = 0, nonFinite = 0, unrepeatable = 0, inaccurate = 0;
        double worst = 0;
        string worstCase = "";
        var cases = Cases().ToArray();
        for (int round = 0; round < rounds; round++)
        {
            for (int i = 0; i < cases.Length; i++)
            {
                var c = cases[i];
                using var scope = NewDisposeScope();
                var generator = new Generator((ulong)(1000 * i + 7));
                var x = randn(new long[] { c.Batch, c.InputChannels, c.Length }, ScalarType.Float64, generator: generator);
                var w = c.Kind == "conv"
                    ? randn(new long[] { c.OutputChannels, c.InputChannels, c.Kernel }, ScalarType.Float64, generator: generator) / Math.Sqrt(c.InputChannels * c.Kernel)
                    : randn(new long[] { c.InputChannels, c.OutputChannels, c.Kernel }, ScalarType.Float64, generator: generator) / Math.Sqrt(c.InputChannels * c.Kernel);
                var bias = randn(new long[] { c.OutputChannels }, ScalarType.Float64, generator: generator);
                var probe = randn(OutputShape(c), ScalarType.Float64, generator: generator);

                var reference = Evaluate(c, x, w, bias, probe);
                var (x32, w32, bias32, probe32) = (x.to(ScalarType.Float32), w.to(ScalarType.Float32), bias.to(ScalarType.Float32), probe.to(ScalarType.Float32));
                var first = Evaluate(c, x32, w32, bias32, probe32);
                var second = Evaluate(c, x32, w32, bias32, probe32);
                total++;
                for (int k = 0; k < OutputNames.Length; k++)
                {
                    string where = $"{c}: {OutputNames[k]}";
                    if (!first[k].isfinite().all().ToBoolean() || !second[k].isfinite().all().ToBoolean())
                    {
                        nonFinite++;
                        Console.Error.WriteLine($"NOT FINITE  {where}");
                        continue;
                    }
                    if (first[k].ne(second[k]).any().ToBoolean())
                    {
                        unrepeatable++;
                        Console.Error.WriteLine(FormattableString.Invariant($"UNREPEATABLE {where}: max difference {(first[k] - second[k]).abs().max().ToDouble():G3}"));
                    }
                    double scale = Math.Max(1e-6, reference[k].abs().max().ToDouble());
                    double error = (first[k].to(ScalarType.Float64) - reference[k]).abs().max().ToDouble() / scale;
                    if (error > worst)
                        (worst, worstCase) = (error, where);
                    if (error > 1e-4)
                    {
                        inaccurate++;
                        Console.Error.WriteLine(FormattableString.Invariant($"INACCURATE  {where}: relative error {error:G3}"));
                    }
                }
            }
        }
        return new JsonLine()
            .Add("check", "convolutions")
            .Add("onednn_max_cpu_isa", Microsoft.ML.RewardExtraction.OneDnnWorkaround.Value ?? "unset")
            .Add("convolutions", ConvolutionPath)
            .Add("threads", threads)
            .Add("cases", total)
            .Add("not_finite", nonFinite)
            .Add("unrepeatable", unrepeatable)
            .Add("inaccurate", inaccurate)
            .Add("worst_relative_error", Math.Round(worst, 9))
            .Add("worst_case", worstCase);
    }

    private static long[] OutputShape(Case c)
    {
        long length = c.Kind == "conv"
            ? (c.Length + 2 * c.Padding - c.Kernel) / c.Stride + 1
            : (c.Length - 1) * c.Stride - 2 * c.Padding + c.Kernel;
        return [c.Batch, c.OutputChannels, length];
    }

    /// <summary>[forward, dL/dx, dL/dw, d(sum (dL/dx)^2)/dw] for L = sum(probe * y).</summary>
    private static Tensor[] Evaluate(Case c, Tensor x, Tensor w, Tensor bias, Tensor probe)
    {
        x = x.detach().requires_grad_(true);
        w = w.detach().requires_grad_(true);
        var y = c.Kind == "conv"
            ? F.conv1d(x, w, bias, stride: c.Stride, padding: c.Padding)
            : F.conv_transpose1d(x, w, bias, stride: c.Stride, padding: c.Padding);
        var grads = torch.autograd.grad(new[] { (y * probe).sum() }, new[] { x, w }, retain_graph: true, create_graph: true);
        var second = torch.autograd.grad(new[] { grads[0].square().sum() }, new[] { w }, retain_graph: true)[0];
        return [y.detach(), grads[0].detach(), grads[1].detach(), second.detach()];
    }
}
