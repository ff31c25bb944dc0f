using System.Linq;
using ResNet.Generator.Model;
using ResNet.Shared;
using static ResNet.Generator.Emitter.SourceWriter;

namespace ResNet.Generator.Emitter
{
    /// <summary>
    /// Emits the phase-split row-Winograd kernel of a 3×3 stride-2 convolution over a channel-blocked input
    /// (<see cref="RowWinogradPlan.Split"/>): per work item (one tile of M output rows of one image × one output group)
    /// the even input rows' F(M, 2) transform and a copy of the odd rows, [position][block][column][channel], into the
    /// thread's tile scratch (once for consecutive items of a tile); then the α + M position GEMMs over the row (a 1×3
    /// stride-2 convolution of each position's rows, the odd rows' M positions sharing one weight slot), and per output
    /// row Aᵀ·m of the even rows plus the odd row's GEMM, with the epilogue. Each sum in the order the generic kernel
    /// forms it.
    /// </summary>
    internal static class RowWinogradSplitEmitter
    {
        public static void Emit(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var rp = plan.RowWinograd!;
            var isa = isaPlan.Isa;
            var c = layer.Conv!;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            var tc = ToomCook.For(rp.M, rp.R);
            var tile = rp.Tile;
            int B = isa.Block, groups = outL.Blocks / tile.OcBlocks, k = rp.K(c.Kernel.W), A = rp.Alpha, P = rp.Positions;
            int offH = inL.PadH - c.Padding.H, offW = inL.PadW - c.Padding.W;
            int inRow = inL.PaddedW * B;
            string name = plan.RowWinogradName;
            string V = isa.VectorType, Vec = isa.Vector;

            WinogradEmitter.OpenKernel(w, name,
                $"Phase-split row-Winograd of {layer.Path}: {layer.InShape} → {layer.OutShape} ({layer.Description}).",
                $"Even rows (kernel rows 0, 2) by F({rp.M}, {rp.R}), {A} positions; odd rows (kernel row 1) direct, {rp.M} positions; each a GEMM of K = {k}.",
                $"Work items: batch × {rp.TilesH} row tiles × {groups} output group(s) of {tile.OcBlocks} block(s); register tile {tile.OcBlocks} block(s) × {tile.Pixels} pixels{(tile.Remainder > 0 ? $", then {tile.Remainder}" : "")}.");
            RowWinogradEmitter.EmitConstants(w, layer, rp, isaPlan, inRow, weightSlots: rp.Slots, positions: P);
            // Items are tiles × groups, so that two threads share a layer of few tiles evenly; a thread transforms a
            // tile's rows once for the consecutive items of it that it takes.
            w.Line("int transformed = -1;");
            w.Open("for (int item = begin; item < end; item++)");
            w.Line($"int tileOfImages = item / {I(groups)}, n = tileOfImages / TilesH, th = tileOfImages % TilesH, group = item % {I(groups)};");
            if (layer.OutShape.H % rp.M != 0) w.Line($"int rows = global::System.Math.Min({I(rp.M)}, {I(layer.OutShape.H)} - th * {I(rp.M)});");
            else w.Line($"const int rows = {I(rp.M)};");
            w.Open("if (tileOfImages != transformed)");
            w.Line("transformed = tileOfImages;");
            w.Open($"for (int cb = 0; cb < {I(rp.Channels)}; cb++)");
            w.Line($"float* x = input + n * InImage + cb * InPlane + (th * {I(2 * rp.M)} + {I(offH)}) * InRow;");
            w.Line($"float* dst = v + cb * {I(rp.ColumnStride * B)};");
            w.Line($"for (int col = 0; col < {I(rp.Columns * B)}; col += {I(B)}) {name}_Rows(x + col, dst + col);");
            w.Close();
            w.Close();
            w.Open();
            w.Line($"float* u = weights + group * GroupWeights, b = bias + group * {I(tile.OcBlocks * B)};");
            w.Open($"for (int xi = 0; xi < {I(P)}; xi++)");
            w.Line($"if (xi >= {I(A)} && xi - {I(A)} >= rows) break;");
            w.Line($"float* vx = v + {I(offW * B)} + xi * {I(rp.PositionFloats)}, ux = u + (xi < {I(A)} ? xi : {I(A)}) * {I(k * tile.OcBlocks * B)}, mx = m + xi * {I(rp.ResultStride(B))};");
            RowWinogradEmitter.EmitRowGemms(w, layer, rp, isa, name);
            w.Close();
            RowWinogradEmitter.EmitOutputTransform(w, layer, rp, tc, isaPlan);
            w.Close();
            w.Close();
            w.Close();
            w.Line();
            // Rows: phase 0's α rows (two input rows apart) transformed, phase 1's M rows copied.
            w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            w.Open($"private static void {name}_Rows(float* x, float* dst)");
            w.Line($"{V} {string.Join(", ", Enumerable.Range(0, A).Select(i => $"d{i} = {Vec}.Load(x + {I(2 * i * inRow)})"))};");
            for (int xi = 0; xi < A; xi++)
                w.Line($"({RowWinogradEmitter.Combination(tc.BT, xi, A, i => $"d{i}")}).Store(dst + {I(xi * rp.PositionFloats)});");
            for (int i = 0; i < rp.M; i++)
                w.Line($"{Vec}.Load(x + {I((2 * i + 1) * inRow)}).Store(dst + {I((A + i) * rp.PositionFloats)});");
            w.Close();
            w.Line();
            RowWinogradEmitter.EmitGemm(w, layer, rp, isa, name, tile.Pixels);
            if (tile.Remainder > 0) RowWinogradEmitter.EmitGemm(w, layer, rp, isa, name, tile.Remainder);
        }
    }
}
