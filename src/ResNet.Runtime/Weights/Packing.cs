using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ResNet.Runtime.Weights;

/// <summary>
/// Reorders weights once, at load, into the order the generated kernels stream them, so a kernel reads
/// its weights strictly forward with vector loads. Channels beyond the real count are zero.
/// </summary>
public static class Packing
{
    /// <summary>
    /// OIHW convolution weights → [oc group][ic block][kh][kw][ic in block][oc block in group][oc in block],
    /// where a group is the <paramref name="ocTile"/> output blocks one micro-kernel computes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Conv(ReadOnlySpan<float> w, Conv2dParams c, int inBlock, int outBlock, int ocTile, Span<float> packed)
    {
        int icBlocks = (c.InChannels + inBlock - 1) / inBlock;
        int ocBlocks = (c.OutChannels + outBlock - 1) / outBlock;
        int groups = ocBlocks / ocTile;
        if (packed.Length != ConvLength(c, inBlock, outBlock)) throw new ArgumentException("destination has the wrong length", nameof(packed));
        packed.Clear();
        int at = 0;
        for (int g = 0; g < groups; g++)
        for (int icb = 0; icb < icBlocks; icb++)
        for (int kh = 0; kh < c.KernelH; kh++)
        for (int kw = 0; kw < c.KernelW; kw++)
        for (int ci = 0; ci < inBlock; ci++)
        for (int j = 0; j < ocTile; j++)
        for (int co = 0; co < outBlock; co++, at++)
        {
            int ic = icb * inBlock + ci, oc = (g * ocTile + j) * outBlock + co;
            if (ic < c.InChannels && oc < c.OutChannels) packed[at] = w[((oc * c.InChannels + ic) * c.KernelH + kh) * c.KernelW + kw];
        }
    }

    /// <summary>Floats <see cref="Conv"/> writes.</summary>
    public static int ConvLength(Conv2dParams c, int inBlock, int outBlock) =>
        (c.InChannels + inBlock - 1) / inBlock * inBlock * c.KernelH * c.KernelW * ((c.OutChannels + outBlock - 1) / outBlock * outBlock);

    /// <summary>
    /// [out][in] Linear weights, where `in` indexes the flattened C×H×W input, → [out group][ic block][h][w]
    /// [ic in block][out block in group][out in block]: the order the kernel walks the blocked input.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Linear(ReadOnlySpan<float> w, LinearParams l, TensorShape inShape, TensorLayoutInfo input, int outBlock, int outTile, Span<float> packed)
    {
        int outBlocks = (l.OutFeatures + outBlock - 1) / outBlock;
        int groups = outBlocks / outTile;
        if (packed.Length != LinearLength(l, inShape, input, outBlock)) throw new ArgumentException("destination has the wrong length", nameof(packed));
        packed.Clear();
        int at = 0;
        for (int g = 0; g < groups; g++)
        for (int cb = 0; cb < input.Blocks; cb++)
        for (int h = 0; h < inShape.H; h++)
        for (int x = 0; x < inShape.W; x++)
        for (int ci = 0; ci < input.Block; ci++)
        for (int j = 0; j < outTile; j++)
        for (int o = 0; o < outBlock; o++, at++)
        {
            int c = cb * input.Block + ci, of = (g * outTile + j) * outBlock + o;
            if (c < inShape.C && of < l.OutFeatures) packed[at] = w[(int)((long)of * l.InFeatures + (c * inShape.H + h) * inShape.W + x)];
        }
    }

    /// <summary>Floats <see cref="Linear"/> writes.</summary>
    public static int LinearLength(LinearParams l, TensorShape inShape, TensorLayoutInfo input, int outBlock) =>
        (l.OutFeatures + outBlock - 1) / outBlock * outBlock * input.Blocks * inShape.H * inShape.W * input.Block;

