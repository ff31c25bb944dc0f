using System;
using System.Collections.Generic;
using System.Linq;
using ResNet.Generator.Model;
using static ResNet.Generator.Emitter.SourceWriter;

namespace ResNet.Generator.Emitter
{
    /// <summary>
    /// Emits Winograd F(m×m, 3×3) (Lavin and Gray), m = 2 or 4, for a stride-1 3×3 convolution over channel-blocked
    /// tensors. Input transform Bᵀ·d·B per (m+2)×(m+2) window and channel block into V[position][tile][channel]
    /// (once per layer into scratch when several output groups read it, else per work item in the thread's tile scratch);
    /// per work item (a chunk of tiles × a group of output blocks) one GEMM per position against the weights
    /// transformed at load (G·g·Gᵀ), then Aᵀ·M·A, bias, residual and ReLU into the output. The transforms run one
    /// vector of channels at a time, a row of the first pass at a time, in registers.
    /// </summary>
    internal static class WinogradEmitter
    {
        /// <summary>Bᵀ·d for d0..d(m+1): F(4×4) factored as in NNPACK to share products; F(2×2) is adds only.</summary>
        private static string[] InputRows(int m, string d) => m == 4
            ? new[]
            {
                $"{d}0 * 4f - {d}2 * 5f + {d}4",
                $"{d}3 + {d}4 - ({d}1 + {d}2) * 4f",
                $"({d}1 - {d}2) * 4f + {d}4 - {d}3",
                $"({d}3 - {d}1) * 2f + {d}4 - {d}2",
                $"({d}1 - {d}3) * 2f + {d}4 - {d}2",
                $"{d}1 * 4f - {d}3 * 5f + {d}5",
            }
            : new[] { $"{d}0 - {d}2", $"{d}1 + {d}2", $"{d}2 - {d}1", $"{d}1 - {d}3" };

        /// <summary>Aᵀ·d for d0..d(m+1): m results.</summary>
        private static string[] OutputRows(int m) => m == 4
            ? new[] { "d0 + d1 + d2 + d3 + d4", "d1 - d2 + (d3 - d4) * 2f", "d1 + d2 + (d3 + d4) * 4f", "d1 - d2 + (d3 - d4) * 8f + d5" }
            : new[] { "d0 + d1 + d2", "d1 - d2 - d3" };

        /// <summary>Where a kernel keeps its transformed tiles (GEMM results, and its own input transform when not shared): the thread's huge page.</summary>
        internal const string TilesExpression = "global::ResNet.Runtime.TileScratch.Tiles";

        public static void Emit(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var wp = plan.Winograd!;
            if (wp.SharedInput) EmitInputPass(w, layer, wp, InputPassName(plan), isaPlan);
            EmitMain(w, layer, plan, isaPlan);
            var isa = isaPlan.Isa;
            int k = isaPlan.Tensors[layer.Input].Channels;
            // Cache lines of the next position each k step prefetches: its share when the fewest calls split the work.
            int minCalls = new[] { wp.ChunkTiles, wp.LastChunkTiles }.Min(c => (c + wp.GemmTiles - 1) / wp.GemmTiles);
            int lines = (wp.OcBlocks * isa.Block * 4 + minCalls * 64 - 1) / (minCalls * 64);
            foreach (int tiles in GemmSizes(wp)) EmitGemm(w, plan.WinogradName, isa, k, wp.OcBlocks, tiles, isa.Prefetch ? lines : 0);
            if (plan.Batched is BatchPlan bp)
            {
                EmitInputPass(w, layer, bp.Winograd, BatchedInputName(plan), isaPlan);
                EmitBatchedMain(w, layer, plan, isaPlan);
                // An image's tiles take TilesPerImage / GemmTiles calls per position; an item has at least From images.
                int calls = Math.Min(bp.ImagesPerItem, bp.From) * ((bp.Winograd.TilesPerImage + bp.Winograd.GemmTiles - 1) / bp.Winograd.GemmTiles);
                int batchedLines = (bp.Winograd.OcBlocks * isa.Block * 4 + calls * 64 - 1) / (calls * 64);
                foreach (int tiles in GemmSizes(bp.Winograd)) EmitGemm(w, plan.BatchedName, isa, k, bp.Winograd.OcBlocks, tiles, isa.Prefetch ? batchedLines : 0);
            }
        }

