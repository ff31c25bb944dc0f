using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ResNet.Runtime.Generic;

/// <summary>Sizes and strides (in floats) of a Winograd F(m×m, 3×3) layer, for the generic kernels.</summary>
internal struct WinogradGeometry
{
    /// <summary>Most tiles per work item of the main pass: an image of at most this many is one chunk, so each group streams its weights once.</summary>
    public const int MaxChunkTiles = 16;

    public int M, Alpha, Positions, TilesH, TilesW, Tiles, ChunkTiles, Chunks;
    public int K, InBlocks, InPlane, InRow, InImage, InOffset, ScratchImage, VStride;
    public int Groups, GroupBlocks, PositionWeights, GroupWeights;
    public OutputGeometry Out;

    public static WinogradGeometry For(LayerInfo layer, int m, TensorLayoutInfo input, TensorLayoutInfo output, TensorLayoutInfo? residual, int groupBlocks)
    {
        var c = layer.Conv!;
        int alpha = m + 2, tilesH = (output.H + m - 1) / m, tilesW = (output.W + m - 1) / m, k = input.Blocks * input.Block;
        int inRow = input.PaddedW * input.Block, positionWeights = k * groupBlocks * output.Block;
        // Like the generated kernels' scratch: a cache line between positions, so a tile's stores spread over L1 sets.
        int vStride = tilesH * tilesW * k + 16, chunk = tilesH * tilesW <= MaxChunkTiles ? tilesH * tilesW : 12;
        return new WinogradGeometry
        {
            M = m, Alpha = alpha, Positions = alpha * alpha, TilesH = tilesH, TilesW = tilesW, Tiles = tilesH * tilesW,
            ChunkTiles = chunk, Chunks = (tilesH * tilesW + chunk - 1) / chunk,
            K = k, InBlocks = input.Blocks, InPlane = input.PlaneFloats, InRow = inRow, InImage = input.ImageFloats,
            InOffset = (input.PadH - c.PadH) * inRow + (input.PadW - c.PadW) * input.Block,
            ScratchImage = alpha * alpha * vStride, VStride = vStride,
            Groups = output.Blocks / groupBlocks, GroupBlocks = groupBlocks,
            PositionWeights = positionWeights, GroupWeights = alpha * alpha * positionWeights,
            Out = OutputGeometry.For(layer, output, residual),
        };
    }
}

/// <summary>
/// The generic Winograd F(m×m, 3×3), m = 2 or 4: the generated kernels' algorithm and transforms (the same
/// expressions, so the same floats) for any shape. A first pass transforms the whole input into scratch (one
/// item per tile row and channel block); each main item takes a chunk of tiles (the whole image up to
/// <see cref="WinogradGeometry.MaxChunkTiles"/>, else 12) × a group of 4 output blocks, runs one GEMM per
/// position with a fixed register tile (6 tiles × 4 blocks on AVX-512, 2 × 4 with 16 registers, then pairs and
/// single tiles) and the output transform with bias, residual and ReLU.
/// The generator instead picks per layer whether to share the transform, the chunk, the GEMM tile and prefetch
/// distances, and unrolls with every size constant.
/// </summary>
internal static unsafe class GenericWinograd<TOps, TV> where TOps : struct, ISimd<TV> where TV : unmanaged
{
    private static int GemmTiles => TOps.Lanes == 16 ? 6 : 2;

    /// <summary>Input pass: batch × tile rows × input blocks items, into args.Output (the scratch).</summary>
    public static void InputPass(in KernelArgs args, int begin, int end)
    {
        WinogradGeometry* g = (WinogradGeometry*)args.Shape;
        int lanes = TOps.Lanes, perImage = g->TilesH * g->InBlocks;
        TV* t = stackalloc TV[36];
        for (int item = begin; item < end; item++)
        {
            int n = item / perImage, th = item % perImage / g->InBlocks, icb = item % g->InBlocks;
            for (int tw = 0; tw < g->TilesW; tw++)
            {
                float* x = args.Input + (long)n * g->InImage + icb * g->InPlane + g->InOffset + th * g->M * g->InRow + tw * g->M * lanes;
                float* dst = args.Output + (long)n * g->ScratchImage + (th * g->TilesW + tw) * g->K + icb * lanes;
                if (g->M == 4) InputTile4(x, g->InRow, dst, g->VStride, t);
                else InputTile2(x, g->InRow, dst, g->VStride, t);
            }
        }
    }