    /// <summary>Winograd F(4×4, 3×3) weight transform G (6×3), row-major.</summary>
    private static readonly double[] G4 =
    [
        1 / 4.0, 0, 0,
        -1 / 6.0, -1 / 6.0, -1 / 6.0,
        -1 / 6.0, 1 / 6.0, -1 / 6.0,
        1 / 24.0, 1 / 12.0, 1 / 6.0,
        1 / 24.0, -1 / 12.0, 1 / 6.0,
        0, 0, 1,
    ];

    /// <summary>Winograd F(2×2, 3×3) weight transform G (4×3), row-major.</summary>
    private static readonly double[] G2 =
    [
        1, 0, 0,
        0.5, 0.5, 0.5,
        0.5, -0.5, 0.5,
        0, 0, 1,
    ];

    /// <summary>
    /// 3×3 OIHW weights → U = G·g·Gᵀ (in double) for F(<paramref name="m"/>×m, 3×3), laid out
    /// [oc group][position 0..(m+2)²−1][ic][oc block in group][oc in block], the order the Winograd GEMMs stream them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Winograd(ReadOnlySpan<float> w, Conv2dParams c, int m, int block, int ocTile, Span<float> packed)
    {
        if (c.KernelH != 3 || c.KernelW != 3) throw new ArgumentException("Winograd F(m×m,3×3) needs 3×3 kernels");
        var g = WinogradG(m);
        int alpha = m + 2, positions = alpha * alpha;
        int icPadded = (c.InChannels + block - 1) / block * block;
        int ocBlocks = (c.OutChannels + block - 1) / block;
        if (packed.Length != WinogradLength(c, m, block)) throw new ArgumentException("destination has the wrong length", nameof(packed));
        packed.Clear();
        Span<double> gg = stackalloc double[alpha * 3];
        Span<double> taps = stackalloc double[9 * block];
        var u = new float[positions * block];
        // One output block at a time, so each (position, input channel) row of the block is written whole and
        // in order; flat spans, not double[,] (whose index checks made this most of the load time).
        for (int ob = 0; ob < ocBlocks; ob++)
        {
            int group = ob / ocTile, j = ob % ocTile;
            bool whole = (ob + 1) * block <= c.OutChannels;
            for (int ic = 0; ic < c.InChannels; ic++)
            {
                if (whole && block % 8 == 0 && Vector256.IsHardwareAccelerated)
                {
                    TransformBlock(w, c, ob, ic, g, alpha, block, taps, u);
                }
                else
                {
                    Array.Clear(u);
                    for (int o = 0; o < block && ob * block + o < c.OutChannels; o++)
                        Transform(w.Slice(((ob * block + o) * c.InChannels + ic) * 9, 9), g, alpha, gg, u, block, o);
                }
                for (int p = 0; p < positions; p++)
                    u.AsSpan(p * block, block).CopyTo(packed.Slice(((group * positions + p) * icPadded + ic) * ocTile * block + j * block, block));
            }
        }
    }

    /// <summary>The kernel transform G of F(<paramref name="m"/>×<paramref name="m"/>,3×3), row-major (m + 2)×3.</summary>
    internal static double[] WinogradG(int m) => m switch
    {
        4 => G4,
        2 => G2,
        _ => throw new ArgumentOutOfRangeException(nameof(m), $"Winograd F({m}×{m},3×3) is not implemented; m is 2 or 4"),
    };

    /// <summary>U = G·g·Gᵀ of one 3×3 kernel, in double, into column <paramref name="o"/> of the [position][o] rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Transform(ReadOnlySpan<float> k3, double[] g, int alpha, Span<double> gg, float[] u, int block, int o)
    {
        for (int i = 0; i < alpha; i++)
        {
            double a = g[i * 3], b = g[i * 3 + 1], d = g[i * 3 + 2];
            for (int k = 0; k < 3; k++) gg[i * 3 + k] = a * k3[k] + b * k3[3 + k] + d * k3[6 + k];
        }
        for (int i = 0; i < alpha; i++)
        {
            double a = gg[i * 3], b = gg[i * 3 + 1], d = gg[i * 3 + 2];
            for (int k = 0; k < alpha; k++) u[(i * alpha + k) * block + o] = (float)(a * g[k * 3] + b * g[k * 3 + 1] + d * g[k * 3 + 2]);
        }
    }

