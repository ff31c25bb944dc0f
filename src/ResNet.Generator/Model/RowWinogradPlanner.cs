using System;

namespace ResNet.Generator.Model
{
    /// <summary>
    /// Winograd along the rows of a strided convolution over a planar input (ResNet's 7×7 stride-2 conv1 on the
    /// image's 3 channels). Split by the row's phase (input row = stride·j + p), the convolution's kernel rows
    /// become <see cref="Phases"/> stride-1 filters of <see cref="R"/> taps (ceil(kernel height / stride); the
    /// missing taps are zero), so F(M, R) computes <see cref="M"/> output rows from <see cref="Alpha"/> rows of
    /// each phase with Alpha multiplies per column instead of M·R. The columns stay direct: each of the Alpha
    /// positions is a 1×KW stride-W convolution over channels × phases of the transformed rows — the direct
    /// kernel's loop with the phase planes as input channels. conv1: 147 multiply-adds per output and channel
    /// become 7·42/4 = 73.5. A work item is one tile of M output rows of one image, all output blocks: it
    /// transforms its Alpha × phases input rows per channel once (Bᵀ·d, vectors along the row), then per output
    /// group runs the Alpha GEMMs a position at a time over the whole row (that position's weights stay in L1),
    /// and the output transform Aᵀ·m with the epilogue.
    /// </summary>
    internal sealed record RowWinogradPlan(int M, int R, int Alpha, int Phases, int Channels, int TilesH, int Width, ConvTile Tile, int Columns, int ColumnStride, int SplitBlock = 0)
    {
        /// <summary>Phase-split mode over a channel-blocked input: phase 0 by F(M, R), phase 1's one tap direct (M copied rows).</summary>
        public bool Split => SplitBlock > 0;
        /// <summary>Positions per tile: Alpha, and in split mode M more (phase 1's rows).</summary>
        public int Positions => Split ? Alpha + M : Alpha;
        /// <summary>Weight slots per group: one per transformed position, and one that phase 1's rows share.</summary>
        public int Slots => Split ? Alpha + 1 : Alpha;
        /// <summary>Work items per image: tiles of rows, and in split mode × output groups (an output of <paramref name="outBlocks"/> blocks).</summary>
        public int Items(int outBlocks) => Split ? TilesH * (outBlocks / Tile.OcBlocks) : TilesH;
        /// <summary>Floats of one position's transformed rows: channels × phases rows of <see cref="ColumnStride"/> (split: blocks × columns × block).</summary>
        public int PositionFloats => Split ? Channels * ColumnStride * SplitBlock : Channels * Phases * ColumnStride;

        /// <summary>Multiply-adds per output of one position's GEMM: channels × phases × kernel width.</summary>
        public int K(int kernelW) => Split ? Channels * SplitBlock * kernelW : Channels * Phases * kernelW;

        /// <summary>
        /// Floats a work item keeps in its thread's tile scratch: the transformed rows, then a group's GEMM results
        /// for the whole row per position (a cache line apart).
        /// </summary>
        public int TileFloats(int block) => Positions * PositionFloats + Positions * ResultStride(block);

        /// <summary>Floats between positions of a group's GEMM results: [pixel][block in group][channel].</summary>
        public int ResultStride(int block) => Width * Tile.OcBlocks * block + 16;
    }

    internal static class RowWinogradPlanner
    {
        /// <summary>Output rows per tile: F(4, r), α = r + 3 points, stays within <see cref="MaxAlpha"/> for the kernels a stem has (r ≤ 5).</summary>
        private const int TileRows = 4;

        /// <summary>Taken only when the GEMMs do at most this share of the direct kernel's multiply-adds (the transforms cost the rest).</summary>
        private const double Margin = 0.8;

        /// <summary>
        /// The most points: F(6, 3)'s eight, the largest in common use; past them the transforms' constants grow
        /// (points ±1/4, ±4) and fp32 loses digits.
        /// </summary>
        private const int MaxAlpha = 8;

        /// <summary>
        /// Bytes of tile scratch an item may keep (its transformed rows and a row of GEMM results for up to four
        /// output blocks, as the generic twin groups them): within a core's L2 and well within the runtime's 2 MiB
        /// per thread. A wider image keeps the direct kernel (conv1 of a 224-pixel image: 241 KB).
        /// </summary>
        private const long TileBudget = 640 * 1024;

