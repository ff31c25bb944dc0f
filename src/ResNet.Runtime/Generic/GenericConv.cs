using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ResNet.Runtime.Generic;

/// <summary>
/// Where a direct convolution reads and writes, as run-time numbers (offsets and strides in floats): everything
/// a generated kernel has as constants. Built once per layer from the same layouts the generated kernels use.
/// </summary>
internal struct ConvGeometry
{
    public int InBlocks, InBlock, InPlane, InImage, InStart;
    public int KernelH, KernelW, DilationRow, DilationColumn, StrideRow, StrideColumn;
    public int Groups, GroupBlocks, GroupWeights;
    public OutputGeometry Out;

    public static ConvGeometry For(LayerInfo layer, TensorLayoutInfo input, TensorLayoutInfo output, TensorLayoutInfo? residual, int groupBlocks)
    {
        var c = layer.Conv!;
        int inRow = input.PaddedW * input.Block;
        return new ConvGeometry
        {
            InBlocks = input.Blocks, InBlock = input.Block, InPlane = input.PlaneFloats, InImage = input.ImageFloats,
            InStart = (input.PadH - c.PadH) * inRow + (input.PadW - c.PadW) * input.Block,
            KernelH = c.KernelH, KernelW = c.KernelW,
            DilationRow = c.DilationH * inRow, DilationColumn = c.DilationW * input.Block,
            StrideRow = c.StrideH * inRow, StrideColumn = c.StrideW * input.Block,
            Groups = output.Blocks / groupBlocks, GroupBlocks = groupBlocks,
            GroupWeights = input.Blocks * input.Block * c.KernelH * c.KernelW * groupBlocks * output.Block,
            Out = OutputGeometry.For(layer, output, residual),
        };
    }
}

/// <summary>
/// The generic direct convolution: the generated kernels' algorithm (channel-blocked layout, weights packed
/// per group of output blocks, register tiles whose accumulators start from the folded bias, fused residual and
/// ReLU) written once for any shape, as a hand-written library would be: every size and stride is read from a
/// <see cref="ConvGeometry"/> at run time, and the tile is fixed per vector width — 4 output blocks × 6 pixels
/// on AVX-512 (24 accumulators), × 2 pixels with 16 registers, then pairs and single pixels — where the generator
/// sizes tiles, unrolls and folds addresses per layer. Benchmarks compare the two; outputs agree to rounding.
/// </summary>
internal static unsafe class GenericConv<TOps, TV> where TOps : struct, ISimd<TV> where TV : struct
{
    /// <summary>Pixels per full tile: as many as fit the registers beside 4 weight vectors and a broadcast (a row's rest takes pairs, then single pixels).</summary>
    private static int Pixels => TOps.Lanes == 16 ? 6 : 2;

    /// <summary>Work items: batch × groups of output blocks × output rows (threads split the groups).</summary>
    public static void Run(in KernelArgs args, int begin, int end)
    {
        ConvGeometry* g = (ConvGeometry*)args.Shape;
        int lanes = TOps.Lanes, perImage = g->Groups * g->Out.H;
        for (int item = begin; item < end; item++)
        {
            int n = item / perImage, group = item % perImage / g->Out.H, oh = item % g->Out.H;
            float* x = args.Input + (long)n * g->InImage + g->InStart + oh * g->StrideRow;
            float* w = args.Weights + (long)group * g->GroupWeights;
            float* b = args.Bias + group * g->GroupBlocks * lanes;
            float* y = g->Out.At(args.Output, n, group * g->GroupBlocks, oh, 0, lanes);
            float* r = g->Out.ResidualAt(args.Residual, n, group * g->GroupBlocks, oh, 0, lanes);
            Row(g, x, w, b, y, r);
        }
    }

