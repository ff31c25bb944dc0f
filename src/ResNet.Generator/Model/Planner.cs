using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace ResNet.Generator.Model
{
    /// <summary>
    /// Decides, in one place, everything about how the graph runs on each ISA: tensor layouts and halos,
    /// which buffer each tensor lives in (reused once dead), each convolution's register tile, and the
    /// state_dict entries that must be present.
    /// </summary>
    internal static class Planner
    {
        public static NetworkPlan Plan(Graph graph, string ns) =>
            new NetworkPlan(ns, graph, Isa.All.Select(isa => PlanIsa(graph, isa)).ToEquatableArray(), Parameters(graph));

        private static IsaPlan PlanIsa(Graph graph, Isa isa)
        {
            var winograd = graph.Layers.Select(l => WinogradPlanner.Choose(l, isa)).ToArray();
            var batched = graph.Layers.Select((l, i) => winograd[i] is WinogradPlan single ? WinogradPlanner.ChooseBatched(l, isa, single) : null).ToArray();
            var layouts = Layouts(graph, isa, winograd.Concat(batched.Select(b => b?.Winograd)).ToArray());
            var rowWinograd = graph.Layers.Select(l => RowWinogradPlanner.Choose(l, layouts[l.Input], isa)).ToArray();
            for (int i = 0; i < graph.Layers.Count; i++)
            {
                // The last tile of rows reads up to α − 1 phase rows past its first: widen the zero halo to cover them.
                if (rowWinograd[i] is not RowWinogradPlan rp) continue;
                int t = graph.Layers[i].Input;
                layouts[t] = layouts[t] with { PadH = Math.Max(layouts[t].PadH, RowWinogradPlanner.HaloRows(graph.Layers[i], rp)) };
            }
            var (buffers, sizes) = AssignBuffers(graph, layouts);
            layouts = layouts.Select((l, i) => l with { Buffer = buffers[i] }).ToList();
            var layers = new List<LayerPlan>();
            var keys = new Dictionary<string, string>();
            // Tensors a convolution wrote split by output channels (each thread a contiguous range of them).
            var byChannels = new bool[graph.Tensors.Count];
            for (int i = 0; i < graph.Layers.Count; i++)
            {
                var layer = graph.Layers[i];
                if (winograd[i] is { SharedInput: true } shared) winograd[i] = shared with { InputByChannels = byChannels[layer.Input] };
                ConvTile? tile = layer.Kind == LayerKind.Conv ? ChooseTile(layer, isa) : null;
                string baseName = KernelBaseName(layer, tile);
                // Buffers do not matter to a kernel (it gets pointers); shapes, halos and the tile do.
                string Shape(int t) => t >= 0 ? (layouts[t] with { Buffer = -1 }).ToString() : "-";
                string key = $"{baseName}|{Shape(layer.Input)}|{Shape(layer.Output)}|{Shape(layer.Residual)}|{tile}|{winograd[i]}|{batched[i]}|{rowWinograd[i]}";
                // Same shape, different halos (a downsampled residual has none, an identity residual has one):
                // say so in the name rather than numbering variants.
                string Halo(int t) => t >= 0 ? $"{layouts[t].PadH}{(layouts[t].PadW != layouts[t].PadH ? "x" + layouts[t].PadW : "")}" : "";
                string name = baseName;
                if (keys.TryGetValue(name, out var first) && first != key)
                    name = $"{baseName}_Halo{Halo(layer.Input)}{Halo(layer.Output)}{(layer.Residual >= 0 ? "r" + Halo(layer.Residual) : "")}";
                for (int v = 2; keys.TryGetValue(name, out var existing) && existing != key; v++) name = $"{baseName}_v{v}";
                keys[name] = key;
                bool rows = winograd[i]?.SplitRows ?? (layer.Kind == LayerKind.Conv && SplitsRows(layer, 4L * layer.Conv!.Kernel.H * layer.Conv.Kernel.W * layer.Conv.InChannels / layer.Conv.Groups * layer.Conv.OutChannels));
                layers.Add(new LayerPlan(name, tile, winograd[i], rows, batched[i], rowWinograd[i]));
                byChannels[layer.Output] = layer.Kind == LayerKind.Conv && !rows;
            }
            // The layers that share a Winograd input transform (a batched variant's always is), and the largest one's, per image.
            var scratchLayers = Enumerable.Range(0, graph.Layers.Count).Where(i => winograd[i] is { SharedInput: true } || batched[i] != null).ToArray();
            int ScratchOf(WinogradPlan? wp, int i) => wp is { SharedInput: true } ? wp.ScratchImageFloats(layouts[graph.Layers[i].Input].Channels) : 0;
            int scratch = scratchLayers.Select(i => Math.Max(ScratchOf(winograd[i], i), ScratchOf(batched[i]?.Winograd, i))).DefaultIfEmpty(0).Max();
            var arena = ArenaPlanner.Place(graph, layouts, sizes, scratchLayers, scratch);
            return new IsaPlan(isa, layouts.ToEquatableArray(), sizes.ToEquatableArray(), arena, layers.ToEquatableArray(), scratch);
        }

        private static List<TensorLayout> Layouts(Graph graph, Isa isa, WinogradPlan?[] winograd)
        {
            var padH = new int[graph.Tensors.Count];
            var padW = new int[graph.Tensors.Count];
            var onlyConvReaders = Enumerable.Repeat(true, graph.Tensors.Count).ToArray();
            foreach (var layer in graph.Layers)
            {
                if (layer.Kind == LayerKind.Conv)
                {
                    padH[layer.Input] = Math.Max(padH[layer.Input], layer.Conv!.Padding.H);
                    padW[layer.Input] = Math.Max(padW[layer.Input], layer.Conv.Padding.W);
                }
                else onlyConvReaders[layer.Input] = false;
                if (layer.Residual >= 0) onlyConvReaders[layer.Residual] = false;
            }
            var result = new List<TensorLayout>();
            // winograd: each layer's batch-1 plan, then (from index Layers.Count on) each layer's batched variant.
            for (int j = 0; j < winograd.Length; j++)
            {
                var layer = graph.Layers[j % graph.Layers.Count];
                if (winograd[j] is not WinogradPlan wp) continue;
                // (m+2)×(m+2) windows of whole m×m tiles read past the last row and column: widen the zero halo to cover them.
                int needH = wp.M * wp.TilesH + 2 - layer.Conv!.Padding.H - layer.InShape.H;
                int needW = wp.M * wp.TilesW + 2 - layer.Conv.Padding.W - layer.InShape.W;
                padH[layer.Input] = Math.Max(padH[layer.Input], needH);
                padW[layer.Input] = Math.Max(padW[layer.Input], needW);
            }
            for (int t = 0; t < graph.Tensors.Count; t++)
            {
                var shape = graph.Tensors[t];
                // The input stays planar when only convolutions read it and it is narrower than a block.
                int block = t == 0 && onlyConvReaders[0] && shape.C < isa.Block ? 1 : isa.Block;
                int blocks = (shape.C + block - 1) / block;
                result.Add(new TensorLayout(block, blocks, shape.H, shape.W, padH[t], padW[t], -1));
            }
            return result;
        }

        /// <summary>
        /// Liveness-based reuse: a tensor's buffer returns to the pool after its last reader, and a new
        /// tensor takes a free buffer only of exactly its layout, so its halo, zero once, stays zero. Buffers
        /// of other layouts share memory later, in the arena (<see cref="ArenaPlanner"/>).
        /// </summary>
        private static (int[] BufferOf, List<int> Sizes) AssignBuffers(Graph graph, List<TensorLayout> layouts)
        {
            var lastUse = new int[graph.Tensors.Count];
            for (int i = 0; i < graph.Layers.Count; i++)
            {
                var l = graph.Layers[i];
                lastUse[l.Input] = i;
                if (l.Residual >= 0) lastUse[l.Residual] = i;
            }
            lastUse[graph.Layers[graph.Layers.Count - 1].Output] = int.MaxValue;
            var bufferOf = new int[graph.Tensors.Count];
            var sizes = new List<int>();
            var owner = new List<TensorLayout>();
            var free = new List<int>();
            int Take(int t)
            {
                var want = layouts[t];
                int i = free.FindIndex(b => owner[b] == want);
                if (i >= 0)
                {
                    int b = free[i];
                    free.RemoveAt(i);
                    return b;
                }
                sizes.Add(want.ImageFloats);
                owner.Add(want);
                return sizes.Count - 1;
            }
            bufferOf[0] = Take(0);
            for (int i = 0; i < graph.Layers.Count; i++)
            {
                var l = graph.Layers[i];
                bufferOf[l.Output] = Take(l.Output);
                foreach (int t in new[] { l.Input, l.Residual })
                {
                    if (t >= 0 && lastUse[t] == i && !free.Contains(bufferOf[t])) free.Add(bufferOf[t]);
                }
            }
            return (bufferOf, sizes);
        }

        /// <summary>
        /// Picks the register tile with the fewest estimated cycles per output row: every FMA costs one,
        /// every load (weight vector or input broadcast) a third, and a row's last tile may be narrower.
        /// </summary>
        public static ConvTile ChooseTile(Layer layer, Isa isa, int maxRows = 2)
        {
            int ocBlocks = (layer.OutShape.C + isa.Block - 1) / isa.Block;
            int width = layer.OutShape.W;
            ConvTile? best = null;
            double bestCost = double.MaxValue;
            for (int rows = 1; rows <= Math.Min(maxRows, layer.OutShape.H); rows++)
            for (int oc = 1; oc <= Math.Min(4, ocBlocks); oc++)
            {
                if (ocBlocks % oc != 0) continue;
                int pixels = Math.Min(width, Math.Min(isa.MaxPixels, MaxTileColumns(isa, oc) / rows));
                if (pixels < 1) continue;
                int full = width / pixels, rem = width % pixels;
                // Fewer than 8 accumulators cannot hide the FMA's latency (4 cycles, two pipes), as in the Winograd
                // planner: measured on AVX2's layer4.0.conv1, whose 7-pixel rows went 3 + 3 + 1 with a 4-accumulator
                // remainder, 1 block × 2 rows × 7 pixels ran 5% faster (exact path's 7×7 layers 9%).
                double TileCost(int p) => Math.Max(oc * p * rows, 8) + (oc + p * rows) / 3.0 + 2;
                // Per output row: a multi-row tile shares each weight load across its rows.
                double cost = (ocBlocks / oc) * (full * TileCost(pixels) + (rem > 0 ? TileCost(rem) : 0)) / rows;
                // Each tile row re-reads its group's weights: past half of L2 they come from L3 every time
                // (measured: layer4's 1.2 MB groups made it weight-bound).
                long groupBytes = (long)((layer.InShape.C + isa.Block - 1) / isa.Block) * isa.Block * layer.Conv!.Kernel.H * layer.Conv.Kernel.W * oc * isa.Block * 4;
                if (groupBytes > L2Budget) cost *= 1.5;
                if (cost < bestCost - 1e-9)
                {
                    bestCost = cost;
                    best = new ConvTile(oc, pixels, rem, rows);
                }
            }
            return best!;
        }

        /// <summary>
        /// Register tiles hold oc×columns accumulators, the oc weight vectors and the input broadcast, which
        /// RyuJIT keeps in a register of its own (it folds no embedded broadcast into an FMA whose operand is
        /// reused). Measured: AVX2 4×3, one register short, ran 1.8× slower than 2×6; on AVX-512 the spilling
        /// 4×7 tiles cost conv1 and the stride-2 convolutions 10% against 4×6.
        /// </summary>
        internal static int MaxTileColumns(Isa isa, int oc) => (isa.Registers - oc - 1) / oc;

        /// <summary>
        /// Whether threads should split a convolution by output rows (each reads all weights, and mostly the
        /// activations it wrote itself) rather than by output channels (each reads its share of the weights and
        /// all of the input, half of it from the other core): rows when the input outweighs the weights.
        /// (Measured with channel splits everywhere and chunks claimed from one counter: at a busy time
        /// layer1 ran slower on 2 threads than on 1.)
        /// </summary>
        public static bool SplitsRows(Layer layer, long weightBytes) => 4L * layer.InShape.C * layer.InShape.H * layer.InShape.W >= weightBytes;

        /// <summary>Bytes of a convolution's weight group that stay in a core's L2 (1 MiB here) next to the activations.</summary>
        public const long L2Budget = 640 * 1024;

        private static string KernelBaseName(Layer layer, ConvTile? tile)
        {
            string I(int v) => v.ToString(CultureInfo.InvariantCulture);
            string Size(Shape s) => $"{I(s.H)}x{I(s.W)}";
            string Pair(Pair p) => p.H == p.W ? I(p.H) : $"{I(p.H)}x{I(p.W)}";
            switch (layer.Kind)
            {
                case LayerKind.Conv:
                    {
                        var c = layer.Conv!;
                        string epilogue = "Bias" + (layer.Residual >= 0 ? "Add" : "") + (layer.Relu ? "Relu" : "");
                        string dil = c.Dilation.H == 1 && c.Dilation.W == 1 ? "" : $"d{Pair(c.Dilation)}";
                        return $"Conv{I(c.Kernel.H)}x{I(c.Kernel.W)}s{Pair(c.Stride)}{dil}_{I(c.InChannels)}to{I(c.OutChannels)}_{Size(layer.InShape)}_{epilogue}";
                    }
                case LayerKind.MaxPool:
                    {
                        var p = layer.Pool!;
                        return $"MaxPool{I(p.Kernel.H)}x{I(p.Kernel.W)}s{Pair(p.Stride)}_{I(layer.InShape.C)}_{Size(layer.InShape)}";
                    }
                case LayerKind.AvgPool:
                    return $"AdaptiveAvgPool_{I(layer.InShape.C)}_{Size(layer.InShape)}to{Size(layer.OutShape)}";
                case LayerKind.Linear:
                    return $"Linear_{I(layer.Linear!.InFeatures)}to{I(layer.Linear.OutFeatures)}";
                default:
                    return $"Relu_{I(layer.InShape.C)}_{Size(layer.InShape)}";
            }
        }

        private static EquatableArray<ParameterInfo> Parameters(Graph graph)
        {
            var list = new List<ParameterInfo>();
            void Add(string key, params int[] shape) => list.Add(new ParameterInfo(key, shape.ToEquatableArray()));
            foreach (var layer in graph.Layers)
            {
                if (layer.Kind == LayerKind.Conv)
                {
                    var c = layer.Conv!;
                    Add(layer.Path + ".weight", c.OutChannels, c.InChannels / c.Groups, c.Kernel.H, c.Kernel.W);
                    if (c.Bias) Add(layer.Path + ".bias", c.OutChannels);
                    if (layer.BatchNormPath != null)
                    {
                        foreach (var p in new[] { "weight", "bias", "running_mean", "running_var" }) Add($"{layer.BatchNormPath}.{p}", c.OutChannels);
                    }
                }
                else if (layer.Kind == LayerKind.Linear)
                {
                    Add(layer.Path + ".weight", layer.Linear!.OutFeatures, layer.Linear.InFeatures);
                    if (layer.Linear.Bias) Add(layer.Path + ".bias", layer.Linear.OutFeatures);
                }
            }
            return list.ToEquatableArray();
        }
    }
}