        /// <summary>Work items of the input pass per image (shared input only): one per tile row and input channel block.</summary>
        public static int InputItems(WinogradPlan wp, TensorLayout input) => wp.TilesH * input.Blocks;

        /// <summary>Work items of the main pass per image: chunks × output groups.</summary>
        public static int MainItems(WinogradPlan wp, TensorLayout output) => wp.Chunks * (output.Blocks / wp.OcBlocks);

        public static string InputPassName(LayerPlan plan) => plan.WinogradName + "_Input";

        public static string BatchedInputName(LayerPlan plan) => plan.BatchedName + "_Input";

        /// <summary>Work items of the batched variant's main pass for <paramref name="n"/> (an expression) images: image groups × output groups.</summary>
        public static string BatchedItems(BatchPlan bp, TensorLayout output, string n) =>
            $"({n} + {I(bp.ImagesPerItem - 1)}) / {I(bp.ImagesPerItem)} * {I(output.Blocks / bp.Winograd.OcBlocks)}";

        /// <summary>The register tiles the GEMMs use: the full one, then whatever remainders the chunk sizes leave.</summary>
        private static IEnumerable<int> GemmSizes(WinogradPlan wp) =>
            new[] { wp.GemmTiles, wp.ChunkTiles % wp.GemmTiles, wp.LastChunkTiles % wp.GemmTiles }.Where(t => t > 0).Distinct();

        private static void EmitInputPass(SourceWriter w, Layer layer, WinogradPlan wp, string name, IsaPlan isaPlan)
        {
            var inL = isaPlan.Tensors[layer.Input];
            int k = inL.Channels;
            OpenKernel(w, name,
                $"Winograd F({wp.M}×{wp.M}) input transform of {layer.Path}: {layer.InShape} into scratch, [position][tile][channel] per image;",
                $"one work item per tile row ({wp.TilesW} tiles) and channel block, {(wp.InputByChannels ? "channel blocks first (the threads split the channels, as the producer did)" : "rows first (the threads split the rows)")}: batch × {InputItems(wp, inL)} items.");
            w.Line("float* input = args.Input, v = args.Output;");
            w.Line(wp.InputByChannels
                ? $"const int TilesW = {I(wp.TilesW)}, TilesH = {I(wp.TilesH)}, ItemsPerImage = {I(InputItems(wp, inL))}, K = {I(k)};"
                : $"const int TilesW = {I(wp.TilesW)}, Blocks = {I(inL.Blocks)}, ItemsPerImage = {I(InputItems(wp, inL))}, K = {I(k)};");
            w.Line($"const int InImage = {I(inL.ImageFloats)}, InPlane = {I(inL.PlaneFloats)}, InRow = {I(inL.PaddedW * inL.Block)};");
            w.Line($"const int ScratchImage = {I(wp.ScratchImageFloats(k))}, Stride = {I(wp.ScratchStride(k))};");
            w.Open("for (int item = begin; item < end; item++)");
            w.Line(wp.InputByChannels
                ? "int n = item / ItemsPerImage, icb = item % ItemsPerImage / TilesH, th = item % TilesH;"
                : "int n = item / ItemsPerImage, th = item % ItemsPerImage / Blocks, icb = item % Blocks;");
            w.Open("for (int tw = 0; tw < TilesW; tw++)");
            w.Line($"float* x = input + n * InImage + icb * InPlane + (th * {I(wp.M)} + {I(inL.PadH - 1)}) * InRow + (tw * {I(wp.M)} + {I(inL.PadW - 1)}) * {I(inL.Block)};");
            w.Line($"float* dst = v + n * ScratchImage + (th * TilesW + tw) * K + icb * {I(inL.Block)};");
            EmitTileInput(w, wp, isaPlan.Isa, "Stride");
            w.Close();
            w.Close();
            w.Close();
            w.Line();
        }