    /// <summary>One output row of one group: x is its first window's top-left input, y and r its first pixel.</summary>
    internal static void Row(ConvGeometry* g, float* x, float* w, float* b, float* y, float* r)
    {
        int lanes = TOps.Lanes, ow = 0;
        if (g->GroupBlocks == 4)
        {
            if (Pixels == 6)
                for (; ow + 6 <= g->Out.W; ow += 6) Tile4x6(g, x + ow * g->StrideColumn, w, b, y + ow * lanes, r + ow * lanes);
            for (; ow + 2 <= g->Out.W; ow += 2) Tile4x2(g, x + ow * g->StrideColumn, w, b, y + ow * lanes, r + ow * lanes);
            for (; ow < g->Out.W; ow++) Tile4x1(g, x + ow * g->StrideColumn, w, b, y + ow * lanes, r + ow * lanes);
        }
        else
        {
            for (; ow < g->Out.W; ow++) Tile1x1(g, x + ow * g->StrideColumn, w, b, y + ow * lanes, r + ow * lanes);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(ConvGeometry* g, TV acc, float* y, float* r) => Epilogue<TOps, TV>.Finish(&g->Out, acc, y, r);

    private static void Tile4x6(ConvGeometry* g, float* x, float* w, float* b, float* y, float* r)
    {
        int lanes = TOps.Lanes, s = g->StrideColumn;
        TV b0 = TOps.Load(b), b1 = TOps.Load(b + lanes), b2 = TOps.Load(b + 2 * lanes), b3 = TOps.Load(b + 3 * lanes);
        TV a00 = b0, a01 = b0, a02 = b0, a03 = b0, a04 = b0, a05 = b0;
        TV a10 = b1, a11 = b1, a12 = b1, a13 = b1, a14 = b1, a15 = b1;
        TV a20 = b2, a21 = b2, a22 = b2, a23 = b2, a24 = b2, a25 = b2;
        TV a30 = b3, a31 = b3, a32 = b3, a33 = b3, a34 = b3, a35 = b3;
        for (int icb = 0; icb < g->InBlocks; icb++, x += g->InPlane)
        for (int kh = 0; kh < g->KernelH; kh++)
        {
            float* xr = x + kh * g->DilationRow;
            for (int kw = 0; kw < g->KernelW; kw++, xr += g->DilationColumn)
            for (float* xc = xr, xEnd = xr + g->InBlock; xc < xEnd; xc++, w += 4 * lanes)
            {
                TV w0 = TOps.Load(w), w1 = TOps.Load(w + lanes), w2 = TOps.Load(w + 2 * lanes), w3 = TOps.Load(w + 3 * lanes);
                TV v = TOps.Splat(xc[0]);
                a00 = TOps.MultiplyAdd(v, w0, a00); a10 = TOps.MultiplyAdd(v, w1, a10); a20 = TOps.MultiplyAdd(v, w2, a20); a30 = TOps.MultiplyAdd(v, w3, a30);
                v = TOps.Splat(xc[s]);
                a01 = TOps.MultiplyAdd(v, w0, a01); a11 = TOps.MultiplyAdd(v, w1, a11); a21 = TOps.MultiplyAdd(v, w2, a21); a31 = TOps.MultiplyAdd(v, w3, a31);
                v = TOps.Splat(xc[2 * s]);
                a02 = TOps.MultiplyAdd(v, w0, a02); a12 = TOps.MultiplyAdd(v, w1, a12); a22 = TOps.MultiplyAdd(v, w2, a22); a32 = TOps.MultiplyAdd(v, w3, a32);
                v = TOps.Splat(xc[3 * s]);
                a03 = TOps.MultiplyAdd(v, w0, a03); a13 = TOps.MultiplyAdd(v, w1, a13); a23 = TOps.MultiplyAdd(v, w2, a23); a33 = TOps.MultiplyAdd(v, w3, a33);
                v = TOps.Splat(xc[4 * s]);
                a04 = TOps.MultiplyAdd(v, w0, a04); a14 = TOps.MultiplyAdd(v, w1, a14); a24 = TOps.MultiplyAdd(v, w2, a24); a34 = TOps.MultiplyAdd(v, w3, a34);
                v = TOps.Splat(xc[5 * s]);
                a05 = TOps.MultiplyAdd(v, w0, a05); a15 = TOps.MultiplyAdd(v, w1, a15); a25 = TOps.MultiplyAdd(v, w2, a25); a35 = TOps.MultiplyAdd(v, w3, a35);
            }
        }
        int op = g->Out.Plane, rp = g->Out.ResPlane;
        Finish(g, a00, y, r); Finish(g, a01, y + lanes, r + lanes); Finish(g, a02, y + 2 * lanes, r + 2 * lanes);
        Finish(g, a03, y + 3 * lanes, r + 3 * lanes); Finish(g, a04, y + 4 * lanes, r + 4 * lanes); Finish(g, a05, y + 5 * lanes, r + 5 * lanes);
        y += op; r += rp;
        Finish(g, a10, y, r); Finish(g, a11, y + lanes, r + lanes); Finish(g, a12, y + 2 * lanes, r + 2 * lanes);
        Finish(g, a13, y + 3 * lanes, r + 3 * lanes); Finish(g, a14, y + 4 * lanes, r + 4 * lanes); Finish(g, a15, y + 5 * lanes, r + 5 * lanes);
        y += op; r += rp;
        Finish(g, a20, y, r); Finish(g, a21, y + lanes, r + lanes); Finish(g, a22, y + 2 * lanes, r + 2 * lanes);
        Finish(g, a23, y + 3 * lanes, r + 3 * lanes); Finish(g, a24, y + 4 * lanes, r + 4 * lanes); Finish(g, a25, y + 5 * lanes, r + 5 * lanes);
        y += op; r += rp;
        Finish(g, a30, y, r); Finish(g, a31, y + lanes, r + lanes); Finish(g, a32, y + 2 * lanes, r + 2 * lanes);
        Finish(g, a33, y + 3 * lanes, r + 3 * lanes); Finish(g, a34, y + 4 * lanes, r + 4 * lanes); Finish(g, a35, y + 5 * lanes, r + 5 * lanes);
    }

    private static void Tile4x2(ConvGeometry* g, float* x, float* w, float* b, float* y, float* r)
    {
        int lanes = TOps.Lanes, s = g->StrideColumn;
        TV a00 = TOps.Load(b), a10 = TOps.Load(b + lanes), a20 = TOps.Load(b + 2 * lanes), a30 = TOps.Load(b + 3 * lanes);
        TV a01 = a00, a11 = a10, a21 = a20, a31 = a30;
        for (int icb = 0; icb < g->InBlocks; icb++, x += g->InPlane)
        for (int kh = 0; kh < g->KernelH; kh++)
        {
            float* xr = x + kh * g->DilationRow;
            for (int kw = 0; kw < g->KernelW; kw++, xr += g->DilationColumn)
            for (float* xc = xr, xEnd = xr + g->InBlock; xc < xEnd; xc++, w += 4 * lanes)
            {
                TV w0 = TOps.Load(w), w1 = TOps.Load(w + lanes), w2 = TOps.Load(w + 2 * lanes), w3 = TOps.Load(w + 3 * lanes);
                TV v = TOps.Splat(xc[0]);
                a00 = TOps.MultiplyAdd(v, w0, a00); a10 = TOps.MultiplyAdd(v, w1, a10); a20 = TOps.MultiplyAdd(v, w2, a20); a30 = TOps.MultiplyAdd(v, w3, a30);
                v = TOps.Splat(xc[s]);
                a01 = TOps.MultiplyAdd(v, w0, a01); a11 = TOps.MultiplyAdd(v, w1, a11); a21 = TOps.MultiplyAdd(v, w2, a21); a31 = TOps.MultiplyAdd(v, w3, a31);
            }
        }
        int op = g->Out.Plane, rp = g->Out.ResPlane;
        Finish(g, a00, y, r); Finish(g, a01, y + lanes, r + lanes);
        Finish(g, a10, y + op, r + rp); Finish(g, a11, y + op + lanes, r + rp + lanes);
        Finish(g, a20, y + 2 * op, r + 2 * rp); Finish(g, a21, y + 2 * op + lanes, r + 2 * rp + lanes);
        Finish(g, a30, y + 3 * op, r + 3 * rp); Finish(g, a31, y + 3 * op + lanes, r + 3 * rp + lanes);
    }

    private static void Tile4x1(ConvGeometry* g, float* x, float* w, float* b, float* y, float* r)
    {
        int lanes = TOps.Lanes;
        TV a0 = TOps.Load(b), a1 = TOps.Load(b + lanes), a2 = TOps.Load(b + 2 * lanes), a3 = TOps.Load(b + 3 * lanes);
        for (int icb = 0; icb < g->InBlocks; icb++, x += g->InPlane)
        for (int kh = 0; kh < g->KernelH; kh++)
        {
            float* xr = x + kh * g->DilationRow;
            for (int kw = 0; kw < g->KernelW; kw++, xr += g->DilationColumn)
            for (float* xc = xr, xEnd = xr + g->InBlock; xc < xEnd; xc++, w += 4 * lanes)
            {
                TV v = TOps.Splat(xc[0]);
                a0 = TOps.MultiplyAdd(v, TOps.Load(w), a0);
                a1 = TOps.MultiplyAdd(v, TOps.Load(w + lanes), a1);
                a2 = TOps.MultiplyAdd(v, TOps.Load(w + 2 * lanes), a2);
                a3 = TOps.MultiplyAdd(v, TOps.Load(w + 3 * lanes), a3);
            }
        }
        int op = g->Out.Plane, rp = g->Out.ResPlane;
        Finish(g, a0, y, r); Finish(g, a1, y + op, r + rp); Finish(g, a2, y + 2 * op, r + 2 * rp); Finish(g, a3, y + 3 * op, r + 3 * rp);
    }

    /// <summary>Output block counts that are not a multiple of 4 take one block and one pixel at a time.</summary>
    private static void Tile1x1(ConvGeometry* g, float* x, float* w, float* b, float* y, float* r)
    {
        int lanes = TOps.Lanes;
        TV a = TOps.Load(b);
        for (int icb = 0; icb < g->InBlocks; icb++, x += g->InPlane)
        for (int kh = 0; kh < g->KernelH; kh++)
        {
            float* xr = x + kh * g->DilationRow;
            for (int kw = 0; kw < g->KernelW; kw++, xr += g->DilationColumn)
            for (float* xc = xr, xEnd = xr + g->InBlock; xc < xEnd; xc++, w += lanes)
                a = TOps.MultiplyAdd(TOps.Splat(xc[0]), TOps.Load(w), a);
        }
        Finish(g, a, y, r);
    }
}

/// <summary>Which layers the generic direct convolution runs, its grouping of output blocks, and its instantiation per instruction set.</summary>
internal static unsafe class GenericConv
{
    /// <summary>Ungrouped convolutions with zero padding (others keep their generated kernel).</summary>
    public static bool Supports(LayerInfo layer) =>
        layer.Kind == LayerKind.Conv && layer.Conv!.Groups == 1 && layer.Conv.PaddingMode == PaddingMode.Zeros;

    /// <summary>Output blocks per weight group: 4 (the tile's) when they divide evenly, else 1.</summary>
    public static int GroupBlocks(int outBlocks) => outBlocks % 4 == 0 ? 4 : 1;

    public static delegate*<in KernelArgs, int, int, void> Kernel(InstructionSet isa) => isa switch
    {
        InstructionSet.Avx512 => &GenericConv<Simd512, Vector512<float>>.Run,
        InstructionSet.Avx2 => &GenericConv<Simd256, Vector256<float>>.Run,
        _ => &GenericConv<Simd128, Vector128<float>>.Run,
    };
}
