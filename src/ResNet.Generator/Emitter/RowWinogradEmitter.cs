using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ResNet.Generator.Model;
using ResNet.Shared;
using static ResNet.Generator.Emitter.SourceWriter;

namespace ResNet.Generator.Emitter
{
    /// <summary>
    /// Emits the row-Winograd kernel of a strided convolution over a planar input (<see cref="RowWinogradPlan"/>):
    /// per work item (one tile of M output rows of one image) the input transform Bᵀ·d down each channel's phase
    /// rows into the thread's tile scratch, then per output group the α position GEMMs over the row in register
    /// tiles (the direct kernel's 1×KW loop over channels × phases), and Aᵀ·m, bias, residual and ReLU into the
    /// output. (Tried the other order, every position per register tile, so the GEMM results stay in L1 but all
    /// α positions' weights, 75 KB for conv1, come from L2: the same 0.75–0.84 ms.)
    /// Each transform is one sum of products in index order, which the generic kernel repeats term for term.
    /// </summary>
    internal static class RowWinogradEmitter
    {
        public static void Emit(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var rp = plan.RowWinograd!;
            if (rp.Split)
            {
                RowWinogradSplitEmitter.Emit(w, layer, plan, isaPlan);
                return;
            }
            var isa = isaPlan.Isa;
            var c = layer.Conv!;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            var tc = ToomCook.For(rp.M, rp.R);
            var tile = rp.Tile;
            int B = isa.Block, S = rp.Phases, groups = outL.Blocks / tile.OcBlocks, k = rp.K(c.Kernel.W);
            int offH = inL.PadH - c.Padding.H, offW = inL.PadW - c.Padding.W;
            string name = plan.RowWinogradName;

            WinogradEmitter.OpenKernel(w, name,
                $"Row-Winograd F({rp.M}, {rp.R}) of {layer.Path}, {c.Kernel.H}×{c.Kernel.W} stride {c.Stride}: {layer.InShape} → {layer.OutShape} ({layer.Description}).",
                $"Input rows split into {S} phase(s) of {rp.R}-tap filters; {rp.Alpha} positions per tile of {rp.M} output rows, each a GEMM of K = {k} (channels × phases × kernel width).",
                $"Work items: batch × {rp.TilesH} row tiles, every output group ({groups} of {tile.OcBlocks} block(s)) in each; register tile {tile.OcBlocks} block(s) × {tile.Pixels} pixels{(tile.Remainder > 0 ? $", then {tile.Remainder}" : "")}.");
            EmitConstants(w, layer, rp, isaPlan, inRow: inL.PaddedW, weightSlots: rp.Alpha, positions: rp.Alpha);
            w.Open("for (int item = begin; item < end; item++)");
            w.Line("int n = item / TilesH, th = item % TilesH;");
            if (layer.OutShape.H % rp.M != 0) w.Line($"int rows = global::System.Math.Min({I(rp.M)}, {I(layer.OutShape.H)} - th * {I(rp.M)});");
            else w.Line($"const int rows = {I(rp.M)};");
            w.Line($"// Input transform: phase p's row j is input row {S}·j + p; Bᵀ·d down the {rp.Alpha} rows of each, a vector of columns at a time.");
            w.Open($"for (int cp = 0; cp < {I(rp.Channels * S)}; cp++)");
            w.Line($"float* x = input + n * InImage + cp / {I(S)} * InPlane + (th * {I(S * rp.M)} + cp % {I(S)} + {I(offH)}) * InRow;");
            w.Line($"float* dst = v + cp * {I(rp.ColumnStride)};");
            int vectors = rp.Columns / B;
            w.Line($"for (int col = 0; col < {I(vectors * B)}; col += {I(B)}) {name}_Rows(x + col, dst + col);");
            if (rp.Columns % B != 0) w.Line($"{name}_Rows(x + {I(rp.Columns - B)}, dst + {I(rp.Columns - B)}); // the last vector overlaps the one before");
            w.Close();
            w.Open($"for (int group = 0; group < {I(groups)}; group++)");
            w.Line($"float* u = weights + group * GroupWeights, b = bias + group * {I(tile.OcBlocks * B)};");
            w.Line($"// {rp.Alpha} GEMMs, a position at a time (its weights stay in L1), the whole row's pixels each.");
            w.Open($"for (int xi = 0; xi < {I(rp.Alpha)}; xi++)");
            w.Line($"float* vx = v + {I(offW)} + xi * {I(rp.PositionFloats)}, ux = u + xi * {I(k * tile.OcBlocks * B)}, mx = m + xi * {I(rp.ResultStride(B))};");
            EmitRowGemms(w, layer, rp, isa, name);
            w.Close();
            EmitOutputTransform(w, layer, rp, tc, isaPlan);
            w.Close();
            w.Close();
            w.Close();
            w.Line();
            EmitRows(w, rp, tc, isa, inL, name);
            EmitGemm(w, layer, rp, isa, name, tile.Pixels);
            if (tile.Remainder > 0) EmitGemm(w, layer, rp, isa, name, tile.Remainder);
        }