        private static void EmitMain(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var isa = isaPlan.Isa;
            var wp = plan.Winograd!;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            int B = isa.Block, K = inL.Channels, nOc = wp.OcBlocks, groups = outL.Blocks / nOc, M = wp.M, A = wp.Alpha;
            int mStride = WinogradPlan.PositionStride(wp.ChunkTiles, nOc * B);
            int vStride = wp.SharedInput ? wp.ScratchStride(K) : WinogradPlan.PositionStride(wp.ChunkTiles, K);
            string name = plan.WinogradName;

            OpenKernel(w, name,
                $"Winograd F({M}×{M}, 3×3): {layer.InShape} → {layer.OutShape} ({layer.Description}).",
                $"{wp.TilesH}×{wp.TilesW} tiles of {M}×{M}; a work item is {wp.ChunkTiles} tile(s) × {nOc} output block(s): batch × {wp.Chunks} × {groups} items.",
                $"GEMM tile: {wp.GemmTiles} tiles × {nOc} blocks = {wp.GemmTiles * nOc} accumulators; K = {K} input channels; input transform {(wp.SharedInput ? $"read from scratch ({InputPassName(plan)})" : "per item")}.");
            w.Line("float* input = args.Input, weights = args.Weights, bias = args.Bias, output = args.Output" + (layer.Residual >= 0 ? ", residual = args.Residual;" : ";"));
            w.Line($"const int ChunkTiles = {I(wp.ChunkTiles)}, TilesW = {I(wp.TilesW)}, ItemsPerImage = {I(MainItems(wp, outL))};");
            w.Line($"const int K = {I(K)}, OutH = {I(layer.OutShape.H)}, OutW = {I(layer.OutShape.W)}, VStride = {I(vStride)}, MStride = {I(mStride)};");
            w.Line($"const int OutPlane = {I(outL.PlaneFloats)}, OutRow = {I(outL.PaddedW * B)}, GroupWeights = {I(wp.Positions * K * nOc * B)}, PositionWeights = {I(K * nOc * B)};");
            w.Line($"float* m = {TilesExpression};");
            if (!wp.SharedInput)
            {
                w.Line($"const int InImage = {I(inL.ImageFloats)}, InPlane = {I(inL.PlaneFloats)}, InRow = {I(inL.PaddedW * inL.Block)};");
                w.Line($"float* v = m + {I(wp.Positions)} * MStride;");
            }
            w.Open("for (int item = begin; item < end; item++)");
            // A thread's contiguous range of items covers whole chunks (rows of tiles) when split by rows, else whole groups (sharing their weights).
            w.Line(wp.SplitRows
                ? $"int n = item / ItemsPerImage, group = item % {I(groups)}, tile0 = item % ItemsPerImage / {I(groups)} * ChunkTiles;"
                : $"int n = item / ItemsPerImage, group = item % ItemsPerImage / {I(wp.Chunks)}, tile0 = item % {I(wp.Chunks)} * ChunkTiles;");
            w.Line(wp.LastChunkTiles == wp.ChunkTiles ? "const int count = ChunkTiles;" : $"int count = tile0 == {I((wp.Chunks - 1) * wp.ChunkTiles)} ? {I(wp.LastChunkTiles)} : ChunkTiles;");
            w.Line($"int slice = PositionWeights / ((count + {I(wp.GemmTiles - 1)}) / {I(wp.GemmTiles)}) / 16 * 16 + 16;");
            if (wp.SharedInput)
                w.Line($"float* vt = input + n * {I(wp.ScratchImageFloats(K))} + tile0 * K;");
            else
            {
                w.Line("float* vt = v;");
                w.Line($"// Input transform, Bᵀ·d·B per {A}×{A} window and channel block.");
                w.Open("for (int tile = 0; tile < count; tile++)");
                w.Line($"int th = (tile0 + tile) / TilesW, tw = (tile0 + tile) % TilesW;");
                w.Line($"float* x = input + n * InImage + (th * {I(M)} + {I(inL.PadH - 1)}) * InRow + (tw * {I(M)} + {I(inL.PadW - 1)}) * {I(inL.Block)};");
                w.Open($"for (int icb = 0; icb < {I(inL.Blocks)}; icb++, x += InPlane)");
                w.Line($"float* dst = v + tile * K + icb * {I(inL.Block)};");
                EmitTileInput(w, wp, isa, "VStride");
                w.Close();
                w.Close();
            }
            w.Line($"// {wp.Positions} GEMMs: m[p][tile][oc] = Σ_k v[p][tile][k] · u[p][k][oc].");
            w.Open($"for (int p = 0; p < {I(wp.Positions)}; p++)");
            w.Line("float* u = weights + group * GroupWeights + p * PositionWeights;");
            w.Line("float* vp = vt + p * VStride;");
            w.Line("float* mp = m + p * MStride;");
            // Each of the position's GEMM calls prefetches a slice of the next position's weights, so memory streams
            // them while the multiplies run (without it the first call waits on memory and the others on nothing).
            w.Line($"float* pf = u + PositionWeights;");
            w.Line("int t0 = 0;");
            w.Line($"for (; t0 + {I(wp.GemmTiles)} <= count; t0 += {I(wp.GemmTiles)}, pf += slice) {GemmName(name, nOc, wp.GemmTiles)}(vp + t0 * K, u, mp + t0 * {I(nOc * B)}, pf);");
            var remainders = GemmSizes(wp).Where(r => r != wp.GemmTiles).ToList();
            for (int i = 0; i < remainders.Count; i++)
                w.Line($"{(i > 0 ? "else " : "")}if (count - t0 == {I(remainders[i])}) {GemmName(name, nOc, remainders[i])}(vp + t0 * K, u, mp + t0 * {I(nOc * B)}, pf);");
            w.Close();
            EmitOutputTransform(w, layer, wp, isaPlan, "m");
            w.Close();
            w.Close();
            w.Line();
        }