    /// <summary>
    /// <see cref="Transform"/> for a whole output block, eight channels per step (one at a time, the transform was
    /// most of the packing in a load without the cache): the same double operations in the same order, no fused
    /// multiply-adds, so the same floats (PackingTests).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TransformBlock(ReadOnlySpan<float> w, Conv2dParams c, int ob, int ic, double[] g, int alpha, int block, Span<double> taps, float[] u)
    {
        for (int o = 0; o < block; o++)
        {
            var k3 = w.Slice(((ob * block + o) * c.InChannels + ic) * 9, 9);
            for (int t = 0; t < 9; t++) taps[t * block + o] = k3[t];
        }
        fixed (double* x = taps)
        fixed (float* dst = u)
        {
            for (int v = 0; v < block; v += 8)
            {
                // The nine taps of channels v..v+3 (lo) and v+4..v+7 (hi).
                double* lo = x + v, hi = x + v + 4;
                Vector256<double> lo0 = Vector256.Load(lo), lo1 = Vector256.Load(lo + block), lo2 = Vector256.Load(lo + 2 * block),
                    lo3 = Vector256.Load(lo + 3 * block), lo4 = Vector256.Load(lo + 4 * block), lo5 = Vector256.Load(lo + 5 * block),
                    lo6 = Vector256.Load(lo + 6 * block), lo7 = Vector256.Load(lo + 7 * block), lo8 = Vector256.Load(lo + 8 * block);
                Vector256<double> hi0 = Vector256.Load(hi), hi1 = Vector256.Load(hi + block), hi2 = Vector256.Load(hi + 2 * block),
                    hi3 = Vector256.Load(hi + 3 * block), hi4 = Vector256.Load(hi + 4 * block), hi5 = Vector256.Load(hi + 5 * block),
                    hi6 = Vector256.Load(hi + 6 * block), hi7 = Vector256.Load(hi + 7 * block), hi8 = Vector256.Load(hi + 8 * block);
                for (int i = 0; i < alpha; i++)
                {
                    var (a, b, d) = (Vector256.Create(g[i * 3]), Vector256.Create(g[i * 3 + 1]), Vector256.Create(g[i * 3 + 2]));
                    var (l0, l1, l2) = (a * lo0 + b * lo3 + d * lo6, a * lo1 + b * lo4 + d * lo7, a * lo2 + b * lo5 + d * lo8);
                    var (h0, h1, h2) = (a * hi0 + b * hi3 + d * hi6, a * hi1 + b * hi4 + d * hi7, a * hi2 + b * hi5 + d * hi8);
                    for (int k = 0; k < alpha; k++)
                    {
                        var (e, f, h) = (Vector256.Create(g[k * 3]), Vector256.Create(g[k * 3 + 1]), Vector256.Create(g[k * 3 + 2]));
                        Vector256.Narrow(l0 * e + l1 * f + l2 * h, h0 * e + h1 * f + h2 * h).Store(dst + (i * alpha + k) * block + v);
                    }
                }
            }
        }
    }

    /// <summary>Floats <see cref="Winograd"/> writes.</summary>
    public static int WinogradLength(Conv2dParams c, int m, int block) =>
        (m + 2) * (m + 2) * ((c.InChannels + block - 1) / block * block) * ((c.OutChannels + block - 1) / block * block);

