using System.Runtime.Intrinsics.X86;

namespace ResNet.Runtime;

/// <summary>How a network is built: instruction set, largest batch, threads.</summary>
public sealed record NetworkOptions
{
    /// <summary>Kernels to use; null picks the best this process can run (<see cref="Best"/>).</summary>
    public InstructionSet? InstructionSet { get; init; }

    /// <summary>Largest batch a call may pass; activation buffers are sized for it once.</summary>
    public int MaxBatch { get; init; } = 1;

    /// <summary>
    /// Direct convolution everywhere instead of Winograd (F(4×4,3×3) or F(2×2,3×3)) for the stride-1 3×3
    /// layers: slower, and closer to PyTorch (Winograd's transforms round differently; both are checked against it).
    /// </summary>
    public bool Exact { get; init; }

    /// <summary>
    /// Runs the convolutions with the generic kernels instead of the generated ones: per layer the same algorithm
    /// (Winograd F(4×4) or F(2×2), or direct with <see cref="Exact"/> or where the generator chose it), the same
    /// layouts, transforms and fused epilogues, written once for any shape (sizes read at run time, one fixed
    /// register tile) — what the generator's specialization is measured against. The weights are packed for the
    /// generic tile and never cached.
    /// </summary>
    public bool GenericKernels { get; init; }

    /// <summary>
    /// A directory for packed weights (folded, transformed and laid out for this network, instruction set and
    /// mode), used by Load(path): the second load of the same weights file reads them instead of unpickling,
    /// folding and packing. Null (the default): no cache. On Linux a hit maps the file read-only rather than
    /// copying it (the network's weights are then the page cache's pages; a newer copy replaces the file by
    /// rename, so a running network keeps its mapping). Where the mapping finds 2 MiB pieces of the file in small
    /// page-cache pages (a fault per 64 KiB instead of one; ~55 µs each to map, and as much to unmap, instead of
    /// ~3 µs), disposing the network drops them from the page cache, at most every ten minutes per file, so that the
    /// next load reads them back whole.
    /// </summary>
    public string? PackedCache { get; init; }

    /// <summary>
    /// Whether batches large enough run the layers' batched Winograd variants (work items spanning images; on
    /// AVX-512, F(4×4) instead of F(2×2) for layer4). Tests turn it off to compare the generated kernels with the
    /// generic ones, which have no batched variants, float for float.
    /// </summary>
    internal bool BatchedVariants { get; init; } = true;

    /// <summary>
    /// Whether batches run their first layers image by image, a thread per image (GeneratedNetwork.Prefix.cs).
    /// Tests turn it off to compare a batch run both ways, float for float.
    /// </summary>
    internal bool ImageMajorPrefix { get; init; } = true;

    /// <summary>Moves the prefix's boundary buffer out of the arena even where it shares no memory with the input there (tests: ResNet-18's does not).</summary>
    internal bool MovePrefixBoundary { get; init; }

    /// <summary>Whether a packed-cache hit may be mapped instead of read (tests turn it off to exercise reading).</summary>
    internal bool MapPackedCache { get; init; } = true;

    /// <summary>Threads each layer is split across (the caller included), 1 to 1024; default: every core this process may use.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// Worker threads started beforehand to run the layers on, in place of the <see cref="Threads"/> − 1 the
    /// network would start itself (their count, the caller included, replaces <see cref="Threads"/>). The network
    /// does not stop them: the pool's owner disposes it, after the network. Networks may share a pool: their runs
    /// take turns on it. Worth it when the threads can start while a core is idle:
    /// a thread started while every core is busy waits for the scheduler's next tick before
    /// <see cref="Thread.Start()"/> returns (1–4 ms measured here).
    /// </summary>
    public WorkerPool? Workers { get; init; }

    /// <summary>The best instruction set this process can run. Under NativeAOT this was fixed when the binary was compiled.</summary>
    public static InstructionSet Best =>
        Avx512F.IsSupported ? Runtime.InstructionSet.Avx512 :
        Avx2.IsSupported && Fma.IsSupported ? Runtime.InstructionSet.Avx2 :
        Runtime.InstructionSet.Portable;

    /// <summary>Whether this process can run <paramref name="isa"/>'s kernels at hardware speed.</summary>
    public static bool IsSupported(InstructionSet isa) => isa switch
    {
        Runtime.InstructionSet.Avx512 => Avx512F.IsSupported,
        Runtime.InstructionSet.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };
}