        /// <summary>
        /// The batched variant's main pass: an item is all tiles of up to ImagesPerItem images × one output group.
        /// Per position, the group's weights (read from memory once per item) serve every image's GEMM calls in
        /// turn; the results wait in the thread's tile scratch, then each image's output transform runs as in the batch-1 kernel.
        /// </summary>
        private static void EmitBatchedMain(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var isa = isaPlan.Isa;
            var bp = plan.Batched!;
            var wp = bp.Winograd;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            int B = isa.Block, K = inL.Channels, nOc = wp.OcBlocks, groups = outL.Blocks / nOc, tiles = wp.TilesPerImage;
            int mStride = WinogradPlan.PositionStride(bp.ImagesPerItem * tiles, nOc * B);
            string name = plan.BatchedName;

            OpenKernel(w, name,
                $"Winograd F({wp.M}×{wp.M}, 3×3) for batches of {bp.From} or more: {layer.InShape} → {layer.OutShape} ({layer.Description}).",
                $"{wp.TilesH}×{wp.TilesW} tiles of {wp.M}×{wp.M} per image; a work item is every tile of up to {bp.ImagesPerItem} images × {nOc} output block(s): ⌈batch / {bp.ImagesPerItem}⌉ × {groups} items.",
                $"GEMM tile: {wp.GemmTiles} tiles × {nOc} blocks = {wp.GemmTiles * nOc} accumulators; K = {K} input channels; input transform read from scratch ({BatchedInputName(plan)}).");
            w.Line("float* input = args.Input, weights = args.Weights, bias = args.Bias, output = args.Output" + (layer.Residual >= 0 ? ", residual = args.Residual;" : ";"));
            w.Line($"const int Tiles = {I(tiles)}, TilesW = {I(wp.TilesW)}, Groups = {I(groups)}, ImagesPerItem = {I(bp.ImagesPerItem)}, tile0 = 0, count = Tiles;");
            w.Line($"const int K = {I(K)}, OutH = {I(layer.OutShape.H)}, OutW = {I(layer.OutShape.W)}, VStride = {I(wp.ScratchStride(K))}, VImage = {I(wp.ScratchImageFloats(K))}, MStride = {I(mStride)};");
            w.Line($"const int OutPlane = {I(outL.PlaneFloats)}, OutRow = {I(outL.PaddedW * B)}, GroupWeights = {I(wp.Positions * K * nOc * B)}, PositionWeights = {I(K * nOc * B)};");
            w.Line($"float* m = {TilesExpression};");
            w.Open("for (int item = begin; item < end; item++)");
            // Image groups outermost: a thread's contiguous share of one image group's items is a range of output groups, each read by it alone.
            w.Line("int group = item % Groups, n0 = item / Groups * ImagesPerItem;");
            w.Line("int images = global::System.Math.Min(ImagesPerItem, args.Images - n0);");
            w.Line($"int slice = PositionWeights / (images * {I((tiles + wp.GemmTiles - 1) / wp.GemmTiles)}) / 16 * 16 + 16;");
            w.Line($"// {wp.Positions} GEMMs per image: m[p][image, tile][oc] = Σ_k v[image][p][tile][k] · u[p][k][oc].");
            w.Open($"for (int p = 0; p < {I(wp.Positions)}; p++)");
            w.Line("float* u = weights + group * GroupWeights + p * PositionWeights;");
            w.Line($"float* pf = u + PositionWeights;");
            w.Open("for (int i = 0; i < images; i++)");
            w.Line("float* vp = input + (n0 + i) * VImage + p * VStride;");
            w.Line($"float* mp = m + p * MStride + i * {I(tiles * nOc * B)};");
            int full = tiles / wp.GemmTiles, rem = tiles % wp.GemmTiles;
            for (int c = 0; c < full; c++)
                w.Line($"{GemmName(name, nOc, wp.GemmTiles)}(vp + {I(c * wp.GemmTiles)} * K, u, mp + {I(c * wp.GemmTiles * nOc * B)}, pf); pf += slice;");
            if (rem > 0)
                w.Line($"{GemmName(name, nOc, rem)}(vp + {I(full * wp.GemmTiles)} * K, u, mp + {I(full * wp.GemmTiles * nOc * B)}, pf); pf += slice;");
            w.Close();
            w.Close();
            w.Open("for (int i = 0; i < images; i++)");
            w.Line("int n = n0 + i;");
            w.Line($"float* mi = m + i * {I(tiles * nOc * B)};");
            EmitOutputTransform(w, layer, wp, isaPlan, "mi");
            w.Close();
            w.Close();
            w.Close();
            w.Line();
        }