    /// <summary>Main pass: batch × groups × chunks items, reading the scratch (args.Input).</summary>
    [SkipLocalsInit]
    public static void MainPass(in KernelArgs args, int begin, int end)
    {
        WinogradGeometry* g = (WinogradGeometry*)args.Shape;
        int lanes = TOps.Lanes, blocks = g->GroupBlocks, perImage = g->Groups * g->Chunks;
        int mStride = g->ChunkTiles * blocks * lanes + 16;
        float* m = TileScratch.Tiles; // at most 36 positions × (16 tiles × 4 blocks × 16 + 16) floats, 150 KB
        TV* t = stackalloc TV[36];
        for (int item = begin; item < end; item++)
        {
            int n = item / perImage, group = item % perImage / g->Chunks, tile0 = item % g->Chunks * g->ChunkTiles;
            int count = Math.Min(g->ChunkTiles, g->Tiles - tile0);
            float* vt = args.Input + (long)n * g->ScratchImage + tile0 * g->K;
            for (int p = 0; p < g->Positions; p++)
            {
                float* u = args.Weights + (long)group * g->GroupWeights + p * g->PositionWeights;
                float* v = vt + p * g->VStride, mp = m + p * mStride;
                int t0 = 0;
                if (blocks == 4)
                {
                    if (GemmTiles == 6)
                        for (; t0 + 6 <= count; t0 += 6) Gemm4x6(v + t0 * g->K, u, mp + t0 * 4 * lanes, g->K);
                    for (; t0 + 2 <= count; t0 += 2) Gemm4x2(v + t0 * g->K, u, mp + t0 * 4 * lanes, g->K);
                    for (; t0 < count; t0++) Gemm4x1(v + t0 * g->K, u, mp + t0 * 4 * lanes, g->K);
                }
                else
                {
                    for (; t0 < count; t0++) Gemm1x1(v + t0 * g->K, u, mp + t0 * lanes, g->K);
                }
            }
            for (int tile = 0; tile < count; tile++)
            {
                int oh0 = (tile0 + tile) / g->TilesW * g->M, ow0 = (tile0 + tile) % g->TilesW * g->M;
                int rows = Math.Min(g->M, g->Out.H - oh0), cols = Math.Min(g->M, g->Out.W - ow0);
                for (int j = 0; j < blocks; j++)
                {
                    int block = group * blocks + j;
                    float* mt = m + tile * blocks * lanes + j * lanes;
                    TV b = TOps.Load(args.Bias + block * lanes);
                    float* y = g->Out.At(args.Output, n, block, oh0, ow0, lanes);
                    float* r = g->Out.ResidualAt(args.Residual, n, block, oh0, ow0, lanes);
                    if (g->M == 4) OutputTile4(g, mt, mStride, b, y, r, rows, cols, t);
                    else OutputTile2(g, mt, mStride, b, y, r, rows, cols, t);
                }
            }
        }
    }