    /// <summary>
    /// OIHW weights → the row-Winograd kernel's: split by row phase (kernel row kh = stride·a + p, one phase per
    /// row of the stride), each phase's column of taps g[a] (zero past the kernel) transformed by F(m, r)'s G (in
    /// double), laid out [oc group][position][ic][phase][kw][oc block in group][oc in block], the order its GEMMs
    /// stream them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RowWinograd(ReadOnlySpan<float> w, Conv2dParams c, int m, int block, int ocTile, Span<float> packed)
    {
        int phases = c.StrideH, r = RowTaps(c);
        var tc = Shared.ToomCook.For(m, r);
        int alpha = tc.Alpha, ocBlocks = (c.OutChannels + block - 1) / block, groups = ocBlocks / ocTile;
        if (packed.Length != RowWinogradLength(c, m, block)) throw new ArgumentException("destination has the wrong length", nameof(packed));
        packed.Clear();
        int at = 0;
        for (int group = 0; group < groups; group++)
        for (int xi = 0; xi < alpha; xi++)
        for (int ic = 0; ic < c.InChannels; ic++)
        for (int p = 0; p < phases; p++)
        for (int kw = 0; kw < c.KernelW; kw++)
        for (int j = 0; j < ocTile; j++)
        for (int o = 0; o < block; o++, at++)
        {
            int oc = (group * ocTile + j) * block + o;
            if (oc >= c.OutChannels) continue;
            double u = 0;
            for (int a = 0; a < r && phases * a + p < c.KernelH; a++)
                u += tc.G[xi * r + a] * w[((oc * c.InChannels + ic) * c.KernelH + phases * a + p) * c.KernelW + kw];
            packed[at] = (float)u;
        }
    }

    /// <summary>
    /// OIHW 3×3 stride-2 weights → the phase-split row-Winograd kernel's: slots 0…m, F(m, 2)'s G on kernel rows 0
    /// and 2 (in double), then slot m + 1, kernel row 1 as it is; each [input block][kw][channel in block][oc block
    /// in group][oc], the order its GEMMs stream them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RowWinogradSplit(ReadOnlySpan<float> w, Conv2dParams c, int m, int block, int ocTile, Span<float> packed)
    {
        var tc = Shared.ToomCook.For(m, 2);
        int alpha = tc.Alpha, ocBlocks = (c.OutChannels + block - 1) / block, groups = ocBlocks / ocTile;
        int icBlocks = (c.InChannels + block - 1) / block;
        if (packed.Length != RowWinogradSplitLength(c, m, block)) throw new ArgumentException("destination has the wrong length", nameof(packed));
        packed.Clear();
        int at = 0;
        for (int group = 0; group < groups; group++)
        for (int slot = 0; slot <= alpha; slot++)
        for (int cb = 0; cb < icBlocks; cb++)
        for (int kw = 0; kw < 3; kw++)
        for (int ch = 0; ch < block; ch++)
        for (int j = 0; j < ocTile; j++)
        for (int o = 0; o < block; o++, at++)
        {
            int oc = (group * ocTile + j) * block + o, ic = cb * block + ch;
            if (oc >= c.OutChannels || ic >= c.InChannels) continue;
            int at0 = ((oc * c.InChannels + ic) * 3) * 3 + kw;
            packed[at] = slot < alpha
                ? (float)(tc.G[slot * 2] * w[at0] + tc.G[slot * 2 + 1] * w[at0 + 6])
                : w[at0 + 3];
        }
    }

    /// <summary>Floats <see cref="RowWinogradSplit"/> writes.</summary>
    public static int RowWinogradSplitLength(Conv2dParams c, int m, int block) =>
        (m + 2) * ((c.InChannels + block - 1) / block * block) * 3 * ((c.OutChannels + block - 1) / block * block);

    /// <summary>Floats <see cref="RowWinograd"/> writes.</summary>
    public static int RowWinogradLength(Conv2dParams c, int m, int block) =>
        (m + RowTaps(c) - 1) * c.InChannels * c.StrideH * c.KernelW * ((c.OutChannels + block - 1) / block * block);

    /// <summary>Taps of each row phase's filter: the kernel's rows spread over the stride's phases, ⌈kernel height / stride⌉.</summary>
    internal static int RowTaps(Conv2dParams c) => (c.KernelH + c.StrideH - 1) / c.StrideH;

    /// <summary>Bias padded with zeros to whole blocks.</summary>
    public static void Bias(ReadOnlySpan<float> b, Span<float> padded)
    {
        padded.Clear();
        b.CopyTo(padded);
    }

    /// <summary>Floats <see cref="Bias"/> writes.</summary>
    public static int BiasLength(int channels, int block) => (channels + block - 1) / block * block;
}
