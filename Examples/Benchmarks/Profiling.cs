using System.Diagnostics;
using Microsoft.ML.RewardExtraction;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLReward.Benchmarks;

/// <summary>
/// <c>--profile</c>: Stopwatch breakdowns of each workload's phases, built from the same core calls the trainers make
/// (wall time and process CPU time per phase, averaged over the repetitions). For finding where time goes, not for ratios.
/// </summary>
public static class Profiling
{
    private sealed class Phases
    {
        private readonly Dictionary<string, (List<double> Wall, List<double> Cpu)> _samples = new();
        private readonly List<string> _order = new();

        public T Time<T>(string name, Func<T> action)
        {
            double cpu = Clock.ProcessCpuSeconds();
            var clock = Stopwatch.StartNew();
            var result = action();
            Add(name, clock.Elapsed.TotalSeconds, Clock.ProcessCpuSeconds() - cpu);
            return result;
        }

        public void Time(string name, Action action) => Time<int>(name, () => { action(); return 0; });

        public void Add(string name, double wall, double cpu)
        {
            if (!_samples.TryGetValue(name, out var s))
            {
                _order.Add(name);
                _samples[name] = s = (new List<double>(), new List<double>());
            }
            s.Wall.Add(wall);
            s.Cpu.Add(cpu);
        }

        private static double Median(List<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : 0.5 * (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]);
        }

