using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ResNet.Runtime.Generic;

/// <summary>Sizes and strides (in floats) of a row-Winograd layer and its F(m, r) transforms, for the generic kernel.</summary>
internal unsafe struct RowWinogradGeometry
{
    public const int MaxAlpha = Shared.ToomCook.MaxAlpha, MaxM = 4;

    public int M, Alpha, Phases, Channels, KernelW, StrideW, TilesH;
    /// <summary>
    /// Phase-split mode (a 3×3 stride-2 convolution over a channel-blocked input): the even rows' F(M, 2) positions,
    /// then M positions of copied odd rows whose GEMMs share one weight slot; Channels counts blocks of Lanes.
    /// </summary>
    public bool Split;
    public int Lanes, Positions;
    public int InImage, InPlane, InRow, OffH, OffW, Columns, ColumnStride, PositionFloats;
    public int Groups, GroupBlocks, PositionWeights, GroupWeights, ResultStride;
    public OutputGeometry Out;
    /// <summary>One position's GEMM as the generic direct kernel's row: a 1×KW convolution over channels × phases into [block][pixel][channel].</summary>
    public ConvGeometry Gemm;
    public fixed float BT[MaxAlpha * MaxAlpha];
    public fixed float AT[MaxM * MaxAlpha];

    public static RowWinogradGeometry For(LayerInfo layer, int m, TensorLayoutInfo input, TensorLayoutInfo output, TensorLayoutInfo? residual, int groupBlocks)
    {
        if (m > MaxM) throw new ArgumentOutOfRangeException(nameof(m), $"row-Winograd tiles of {m} rows; at most {MaxM}");
        var c = layer.Conv!;
        if (input.Block > 1) return ForSplit(layer, m, input, output, residual, groupBlocks);
        int phases = c.StrideH;
        var tc = Shared.ToomCook.For(m, Weights.Packing.RowTaps(c));
        int offW = input.PadW - c.PadW, columns = (output.W - 1) * c.StrideW + c.KernelW + offW, columnStride = (columns + 15) / 16 * 16;
        int positionWeights = c.InChannels * phases * c.KernelW * groupBlocks * output.Block;
        int lanes = output.Block, resultPlane = output.W * lanes;
        var g = new RowWinogradGeometry
        {
            M = m, Alpha = tc.Alpha, Phases = phases, Lanes = 1, Positions = tc.Alpha, Channels = c.InChannels, KernelW = c.KernelW, StrideW = c.StrideW,
            TilesH = (output.H + m - 1) / m,
            InImage = input.ImageFloats, InPlane = input.PlaneFloats, InRow = input.PaddedW, OffH = input.PadH - c.PadH, OffW = offW,
            Columns = columns, ColumnStride = columnStride, PositionFloats = c.InChannels * phases * columnStride,
            Groups = output.Blocks / groupBlocks, GroupBlocks = groupBlocks, PositionWeights = positionWeights, GroupWeights = tc.Alpha * positionWeights,
            ResultStride = groupBlocks * resultPlane + 16,
            Out = OutputGeometry.For(layer, output, residual),
            Gemm = new ConvGeometry
            {
                InBlocks = c.InChannels * phases, InBlock = 1, InPlane = columnStride, KernelH = 1, KernelW = c.KernelW,
                DilationColumn = 1, StrideColumn = c.StrideW, Groups = 1, GroupBlocks = groupBlocks,
                Out = new OutputGeometry { H = 1, W = output.W, Plane = resultPlane, Row = 0 },
            },
        };
        for (int i = 0; i < tc.BT.Length; i++) g.BT[i] = (float)tc.BT[i];
        for (int i = 0; i < tc.AT.Length; i++) g.AT[i] = (float)tc.AT[i];
        return g;
    }