        /// <summary>
        /// The output transform of <c>count</c> tiles from <c>tile0</c> of image <c>n</c>, group <c>group</c>, whose
        /// GEMM results are at <paramref name="m"/> ([position][tile][output channel], MStride apart).
        /// </summary>
        private static void EmitOutputTransform(SourceWriter w, Layer layer, WinogradPlan wp, IsaPlan isaPlan, string m)
        {
            var isa = isaPlan.Isa;
            var outL = isaPlan.Tensors[layer.Output];
            var resL = layer.Residual >= 0 ? isaPlan.Tensors[layer.Residual] : null;
            string V = isa.VectorType, Vec = isa.Vector;
            int B = isa.Block, nOc = wp.OcBlocks, M = wp.M, A = wp.Alpha;
            w.Line("// Output transform, Aᵀ·m·A, then bias, residual, ReLU; partial edge tiles store only their valid pixels.");
            w.Open("for (int tile = 0; tile < count; tile++)");
            w.Line($"int oh0 = (tile0 + tile) / TilesW * {I(M)}, ow0 = (tile0 + tile) % TilesW * {I(M)};");
            w.Line($"int rows = global::System.Math.Min({I(M)}, OutH - oh0), cols = global::System.Math.Min({I(M)}, OutW - ow0);");
            w.Open($"for (int j = 0; j < {I(nOc)}; j++)");
            w.Line($"float* mt = {m} + tile * {I(nOc * B)} + j * {I(B)};");
            w.Line($"{V} b = {Vec}.Load(bias + (group * {I(nOc)} + j) * {I(B)});");
            w.Line($"float* y = output + n * {I(outL.ImageFloats)} + (group * {I(nOc)} + j) * OutPlane + {I(outL.Origin)} + oh0 * OutRow + ow0 * {I(B)};");
            if (resL != null)
                w.Line($"float* res = residual + n * {I(resL.ImageFloats)} + (group * {I(nOc)} + j) * {I(resL.PlaneFloats)} + {I(resL.Origin)} + oh0 * {I(resL.PaddedW * B)} + ow0 * {I(B)};");
            var rowsOut = OutputRows(M);
            bool edgeRows = layer.OutShape.H % M != 0, edge = layer.OutShape.W % M != 0;
            for (int i = 0; i < M; i++)
            {
                // Output row i: row i of Aᵀ·m for every column, straight from m, then its Aᵀ·m·A.
                if (edgeRows && i > 0) w.Open($"if (rows > {I(i)})");
                else w.Open();
                EmitTransformRow(w, isa, rowsOut[i], A, (k, c) => $"mt + {I(k * A + c)} * MStride");
                w.Open();
                w.Line($"{V} {string.Join(", ", Enumerable.Range(0, A).Select(c => $"d{c} = e{c}"))};");
                for (int c = 0; c < M; c++)
                {
                    w.Line($"{V} y{c} = b + ({rowsOut[c]});");
                    if (resL != null) w.Line($"y{c} += {Vec}.Load(res + {I(i * resL.PaddedW * B + c * B)});");
                    if (layer.Relu) w.Line($"y{c} = {Vec}.Max(y{c}, {V}.Zero);");
                }
                for (int c = 0; c < M; c++)
                    w.Line($"{(edge && c > 0 ? $"if (cols > {c}) " : "")}y{c}.Store(y + {I(i)} * OutRow + {I(c * B)});");
                w.Close();
                w.Close();
            }
            w.Close();
            w.Close();
        }