    /// <summary>Bᵀ·d·B of F(4×4): columns into t, then rows to dst + position × stride (NNPACK's factoring, as generated).</summary>
    private static void InputTile4(float* x, int inRow, float* dst, int stride, TV* t)
    {
        int lanes = TOps.Lanes;
        for (int s = 0; s < 6; s++)
        {
            TV d0 = TOps.Load(x + s * lanes), d1 = TOps.Load(x + inRow + s * lanes), d2 = TOps.Load(x + 2 * inRow + s * lanes);
            TV d3 = TOps.Load(x + 3 * inRow + s * lanes), d4 = TOps.Load(x + 4 * inRow + s * lanes), d5 = TOps.Load(x + 5 * inRow + s * lanes);
            InputRows4(d0, d1, d2, d3, d4, d5, out t[s], out t[6 + s], out t[12 + s], out t[18 + s], out t[24 + s], out t[30 + s]);
        }
        for (int r = 0; r < 6; r++, dst += 6 * stride)
        {
            InputRows4(t[r * 6], t[r * 6 + 1], t[r * 6 + 2], t[r * 6 + 3], t[r * 6 + 4], t[r * 6 + 5], out var e0, out var e1, out var e2, out var e3, out var e4, out var e5);
            TOps.Store(e0, dst); TOps.Store(e1, dst + stride); TOps.Store(e2, dst + 2 * stride);
            TOps.Store(e3, dst + 3 * stride); TOps.Store(e4, dst + 4 * stride); TOps.Store(e5, dst + 5 * stride);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputRows4(TV d0, TV d1, TV d2, TV d3, TV d4, TV d5, out TV r0, out TV r1, out TV r2, out TV r3, out TV r4, out TV r5)
    {
        r0 = TOps.Add(TOps.Subtract(TOps.Multiply(d0, 4f), TOps.Multiply(d2, 5f)), d4);
        r1 = TOps.Subtract(TOps.Add(d3, d4), TOps.Multiply(TOps.Add(d1, d2), 4f));
        r2 = TOps.Subtract(TOps.Add(TOps.Multiply(TOps.Subtract(d1, d2), 4f), d4), d3);
        r3 = TOps.Subtract(TOps.Add(TOps.Multiply(TOps.Subtract(d3, d1), 2f), d4), d2);
        r4 = TOps.Subtract(TOps.Add(TOps.Multiply(TOps.Subtract(d1, d3), 2f), d4), d2);
        r5 = TOps.Add(TOps.Subtract(TOps.Multiply(d1, 4f), TOps.Multiply(d3, 5f)), d5);
    }

    /// <summary>Bᵀ·d·B of F(2×2): adds only.</summary>
    private static void InputTile2(float* x, int inRow, float* dst, int stride, TV* t)
    {
        int lanes = TOps.Lanes;
        for (int s = 0; s < 4; s++)
        {
            TV d0 = TOps.Load(x + s * lanes), d1 = TOps.Load(x + inRow + s * lanes);
            TV d2 = TOps.Load(x + 2 * inRow + s * lanes), d3 = TOps.Load(x + 3 * inRow + s * lanes);
            t[s] = TOps.Subtract(d0, d2); t[4 + s] = TOps.Add(d1, d2); t[8 + s] = TOps.Subtract(d2, d1); t[12 + s] = TOps.Subtract(d1, d3);
        }
        for (int r = 0; r < 4; r++, dst += 4 * stride)
        {
            TV d0 = t[r * 4], d1 = t[r * 4 + 1], d2 = t[r * 4 + 2], d3 = t[r * 4 + 3];
            TOps.Store(TOps.Subtract(d0, d2), dst); TOps.Store(TOps.Add(d1, d2), dst + stride);
            TOps.Store(TOps.Subtract(d2, d1), dst + 2 * stride); TOps.Store(TOps.Subtract(d1, d3), dst + 3 * stride);
        }
    }

    /// <summary>Aᵀ·m·A of F(4×4) for one tile and output block, then bias, residual, ReLU; an edge tile stores only its valid pixels.</summary>
    private static void OutputTile4(WinogradGeometry* g, float* mt, int mStride, TV b, float* y, float* r, int rows, int cols, TV* t)
    {
        for (int s = 0; s < 6; s++)
        {
            TV d0 = TOps.Load(mt + s * mStride), d1 = TOps.Load(mt + (6 + s) * mStride), d2 = TOps.Load(mt + (12 + s) * mStride);
            TV d3 = TOps.Load(mt + (18 + s) * mStride), d4 = TOps.Load(mt + (24 + s) * mStride), d5 = TOps.Load(mt + (30 + s) * mStride);
            OutputRows4(d0, d1, d2, d3, d4, d5, out t[s], out t[6 + s], out t[12 + s], out t[18 + s]);
        }
        for (int i = 0; i < rows; i++)
        {
            OutputRows4(t[i * 6], t[i * 6 + 1], t[i * 6 + 2], t[i * 6 + 3], t[i * 6 + 4], t[i * 6 + 5], out var o0, out var o1, out var o2, out var o3);
            float* yr = y + i * g->Out.Row, rr = r + i * g->Out.ResRow;
            Finish(g, TOps.Add(b, o0), yr, rr);
            if (cols > 1) Finish(g, TOps.Add(b, o1), yr + TOps.Lanes, rr + TOps.Lanes);
            if (cols > 2) Finish(g, TOps.Add(b, o2), yr + 2 * TOps.Lanes, rr + 2 * TOps.Lanes);
            if (cols > 3) Finish(g, TOps.Add(b, o3), yr + 3 * TOps.Lanes, rr + 3 * TOps.Lanes);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputRows4(TV d0, TV d1, TV d2, TV d3, TV d4, TV d5, out TV o0, out TV o1, out TV o2, out TV o3)
    {
        o0 = TOps.Add(TOps.Add(TOps.Add(TOps.Add(d0, d1), d2), d3), d4);
        o1 = TOps.Add(TOps.Subtract(d1, d2), TOps.Multiply(TOps.Subtract(d3, d4), 2f));
        o2 = TOps.Add(TOps.Add(d1, d2), TOps.Multiply(TOps.Add(d3, d4), 4f));
        o3 = TOps.Add(TOps.Add(TOps.Subtract(d1, d2), TOps.Multiply(TOps.Subtract(d3, d4), 8f)), d5);
    }

    private static void OutputTile2(WinogradGeometry* g, float* mt, int mStride, TV b, float* y, float* r, int rows, int cols, TV* t)
    {
        for (int s = 0; s < 4; s++)
        {
            TV d0 = TOps.Load(mt + s * mStride), d1 = TOps.Load(mt + (4 + s) * mStride);
            TV d2 = TOps.Load(mt + (8 + s) * mStride), d3 = TOps.Load(mt + (12 + s) * mStride);
            t[s] = TOps.Add(TOps.Add(d0, d1), d2);
            t[4 + s] = TOps.Subtract(TOps.Subtract(d1, d2), d3);
        }
        for (int i = 0; i < rows; i++)
        {
            TV d0 = t[i * 4], d1 = t[i * 4 + 1], d2 = t[i * 4 + 2], d3 = t[i * 4 + 3];
            float* yr = y + i * g->Out.Row, rr = r + i * g->Out.ResRow;
            Finish(g, TOps.Add(b, TOps.Add(TOps.Add(d0, d1), d2)), yr, rr);
            if (cols > 1) Finish(g, TOps.Add(b, TOps.Subtract(TOps.Subtract(d1, d2), d3)), yr + TOps.Lanes, rr + TOps.Lanes);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(WinogradGeometry* g, TV acc, float* y, float* r) => Epilogue<TOps, TV>.Finish(&g->Out, acc, y, r);

    /// <summary>6 tiles × 4 output blocks of one position, summed over k input channels (v: [tile][k], u: [k][4 blocks]).</summary>
    private static void Gemm4x6(float* v, float* u, float* m, int k)
    {
        int lanes = TOps.Lanes;
        TV a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default;
        TV a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        TV a20 = default, a21 = default, a22 = default, a23 = default, a24 = default, a25 = default;
        TV a30 = default, a31 = default, a32 = default, a33 = default, a34 = default, a35 = default;
        for (float* vEnd = v + k; v < vEnd; v++, u += 4 * lanes)
        {
            TV w0 = TOps.Load(u), w1 = TOps.Load(u + lanes), w2 = TOps.Load(u + 2 * lanes), w3 = TOps.Load(u + 3 * lanes);
            TV x = TOps.Splat(v[0]);
            a00 = TOps.MultiplyAdd(x, w0, a00); a10 = TOps.MultiplyAdd(x, w1, a10); a20 = TOps.MultiplyAdd(x, w2, a20); a30 = TOps.MultiplyAdd(x, w3, a30);
            x = TOps.Splat(v[k]);
            a01 = TOps.MultiplyAdd(x, w0, a01); a11 = TOps.MultiplyAdd(x, w1, a11); a21 = TOps.MultiplyAdd(x, w2, a21); a31 = TOps.MultiplyAdd(x, w3, a31);
            x = TOps.Splat(v[2 * k]);
            a02 = TOps.MultiplyAdd(x, w0, a02); a12 = TOps.MultiplyAdd(x, w1, a12); a22 = TOps.MultiplyAdd(x, w2, a22); a32 = TOps.MultiplyAdd(x, w3, a32);
            x = TOps.Splat(v[3 * k]);
            a03 = TOps.MultiplyAdd(x, w0, a03); a13 = TOps.MultiplyAdd(x, w1, a13); a23 = TOps.MultiplyAdd(x, w2, a23); a33 = TOps.MultiplyAdd(x, w3, a33);
            x = TOps.Splat(v[4 * k]);
            a04 = TOps.MultiplyAdd(x, w0, a04); a14 = TOps.MultiplyAdd(x, w1, a14); a24 = TOps.MultiplyAdd(x, w2, a24); a34 = TOps.MultiplyAdd(x, w3, a34);
            x = TOps.Splat(v[5 * k]);
            a05 = TOps.MultiplyAdd(x, w0, a05); a15 = TOps.MultiplyAdd(x, w1, a15); a25 = TOps.MultiplyAdd(x, w2, a25); a35 = TOps.MultiplyAdd(x, w3, a35);
        }
        int s = 4 * lanes;
        TOps.Store(a00, m); TOps.Store(a10, m + lanes); TOps.Store(a20, m + 2 * lanes); TOps.Store(a30, m + 3 * lanes);
        TOps.Store(a01, m + s); TOps.Store(a11, m + s + lanes); TOps.Store(a21, m + s + 2 * lanes); TOps.Store(a31, m + s + 3 * lanes);
        TOps.Store(a02, m + 2 * s); TOps.Store(a12, m + 2 * s + lanes); TOps.Store(a22, m + 2 * s + 2 * lanes); TOps.Store(a32, m + 2 * s + 3 * lanes);
        TOps.Store(a03, m + 3 * s); TOps.Store(a13, m + 3 * s + lanes); TOps.Store(a23, m + 3 * s + 2 * lanes); TOps.Store(a33, m + 3 * s + 3 * lanes);
        TOps.Store(a04, m + 4 * s); TOps.Store(a14, m + 4 * s + lanes); TOps.Store(a24, m + 4 * s + 2 * lanes); TOps.Store(a34, m + 4 * s + 3 * lanes);
        TOps.Store(a05, m + 5 * s); TOps.Store(a15, m + 5 * s + lanes); TOps.Store(a25, m + 5 * s + 2 * lanes); TOps.Store(a35, m + 5 * s + 3 * lanes);
    }

    private static void Gemm4x2(float* v, float* u, float* m, int k)
    {
        int lanes = TOps.Lanes;
        TV a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
        for (float* vEnd = v + k; v < vEnd; v++, u += 4 * lanes)
        {
            TV w0 = TOps.Load(u), w1 = TOps.Load(u + lanes), w2 = TOps.Load(u + 2 * lanes), w3 = TOps.Load(u + 3 * lanes);
            TV x = TOps.Splat(v[0]);
            a00 = TOps.MultiplyAdd(x, w0, a00); a10 = TOps.MultiplyAdd(x, w1, a10); a20 = TOps.MultiplyAdd(x, w2, a20); a30 = TOps.MultiplyAdd(x, w3, a30);
            x = TOps.Splat(v[k]);
            a01 = TOps.MultiplyAdd(x, w0, a01); a11 = TOps.MultiplyAdd(x, w1, a11); a21 = TOps.MultiplyAdd(x, w2, a21); a31 = TOps.MultiplyAdd(x, w3, a31);
        }
        int s = 4 * lanes;
        TOps.Store(a00, m); TOps.Store(a10, m + lanes); TOps.Store(a20, m + 2 * lanes); TOps.Store(a30, m + 3 * lanes);
        TOps.Store(a01, m + s); TOps.Store(a11, m + s + lanes); TOps.Store(a21, m + s + 2 * lanes); TOps.Store(a31, m + s + 3 * lanes);
    }

    private static void Gemm4x1(float* v, float* u, float* m, int k)
    {
        int lanes = TOps.Lanes;
        TV a0 = default, a1 = default, a2 = default, a3 = default;
        for (float* vEnd = v + k; v < vEnd; v++, u += 4 * lanes)
        {
            TV x = TOps.Splat(v[0]);
            a0 = TOps.MultiplyAdd(x, TOps.Load(u), a0);
            a1 = TOps.MultiplyAdd(x, TOps.Load(u + lanes), a1);
            a2 = TOps.MultiplyAdd(x, TOps.Load(u + 2 * lanes), a2);
            a3 = TOps.MultiplyAdd(x, TOps.Load(u + 3 * lanes), a3);
        }
        TOps.Store(a0, m); TOps.Store(a1, m + lanes); TOps.Store(a2, m + 2 * lanes); TOps.Store(a3, m + 3 * lanes);
    }

    private static void Gemm1x1(float* v, float* u, float* m, int k)
    {
        TV a = default;
        for (float* vEnd = v + k; v < vEnd; v++, u += TOps.Lanes) a = TOps.MultiplyAdd(TOps.Splat(v[0]), TOps.Load(u), a);
        TOps.Store(a, m);
    }
}

/// <summary>The generic Winograd kernels' instantiations per instruction set.</summary>
internal static unsafe class GenericWinograd
{
    public static delegate*<in KernelArgs, int, int, void> InputPass(InstructionSet isa) => isa switch
    {
        InstructionSet.Avx512 => &GenericWinograd<Simd512, Vector512<float>>.InputPass,
        InstructionSet.Avx2 => &GenericWinograd<Simd256, Vector256<float>>.InputPass,
        _ => &GenericWinograd<Simd128, Vector128<float>>.InputPass,
    };

    public static delegate*<in KernelArgs, int, int, void> MainPass(InstructionSet isa) => isa switch
    {
        InstructionSet.Avx512 => &GenericWinograd<Simd512, Vector512<float>>.MainPass,
        InstructionSet.Avx2 => &GenericWinograd<Simd256, Vector256<float>>.MainPass,
        _ => &GenericWinograd<Simd128, Vector128<float>>.MainPass,
    };
}