        /// <summary>The plan for <paramref name="layer"/> reading <paramref name="input"/>, or null when the direct kernel stays.</summary>
        public static RowWinogradPlan? Choose(Layer layer, TensorLayout input, Isa isa)
        {
            var c = layer.Conv;
            if (layer.Kind == LayerKind.Conv && c != null && input.Block > 1) return ChooseSplit(layer, input, isa);
            if (layer.Kind != LayerKind.Conv || c == null || input.Block != 1 || c.Groups != 1 || c.PaddingMode != "zeros") return null;
            if (c.Dilation != new Pair(1, 1)) return null;
            int s = c.Stride.H, r = (c.Kernel.H + s - 1) / s, alpha = TileRows + r - 1;
            if (r < 2 || alpha > MaxAlpha) return null;
            if ((double)alpha * s / TileRows > Margin * c.Kernel.H) return null;
            // Transformed columns: every input column an output reads (padded coordinates), whole vectors of them.
            int columns = (layer.OutShape.W - 1) * c.Stride.W + c.Kernel.W + (input.PadW - c.Padding.W);
            if (columns < isa.Block || columns > input.PaddedW) return null;
            var tile = Planner.ChooseTile(layer, isa, maxRows: 1);
            int tilesH = (layer.OutShape.H + TileRows - 1) / TileRows;
            var plan = new RowWinogradPlan(TileRows, r, alpha, s, input.Blocks, tilesH, layer.OutShape.W, tile, columns, (columns + 15) / 16 * 16);
            long widest = 4L * alpha * (plan.PositionFloats + layer.OutShape.W * 4L * isa.Block + 16);
            return widest <= TileBudget ? plan : null;
        }

        /// <summary>
        /// The phase-split plan for a 3×3 stride-2 convolution over a channel-blocked input, or null: its even rows
        /// (kernel rows 0 and 2) by F(4, 2), 5 positions per 4 output rows, and its odd rows (kernel row 1) direct, 4
        /// more: 9 row GEMMs where direct does 12, at twice the weight bytes (5 transformed rows and the middle row
        /// for 3). A thread's share of the work items (tiles of rows × output groups, tile-major, so a thread
        /// transforms each of its tiles once) spans every group, so each thread streams all the weights (the direct
        /// kernel's threads split the groups), and streaming overlaps the multiplies only in part: taken
        /// when the multiply-adds saved outweigh 4× the time to stream the extra weights once. On AVX-512 that is
        /// layer2.0.conv1 alone (measured: 0.56–0.59 → 0.47 ms at one thread, even at two); layer3.0.conv1 was even at
        /// one thread and 0.39–0.45 against 0.36–0.39 ms at two. AVX2's narrower vectors make the multiply-adds
        /// count twice: layer3.0.conv1 too (1.22–1.36 → 1.08–1.09 ms at one thread).
        /// </summary>
        private static RowWinogradPlan? ChooseSplit(Layer layer, TensorLayout input, Isa isa)
        {
            var c = layer.Conv!;
            if (c.Kernel != new Pair(3, 3) || c.Stride != new Pair(2, 2) || c.Padding != new Pair(1, 1) || c.Dilation != new Pair(1, 1)
                || c.Groups != 1 || c.PaddingMode != "zeros") return null;
            int tilesH = (layer.OutShape.H + TileRows - 1) / TileRows;
            // Row GEMMs per image: 5 per tile for the even rows, one per output row for the odd ones; direct does 3 per row.
            long rowsSaved = 3L * layer.OutShape.H - (5L * tilesH + layer.OutShape.H);
            double pairs = (double)c.InChannels * c.OutChannels;
            double savedCycles = rowsSaved * layer.OutShape.W * 3 * pairs / isa.Block / 2;
            double extraCycles = (6 - 3) * 3 * 4 * pairs / WinogradPlanner.MemoryBytesPerCycle;
            if (savedCycles <= 4 * extraCycles) return null;
            int columns = (layer.OutShape.W - 1) * c.Stride.W + c.Kernel.W + (input.PadW - c.Padding.W);
            if (columns > input.PaddedW) return null;
            var tile = Planner.ChooseTile(layer, isa, maxRows: 1);
            var plan = new RowWinogradPlan(TileRows, 2, TileRows + 1, 2, input.Blocks, tilesH, layer.OutShape.W, tile, columns, columns, isa.Block);
            return 4L * plan.TileFloats(isa.Block) <= TileBudget ? plan : null;
        }

        /// <summary>
        /// Halo rows the input needs below its last row (as above it, the layout being symmetric): the last tile reads
        /// phase rows up to M·(tiles − 1) + α − 1 — of every phase, or in split mode of phase 0 only (phase 1 has M rows a
        /// tile, one fewer), so its last input row is S·(M·(tiles − 1) + α − 1) − padding.
        /// </summary>
        public static int HaloRows(Layer layer, RowWinogradPlan plan) => plan.Split
            ? plan.Phases * (plan.M * (plan.TilesH - 1) + plan.Alpha - 1) - layer.Conv!.Padding.H - layer.InShape.H + 1
            : plan.Phases * (plan.M * (plan.TilesH - 1) + plan.Alpha) - layer.Conv!.Padding.H - layer.InShape.H;
    }
}