    /// <summary>The phase-split geometry (<see cref="Split"/>): F(m, 2) on the even rows of the padded input, the odd rows direct.</summary>
    private static RowWinogradGeometry ForSplit(LayerInfo layer, int m, TensorLayoutInfo input, TensorLayoutInfo output, TensorLayoutInfo? residual, int groupBlocks)
    {
        var c = layer.Conv!;
        var tc = Shared.ToomCook.For(m, 2);
        int lanes = input.Block, offW = input.PadW - c.PadW, columns = (output.W - 1) * c.StrideW + c.KernelW + offW;
        int positionWeights = input.Blocks * lanes * c.KernelW * groupBlocks * output.Block;
        int resultPlane = output.W * output.Block;
        var g = new RowWinogradGeometry
        {
            M = m, Alpha = tc.Alpha, Phases = 2, Split = true, Lanes = lanes, Positions = tc.Alpha + m,
            Channels = input.Blocks, KernelW = c.KernelW, StrideW = c.StrideW, TilesH = (output.H + m - 1) / m,
            InImage = input.ImageFloats, InPlane = input.PlaneFloats, InRow = input.PaddedW * lanes, OffH = input.PadH - c.PadH, OffW = offW,
            Columns = columns, ColumnStride = columns, PositionFloats = input.Blocks * columns * lanes,
            Groups = output.Blocks / groupBlocks, GroupBlocks = groupBlocks, PositionWeights = positionWeights,
            GroupWeights = (tc.Alpha + 1) * positionWeights, ResultStride = groupBlocks * resultPlane + 16,
            Out = OutputGeometry.For(layer, output, residual),
            Gemm = new ConvGeometry
            {
                InBlocks = input.Blocks, InBlock = lanes, InPlane = columns * lanes, KernelH = 1, KernelW = c.KernelW,
                DilationColumn = lanes, StrideColumn = c.StrideW * lanes, Groups = 1, GroupBlocks = groupBlocks,
                Out = new OutputGeometry { H = 1, W = output.W, Plane = resultPlane, Row = 0 },
            },
        };
        for (int i = 0; i < tc.BT.Length; i++) g.BT[i] = (float)tc.BT[i];
        for (int i = 0; i < tc.AT.Length; i++) g.AT[i] = (float)tc.AT[i];
        return g;
    }

    /// <summary>Work items per image: tiles of rows, and in split mode × groups.</summary>
    public readonly int Items => Split ? TilesH * Groups : TilesH;

    /// <summary>Floats of a work item's transformed rows in its thread's tile scratch (its GEMM results follow).</summary>
    public readonly int RowFloats => Positions * PositionFloats;

    /// <summary>Floats a work item keeps in its thread's tile scratch: the transformed rows and one group's GEMM results.</summary>
    public readonly int TileFloats => RowFloats + Positions * ResultStride;
}

/// <summary>
/// The generic row-Winograd convolution (the generated kernels' RowWinogradPlan, for any shape): per work item
/// (one tile of M output rows of one image) Bᵀ·d down each channel's phase rows into the thread's tile scratch,
/// then per group of output blocks the α GEMMs over the row (each the generic direct kernel's row of a 1×KW
/// convolution over channels × phases, its register tiles), and Aᵀ·m with the epilogue. Every transform is the
/// same sum of products in the same order as the generated code's, every GEMM the same chain of multiply-adds,
/// so the results are the same floats. The generator instead unrolls the transforms with their constants, sizes
/// the register tile per layer and folds every address.
/// </summary>
internal static unsafe class GenericRowWinograd<TOps, TV> where TOps : struct, ISimd<TV> where TV : unmanaged
{
    [SkipLocalsInit]
    public static void Run(in KernelArgs args, int begin, int end)
    {
        RowWinogradGeometry* g = (RowWinogradGeometry*)args.Shape;
        int lanes = TOps.Lanes, alpha = g->Alpha;
        float* v = TileScratch.Tiles;
        float* m = v + g->RowFloats;
        TV* d = stackalloc TV[RowWinogradGeometry.MaxAlpha];
        // The GEMMs' accumulators start from this "bias": zero, as the generated GEMMs' do.
        float* zero = stackalloc float[4 * 16];
        new Span<float>(zero, 4 * 16).Clear();
        if (g->Split)
        {
            RunSplit(g, args, begin, end, v, m, d, zero);
            return;
        }
        for (int item = begin; item < end; item++)
        {
            int n = item / g->TilesH, th = item % g->TilesH, rows = Math.Min(g->M, g->Out.H - th * g->M);
            for (int cp = 0; cp < g->Channels * g->Phases; cp++)
            {
                float* x = args.Input + (long)n * g->InImage + cp / g->Phases * g->InPlane + (th * g->Phases * g->M + cp % g->Phases + g->OffH) * g->InRow;
                float* dst = v + cp * g->ColumnStride;
                for (int col = 0; col < g->Columns; col += lanes)
                {
                    int at = Math.Min(col, g->Columns - lanes); // the last vector overlaps the one before
                    for (int i = 0; i < alpha; i++) d[i] = TOps.Load(x + i * g->Phases * g->InRow + at);
                    for (int xi = 0; xi < alpha; xi++) TOps.Store(Combination(g->BT + xi * alpha, d, alpha), dst + xi * g->PositionFloats + at);
                }
            }
            for (int group = 0; group < g->Groups; group++) Group(g, args, v, m, d, zero, n, th, rows, group);
        }
    }

