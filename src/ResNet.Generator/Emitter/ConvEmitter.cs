using ResNet.Generator.Model;
using static ResNet.Generator.Emitter.SourceWriter;
using static ResNet.Generator.Emitter.NetworkEmitter;

namespace ResNet.Generator.Emitter
{
    /// <summary>
    /// Emits a direct convolution over channel-blocked tensors (MLAS's NCHWc scheme): each work item is one
    /// output row of one group of output blocks; the row is cut into register tiles whose accumulators start
    /// from the folded bias and end in the fused epilogue. Halos make the inner loops branch-free.
    /// </summary>
    internal static class ConvEmitter
    {
        public static void Emit(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var isa = isaPlan.Isa;
            var c = layer.Conv!;
            var tile = plan.Tile!;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            var resL = layer.Residual >= 0 ? isaPlan.Tensors[layer.Residual] : null;
            int ocTiles = outL.Blocks / tile.OcBlocks;
            int offH = inL.PadH - c.Padding.H, offW = inL.PadW - c.Padding.W;
            int full = layer.OutShape.W - tile.Remainder;
            int rows = tile.Rows, rowItems = (layer.OutShape.H + rows - 1) / rows;

            w.Line("/// <summary>");
            w.Line($"/// {c.Kernel.H}×{c.Kernel.W} convolution, stride {c.Stride}, padding {c.Padding}{(c.Dilation.H * c.Dilation.W != 1 ? $", dilation {c.Dilation}" : "")}: {layer.InShape} → {layer.OutShape} ({layer.Description}).");
            w.Line($"/// Input: {inL.Describe}; output: {outL.Describe}{(resL != null ? $"; residual: {resL.Describe}" : "")}.");
            w.Line($"/// Tile: {tile.OcBlocks} output block(s) × {(rows > 1 ? $"{rows} rows × " : "")}{tile.Pixels} pixels = {tile.Accumulators} accumulators{(tile.Remainder > 0 ? $", then a {tile.Remainder}-pixel tile" : "")}.");
            string rowWord = rows > 1 ? "pairs of rows (an odd last row takes the one-row tiles)" : "rows";
            w.Line(plan.SplitRows
                ? $"/// Work items: batch × {rowItems} {rowWord} × {ocTiles} block group(s) (threads split the rows)."
                : $"/// Work items: batch × {ocTiles} block group(s) × {rowItems} {rowWord} (threads split the groups).");
            w.Line("/// </summary>");
            KernelHeader(w, plan, "input", "weights", "bias", "output", "residual");
            bool oddTail = rows > 1 && layer.OutShape.H % rows != 0;
            w.Line($"const int ItemsPerImage = {I(ocTiles * rowItems)};");
            w.Line($"const int InImage = {I(inL.ImageFloats)}, InRow = {I(inL.PaddedW * inL.Block)}, InStart = {I(offH * inL.PaddedW * inL.Block + offW * inL.Block)};");
            w.Line($"const int OutImage = {I(outL.ImageFloats)}, OutGroup = {I(tile.OcBlocks * outL.PlaneFloats)}, OutRow = {I(outL.PaddedW * outL.Block)};");
            if (resL != null) w.Line($"const int ResImage = {I(resL.ImageFloats)}, ResGroup = {I(tile.OcBlocks * resL.PlaneFloats)}, ResRow = {I(resL.PaddedW * resL.Block)};");
            w.Line($"const int GroupWeights = {I(GroupWeights(c, inL, tile, isa.Block))}, GroupBias = {I(tile.OcBlocks * isa.Block)};");
            w.Open("for (int item = begin; item < end; item++)");
            w.Line(plan.SplitRows
                ? $"int n = item / ItemsPerImage, group = item % {I(ocTiles)}, oh = item % ItemsPerImage / {I(ocTiles)} * {I(rows)};"
                : $"int n = item / ItemsPerImage, group = item % ItemsPerImage / {I(rowItems)}, oh = item % {I(rowItems)} * {I(rows)};");
            w.Line($"float* x = input + n * InImage + InStart + oh * {I(c.Stride.H)} * InRow;");
            w.Line("float* w = weights + group * GroupWeights;");
            w.Line("float* b = bias + group * GroupBias;");
            w.Line($"float* y = output + n * OutImage + group * OutGroup + {I(outL.Origin)} + oh * OutRow;");
            w.Line(resL != null ? $"float* r = residual + n * ResImage + group * ResGroup + {I(resL.Origin)} + oh * ResRow;" : "float* r = null;");
            // Split by output channels, each group's weights come from memory on its first row: every row prefetches
            // its share of the next group's, one line per input channel step, so they stream while this one computes.
            bool prefetch = Prefetches(plan, isa, ocTiles);
            w.Line(prefetch ? $"float* pf = w + GroupWeights + oh / {I(rows)} * {I(PrefetchShare(c, inL, tile, rowItems, isa.Block))};" : "float* pf = null;");
            string stepIn = I(c.Stride.W * inL.Block);
            void Row(int tileRows)
            {
                if (full > 0)
                {
                    w.Open($"for (int ow = 0; ow < {I(full)}; ow += {I(tile.Pixels)})");
                    w.Line($"{TileName(plan, tileRows, tile.Pixels)}(x + ow * {stepIn}, w, b, y + ow * {I(outL.Block)}, r + ow * {I(isa.Block)}, pf + ow / {I(tile.Pixels)} * {I(CSteps(c, inL) * 16)});");
                    w.Close();
                }
                if (tile.Remainder > 0)
                    w.Line($"{TileName(plan, tileRows, tile.Remainder)}(x + {I(full)} * {stepIn}, w, b, y + {I(full * outL.Block)}, r + {I(full * isa.Block)}, pf + {I(full / tile.Pixels * CSteps(c, inL) * 16)});");
            }
            if (oddTail)
            {
                w.Open($"if (oh + {I(rows)} <= {I(layer.OutShape.H)})");
                Row(rows);
                w.Close();
                w.Open("else");
                Row(1);
                w.Close();
            }
            else Row(rows);
            w.Close();
            w.Close();
            w.Line();
            EmitTile(w, layer, plan, isaPlan, rows, tile.Pixels);
            if (tile.Remainder > 0) EmitTile(w, layer, plan, isaPlan, rows, tile.Remainder);
            if (oddTail)
            {
                EmitTile(w, layer, plan, isaPlan, 1, tile.Pixels);
                if (tile.Remainder > 0) EmitTile(w, layer, plan, isaPlan, 1, tile.Remainder);
            }
        }

