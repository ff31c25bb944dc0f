using System;

namespace ResNet.Generator.Model
{
    /// <summary>
    /// Chooses, per stride-1 3×3 convolution, between the direct kernel, Winograd F(4×4,3×3) and F(2×2,3×3), and
    /// then the Winograd work split. Winograd trades multiplies for weight bytes: F(4×4) does 36 multiplies per
    /// 4×4 tile where direct does 144 but stores 36/9 = 4× the weights, F(2×2) 16 per 2×2 tile (2.25× fewer) with
    /// 16/9 the weights. At batch 1 every weight is read once per image, from memory once a network's weights
    /// outgrow the last-level cache, so the estimate is the larger of compute time and weight streaming time.
    /// </summary>
    internal static class WinogradPlanner
    {
        /// <summary>Vector FMAs retired per cycle (two FMA pipes).</summary>
        private const double FmaPerCycle = 2;
        /// <summary>
        /// Weight bytes memory delivers per core cycle: 28 GB/s read by one core at ~3.5 GHz on session 17's machine
        /// (39 GB/s at ~4 GHz on earlier ones; the lower figure, so that streaming is not underestimated).
        /// </summary>
        internal const double MemoryBytesPerCycle = 8;
        /// <summary>Fractions of FMA peak the kernels reach (measured: direct 85–90%, Winograd GEMMs ~75% with transforms).</summary>
        private const double DirectEfficiency = 0.85, WinogradEfficiency = 0.75;
        /// <summary>Weight bytes of one position that stay in L1 (48 KiB) beside the broadcast rows.</summary>
        private const long L1Budget = 32 * 1024;
        /// <summary>
        /// Transformed tiles a work item may keep (in its thread's tile scratch, the runtime's one huge page): well
        /// inside one core's 1 MiB L2.
        /// </summary>
        private const long TileBudget = 640 * 1024;

        /// <summary>A dense stride-1 3×3 convolution with padding 1: the shape F(m×m,3×3) computes.</summary>
        public static bool IsWinogradShape(Layer layer) =>
            layer.Kind == LayerKind.Conv && layer.Conv!.Kernel == new Pair(3, 3) && layer.Conv.Stride == new Pair(1, 1)
            && layer.Conv.Dilation == new Pair(1, 1) && layer.Conv.Groups == 1 && layer.Conv.Padding == new Pair(1, 1)
            && layer.InShape.H >= 2 && layer.InShape.W >= 2;

        /// <summary>The Winograd plan for <paramref name="layer"/>, or null when the direct kernel is estimated faster.</summary>
        public static WinogradPlan? Choose(Layer layer, Isa isa)
        {
            if (!IsWinogradShape(layer)) return null;
            int best = 0;
            double bestCycles = EstimatedCycles(layer, isa, 0);
            foreach (int m in new[] { 4, 2 })
            {
                if (layer.OutShape.H < m || layer.OutShape.W < m) continue;
                double cycles = EstimatedCycles(layer, isa, m);
                if (cycles < bestCycles) (best, bestCycles) = (m, cycles);
            }
            return best == 0 ? null : Split(layer, isa, best, Planner.SplitsRows(layer, (long)WeightBytes(layer, best)));
        }

        /// <summary>Weight bytes of a 3×3 convolution: direct (m = 0), or transformed for F(m×m,3×3) ((m+2)² per channel pair).</summary>
        public static double WeightBytes(Layer layer, int m) => (m == 0 ? 9 : (m + 2) * (m + 2)) * 4.0 * layer.Conv!.InChannels * layer.Conv.OutChannels;

        /// <summary>
        /// Estimated cycles per image with the direct kernel (m = 0) or F(m×m,3×3), when the weights are read once
        /// per <paramref name="images"/> images (1: the batch-1 kernels, which read them once per image).
        /// </summary>
        private static double EstimatedCycles(Layer layer, Isa isa, int m, int images = 1)
        {
            double pairs = (double)layer.Conv!.InChannels * layer.Conv.OutChannels;
            double stream = WeightBytes(layer, m) / MemoryBytesPerCycle / images;
            if (m == 0)
                return Math.Max(layer.OutShape.H * layer.OutShape.W * 9 * pairs / isa.Block / FmaPerCycle / DirectEfficiency, stream);
            double positions = (m + 2) * (m + 2);
            double tiles = Math.Ceiling(layer.OutShape.H / (double)m) * Math.Ceiling(layer.OutShape.W / (double)m);
            return Math.Max(positions * tiles * pairs / isa.Block / FmaPerCycle / WinogradEfficiency, stream);
        }