        /// <summary>Opens kernel <paramref name="name"/> (the signature every kernel has) under a summary of <paramref name="summary"/>'s lines.</summary>
        internal static void OpenKernel(SourceWriter w, string name, params string[] summary)
        {
            w.Line("/// <summary>");
            foreach (var line in summary) w.Line("/// " + line);
            w.Line("/// </summary>");
            w.Line("[MethodImpl(MethodImplOptions.AggressiveOptimization)]");
            w.Line("[SkipLocalsInit]");
            w.Open($"public static void {name}(in KernelArgs args, int begin, int end)");
        }

        /// <summary>
        /// Bᵀ·d·B of one window (x: its top-left input, one channel block) into dst + position × stride, a row of
        /// Bᵀ·d at a time: each row straight from the window's loads into registers (the window is in L1 after the
        /// first), then that row's Bᵀ·d·B out to memory.
        /// </summary>
        private static void EmitTileInput(SourceWriter w, WinogradPlan wp, Isa isa, string stride)
        {
            int A = wp.Alpha, B = isa.Block;
            var rows = InputRows(wp.M, "d");
            for (int r = 0; r < A; r++)
            {
                w.Open();
                EmitTransformRow(w, isa, rows[r], A, (k, c) => $"x + {I(k)} * InRow + {I(c * B)}");
                w.Open();
                w.Line($"{isa.VectorType} {string.Join(", ", Enumerable.Range(0, A).Select(c => $"d{c} = e{c}"))};");
                for (int i = 0; i < A; i++) w.Line($"({rows[i]}).Store(dst + {I(r * A + i)} * {stride});");
                w.Close();
                w.Close();
            }
        }

