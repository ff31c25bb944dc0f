namespace ResNet.Generator.Model
{
    /// <summary>
    /// A vector instruction set the generator emits kernels for. <see cref="Block"/> is the channel block of
    /// the activation layout (one vector of floats); <see cref="Registers"/> is how many vector registers a
    /// micro-kernel may fill with accumulators, weight vectors and the input broadcast without spilling
    /// (32 zmm on AVX-512; 16 ymm on AVX2 and 16 xmm on SSE, the portable target's floor);
    /// <see cref="Prefetch"/> says kernels may issue x86 software prefetches.
    /// </summary>
    internal sealed record Isa(string Name, int Block, int Registers, int MaxPixels, string Vector, string VectorType, string Fma, bool Prefetch)
    {
        public static readonly Isa Avx512 = new Isa("Avx512", 16, 32, 14, "Vector512", "Vector512<float>", "Avx512F.FusedMultiplyAdd", true);
        public static readonly Isa Avx2 = new Isa("Avx2", 8, 16, 8, "Vector256", "Vector256<float>", "Fma.MultiplyAdd", true);
        // Vector128 is accelerated on every 64-bit CPU .NET runs on (SSE2, NEON); MultiplyAddEstimate uses FMA where it exists.
        // No prefetch instruction there: Sse.Prefetch1 is x86 only.
        public static readonly Isa Portable = new Isa("Portable", 4, 16, 8, "Vector128", "Vector128<float>", "Vector128.MultiplyAddEstimate", false);

        public static readonly Isa[] All = { Avx512, Avx2, Portable };
    }

    /// <summary>
    /// How one tensor is stored: channels in blocks of <see cref="Block"/> ([block][h][w][c] per image, the
    /// MLAS NCHWc layout) or planar when <see cref="Block"/> is 1 (plain NCHW, for the 3-channel input, where
    /// a 16-wide block would multiply conv1's work by five). A halo of zeros <see cref="PadH"/>×<see cref="PadW"/>
    /// surrounds the interior so convolutions never test bounds.
    /// </summary>
    internal sealed record TensorLayout(int Block, int Blocks, int H, int W, int PadH, int PadW, int Buffer)
    {
        public int PaddedH => H + 2 * PadH;
        public int PaddedW => W + 2 * PadW;
        public int PlaneFloats => PaddedH * PaddedW * Block;
        public int ImageFloats => Blocks * PlaneFloats;
        /// <summary>Channels including the zero padding of the last block.</summary>
        public int Channels => Blocks * Block;
        /// <summary>Float offset of interior pixel (0,0) of block 0.</summary>
        public int Origin => (PadH * PaddedW + PadW) * Block;
        public string Describe => Block == 1
            ? $"planar {Blocks}×{PaddedH}×{PaddedW}"
            : $"{Blocks} blocks of {Block} channels × {PaddedH}×{PaddedW}";
    }

    /// <summary>
    /// A convolution's micro-kernel: <see cref="OcBlocks"/> output blocks × <see cref="Rows"/> output rows ×
    /// <see cref="Pixels"/> pixels accumulate in registers (each weight vector loaded once serves them all); a
    /// row whose width is not a multiple of the tile ends with a <see cref="Remainder"/>-pixel tile, and an
    /// odd last row uses the one-row tiles.
    /// </summary>
    internal sealed record ConvTile(int OcBlocks, int Pixels, int Remainder, int Rows = 1)
    {
        public int Accumulators => OcBlocks * Pixels * Rows;
    }

    /// <summary>Everything one instruction set needs: tensor layouts, buffer sizes and places, per-layer tiles and kernel names.</summary>
    internal sealed record IsaPlan(Isa Isa, EquatableArray<TensorLayout> Tensors, EquatableArray<int> BufferFloats,
        ArenaPlan Arena, EquatableArray<LayerPlan> Layers, int ScratchFloats);

    /// <summary>
    /// Winograd F(m×m, 3×3), m = <see cref="M"/> (2 or 4), for a stride-1 3×3 convolution: (m+2)² "positions"
    /// per tile, each a GEMM [tiles × input channels] · [input channels × output channels] against weights
    /// transformed at load. Work items are <see cref="ChunkTiles"/> consecutive tiles of one image × one group of
    /// <see cref="OcBlocks"/> output blocks; the GEMM register tile is <see cref="GemmTiles"/> tiles × the group.
    /// With <see cref="SharedInput"/> the input transform runs once per layer into a scratch buffer (a first
    /// pass, one item per tile row and channel block) instead of once per group inside each item.
    /// <see cref="SplitRows"/>: items go chunk by chunk (see <see cref="LayerPlan.SplitRows"/>).
    /// <see cref="InputByChannels"/> orders the input pass's items channel block first, for an input whose
    /// producer split its output channels across the threads: each thread then transforms the channels it
    /// wrote itself, from its own cache, instead of rows half of which the other core wrote.
    /// </summary>
    internal sealed record WinogradPlan(int M, int TilesH, int TilesW, int ChunkTiles, int GemmTiles, int OcBlocks, bool SharedInput, bool SplitRows, bool InputByChannels = false)
    {
        public int Alpha => M + 2;
        public int Positions => Alpha * Alpha;
        public int TilesPerImage => TilesH * TilesW;
        public int Chunks => (TilesPerImage + ChunkTiles - 1) / ChunkTiles;
        /// <summary>Tiles in an image's last chunk (the others have <see cref="ChunkTiles"/>).</summary>
        public int LastChunkTiles => TilesPerImage - (Chunks - 1) * ChunkTiles;

        /// <summary>
        /// Floats between consecutive positions of a transformed buffer holding <paramref name="tiles"/> tiles of
        /// <paramref name="channels"/> channels: padded by one cache line so the (m+2)² stores or loads of one tile
        /// do not all fall into one L1 set (with the 16 KiB stride they had, the instructions after those stores
        /// were the hottest in layer3's kernel).
        /// </summary>
        public static int PositionStride(int tiles, int channels) => tiles * channels + 16;

        /// <summary>Position stride of the shared input transform: a whole image's tiles of <paramref name="k"/> channels.</summary>
        public int ScratchStride(int k) => PositionStride(TilesPerImage, k);

        /// <summary>Floats of the shared input transform per image (the scratch the planner sizes and the kernels index).</summary>
        public int ScratchImageFloats(int k) => Positions * ScratchStride(k);

        /// <summary>
        /// Floats of transformed tiles a batch-1 work item keeps in its thread's tile scratch: the GEMMs' results for
        /// a chunk, and the chunk's input transform unless that is shared (<paramref name="k"/> input channels).
        /// </summary>
        public int TileFloats(int k, int block) => (int)TileFloats(Positions, ChunkTiles, OcBlocks * block, k, SharedInput);

        /// <summary>
        /// Floats of transformed tiles a work item of <paramref name="tiles"/> tiles keeps: the GEMMs' results for
        /// <paramref name="outChannels"/> channels, and its own input transform of <paramref name="k"/> channels
        /// unless <paramref name="sharedInput"/> (what the planner sizes chunks by, before there is a plan).
        /// </summary>
        public static long TileFloats(int positions, int tiles, int outChannels, int k, bool sharedInput) =>
            (long)positions * (PositionStride(tiles, outChannels) + (sharedInput ? 0 : PositionStride(tiles, k)));
    }

    /// <summary>
    /// A Winograd variant for batches of at least <see cref="From"/> images, whose work items span images: an item is
    /// every tile of up to <see cref="ImagesPerItem"/> images × one group of output blocks, so a group's transformed
    /// weights are read once per item instead of once per image. That makes the weight-hungrier F(4×4) pay where at
    /// batch 1 its weights would stream slower than F(2×2)'s multiplies (ResNet-18's layer4), so
    /// <see cref="Winograd"/>.M may differ from the batch-1 plan's, and its weights are then a second packed set.
    /// The input transform is always the shared pass ([image][position][tile][channel] in scratch).
    /// </summary>
    internal sealed record BatchPlan(WinogradPlan Winograd, int ImagesPerItem, int From)
    {
        /// <summary>Floats of transformed tiles a work item keeps in its thread's tile scratch: every image's GEMM results.</summary>
        public int TileFloats(int block) =>
            (int)WinogradPlan.TileFloats(Winograd.Positions, ImagesPerItem * Winograd.TilesPerImage, Winograd.OcBlocks * block, 0, sharedInput: true);
    }

    /// <summary>
    /// A layer's kernels for one ISA. Layers whose kernels would be identical get the same
    /// <see cref="KernelName"/> and share one emitted method (weights and buffers are arguments). A convolution
    /// with a <see cref="Winograd"/> or <see cref="RowWinograd"/> plan has both kernels: Winograd by default, direct when exact.
    /// <see cref="SplitRows"/> orders a convolution's work items rows first, so the threads (each takes a fixed
    /// contiguous share) split the image by rows rather than by output channels.
    /// </summary>
    internal sealed record LayerPlan(string KernelName, ConvTile? Tile, WinogradPlan? Winograd = null, bool SplitRows = false, BatchPlan? Batched = null,
        RowWinogradPlan? RowWinograd = null)
    {
        /// <summary>The row-Winograd kernel (<see cref="RowWinograd"/>).</summary>
        public string RowWinogradName => $"{KernelName}_RowWinograd{RowWinograd?.M}";

        public string WinogradName => KernelName.Replace("Conv3x3s1", $"Winograd{Winograd?.M}x{Winograd?.M}");

        /// <summary>The batched variant's main kernel (its input pass adds "_Input").</summary>
        public string BatchedName => KernelName.Replace("Conv3x3s1", $"Winograd{Batched?.Winograd.M}x{Batched?.Winograd.M}") + "_Batched";
    }

    internal sealed record NetworkPlan(string Namespace, Graph Graph, EquatableArray<IsaPlan> Isas, EquatableArray<ParameterInfo> Parameters);

    /// <summary>A state_dict entry the network requires, with its exact shape.</summary>
    internal sealed record ParameterInfo(string Key, EquatableArray<int> Shape);
}