        /// <summary>Medians per phase (robust to the load spikes of a shared machine).</summary>
        public JsonLine ToLine(string workload)
        {
            var line = new JsonLine().Add("workload", workload).Add("name", "profile (medians)");
            foreach (var name in _order)
            {
                var (wall, cpu) = _samples[name];
                line.Add(name + "_ms", Math.Round(1000 * Median(wall), 2)).Add(name + "_cpu_ms", Math.Round(1000 * Median(cpu), 2));
            }
            return line;
        }
    }

    /// <summary>Runs <paramref name="body"/> with the fused kernels off and on alternately (A/B in one process, the fairest
    /// comparison on a loaded machine); phase names get a "torch_" or "fused_" prefix.</summary>
    private static void AlternateKernels(int repetitions, Action<Func<string, string>, bool> body)
    {
        bool saved = FusedKernels.Enabled;
        try
        {
            for (int i = 0; i <= repetitions; i++)
            {
                var only = Environment.GetEnvironmentVariable("MLREWARD_PROFILE_ONLY");
                var variants = only == "fused" ? new[] { true } : only == "torch" ? new[] { false } : new[] { false, true };
                foreach (bool fused in variants)
                {
                    FusedKernels.Enabled = fused;
                    body(name => (fused ? "fused_" : "torch_") + name, i == 0);
                }
            }
        }
        finally
        {
            FusedKernels.Enabled = saved;
        }
    }

    /// <summary>Profiles the named workloads, <paramref name="repetitions"/> iterations each after one warm-up.</summary>
    public static IEnumerable<JsonLine> Run(string only, BenchmarkOptions options, int repetitions)
    {
        torch.set_num_threads(options.Threads);
        foreach (var name in only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            yield return name.ToUpperInvariant() switch
            {
                "W1" => W1(repetitions),
                "W2" or "W2-CACHED" => W2(repetitions),
                "W3" => W3(repetitions),
                "W4" or "W4-RAW" => W4(repetitions),
                "W5" => W5(repetitions),
                "MICRO" => Micro(repetitions),
                "CONV" => Conv(repetitions),
                "W1-LAYERS" => W1Layers(repetitions),
                "KERNELS" => Kernels(repetitions),
                _ => throw new ArgumentException($"Unknown workload '{name}'."),
            };
        }
    }

    private static JsonLine W1(int repetitions)
    {
        using var scope = NewDisposeScope();
        using var model = Workloads.CreateModel(0);
        var net = model.Denoiser;
        var data = Workloads.UniformData(Workloads.DataRows, 0);
        using var generator = TorchRandom.Generator(0);
        var parameters = net.parameters().ToArray();
        using var optimizer = new Adam(parameters, 2e-4);
        var phases = new Phases();
        AlternateKernels(repetitions, (n, warm) =>
        {
            var p = warm ? new Phases() : phases;
            using var step = NewDisposeScope();
            var (x, t, target) = p.Time(n("data"), () =>
            {
                var index = randint(0, data.shape[0], new long[] { 32 }, generator: generator);
                var t = randint(0, Workloads.DiffusionSteps, new long[] { 32 }, generator: generator);
                var noise = randn(new long[] { 32, Workloads.Horizon, Workloads.Transition }, generator: generator);
                var x0 = data.index_select(0, index);
                return (model.Diffusion.QSample(x0, t, noise), t, x0);
            });
            var loss = p.Time(n("forward"), () => F.mse_loss(net.call(x, t), target));
            p.Time(n("zero_grad"), () => optimizer.zero_grad());
            p.Time(n("backward"), () => loss.backward());
            p.Time(n("adam"), () => optimizer.step());
            p.Time(n("item"), () => loss.item<float>());
        });
        return phases.ToLine("W1").Add("gc0", GC.CollectionCount(0)).Add("gc2", GC.CollectionCount(2)).Add("rss_mb", Clock.WorkingSetMiB());
    }

    private static JsonLine W2(int repetitions)
    {
        using var scope = NewDisposeScope();
        using var baseModel = Workloads.CreateModel(1);
        using var expertModel = Workloads.CreateModel(2);
        using var reward = Workloads.CreateReward(3);
        var data = Workloads.UniformData(Workloads.DataRows, 0);
        using var generator = TorchRandom.Generator(0);
        using var optimizer = new Adam(reward.parameters(), 2e-4);
        var phases = new Phases();
        const int b = 64;
        AlternateKernels(repetitions, (n, warm) =>
        {
            var p = warm ? new Phases() : phases;
            using var step = NewDisposeScope();
            var (xt, t) = p.Time(n("data"), () =>
            {
                var index = randint(0, data.shape[0], new long[] { b }, generator: generator);
                var t = randint(0, Workloads.DiffusionSteps, new long[] { b }, generator: generator);
                var noise = randn(new long[] { b, Workloads.Horizon, Workloads.Transition }, generator: generator);
                return (baseModel.Diffusion.QSample(data.index_select(0, index), t, noise), t);
            });
            Tensor muB, muE;
            using (no_grad())
            {
                muB = p.Time(n("base_mean"), () => baseModel.ReverseMean(xt, t));
                muE = p.Time(n("expert_mean"), () => expertModel.ReverseMean(xt, t));
            }
            var target = muE.sub(muB);
            var at = muB.requires_grad_(true);
            var r = p.Time(n("reward_forward"), () => reward.call(at, t));
            var g = p.Time(n("reward_input_grad"), () =>
            {
                using var pass = InputGradientPass.Enter();   // as LossAt: parameter gradients skipped
                return torch.autograd.grad(new[] { r.sum() }, new[] { at }, retain_graph: true, create_graph: true)[0];
            });
            var loss = p.Time(n("mse"), () => F.mse_loss(g, target));
            p.Time(n("zero_grad"), () => optimizer.zero_grad());
            p.Time(n("double_backward"), () => loss.backward());
            p.Time(n("adam"), () => optimizer.step());
        });
        return phases.ToLine("W2");
    }

    /// <summary>W5's step split where <see cref="RelativeRewardObjective.LossAt"/> and the optimiser spend it: the reward's
    /// forward, its input gradient (first backward, create_graph) and the loss's backward through that gradient.</summary>
    private static JsonLine W5(int repetitions)
    {
        using var scope = NewDisposeScope();
        using var reward = Workloads.CreateTrajectoryReward(5);
        var (poolAt, poolT, poolTarget) = Workloads.LocomotionPoolData(0);
        using var generator = TorchRandom.Generator(0);
        using var optimizer = new Adam(reward.parameters(), 2e-4);
        var phases = new Phases();
        AlternateKernels(repetitions, (n, warm) =>
        {
            var p = warm ? new Phases() : phases;
            using var step = NewDisposeScope();
            var (at, t, target) = p.Time(n("data"), () =>
            {
                var rows = randint(0, Workloads.LocomotionPool, new long[] { Workloads.LocomotionBatch }, dtype: ScalarType.Int64, generator: generator);
                return (poolAt.index_select(0, rows).requires_grad_(true), poolT.index_select(0, rows), poolTarget.index_select(0, rows));
            });
            var r = p.Time(n("reward_forward"), () => reward.call(at, t));
            var g = p.Time(n("reward_input_grad"), () =>
            {
                using var pass = InputGradientPass.Enter();   // as LossAt: parameter gradients skipped
                return torch.autograd.grad(new[] { r.sum() }, new[] { at }, retain_graph: true, create_graph: true)[0];
            });
            var loss = p.Time(n("mse"), () => F.mse_loss(g, target));
            p.Time(n("zero_grad"), () => optimizer.zero_grad());
            p.Time(n("double_backward"), () => loss.backward());
            p.Time(n("adam"), () => optimizer.step());
        });
        return phases.ToLine("W5");
    }

    private static JsonLine W3(int repetitions)
    {
        using var scope = NewDisposeScope();
        using var baseModel = Workloads.CreateModel(1);
        using var reward = new RelativeRewardModel(Workloads.CreateReward(3), baseModel.Diffusion.Schedule);
        var phases = new Phases();
        using var generator = TorchRandom.Generator(0);
        AlternateKernels(repetitions, (n, warm) =>
        {
            var p = warm ? new Phases() : phases;
            using var step = NewDisposeScope();
            var x = randn(new long[] { 64, Workloads.Horizon, Workloads.Transition }, generator: generator);
            var t = full(64, 40L, ScalarType.Int64);
            p.Time(n("reward_gradient"), () => reward.Gradient(x, t));
            using (no_grad())
                p.Time(n("base_mean"), () => baseModel.ReverseMean(x, t));
        });
        return phases.ToLine("W3 (one reverse step)");
    }

    private static JsonLine Kernels(int repetitions)
    {
        using var scope = NewDisposeScope();
        var phases = new Phases();
        var x = randn(32, 256, 32);
        var y = empty_like(x);
        var g = randn(32, 256, 32);
        var w = randn(256);
        var b = randn(256);
        var dx = empty_like(x);
        var dw = empty_like(w);
        var db = empty_like(b);
        var stats = new double[2 * 32 * 8];
        var xl = randn(32, 32, 256);
        var yl = empty_like(xl);
        var w32 = randn(32);
        var gl = randn(32, 32, 256);
        var dxl = empty_like(xl);
        var dw32 = empty_like(w32);
        var db32 = empty_like(w32);
        var b32 = randn(32);
        var flat = randn(2_000_000);
        var flatOut = empty_like(flat);
        for (int i = 0; i <= repetitions; i++)
        {
            var p = i == 0 ? new Phases() : phases;
            p.Time("gn_mish_fwd_262k_x10", () => { for (int k = 0; k < 10; k++) FusedKernels.GroupNormMish(x, y, 8, w, b, 1e-5, null, null, stats); });
            p.Time("gn_mish_bwd_262k_x10", () => { for (int k = 0; k < 10; k++) FusedKernels.GroupNormMishBackward(x, g, 8, w, b, stats, dx, dw, db); });
            p.Time("gn_mish_fwd_262k_longrows_x10", () => { for (int k = 0; k < 10; k++) FusedKernels.GroupNormMish(xl, yl, 8, w32, b32, 1e-5, null, null, stats); });
            p.Time("gn_mish_bwd_262k_longrows_x10", () => { for (int k = 0; k < 10; k++) FusedKernels.GroupNormMishBackward(xl, gl, 8, w32, b32, stats, dxl, dw32, db32); });
            p.Time("mish_2M_inplace", () => FusedKernels.MishInPlace(flatOut));
            p.Time("mish_derivative_2M", () => FusedMish.Derivative(flat).Dispose());
            p.Time("copy_2M", () => flatOut.copy_(flat));
        }
        return phases.ToLine("kernels");
    }

    /// <summary>Every convolution of the W1 U-Net (batch 32, horizon 128, widths 32/128/256) at its shape, forward and
    /// backward, on libtorch's convolution and on <see cref="TemporalConvolution"/>; the sums show what convolutions cost
    /// in a W1 step.</summary>
    private static JsonLine W1Layers(int repetitions)
    {
        using var scope = NewDisposeScope();
        // (count, in, out, length, kernel, stride, padding)
        var layers = new (int N, int Cin, int Cout, int L, int K, int S, int P)[]
        {
            (1, 6, 32, 128, 5, 1, 2), (4, 32, 32, 128, 5, 1, 2), (1, 6, 32, 128, 1, 1, 0), (1, 32, 32, 128, 3, 2, 1),
            (1, 32, 128, 64, 5, 1, 2), (3, 128, 128, 64, 5, 1, 2), (1, 32, 128, 64, 1, 1, 0), (1, 128, 128, 64, 3, 2, 1),
            (1, 128, 256, 32, 5, 1, 2), (7, 256, 256, 32, 5, 1, 2), (1, 128, 256, 32, 1, 1, 0),
            (1, 512, 128, 32, 5, 1, 2), (3, 128, 128, 32, 5, 1, 2), (1, 512, 128, 32, 1, 1, 0),
            (1, 256, 32, 64, 5, 1, 2), (3, 32, 32, 64, 5, 1, 2), (1, 256, 32, 64, 1, 1, 0),
        };
        var phases = new Phases();
        for (int i = 0; i <= repetitions; i++)
        {
            var p = i == 0 ? new Phases() : phases;
            var totals = new Dictionary<string, (double Wall, double Cpu)>();
            foreach (var (n, cin, cout, l, k, stride, padding) in layers)
            {
                using var step = NewDisposeScope();
                var w = (randn(cout, cin, k) / Math.Sqrt(cin * k)).requires_grad_(true);
                var b = randn(cout).requires_grad_(true);
                var x = randn(32, cin, l).requires_grad_(true);
                var probe = randn(32, cout, (l + 2 * padding - k) / stride + 1);
                string tag = $"{cin}to{cout}_L{l}_k{k}s{stride}";
                // One call, counted n times (the layer's occurrences in the U-Net), per layer and in the totals.
                void Time(string path, Action action)
                {
                    double cpu = Clock.ProcessCpuSeconds();
                    var clock = Stopwatch.StartNew();
                    action();
                    double wall = clock.Elapsed.TotalSeconds * n, used = (Clock.ProcessCpuSeconds() - cpu) * n;
                    p.Add($"{path}_{tag}", wall, used);
                    var total = totals.GetValueOrDefault("sum_" + path);
                    totals["sum_" + path] = (total.Wall + wall, total.Cpu + used);
                }
                Time("torch_forward", () => { using (no_grad()) nn.functional.conv1d(x, w, b, stride, padding); });
                Time("gemm_forward", () => { using (no_grad()) TemporalConvolution.Apply(x, w, b, stride, padding); });
                Time("torch_fwdbwd", () => torch.autograd.grad(new[] { (nn.functional.conv1d(x, w, b, stride, padding) * probe).sum() }, new[] { x, w, b }));
                Time("gemm_fwdbwd", () => torch.autograd.grad(new[] { (TemporalConvolution.Apply(x, w, b, stride, padding) * probe).sum() }, new[] { x, w, b }));
            }
            foreach (var (name, total) in totals)
                p.Add(name, total.Wall, total.Cpu);
        }
        return phases.ToLine("W1-layers");
    }

    private static JsonLine Conv(int repetitions)
    {
        using var scope = NewDisposeScope();
        var phases = new Phases();
        // (batch, in, out, length, kernel)
        var shapes = new (int B, int Cin, int Cout, int L, int K)[] { (32, 128, 128, 64, 5), (32, 256, 256, 32, 5), (32, 32, 32, 128, 5), (64, 256, 256, 32, 5) };
        for (int i = 0; i <= repetitions; i++)
        {
            var p = i == 0 ? new Phases() : phases;
            foreach (var (b, cin, cout, l, k) in shapes)
            {
                using var s2 = NewDisposeScope();
                string tag = $"b{b}_{cin}to{cout}_L{l}";
                var w = randn(cout, cin, k).requires_grad_(true);
                var bias = randn(cout).requires_grad_(true);
                var ncl = randn(b, cin, l).requires_grad_(true);
                var nlc = randn(b, l, cin).requires_grad_(true);
                p.Time("ncl_fwd_" + tag, () => { using (no_grad()) F.conv1d(ncl, w, bias, padding: k / 2); });
                p.Time("nlc_fwd_" + tag, () => { using (no_grad()) F.conv1d(nlc.transpose(1, 2), w, bias, padding: k / 2); });
                p.Time("ncl_fwdbwd_" + tag, () => F.conv1d(ncl, w, bias, padding: k / 2).sum().backward());
                p.Time("nlc_fwdbwd_" + tag, () => F.conv1d(nlc.transpose(1, 2), w, bias, padding: k / 2).sum().backward());
                p.Time("gemm_fwd_" + tag, () => { using (no_grad()) TemporalConvolution.Apply(ncl, w, bias, 1, k / 2); });
                p.Time("gemm_fwdbwd_" + tag, () => TemporalConvolution.Apply(ncl, w, bias, 1, k / 2).sum().backward());
                p.Time("unfold_fwdbwd_" + tag, () =>
                {
                    var cols = F.pad(ncl, new long[] { k / 2, k / 2 }).unfold(2, k, 1).permute(0, 2, 1, 3).reshape(b * l, cin * k);
                    F.linear(cols, w.reshape(cout, cin * k), bias).sum().backward();
                });
            }
        }
        // The other layer kinds of the W1 U-Net (batch 32), forward + backward.
        for (int i = 0; i <= repetitions; i++)
        {
            var p = i == 0 ? new Phases() : phases;
            using var s2 = NewDisposeScope();
            var up1 = nn.ConvTranspose1d(128, 128, 4, stride: 2, padding: 1);
            var up2 = nn.ConvTranspose1d(32, 32, 4, stride: 2, padding: 1);
            var down1 = nn.Conv1d(32, 32, 3, stride: 2, padding: 1);
            var down2 = nn.Conv1d(128, 128, 3, stride: 2, padding: 1);
            var res = nn.Conv1d(512, 128, 1);
            var a1 = randn(32, 128, 32).requires_grad_(true);
            var a2 = randn(32, 32, 64).requires_grad_(true);
            var a3 = randn(32, 32, 128).requires_grad_(true);
            var a4 = randn(32, 128, 64).requires_grad_(true);
            var a5 = randn(32, 512, 32).requires_grad_(true);
            p.Time("convT_128_L32", () => up1.call(a1).sum().backward());
            p.Time("convT_32_L64", () => up2.call(a2).sum().backward());
            p.Time("down_32_L128", () => down1.call(a3).sum().backward());
            p.Time("down_128_L64", () => down2.call(a4).sum().backward());
            p.Time("res1x1_512to128_L32", () => res.call(a5).sum().backward());
            p.Time("res1x1_as_linear_512to128_L32", () => F.linear(a5.transpose(1, 2), res.weight!.view(128, 512), res.bias).sum().backward());
        }
        var line = phases.ToLine("conv");
        return line;
    }

    private static JsonLine Micro(int repetitions)
    {
        using var scope = NewDisposeScope();
        var phases = new Phases();
        var a = randn(8192, 256);
        var w = randn(256, 256);
        var bias = randn(256);
        var x = randn(64, 256, 32);
        var cw = randn(256, 256, 5);
        var cb = randn(256);
        var x1 = randn(64, 128, 64);
        var cw1 = randn(128, 128, 5);
        var cb1 = randn(128);
        var gw = ones(256);
        var gb = zeros(256);
        for (int i = 0; i <= repetitions; i++)
        {
            var p = i == 0 ? new Phases() : phases;
            using var step = NewDisposeScope();
            using (no_grad())
            {
                p.Time("linear_8192x256x256", () => F.linear(a, w, bias));
                p.Time("mm_8192x256x256", () => a.mm(w));
                p.Time("mish_2M", () => F.mish(a));
                p.Time("fused_mish_2M", () => FusedKernels.MishInPlace(a.clone()));
                var inplace = a.clone();
                p.Time("fused_mish_2M_inplace_x4", () => { for (int k = 0; k < 4; k++) FusedKernels.MishInPlace(inplace); });
                p.Time("copy_2M_x4", () => { for (int k = 0; k < 4; k++) inplace.copy_(a); });
                p.Time("clone_2M", () => a.clone());
                p.Time("tanh_2M", () => a.tanh());
                p.Time("add_2M", () => a.add(a));
                p.Time("conv1d_b64_256c_h32", () => F.conv1d(x, cw, cb, padding: 2));
                p.Time("conv1d_b64_128c_h64", () => F.conv1d(x1, cw1, cb1, padding: 2));
                p.Time("groupnorm_b64_256c_h32", () => F.group_norm(x, 8, gw, gb));
                p.Time("mish_b64_256c_h32", () => F.mish(x));
                p.Time("gn_mish_b64_256c_h32", () => F.mish(F.group_norm(x, 8, gw, gb)));
                p.Time("fused_gn_mish_b64_256c_h32", () => FusedKernels.GroupNormMishInPlace(x.clone(), 8, gw, gb, 1e-5));
                // the same conv as 5 shifted GEMMs on a channels-last copy
                p.Time("conv1d_as_gemm_b64_256c_h32", () =>
                {
                    using var s2 = NewDisposeScope();
                    var xl = F.pad(x, new long[] { 2, 2 }).transpose(1, 2).contiguous();   // [B, H+4, C]
                    var wk = cw.permute(2, 1, 0).contiguous();                              // [5, Cin, Cout]
                    Tensor? acc = null;
                    for (int k = 0; k < 5; k++)
                    {
                        var part = xl.narrow(1, k, 32).reshape(64 * 32, 256).mm(wk[k]);
                        acc = acc is null ? part : acc.add_(part);
                    }
                    return acc!.MoveToOuterDisposeScope();
                });
                p.Time("conv1d_unfold_gemm_b64_256c_h32", () =>
                {
                    using var s2 = NewDisposeScope();
                    var xl = F.pad(x, new long[] { 2, 2 }).unfold(2, 5, 1);                 // [B, C, H, 5]
                    var cols = xl.permute(0, 2, 1, 3).reshape(64 * 32, 256 * 5);             // [B*H, C*5]
                    return F.linear(cols, cw.reshape(256, 256 * 5), cb).MoveToOuterDisposeScope();
                });
            }
        }
        var line = phases.ToLine("micro");
        line.Add("vector512", System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated);
        using (no_grad())
        {
            var wide = linspace(-30, 30, 600001);
            line.Add("mish_max_abs_diff", (F.mish(wide) - FusedKernels.MishInPlace(wide.clone())).abs().max().item<float>());
            line.Add("mish_max_rel_diff", ((F.mish(wide) - FusedKernels.MishInPlace(wide.clone())).abs() / F.mish(wide).abs().clamp_min(1e-30)).max().item<float>());
            line.Add("gn_mish_max_abs_diff", (F.mish(F.group_norm(x, 8, gw, gb)) - FusedKernels.GroupNormMishInPlace(x.clone(), 8, gw, gb, 1e-5)).abs().max().item<float>());
        }
        return line;
    }

    private static JsonLine W4(int repetitions)
    {
        using var scope = NewDisposeScope();
        using var reward = new RelativeRewardModel(Workloads.CreateReward(3), NoiseSchedule.Cosine(Workloads.DiffusionSteps));
        var data = Workloads.UniformData(Workloads.ScoringBatch, 4);
        var phases = new Phases();
        AlternateKernels(repetitions, (n, warm) =>
        {
            var p = warm ? new Phases() : phases;
            using var step = NewDisposeScope();
            p.Time(n("score_batch_1024"), () => reward.Score(data, 0));
        });
        return phases.ToLine("W4 (one batch)");
    }
}
