using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Fused CPU kernels for the element-wise work around the networks' GEMMs and convolutions, written against the tensors'
/// memory. They compute the same functions as the torch operators they replace (no approximation): Mish uses the exact
/// identity <c>tanh(softplus(x)) = n / (n + 2)</c> with <c>n = e^x (e^x + 2)</c>, so one exponential per element replaces
/// exp, log1p and tanh; results differ from torch's kernels only by float rounding (a few ulps).
/// They work outside autograd: callers use them only where no graph is recorded (no_grad, inference) or inside an
/// autograd function that supplies its own derivative (<see cref="FusedMish"/>, <see cref="FusedGroupNormMish"/>).
/// Large tensors are split over torch's intra-op thread count (the calling thread takes a share); every element, and every
/// reduction, is computed the same way whatever the split, so results do not depend on the thread count.
/// </summary>
internal static unsafe class FusedKernels
{
    /// <summary>Above this input, e^x is clamped: n / (n + 2) is 1 in float32 from x ~ 9 on, so the clamp changes nothing.</summary>
    private const float ExpClamp = 20f;

    // e^x for float32 vectors: k = round(x log2 e), r = x - k ln 2 (ln 2 split in two for an exact product), e^r by its
    // Taylor polynomial to degree 7 (|r| <= ln2/2: truncation error < 6e-9, below float32 resolution), times 2^k built in
    // the exponent bits. Inputs are clamped to [-87, 88] (the float32 range): about 1-2 ulps, like libm's expf.
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693359375f;
    private const float Ln2Low = -2.12194440e-4f;
    private const float ExpLow = -87f;
    private const float ExpHigh = 88f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(ExpLow)), Vector512.Create(ExpHigh));
        var k = Vector512.Round(x * Vector512.Create(Log2E));
        var r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-Ln2High), x);
        r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-Ln2Low), r);
        var p = Vector512.Create(1f / 5040f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 720f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32(k) + Vector512.Create(127), 23).AsSingle();
        return p * scale;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(ExpLow)), Vector256.Create(ExpHigh));
        var k = Vector256.Round(x * Vector256.Create(Log2E));
        var r = Vector256.FusedMultiplyAdd(k, Vector256.Create(-Ln2High), x);
        r = Vector256.FusedMultiplyAdd(k, Vector256.Create(-Ln2Low), r);
        var p = Vector256.Create(1f / 5040f);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 720f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 120f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 24f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 6f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(0.5f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        var scale = Vector256.ShiftLeft(Vector256.ConvertToInt32(k) + Vector256.Create(127), 23).AsSingle();
        return p * scale;
    }

    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);

    private static readonly bool DefaultEnabled = Environment.GetEnvironmentVariable("MLREWARD_FUSED_KERNELS") != "0";

    [ThreadStatic]
    private static bool? _enabledOnThisThread;

    /// <summary>Whether the fused kernels are used (default true unless the environment variable <c>MLREWARD_FUSED_KERNELS</c>
    /// is <c>0</c>); when false every caller takes its plain torch path. Setting it affects the calling thread only (the
    /// kernels and CPU autograd run on the caller's thread), so benchmarks and tests can compare both paths in one process.</summary>
    public static bool Enabled
    {
        get => _enabledOnThisThread ?? DefaultEnabled;
        set => _enabledOnThisThread = value;
    }

    /// <summary>Whether <paramref name="t"/> can be handed to the kernels: kernels enabled and a contiguous float32 CPU tensor.</summary>
    public static bool Supports(Tensor t) => Enabled && t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float32 && t.is_contiguous();

    /// <summary>The first element of a contiguous float32 CPU tensor.</summary>
    public static float* Data(Tensor t)
    {
        if (t.device_type != DeviceType.CPU || t.dtype != ScalarType.Float32 || !t.is_contiguous())
            throw new ArgumentException("The fused kernels need a contiguous float32 CPU tensor.", nameof(t));
        var pointer = THSTensor_data(t.Handle);
        if (pointer == IntPtr.Zero && t.numel() > 0)
            throw new InvalidOperationException("Could not read the tensor's data pointer.");
        return (float*)pointer;
    }

    /// <summary>Elements per worker below which a kernel stays on the calling thread.</summary>
    private const long MinimumPerWorker = 1 << 15;

    /// <summary>
    /// Splits [0, count) into at most torch's intra-op thread count contiguous ranges of at least <paramref name="minimum"/>
    /// items and runs <paramref name="body"/>(part, start, end) on each (the calling thread takes part of the work).
    /// Returns the number of parts.
    /// </summary>
    private static int Split(long count, long minimum, Action<int, long, long> body)
    {
        int parts = (int)Math.Clamp(count / Math.Max(1, minimum), 1, Math.Max(1, get_num_threads()));
        if (parts == 1)
        {
            body(0, 0, count);
            return 1;
        }
        System.Threading.Tasks.Parallel.For(0, parts, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = parts },
            part => body(part, count * part / parts, count * (part + 1) / parts));
        return parts;
    }

    /// <summary>Runs an element-wise kernel over [0, count) in parallel parts.</summary>
    private static void ElementWise(long count, Action<long, long> range)
        => Split(count, MinimumPerWorker, (_, start, end) => range(start, end));

    // ---------------------------------------------------------------- Mish and its derivatives (scalar reference forms)

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float MishScalar(float x)
    {
        float e = MathF.Exp(MathF.Min(x, ExpClamp));
        float n = e * (e + 2f);
        return x * (n / (n + 2f));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float MishDerivativeScalar(float x)
    {
        // mish'(x) = tanh(sp) + x sigmoid(x) sech^2(sp) = n/(n+2) + 4 x e (1+e) / (n+2)^2.
        float e = MathF.Exp(MathF.Min(x, ExpClamp));
        float n = e * (e + 2f);
        float d = 1f / (n + 2f);
        return n * d + 4f * x * e * (1f + e) * d * d;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float MishSecondDerivativeScalar(float x)
    {
        // With s = sigmoid(x), T = tanh(sp), q = 1 - T^2: mish'' = s q (2 + x (1 - s) - 2 x s T),
        // s q = 4 e (1+e) / (n+2)^2, 1 - s = 1 / (1+e), s T = e n / ((1+e)(n+2)).
        float e = MathF.Exp(MathF.Min(x, ExpClamp));
        float n = e * (e + 2f);
        float d = 1f / (n + 2f);
        float r = 1f / (1f + e);
        float sq = 4f * e * (1f + e) * d * d;
        return sq * (2f + x * r - 2f * x * e * n * r * d);
    }

    // ---------------------------------------------------------------- vector forms

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Mish(Vector256<float> x)
    {
        var e = Exp(Vector256.Min(x, Vector256.Create(ExpClamp)));
        var n = e * (e + Vector256.Create(2f));
        return x * (n / (n + Vector256.Create(2f)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Mish(Vector512<float> x)
    {
        var e = Exp(Vector512.Min(x, Vector512.Create(ExpClamp)));
        var n = e * (e + Vector512.Create(2f));
        return x * (n / (n + Vector512.Create(2f)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> MishDerivative(Vector512<float> x)
    {
        var one = Vector512<float>.One;
        var e = Exp(Vector512.Min(x, Vector512.Create(ExpClamp)));
        var n = e * (e + Vector512.Create(2f));
        var d = one / (n + Vector512.Create(2f));
        return n * d + Vector512.Create(4f) * x * e * (one + e) * d * d;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MishDerivative(Vector256<float> x)
    {
        var one = Vector256<float>.One;
        var e = Exp(Vector256.Min(x, Vector256.Create(ExpClamp)));
        var n = e * (e + Vector256.Create(2f));
        var d = one / (n + Vector256.Create(2f));
        return n * d + Vector256.Create(4f) * x * e * (one + e) * d * d;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> MishSecondDerivative(Vector512<float> x)
    {
        var one = Vector512<float>.One;
        var two = Vector512.Create(2f);
        var e = Exp(Vector512.Min(x, Vector512.Create(ExpClamp)));
        var n = e * (e + two);
        var d = one / (n + two);
        var r = one / (one + e);
        var sq = Vector512.Create(4f) * e * (one + e) * d * d;
        return sq * (two + x * r - two * x * e * n * r * d);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MishSecondDerivative(Vector256<float> x)
    {
        var one = Vector256<float>.One;
        var two = Vector256.Create(2f);
        var e = Exp(Vector256.Min(x, Vector256.Create(ExpClamp)));
        var n = e * (e + two);
        var d = one / (n + two);
        var r = one / (one + e);
        var sq = Vector256.Create(4f) * e * (one + e) * d * d;
        return sq * (two + x * r - two * x * e * n * r * d);
    }

    // ---------------------------------------------------------------- span kernels

    /// <summary>y = mish(x) (y may alias x).</summary>
    public static void Mish(float* x, float* y, long count)
    {
        nint xa = (nint)x, ya = (nint)y;
        ElementWise(count, (start, end) => MishRange((float*)xa + start, (float*)ya + start, end - start));
    }

    private static void MishRange(float* x, float* y, long count)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= count - 16; i += 16)
                Vector512.Store(Mish(Vector512.Load(x + i)), y + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= count - 8; i += 8)
                Vector256.Store(Mish(Vector256.Load(x + i)), y + i);
        }
        for (; i < count; i++)
            y[i] = MishScalar(x[i]);
    }

    /// <summary>y = mish'(x) (y may alias x).</summary>
    public static void MishDerivative(float* x, float* y, long count)
    {
        nint xa = (nint)x, ya = (nint)y;
        ElementWise(count, (start, end) => MishDerivativeRange((float*)xa + start, (float*)ya + start, end - start));
    }

    private static void MishDerivativeRange(float* x, float* y, long count)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= count - 16; i += 16)
                Vector512.Store(MishDerivative(Vector512.Load(x + i)), y + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= count - 8; i += 8)
                Vector256.Store(MishDerivative(Vector256.Load(x + i)), y + i);
        }
        for (; i < count; i++)
            y[i] = MishDerivativeScalar(x[i]);
    }

    /// <summary>y = g * mish'(x) (y may alias g or x).</summary>
    public static void MishBackward(float* g, float* x, float* y, long count)
    {
        nint ga = (nint)g, xa = (nint)x, ya = (nint)y;
        ElementWise(count, (start, end) => MishBackwardRange((float*)ga + start, (float*)xa + start, (float*)ya + start, end - start));
    }

    private static void MishBackwardRange(float* g, float* x, float* y, long count)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= count - 16; i += 16)
                Vector512.Store(Vector512.Load(g + i) * MishDerivative(Vector512.Load(x + i)), y + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= count - 8; i += 8)
                Vector256.Store(Vector256.Load(g + i) * MishDerivative(Vector256.Load(x + i)), y + i);
        }
        for (; i < count; i++)
            y[i] = g[i] * MishDerivativeScalar(x[i]);
    }

    /// <summary>y = g * mish''(x) (y may alias g or x).</summary>
    public static void MishDerivativeBackward(float* g, float* x, float* y, long count)
    {
        nint ga = (nint)g, xa = (nint)x, ya = (nint)y;
        ElementWise(count, (start, end) => MishDerivativeBackwardRange((float*)ga + start, (float*)xa + start, (float*)ya + start, end - start));
    }

    private static void MishDerivativeBackwardRange(float* g, float* x, float* y, long count)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= count - 16; i += 16)
                Vector512.Store(Vector512.Load(g + i) * MishSecondDerivative(Vector512.Load(x + i)), y + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= count - 8; i += 8)
                Vector256.Store(Vector256.Load(g + i) * MishSecondDerivative(Vector256.Load(x + i)), y + i);
        }
        for (; i < count; i++)
            y[i] = g[i] * MishSecondDerivativeScalar(x[i]);
    }

    // ---------------------------------------------------------------- tensor entry points

    /// <summary>
    /// One Adam update in place: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= stepSize * m / (sqrt(v) * rootCorrection2 + eps),
    /// with stepSize = lr / (1 - b1^t) and rootCorrection2 = 1 / sqrt(1 - b2^t). All four tensors contiguous float32 CPU, same size.
    /// </summary>
    public static void AdamStep(Tensor parameter, Tensor grad, Tensor expAvg, Tensor expAvgSq, float beta1, float beta2,
        float stepSize, float rootCorrection2, float eps)
    {
        long count = parameter.numel();
        if (grad.numel() != count || expAvg.numel() != count || expAvgSq.numel() != count)
            throw new ArgumentException("Adam's tensors must have the same size.");
        nint pa = (nint)Data(parameter), ga = (nint)Data(grad), ma = (nint)Data(expAvg), va = (nint)Data(expAvgSq);
        ElementWise(count, (start, end) => AdamRange((float*)pa + start, (float*)ga + start, (float*)ma + start, (float*)va + start,
            end - start, beta1, beta2, stepSize, rootCorrection2, eps));
    }

    private static void AdamRange(float* p, float* g, float* m, float* v, long count, float beta1, float beta2,
        float stepSize, float rootCorrection2, float eps)
    {
        float c1 = 1 - beta1, c2 = 1 - beta2;
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var b1 = Vector512.Create(beta1);
            var b2 = Vector512.Create(beta2);
            var k1 = Vector512.Create(c1);
            var k2 = Vector512.Create(c2);
            var step = Vector512.Create(stepSize);
            var root = Vector512.Create(rootCorrection2);
            var e = Vector512.Create(eps);
            for (; i <= count - 16; i += 16)
            {
                var gv = Vector512.Load(g + i);
                var mv = Vector512.Load(m + i) * b1 + gv * k1;
                var vv = Vector512.Load(v + i) * b2 + gv * gv * k2;
                Vector512.Store(mv, m + i);
                Vector512.Store(vv, v + i);
                Vector512.Store(Vector512.Load(p + i) - step * mv / (Vector512.Sqrt(vv) * root + e), p + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var b1 = Vector256.Create(beta1);
            var b2 = Vector256.Create(beta2);
            var k1 = Vector256.Create(c1);
            var k2 = Vector256.Create(c2);
            var step = Vector256.Create(stepSize);
            var root = Vector256.Create(rootCorrection2);
            var e = Vector256.Create(eps);
            for (; i <= count - 8; i += 8)
            {
                var gv = Vector256.Load(g + i);
                var mv = Vector256.Load(m + i) * b1 + gv * k1;
                var vv = Vector256.Load(v + i) * b2 + gv * gv * k2;
                Vector256.Store(mv, m + i);
                Vector256.Store(vv, v + i);
                Vector256.Store(Vector256.Load(p + i) - step * mv / (Vector256.Sqrt(vv) * root + e), p + i);
            }
        }
        for (; i < count; i++)
        {
            float gi = g[i];
            float mi = m[i] * beta1 + gi * c1;
            float vi = v[i] * beta2 + gi * gi * c2;
            m[i] = mi;
            v[i] = vi;
            p[i] -= stepSize * mi / (MathF.Sqrt(vi) * rootCorrection2 + eps);
        }
    }

    /// <summary>mish(x) in place on a contiguous float32 CPU tensor; returns it.</summary>
    public static Tensor MishInPlace(Tensor x)
    {
        var p = Data(x);
        Mish(p, p, x.numel());
        return x;
    }

    /// <summary>
    /// GroupNorm(groups, affine) followed by Mish, in place on x [B, C, L] (contiguous float32 CPU), plus optional terms
    /// added after the Mish in the same pass: <paramref name="perChannel"/> [B, C] (unit stride along C, any stride along B)
    /// and <paramref name="elementwise"/> [B, C, L] (contiguous). Statistics in double: mean and biased variance per
    /// (batch, group) over C/groups x L values, y = (x - mean) / sqrt(var + eps) * w + b.
    /// </summary>
    public static Tensor GroupNormMishInPlace(Tensor x, int groups, Tensor weight, Tensor bias, double eps, Tensor? perChannel = null, Tensor? elementwise = null)
    {
        GroupNormMish(x, x, groups, weight, bias, eps, perChannel, elementwise, null);
        return x;
    }

    /// <summary>
    /// <see cref="GroupNormMishInPlace"/> writing to <paramref name="output"/> (same shape, contiguous; may be x); the
    /// per-(batch, group) mean and 1/std are stored in <paramref name="statistics"/> (2 B groups values) when given.
    /// </summary>
    public static void GroupNormMish(Tensor x, Tensor output, int groups, Tensor weight, Tensor bias, double eps,
        Tensor? perChannel, Tensor? elementwise, double[]? statistics)
    {
        if (x.dim() != 3)
            throw new ArgumentException("GroupNormMish expects [B, C, L].", nameof(x));
        long batch = x.shape[0], channels = x.shape[1], length = x.shape[2];
        if (channels % groups != 0)
            throw new ArgumentException($"{channels} channels cannot be split into {groups} groups.", nameof(groups));
        if (!CanAddPerChannel(perChannel, batch, channels))
            throw new ArgumentException("The per-channel term must be a float32 CPU [B, C] tensor with unit stride along C.", nameof(perChannel));
        if (elementwise is not null && !elementwise.shape.SequenceEqual(x.shape))
            throw new ArgumentException("The element-wise term must have the shape of x.", nameof(elementwise));
        if (!output.shape.SequenceEqual(x.shape))
            throw new ArgumentException("The output must have the shape of x.", nameof(output));
        float* p = Data(x);
        float* o = Data(output);
        float* w = Data(weight);
        float* b = Data(bias);
        float* e = elementwise is null ? null : Data(elementwise);
        float* a = perChannel is null ? null : (float*)THSTensor_data(perChannel.Handle);
        long rowStride = perChannel is null ? 0 : perChannel.stride(0);
        long perGroup = channels / groups;
        long groupSize = perGroup * length;
        nint pa = (nint)p, oa = (nint)o, wa = (nint)w, ba = (nint)b, ea = (nint)e, aa = (nint)a;
        Split(batch, Math.Max(1, MinimumPerWorker / Math.Max(1, channels * length)), (_, first, last) =>
        {
            float* p = (float*)pa, o = (float*)oa, w = (float*)wa, b = (float*)ba, e = (float*)ea, a = (float*)aa;
            for (long n = first; n < last; n++)
            {
                for (long g = 0; g < groups; g++)
                {
                    long offset = (n * channels + g * perGroup) * length;
                    var (mean, rstd) = Moments(p + offset, groupSize, eps);
                    if (statistics is not null)
                    {
                        statistics[2 * (n * groups + g)] = mean;
                        statistics[2 * (n * groups + g) + 1] = rstd;
                    }
                    for (long c = 0; c < perGroup; c++)
                    {
                        long channel = g * perGroup + c;
                        var (scale, shift) = ScaleShift(mean, rstd, w[channel], b[channel]);
                        float post = a is null ? 0f : a[n * rowStride + channel];
                        long at = offset + c * length;
                        ScaleShiftMish(p + at, o + at, e is null ? null : e + at, length, scale, shift, post);
                    }
                }
            }
        });
    }

    /// <summary>(x - mean) * rstd * w + b = x * scale + shift.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (float Scale, float Shift) ScaleShift(double mean, double rstd, float w, float b)
        => ((float)(rstd * w), (float)(b - mean * rstd * w));

    /// <summary>
    /// The gradient of GroupNorm-then-Mish (without the terms added after it): given x [B, C, L], the statistics written
    /// by <see cref="GroupNormMish"/> and the incoming gradient g (contiguous, shape of x), writes dx and accumulates
    /// dweight, dbias [C] (zeroed here). With y = z w + b, z = (x - mean) rstd: dy = g mish'(y), dw = sum dy z,
    /// db = sum dy, dx = rstd (dz - mean(dz) - z mean(dz z)) over each group, dz = dy w. Sums in double.
    /// </summary>
    public static void GroupNormMishBackward(Tensor x, Tensor grad, int groups, Tensor weight, Tensor bias, double[] statistics,
        Tensor gradX, Tensor gradWeight, Tensor gradBias)
    {
        long batch = x.shape[0], channels = x.shape[1], length = x.shape[2];
        float* p = Data(x);
        float* gp = Data(grad);
        float* dx = Data(gradX);
        float* w = Data(weight);
        float* b = Data(bias);
        float* dw = Data(gradWeight);
        float* db = Data(gradBias);
        long perGroup = channels / groups;
        long groupSize = perGroup * length;
        // Per-sample partial sums of dweight and dbias, reduced over the batch in a fixed order afterwards: the result does
        // not depend on how many threads shared the work.
        var partialDw = new double[batch * channels];
        var partialDb = new double[batch * channels];
        nint pa = (nint)p, ga = (nint)gp, dxa = (nint)dx, wa = (nint)w, ba = (nint)b;
        Split(batch, Math.Max(1, MinimumPerWorker / Math.Max(1, channels * length)), (_, first, last) =>
        {
            float* p = (float*)pa, gp = (float*)ga, dx = (float*)dxa, w = (float*)wa, b = (float*)ba;
            for (long n = first; n < last; n++)
            {
                var totalDw = partialDw.AsSpan((int)(n * channels), (int)channels);
                var totalDb = partialDb.AsSpan((int)(n * channels), (int)channels);
                for (long g = 0; g < groups; g++)
                {
                    double mean = statistics[2 * (n * groups + g)];
                    double rstd = statistics[2 * (n * groups + g) + 1];
                    long offset = (n * channels + g * perGroup) * length;
                    double s1 = 0, s2 = 0;   // sum dz, sum dz z over the group
                    for (long c = 0; c < perGroup; c++)
                    {
                        long channel = g * perGroup + c;
                        var (scale, shift) = ScaleShift(mean, rstd, w[channel], b[channel]);
                        long at = offset + c * length;
                        // dy into dx's storage; returns sum dy and sum dy x (z = (x - mean) rstd is applied to the sums).
                        var (sdy, sdyx) = MishBackwardRow(p + at, gp + at, dx + at, length, scale, shift);
                        double sdyz = (sdyx - mean * sdy) * rstd;
                        totalDb[(int)channel] += sdy;
                        totalDw[(int)channel] += sdyz;
                        s1 += w[channel] * sdy;
                        s2 += w[channel] * sdyz;
                    }
                    double m1 = s1 / groupSize, m2 = s2 / groupSize;
                    for (long c = 0; c < perGroup; c++)
                    {
                        long channel = g * perGroup + c;
                        long at = offset + c * length;
                        // dx = rstd (w dy - m1 - (x - mean) rstd m2) = dy * (rstd w) + x * (-rstd^2 m2) + (rstd^2 m2 mean - rstd m1)
                        float k1 = (float)(rstd * w[channel]);
                        float k2 = (float)(-rstd * rstd * m2);
                        float k3 = (float)(rstd * rstd * m2 * mean - rstd * m1);
                        InputGradientRow(p + at, dx + at, length, k1, k2, k3);
                    }
                }
            }
        });
        for (long c = 0; c < channels; c++)
        {
            double sw = 0, sb = 0;
            for (long n = 0; n < batch; n++)
            {
                sw += partialDw[n * channels + c];
                sb += partialDb[n * channels + c];
            }
            dw[c] = (float)sw;
            db[c] = (float)sb;
        }
    }

    private static (double SumDy, double SumDyX) MishBackwardRow(float* x, float* g, float* dy, long count, float scale, float shift)
    {
        long i = 0;
        double sdy = 0, sdyx = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(scale);
            var t = Vector512.Create(shift);
            var a1 = Vector512<float>.Zero;
            var a2 = Vector512<float>.Zero;
            for (; i <= count - 16; i += 16)
            {
                var xv = Vector512.Load(x + i);
                var d = Vector512.Load(g + i) * MishDerivative(Vector512.FusedMultiplyAdd(xv, s, t));
                Vector512.Store(d, dy + i);
                a1 += d;
                a2 = Vector512.FusedMultiplyAdd(d, xv, a2);
            }
            sdy = Vector512.Sum(a1);
            sdyx = Vector512.Sum(a2);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale);
            var t = Vector256.Create(shift);
            var a1 = Vector256<float>.Zero;
            var a2 = Vector256<float>.Zero;
            for (; i <= count - 8; i += 8)
            {
                var xv = Vector256.Load(x + i);
                var d = Vector256.Load(g + i) * MishDerivative(Vector256.FusedMultiplyAdd(xv, s, t));
                Vector256.Store(d, dy + i);
                a1 += d;
                a2 = Vector256.FusedMultiplyAdd(d, xv, a2);
            }
            sdy = Vector256.Sum(a1);
            sdyx = Vector256.Sum(a2);
        }
        for (; i < count; i++)
        {
            float d = g[i] * MishDerivativeScalar(MathF.FusedMultiplyAdd(x[i], scale, shift));
            dy[i] = d;
            sdy += d;
            sdyx += (double)d * x[i];
        }
        return (sdy, sdyx);
    }

    private static void InputGradientRow(float* x, float* dyToDx, long count, float k1, float k2, float k3)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var v1 = Vector512.Create(k1);
            var v2 = Vector512.Create(k2);
            var v3 = Vector512.Create(k3);
            for (; i <= count - 16; i += 16)
                Vector512.Store(Vector512.FusedMultiplyAdd(Vector512.Load(dyToDx + i), v1, Vector512.FusedMultiplyAdd(Vector512.Load(x + i), v2, v3)), dyToDx + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var v1 = Vector256.Create(k1);
            var v2 = Vector256.Create(k2);
            var v3 = Vector256.Create(k3);
            for (; i <= count - 8; i += 8)
                Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(dyToDx + i), v1, Vector256.FusedMultiplyAdd(Vector256.Load(x + i), v2, v3)), dyToDx + i);
        }
        for (; i < count; i++)
            dyToDx[i] = MathF.FusedMultiplyAdd(dyToDx[i], k1, MathF.FusedMultiplyAdd(x[i], k2, k3));
    }

    /// <summary>Whether <paramref name="t"/> (or null) can serve as the per-channel term of <see cref="GroupNormMishInPlace"/>.</summary>
    public static bool CanAddPerChannel(Tensor? t, long batch, long channels)
        => t is null || (Enabled && t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float32 && t.dim() == 2
            && t.shape[0] == batch && t.shape[1] == channels && (t.stride(1) == 1 || channels == 1) && t.stride(0) >= 0);

    private static (double Mean, double Rstd) Moments(float* x, long count, double eps)
    {
        // Two passes (mean, then squared deviations) in double: no cancellation.
        double sum = 0;
        long i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<double>.Zero;
            for (; i <= count - 8; i += 8)
            {
                var v = Vector256.Load(x + i);
                var (lo, hi) = Vector256.Widen(v);
                acc += lo + hi;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < count; i++)
            sum += x[i];
        double mean = sum / count;
        double squares = 0;
        i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<double>.Zero;
            var m = Vector256.Create(mean);
            for (; i <= count - 8; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                var dl = lo - m;
                var dh = hi - m;
                acc += dl * dl + dh * dh;
            }
            squares = Vector256.Sum(acc);
        }
        for (; i < count; i++)
        {
            double d = x[i] - mean;
            squares += d * d;
        }
        double variance = squares / count;
        return (mean, 1.0 / Math.Sqrt(variance + eps));
    }

    private static void ScaleShiftMish(float* x, float* y, float* add, long count, float scale, float shift, float post)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(scale);
            var t = Vector512.Create(shift);
            var a = Vector512.Create(post);
            if (add is null)
            {
                for (; i <= count - 16; i += 16)
                    Vector512.Store(Mish(Vector512.FusedMultiplyAdd(Vector512.Load(x + i), s, t)) + a, y + i);
            }
            else
            {
                for (; i <= count - 16; i += 16)
                    Vector512.Store(Mish(Vector512.FusedMultiplyAdd(Vector512.Load(x + i), s, t)) + a + Vector512.Load(add + i), y + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale);
            var t = Vector256.Create(shift);
            var a = Vector256.Create(post);
            if (add is null)
            {
                for (; i <= count - 8; i += 8)
                    Vector256.Store(Mish(Vector256.FusedMultiplyAdd(Vector256.Load(x + i), s, t)) + a, y + i);
            }
            else
            {
                for (; i <= count - 8; i += 8)
                    Vector256.Store(Mish(Vector256.FusedMultiplyAdd(Vector256.Load(x + i), s, t)) + a + Vector256.Load(add + i), y + i);
            }
        }
        for (; i < count; i++)
            y[i] = MishScalar(MathF.FusedMultiplyAdd(x[i], scale, shift)) + post + (add is null ? 0f : add[i]);
    }
}
