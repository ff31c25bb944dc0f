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
    internal sealed record RowWinogradPlan(int M, int R, int Alpha, int Phases, int Channels, int TilesH, int Width, ConvTile Tile, int Columns, int ColumnStride)
    {
        /// <summary>Floats of one position's transformed rows: channels × phases rows of <see cref="ColumnStride"/>.</summary>
        public int PositionFloats => Channels * Phases * ColumnStride;

        /// <summary>Multiply-adds per output of one position's GEMM: channels × phases × kernel width.</summary>
        public int K(int kernelW) => Channels * Phases * kernelW;

        /// <summary>
        /// Floats a work item keeps in its thread's tile scratch: the transformed rows, then a group's GEMM results
        /// for the whole row per position (a cache line apart).
        /// </summary>
        public int TileFloats(int block) => Alpha * PositionFloats + Alpha * ResultStride(block);

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
        /// Halo rows the input needs below its last row (as above it, the layout being symmetric): the last tile reads
        /// phase rows up to M·(tiles − 1) + α − 1.
        /// </summary>
        public static int HaloRows(Layer layer, RowWinogradPlan plan) =>
            plan.Phases * (plan.M * (plan.TilesH - 1) + plan.Alpha) - layer.Conv!.Padding.H - layer.InShape.H;
    }
}