        /// <summary>Bᵀ·d for one vector of columns: the α phase rows (S input rows apart) in, the α positions out.</summary>
        private static void EmitRows(SourceWriter w, RowWinogradPlan rp, ToomCook.Matrices tc, Isa isa, TensorLayout inL, string name)
        {
            int A = rp.Alpha;
            w.Line($"/// <summary>Bᵀ·d of F({rp.M}, {rp.R}) for one vector of columns: x is phase row 0, dst position 0.</summary>");
            w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            w.Open($"private static void {name}_Rows(float* x, float* dst)");
            w.Line($"{isa.VectorType} {string.Join(", ", Enumerable.Range(0, A).Select(i => $"d{i} = {isa.Vector}.Load(x + {I(i * rp.Phases * inL.PaddedW)})"))};");
            for (int xi = 0; xi < A; xi++)
                w.Line($"({Combination(tc.BT, xi, A, i => $"d{i}")}).Store(dst + {I(xi * rp.PositionFloats)});");
            w.Close();
            w.Line();
        }

        private static string GemmName(string kernel, int oc, int pixels) => $"{kernel}_Gemm{oc}x{pixels}";

        /// <summary>One position's GEMM calls over the row (vx, ux, mx): full register tiles, then the remainder's.</summary>
        internal static void EmitRowGemms(SourceWriter w, Layer layer, RowWinogradPlan rp, Isa isa, string name)
        {
            var tile = rp.Tile;
            int B = isa.Block, full = layer.OutShape.W - tile.Remainder, step = layer.Conv!.Stride.W * (rp.Split ? B : 1);
            if (full > 0)
                w.Line($"for (int ow = 0; ow < {I(full)}; ow += {I(tile.Pixels)}) {GemmName(name, tile.OcBlocks, tile.Pixels)}(vx + ow * {I(step)}, ux, mx + ow * {I(tile.OcBlocks * B)});");
            if (tile.Remainder > 0)
                w.Line($"{GemmName(name, tile.OcBlocks, tile.Remainder)}(vx + {I(full * step)}, ux, mx + {I(full * tile.OcBlocks * B)});");
        }

        /// <summary>
        /// One position's GEMM for one register tile: a 1×KW convolution along the transformed rows, channels × phases
        /// multiply-adds into m ([pixel][block][channel]). Planar rows are floats, a split plan's rows are columns of a
        /// block's channels: there the KW taps' channels are KW·B consecutive floats and a pixel is StrideW·B on.
        /// </summary>
        internal static void EmitGemm(SourceWriter w, Layer layer, RowWinogradPlan rp, Isa isa, string name, int pixels)
        {
            var c = layer.Conv!;
            string V = isa.VectorType, Vec = isa.Vector;
            int B = isa.Block, oc = rp.Tile.OcBlocks, inBlock = rp.Split ? B : 1;
            int rows = rp.Split ? rp.Channels : rp.Channels * rp.Phases;
            w.Line($"/// <summary>{oc}×{pixels} register tile of one position of {name}: v is the tile's first input column, u the position's weights.</summary>");
            w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            w.Open($"private static void {GemmName(name, oc, pixels)}(float* v, float* u, float* m)");
            for (int j = 0; j < oc; j++)
                w.Line($"{V} {string.Join(", ", Enumerable.Range(0, pixels).Select(p => $"acc{j}x{p} = {V}.Zero"))};");
            w.Open($"for (int cp = 0; cp < {I(rows)}; cp++)");
            w.Line($"float* xr = v + cp * {I(rp.ColumnStride * inBlock)};");
            // A pointer per kernel column (and channel), not an index: each broadcast is then one load at a constant offset.
            w.Open($"for (float* xc = xr, xEnd = xr + {I(c.Kernel.W * inBlock)}; xc < xEnd; xc++, u += {I(oc * B)})");
            for (int j = 0; j < oc; j++) w.Line($"{V} w{j} = {Vec}.Load(u + {I(j * B)});");
            for (int p = 0; p < pixels; p++)
            {
                w.Line($"{V} x{p} = {Vec}.Create(xc[{I(p * c.Stride.W * inBlock)}]);");
                for (int j = 0; j < oc; j++) w.Line($"acc{j}x{p} = {isa.Fma}(x{p}, w{j}, acc{j}x{p});");
            }
            w.Close();
            w.Close();
            for (int j = 0; j < oc; j++)
                for (int p = 0; p < pixels; p++) w.Line($"acc{j}x{p}.Store(m + {I((p * oc + j) * B)});");
            w.Close();
            w.Line();
        }