        private static bool Prefetches(LayerPlan plan, Isa isa, int ocTiles) => isa.Prefetch && !plan.SplitRows && ocTiles > 1;

        /// <summary>Input-channel steps of one tile call: one prefetched cache line each.</summary>
        private static int CSteps(ConvSpec c, TensorLayout inL) => inL.Blocks * c.Kernel.H * c.Kernel.W * inL.Block;

        /// <summary>Floats of one output-block group's packed weights: an (oc block × block) row per input-channel step.</summary>
        private static int GroupWeights(ConvSpec c, TensorLayout inL, ConvTile tile, int block) => CSteps(c, inL) * tile.OcBlocks * block;

        /// <summary>Floats of the next group's weights each row item starts prefetching at: the group split evenly over the rows.</summary>
        private static int PrefetchShare(ConvSpec c, TensorLayout inL, ConvTile tile, int rowItems, int block) =>
            (GroupWeights(c, inL, tile, block) / rowItems + 15) / 16 * 16;

        private static string TileName(LayerPlan plan, int rows, int pixels) =>
            $"{plan.KernelName}_Tile{plan.Tile!.OcBlocks}x{(rows > 1 ? $"{rows}x" : "")}{pixels}";

        private static void EmitTile(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan, int rows, int pixels)
        {
            var isa = isaPlan.Isa;
            var c = layer.Conv!;
            int oc = plan.Tile!.OcBlocks;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            var resL = layer.Residual >= 0 ? isaPlan.Tensors[layer.Residual] : null;
            string V = isa.VectorType;
            int bw = isa.Block;
            int inRow = inL.PaddedW * inL.Block;
            // Accumulator names: acc{block}x{pixel}, with the row folded into the pixel index (p = row × pixels + column).
            int cells = rows * pixels;

            w.Line($"/// <summary>{oc}×{(rows > 1 ? $"{rows}×" : "")}{pixels} register tile of {plan.KernelName}: x is the top-left input of the window, y the first output pixel.</summary>");
            // A tile of 24 accumulators is too large for the JIT to inline; called, it would start as tier-0 code.
            w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]");
            w.Open($"private static void {TileName(plan, rows, pixels)}(float* x, float* w, float* b, float* y, float* r, float* pf)");
            w.Line($"const int InPlane = {I(inL.PlaneFloats)}, InRow = {I(inRow)};");
            for (int j = 0; j < oc; j++)
            {
                w.Line($"{V} bias{j} = {isa.Vector}.Load(b + {I(j * bw)});");
                var names = new System.Text.StringBuilder();
                for (int p = 0; p < cells; p++) names.Append(p == 0 ? "" : ", ").Append($"acc{j}x{p} = bias{j}");
                w.Line($"{V} {names};");
            }
            w.Open($"for (int icb = 0; icb < {I(inL.Blocks)}; icb++, x += InPlane)");
            w.Open($"for (int kh = 0; kh < {I(c.Kernel.H)}; kh++)");
            w.Line($"float* xr = x + kh * {I(c.Dilation.H)} * InRow;");
            w.Open($"for (int kw = 0; kw < {I(c.Kernel.W)}; kw++, xr += {I(c.Dilation.W * inL.Block)})");
            // A pointer per input channel, not an index: each broadcast is then one load at a constant offset
            // (an int index costs a lea and a sign extension per broadcast, measured 1.2× slower on layer4).
            w.Open($"for (float* xc = xr, xEnd = xr + {I(inL.Block)}; xc < xEnd; xc++, w += {I(oc * bw)})");
            for (int j = 0; j < oc; j++) w.Line($"{V} w{j} = {isa.Vector}.Load(w + {I(j * bw)});");
            if (Prefetches(plan, isa, outL.Blocks / oc))
            {
                w.Line("Sse.Prefetch1(pf);");
                w.Line("pf += 16;");
            }
            for (int p = 0; p < cells; p++)
            {
                int row = p / pixels, col = p % pixels;
                w.Line($"{V} x{p} = {isa.Vector}.Create(xc[{I(row * c.Stride.H * inRow + col * c.Stride.W * inL.Block)}]);");
                for (int j = 0; j < oc; j++) w.Line($"acc{j}x{p} = {isa.Fma}(x{p}, w{j}, acc{j}x{p});");
            }
            w.Close();
            w.Close();
            w.Close();
            w.Close();
            for (int j = 0; j < oc; j++)
            {
                for (int p = 0; p < cells; p++)
                {
                    int row = p / pixels, col = p % pixels;
                    string acc = $"acc{j}x{p}";
                    if (resL != null) w.Line($"{acc} += {isa.Vector}.Load(r + {I(j * resL.PlaneFloats + row * resL.PaddedW * bw + col * bw)});");
                    if (layer.Relu) w.Line($"{acc} = {isa.Vector}.Max({acc}, {V}.Zero);");
                    w.Line($"{acc}.Store(y + {I(j * outL.PlaneFloats + row * outL.PaddedW * outL.Block + col * bw)});");
                }
            }
            w.Close();
            w.Line();
        }
    }
}