    /// <summary>
    /// One output group of a tile: the position GEMMs over the transformed rows (a split plan's odd-row positions,
    /// after the α, only for the tile's rows, sharing the last weight slot), then per output row Aᵀ·m (plus, split,
    /// the odd row's GEMM) and the epilogue.
    /// </summary>
    private static void Group(RowWinogradGeometry* g, in KernelArgs args, float* v, float* m, TV* d, float* zero, int n, int th, int rows, int group)
    {
        int lanes = TOps.Lanes, alpha = g->Alpha, blocks = g->GroupBlocks;
        float* u = args.Weights + (long)group * g->GroupWeights;
        for (int xi = 0; xi < (g->Split ? alpha + rows : alpha); xi++)
            GenericConv<TOps, TV>.Row(&g->Gemm, v + xi * g->PositionFloats + g->OffW * g->Lanes, u + Math.Min(xi, alpha) * g->PositionWeights, zero, m + xi * g->ResultStride, null);
        float* b = args.Bias + group * blocks * lanes;
        for (int j = 0; j < blocks; j++)
        {
            TV bj = TOps.Load(b + j * lanes);
            int block = group * blocks + j;
            for (int p = 0; p < g->Out.W; p++)
            {
                float* mt = m + j * g->Gemm.Out.Plane + p * lanes;
                for (int xi = 0; xi < alpha; xi++) d[xi] = TOps.Load(mt + xi * g->ResultStride);
                for (int i = 0; i < rows; i++)
                {
                    TV o = TOps.Add(bj, Combination(g->AT + i * alpha, d, alpha));
                    if (g->Split) o = TOps.Add(o, TOps.Load(mt + (alpha + i) * g->ResultStride));
                    Epilogue<TOps, TV>.Finish(&g->Out, o, g->Out.At(args.Output, n, block, th * g->M + i, p, lanes),
                        g->Out.ResidualAt(args.Residual, n, block, th * g->M + i, p, lanes));
                }
            }
        }
    }

    /// <summary>
    /// The phase-split kernel (<see cref="RowWinogradGeometry.Split"/>): per column vector the even rows' Bᵀ·d and the
    /// odd rows copied, the α + M GEMMs (the odd rows' sharing the last weight slot), then per output row Aᵀ·m of the
    /// even rows plus the odd row's GEMM — the generated kernel's sums in its order.
    /// </summary>
    private static void RunSplit(RowWinogradGeometry* g, in KernelArgs args, int begin, int end, float* v, float* m, TV* d, float* zero)
    {
        int lanes = TOps.Lanes, alpha = g->Alpha;
        int transformed = -1;
        for (int item = begin; item < end; item++)
        {
            int tileOfImages = item / g->Groups, n = tileOfImages / g->TilesH, th = tileOfImages % g->TilesH, group = item % g->Groups;
            int rows = Math.Min(g->M, g->Out.H - th * g->M);
            for (int cb = 0; cb < g->Channels && tileOfImages != transformed; cb++)
            {
                float* x = args.Input + (long)n * g->InImage + cb * g->InPlane + (th * 2 * g->M + g->OffH) * g->InRow;
                float* dst = v + cb * g->ColumnStride * lanes;
                for (int col = 0; col < g->Columns * lanes; col += lanes)
                {
                    for (int i = 0; i < alpha; i++) d[i] = TOps.Load(x + 2 * i * g->InRow + col);
                    for (int xi = 0; xi < alpha; xi++) TOps.Store(Combination(g->BT + xi * alpha, d, alpha), dst + xi * g->PositionFloats + col);
                    for (int i = 0; i < g->M; i++) TOps.Store(TOps.Load(x + (2 * i + 1) * g->InRow + col), dst + (alpha + i) * g->PositionFloats + col);
                }
            }
            transformed = tileOfImages;
            Group(g, args, v, m, d, zero, n, th, rows, group);
        }
    }

    /// <summary>Σ_i row[i]·d[i] over the nonzero entries in index order, a coefficient of 1 as d[i] itself (as the generated sums).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Combination(float* row, TV* d, int count)
    {
        TV sum = default;
        bool first = true;
        for (int i = 0; i < count; i++)
        {
            float c = row[i];
            if (c == 0) continue;
            TV term = c == 1 ? d[i] : TOps.Multiply(d[i], c);
            sum = first ? term : TOps.Add(sum, term);
            first = false;
        }
        return sum;
    }
}

/// <summary>The generic row-Winograd kernel per instruction set.</summary>
internal static unsafe class GenericRowWinograd
{
    public static delegate*<in KernelArgs, int, int, void> Kernel(InstructionSet isa) => isa switch
    {
        InstructionSet.Avx512 => &GenericRowWinograd<Simd512, Vector512<float>>.Run,
        InstructionSet.Avx2 => &GenericRowWinograd<Simd256, Vector256<float>>.Run,
        _ => &GenericRowWinograd<Simd128, Vector128<float>>.Run,
    };
}