        /// <summary>
        /// A kernel's arguments and constants: the input's strides (<paramref name="inRow"/> floats a row), the output's
        /// and residual's that <see cref="EmitOutputTransform"/> reads, a group's weights (<paramref name="weightSlots"/>
        /// slots of K), and the tile scratch: v, the transformed rows of <paramref name="positions"/> positions, then m.
        /// </summary>
        internal static void EmitConstants(SourceWriter w, Layer layer, RowWinogradPlan rp, IsaPlan isaPlan, int inRow, int weightSlots, int positions)
        {
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            var resL = layer.Residual >= 0 ? isaPlan.Tensors[layer.Residual] : null;
            int B = isaPlan.Isa.Block, oc = rp.Tile.OcBlocks, k = rp.K(layer.Conv!.Kernel.W);
            w.Line("float* input = args.Input, weights = args.Weights, bias = args.Bias, output = args.Output, residual = args.Residual;");
            w.Line($"const int TilesH = {I(rp.TilesH)}, InImage = {I(inL.ImageFloats)}, InPlane = {I(inL.PlaneFloats)}, InRow = {I(inRow)};");
            w.Line($"const int OutImage = {I(outL.ImageFloats)}, OutGroup = {I(oc * outL.PlaneFloats)}, OutRow = {I(outL.PaddedW * B)}, GroupWeights = {I(weightSlots * k * oc * B)};");
            if (resL != null) w.Line($"const int ResImage = {I(resL.ImageFloats)}, ResGroup = {I(oc * resL.PlaneFloats)}, ResRow = {I(resL.PaddedW * B)};");
            w.Line($"float* v = {WinogradEmitter.TilesExpression};");
            w.Line($"float* m = v + {I(positions * rp.PositionFloats)};");
        }

        /// <summary>
        /// The group's output rows (y, r) and Aᵀ·m per pixel and output block (for a split plan plus each row's direct
        /// GEMM, the positions after the α), then the bias, residual and ReLU; the first <c>rows</c> rows stored.
        /// </summary>
        internal static void EmitOutputTransform(SourceWriter w, Layer layer, RowWinogradPlan rp, ToomCook.Matrices tc, IsaPlan isaPlan)
        {
            var isa = isaPlan.Isa;
            var outL = isaPlan.Tensors[layer.Output];
            var resL = layer.Residual >= 0 ? isaPlan.Tensors[layer.Residual] : null;
            string V = isa.VectorType, Vec = isa.Vector;
            int B = isa.Block, oc = rp.Tile.OcBlocks, A = rp.Alpha, stride = rp.ResultStride(B);
            w.Line($"float* y = output + n * OutImage + group * OutGroup + {I(outL.Origin)} + th * {I(rp.M)} * OutRow;");
            w.Line(resL != null ? $"float* r = residual + n * ResImage + group * ResGroup + {I(resL.Origin)} + th * {I(rp.M)} * ResRow;" : "float* r = null;");
            w.Line("// Output transform Aᵀ·m per pixel and output block, then the epilogue.");
            w.Open($"for (int p = 0; p < {I(layer.OutShape.W)}; p++)");
            w.Open($"for (int j = 0; j < {I(oc)}; j++)");
            w.Line($"float* mt = m + (p * {I(oc)} + j) * {I(B)};");
            w.Line($"{V} bj = {Vec}.Load(b + j * {I(B)});");
            w.Line($"float* yt = y + j * {I(outL.PlaneFloats)} + p * {I(B)};");
            if (resL != null) w.Line($"float* rt = r + j * {I(resL.PlaneFloats)} + p * {I(B)};");
            w.Line($"{V} {string.Join(", ", Enumerable.Range(0, A).Select(x => $"d{x} = {Vec}.Load(mt + {I(x * stride)})"))};");
            for (int i = 0; i < rp.M; i++)
            {
                if (i == 0) w.Open();
                else w.Open($"if (rows > {I(i)})");
                string direct = rp.Split ? $" + {Vec}.Load(mt + {I((A + i) * stride)})" : "";
                w.Line($"{V} o = bj + ({Combination(tc.AT, i, A, x => $"d{x}")}){direct};");
                if (resL != null) w.Line($"o += {Vec}.Load(rt + {I(i * resL.PaddedW * B)});");
                if (layer.Relu) w.Line($"o = {Vec}.Max(o, {V}.Zero);");
                w.Line($"o.Store(yt + {I(i * outL.PaddedW * B)});");
                w.Close();
            }
            w.Close();
            w.Close();
        }

        /// <summary>
        /// Σ_i matrix[row][i]·operand(i) over the row's nonzero entries in index order, a coefficient of 1 as the operand
        /// itself: the sum the generic kernel forms (RowWinogradTransform), to the bit.
        /// </summary>
        internal static string Combination(double[] matrix, int row, int columns, Func<int, string> operand)
        {
            var terms = new List<string>();
            for (int i = 0; i < columns; i++)
            {
                float coefficient = (float)matrix[row * columns + i];
                if (coefficient == 0) continue;
                terms.Add(coefficient == 1 ? operand(i) : $"{operand(i)} * {coefficient.ToString("R", CultureInfo.InvariantCulture)}f");
            }
            // A Toom-Cook matrix has no zero row; an empty sum would still be the operand times zero.
            return terms.Count == 0 ? $"{operand(0)} * 0f" : string.Join(" + ", terms);
        }
    }
}