        /// <summary>
        /// e0…e(A−1) = one row of a transform's first pass (<paramref name="row"/>, a combination of d0…d(A−1)) for
        /// each of the A columns, loading only the operands it uses: d(k) of column c is at <paramref name="at"/>(k, c).
        /// Recomputing each row from loads (L1 hits after the first) instead of keeping the whole first pass in a
        /// scratch array keeps everything in registers: with the scratch (stored, then loaded back a column at a
        /// time) a whole pass ran 2–6% slower, layer1's convolutions up to 13%.
        /// </summary>
        private static void EmitTransformRow(SourceWriter w, Isa isa, string row, int A, Func<int, int, string> at)
        {
            var used = Operands(row);
            w.Line($"{isa.VectorType} {string.Join(", ", Enumerable.Range(0, A).Select(c => $"e{c}"))};");
            for (int c = 0; c < A; c++)
            {
                w.Open();
                w.Line($"{isa.VectorType} {string.Join(", ", used.Select(k => $"d{k} = {isa.Vector}.Load({at(k, c)})"))};");
                w.Line($"e{c} = {row};");
                w.Close();
            }
        }

        /// <summary>The indices k of the d(k) a transform row reads, in order.</summary>
        private static List<int> Operands(string row)
        {
            var used = new SortedSet<int>();
            for (int i = 0; i + 1 < row.Length; i++)
                if (row[i] == 'd' && char.IsDigit(row[i + 1]) && (i == 0 || !char.IsLetterOrDigit(row[i - 1]))) used.Add(row[i + 1] - '0');
            return used.ToList();
        }

        private static string GemmName(string kernel, int oc, int tiles) => $"{kernel}_Gemm{oc}x{tiles}";

        private static void EmitGemm(SourceWriter w, string kernel, Isa isa, int k, int oc, int tiles, int prefetchLines)
        {
            string V = isa.VectorType;
            int B = isa.Block;
            w.Line($"/// <summary>{tiles} tiles × {oc} output block(s) of one Winograd position, summed over {k} input channels; prefetches {prefetchLines} line(s) from pf per channel.</summary>");
            w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            w.Open($"private static void {GemmName(kernel, oc, tiles)}(float* v, float* u, float* m, float* pf)");
            for (int j = 0; j < oc; j++)
            {
                var names = new System.Text.StringBuilder();
                for (int t = 0; t < tiles; t++) names.Append(t == 0 ? "" : ", ").Append($"acc{j}x{t} = {V}.Zero");
                w.Line($"{V} {names};");
            }
            // A pointer per input channel: each broadcast is one load at a constant offset.
            w.Open($"for (float* vEnd = v + {I(k)}; v < vEnd; v++, u += {I(oc * B)})");
            for (int j = 0; j < oc; j++) w.Line($"{V} w{j} = {isa.Vector}.Load(u + {I(j * B)});");
            for (int l = 0; l < prefetchLines; l++) w.Line($"Sse.Prefetch1(pf + {I(l * 16)});");
            if (prefetchLines > 0) w.Line($"pf += {I(prefetchLines * 16)};");
            for (int t = 0; t < tiles; t++)
            {
                w.Line($"{V} x{t} = {isa.Vector}.Create(v[{I(t * k)}]);");
                for (int j = 0; j < oc; j++) w.Line($"acc{j}x{t} = {isa.Fma}(x{t}, w{j}, acc{j}x{t});");
            }
            w.Close();
            for (int t = 0; t < tiles; t++)
                for (int j = 0; j < oc; j++) w.Line($"acc{j}x{t}.Store(m + {I(t * oc * B + j * B)});");
            w.Close();
            w.Line();
        }
    }
}