        /// <summary>The batch the batched variants are sized for: their items hold up to this many images.</summary>
        public const int ReferenceBatch = 8;

        /// <summary>
        /// A variant for batches whose items span images (see <see cref="BatchPlan"/>), when with its items full (up
        /// to <see cref="ReferenceBatch"/> images, as many as the tile budget holds) it is estimated at least a fifth
        /// cheaper per image than the batch-1 plan <paramref name="single"/>; it runs from the smallest batch at
        /// which it is. Such layers have few tiles per image for their weights: ResNet-18's layer4 (4 tiles of
        /// F(4×4) per 7×7 image, 36 MB of transformed weights per layer) streams its weights at batch 1, so there
        /// F(2×2) wins, but read once for eight images F(4×4)'s 1.8× fewer multiplies do.
        /// </summary>
        public static BatchPlan? ChooseBatched(Layer layer, Isa isa, WinogradPlan single)
        {
            // The same fifth is the margin at the smallest batch it runs at: streaming overlaps the multiplies only
            // in part (measured: layer4's F(4×4) at 2 images took 1.9 ms, where the larger of the two predicts 1.35).
            double limit = 0.8 * EstimatedCycles(layer, isa, single.M);
            BatchPlan? best = null;
            double bestCycles = limit;
            foreach (int m in new[] { 4, 2 })
            {
                if (layer.OutShape.H < m || layer.OutShape.W < m) continue;
                var (plan, images) = BatchedSplit(layer, isa, m);
                // One image per item would read the weights once per image again (and might not fit the tile budget at all).
                if (images < 2) continue;
                double cycles = EstimatedCycles(layer, isa, m, images);
                if (cycles < bestCycles) (best, bestCycles) = (new BatchPlan(plan, images, 0), cycles);
            }
            if (best == null) return null;
            int from = 2;
            while (EstimatedCycles(layer, isa, best.Winograd.M, from) >= limit) from++;
            return best with { From = from };
        }

        /// <summary>
        /// A batched variant's F(m×m) plan and the images an item holds: its GEMM calls are per image (the scratch is
        /// laid out per image), each over that image's tiles in as few register tiles as fit, with the group size
        /// cheapest per input channel (costs as in <see cref="Split"/>); the GEMMs' results of every image of an item
        /// wait in the tile scratch for the output transform.
        /// </summary>
        private static (WinogradPlan Plan, int Images) BatchedSplit(Layer layer, Isa isa, int m)
        {
            int tilesH = (layer.OutShape.H + m - 1) / m, tilesW = (layer.OutShape.W + m - 1) / m, tiles = tilesH * tilesW;
            int positions = (m + 2) * (m + 2);
            int k = (layer.InShape.C + isa.Block - 1) / isa.Block * isa.Block;
            int ocBlocks = (layer.OutShape.C + isa.Block - 1) / isa.Block;
            (int Oc, int Gemm) bestTile = (1, 1);
            double bestCost = double.MaxValue;
            for (int oc = 1; oc <= Math.Min(4, ocBlocks); oc++)
            {
                if (ocBlocks % oc != 0) continue;
                int gemm = Math.Min(tiles, Planner.MaxTileColumns(isa, oc));
                if (gemm < 1) continue;
                double cost = (ocBlocks / oc) * ChunkCycles(tiles, gemm, oc, RereadCycles(isa, k, oc));
                if (cost < bestCost - 1e-9) (bestTile, bestCost) = ((oc, gemm), cost);
            }
            int images = ReferenceBatch;
            while (images > 1 && 4 * WinogradPlan.TileFloats(positions, images * tiles, bestTile.Oc * isa.Block, k, sharedInput: true) > TileBudget) images--;
            return (new WinogradPlan(m, tilesH, tilesW, tiles, bestTile.Gemm, bestTile.Oc, SharedInput: true, SplitRows: false), images);
        }

