using System;
using System.Collections.Generic;
using System.Linq;

namespace ResNet.Generator.Model
{
    /// <summary>
    /// Where each buffer lives in one arena of activations. Buffers whose lifetimes (first write to last read in
    /// a pass) do not meet may share memory: placed greedily by size, largest first, each at the lowest offset
    /// clear of the buffers alive with it (TensorFlow Lite's "greedy by size" arena). For ResNet-18, conv1's
    /// output and the input take turns with the later layers' buffers and the scratch: 4.1 MB per image on AVX-512
    /// instead of 11.9, which is memory a run need not fault in, keep in cache and have the kernel free at exit.
    /// A buffer with a halo that shares memory gets the other tenants' values in its halo, which convolutions
    /// read as zero padding: it is listed in <see cref="ArenaPlan.HaloZeroed"/>, and the runtime clears its halo
    /// in every pass before the first layer writes it (kernels write interiors only, so it then stays zero).
    /// The Winograd layers' shared scratch takes part like one more buffer, alive from the first layer that uses
    /// it to the last, with room for <see cref="ScratchSlots"/> transformed inputs per image.
    /// </summary>
    internal static class ArenaPlanner
    {
        /// <summary>Offsets are multiples of 16 floats (a cache line), so every buffer starts aligned for any batch.</summary>
        private const int Alignment = 16;

        /// <summary>
        /// Transformed inputs the scratch holds per image of the batch: at batch 1 each of up to two threads keeps its
        /// own (GeneratedNetwork.PrivateTransformThreads), else one per image. The runtime keeps a separate scratch
        /// if it ever needs more.
        /// </summary>
        public const int ScratchSlots = 2;

        /// <param name="graph">The layers, for when each tensor is written and last read.</param>
        /// <param name="layouts">Each tensor's layout, its <see cref="TensorLayout.Buffer"/> assigned.</param>
        /// <param name="sizes">Floats per image of each buffer.</param>
        /// <param name="scratchLayers">The layers that use the shared Winograd scratch.</param>
        /// <param name="scratchFloats">Floats of one transformed input in the scratch.</param>
        public static ArenaPlan Place(Graph graph, IReadOnlyList<TensorLayout> layouts, IReadOnlyList<int> sizes, IReadOnlyList<int> scratchLayers, int scratchFloats)
        {
            // The scratch, if any, is placed as buffer number sizes.Count.
            bool hasScratch = scratchLayers.Count > 0 && scratchFloats > 0;
            int tensorBuffers = sizes.Count;
            sizes = hasScratch ? sizes.Concat(new[] { ScratchSlots * scratchFloats }).ToList() : sizes;
            int buffers = sizes.Count;
            // Lifetimes in layer indices: the input is written before layer 0 (-1); the network's output is read after the last.
            var first = Enumerable.Repeat(int.MaxValue, buffers).ToArray();
            var last = Enumerable.Repeat(int.MinValue, buffers).ToArray();
            void Touch(int tensor, int at)
            {
                int b = layouts[tensor].Buffer;
                first[b] = Math.Min(first[b], at);
                last[b] = Math.Max(last[b], at);
            }
            Touch(0, -1);
            for (int i = 0; i < graph.Layers.Count; i++)
            {
                var l = graph.Layers[i];
                Touch(l.Input, i);
                if (l.Residual >= 0) Touch(l.Residual, i);
                Touch(l.Output, i);
            }
            Touch(graph.Layers[graph.Layers.Count - 1].Output, int.MaxValue);
            if (hasScratch)
            {
                first[tensorBuffers] = scratchLayers.Min();
                last[tensorBuffers] = scratchLayers.Max();
            }

            bool Alive(int a, int b) => first[a] <= last[b] && first[b] <= last[a];
            var offsets = new int[buffers];
            var placed = new List<int>();
            foreach (int b in Enumerable.Range(0, buffers).OrderByDescending(b => sizes[b]).ThenBy(b => b))
            {
                int offset = 0;
                foreach (int p in placed.Where(p => Alive(p, b)).OrderBy(p => offsets[p]))
                {
                    if (offset + sizes[b] <= offsets[p]) break;
                    offset = Math.Max(offset, Aligned(offsets[p] + sizes[p]));
                }
                offsets[b] = offset;
                placed.Add(b);
            }
            int total = Enumerable.Range(0, buffers).Select(b => Aligned(offsets[b] + sizes[b])).DefaultIfEmpty(0).Max();

            bool Shares(int a, int b) => a != b && offsets[a] < offsets[b] + sizes[b] && offsets[b] < offsets[a] + sizes[a];
            var layoutOf = new TensorLayout[tensorBuffers];
            foreach (var t in layouts) layoutOf[t.Buffer] = t;
            var haloZeroed = Enumerable.Range(0, tensorBuffers)
                .Where(b => (layoutOf[b].PadH > 0 || layoutOf[b].PadW > 0) && Enumerable.Range(0, buffers).Any(o => Shares(b, o)))
                .ToArray();
            return new ArenaPlan(offsets.Take(tensorBuffers).ToEquatableArray(), total, haloZeroed.ToEquatableArray(), hasScratch ? offsets[tensorBuffers] : -1);
        }

        private static int Aligned(int floats) => (floats + Alignment - 1) / Alignment * Alignment;
    }

    /// <summary>
    /// Each buffer's offset in the arena and the arena's size (floats per image; a batch scales both), the buffers
    /// whose halos must be cleared in each pass before they are first written, and the Winograd scratch's offset
    /// (-1: no layer uses one).
    /// </summary>
    internal sealed record ArenaPlan(EquatableArray<int> Offsets, int Floats, EquatableArray<int> HaloZeroed, int ScratchOffset);
}