        /// <summary>
        /// Cycles per input channel of <paramref name="count"/> tiles × <paramref name="oc"/> output blocks in GEMM
        /// calls of <paramref name="gemm"/> tiles (the last one narrower), each call also paying
        /// <paramref name="reread"/>. A call: FMAs at two per cycle, loads (weights and broadcasts) at ~1.85 per
        /// cycle (measured: 1×16, 17 loads per 16 FMAs, ran at 87% of peak), and never under the FMA latency (each
        /// accumulator is one dependency chain).
        /// </summary>
        private static double ChunkCycles(int count, int gemm, int oc, double reread)
        {
            double CallCost(int p) => Math.Max(Math.Max(oc * p / 2.0, (oc + p) / 1.85), 4) + 0.5;
            return count / gemm * CallCost(gemm) + (count % gemm > 0 ? CallCost(count % gemm) : 0) + (count + gemm - 1) / gemm * reread;
        }

        /// <summary>
        /// Cycles a GEMM call spends re-reading its position's weights from L2 when they do not fit L1 beside the
        /// broadcast rows: every call after the first reads them again (measured on layer4: 2×8 in two calls 20%
        /// faster than 4×6 in three).
        /// </summary>
        private static double RereadCycles(Isa isa, int k, int oc) => 4L * k * oc * isa.Block > L1Budget ? oc / 2.0 : 0;

        /// <summary>
        /// The work split for F(m×m): every output-block group size and GEMM register tile that fits the
        /// registers, with chunks of one row of tiles when split by rows, else as large as the tile budget allows
        /// (a whole image when it fits, so each group's weights are read once per image); the cheapest by
        /// estimated cycles per input channel. More than one group means the input transform is shared
        /// (computed once per layer into scratch, not once per group).
        /// </summary>
        private static WinogradPlan Split(Layer layer, Isa isa, int m, bool splitRows)
        {
            int tilesH = (layer.OutShape.H + m - 1) / m, tilesW = (layer.OutShape.W + m - 1) / m, tiles = tilesH * tilesW;
            int positions = (m + 2) * (m + 2);
            int k = (layer.InShape.C + isa.Block - 1) / isa.Block * isa.Block;
            int ocBlocks = (layer.OutShape.C + isa.Block - 1) / isa.Block;
            WinogradPlan? best = null;
            double bestCost = double.MaxValue;
            for (int oc = 1; oc <= Math.Min(4, ocBlocks); oc++)
            {
                if (ocBlocks % oc != 0) continue;
                bool shared = ocBlocks / oc > 1;
                long TileBytes(int chunk) => 4 * WinogradPlan.TileFloats(positions, chunk, oc * isa.Block, k, shared);
                // No spills: oc×p accumulators, oc weight vectors and the broadcast (measured: a spilled 4×7 ran at 76%
                // of peak where 2×8, 3×8 and 2×12 ran at 98–99%).
                for (int gemm = 1; gemm <= Math.Min(tiles, Planner.MaxTileColumns(isa, oc)); gemm++)
                {
                    // Split by rows, a chunk is one row of tiles, so each thread's rows stay its own.
                    int chunkTiles = splitRows && tilesH > 1 ? tilesW : tiles;
                    if (TileBytes(chunkTiles) > TileBudget)
                    {
                        chunkTiles = gemm;
                        while (chunkTiles + gemm < tiles && TileBytes(chunkTiles + gemm) <= TileBudget) chunkTiles += gemm;
                    }
                    var plan = new WinogradPlan(m, tilesH, tilesW, chunkTiles, gemm, oc, shared, splitRows);
                    double reread = RereadCycles(isa, k, oc);
                    double cost = (ocBlocks / oc) * ((plan.Chunks - 1) * ChunkCycles(chunkTiles, gemm, oc, reread) + ChunkCycles(plan.LastChunkTiles, gemm, oc, reread));
                    // Every chunk after the first re-reads its group's weights, from L3 once they outgrow L2.
                    long groupBytes = 4L * positions * k * oc * isa.Block;
                    if (plan.Chunks > 1 && groupBytes > Planner.L2Budget) cost *= 1.3;
                    // A shared input transform is written to scratch and read back: about one vector per tile and channel.
                    if (shared) cost += tiles / (double)isa.Block;
                    if (cost < bestCost - 1e-9) (best, bestCost) = (plan, cost);
                }
            }
            return best!;
        }
    }
}
