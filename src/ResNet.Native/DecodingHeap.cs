using System.Runtime.InteropServices;

namespace ResNet.Native;

/// <summary>
/// Gives a one-image run's decoding (the JPEG planes, the tensor, the file's bytes: managed arrays, a few MB) huge
/// pages. On a VM whose page faults trap to the host, the first store to each fresh 4 KiB page costs ~5 µs even
/// after it was populated (the host backs it only then), ~300 pages for darknet's 768×576 photo; in a 2 MiB page
/// the same stores cost nothing after the one fault. The GC commits its heap a few pages at a time, too little for
/// huge pages, so first a no-GC region asks it for 24 MB (12 MB of it for large objects) in one go, which it commits
/// as one range right after the first gen0 region, and that range (the 32 MB from the region's start) is advised for
/// huge pages. Session 20, alternating: `dog.jpg` decoded on the worker in 3.8 ms instead of 5.45 and the whole run
/// took 23.76 ms instead of 24.99; a preprocessed .npy 21.87 against 22.90; a 12-megapixel JPEG 70 against 95. On a
/// machine whose faults are cheap, each 2 MiB block touched costs a fault that zeroes it (~0.1 ms) where its small
/// pages would have cost less; a run touches a few. A decoding that outgrows the region ends it with a collection,
/// as the GC would have run anyway. Only for one image per process: a batch's images stay in memory together.
/// </summary>
internal static unsafe partial class DecodingHeap
{
    private const long RegionBytes = 24L << 20, LargeObjectBytes = 12L << 20;
    /// <summary>The GC's basic region: gen0's first one starts on a multiple of it.</summary>
    private const nuint GcRegion = 4u << 20;
    private const nuint AdvisedBytes = 32u << 20;
    private const int MadvHugePage = 14;

    [LibraryImport(Libc.Name, EntryPoint = "madvise")]
    private static partial int Advise(void* address, nuint length, int advice);

    public static void Prepare()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            if (!GC.TryStartNoGCRegion(RegionBytes, LargeObjectBytes, disallowFullBlockingGC: true)) return;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentOutOfRangeException)
        {
            return; // a no-GC region in progress already, or a GC configured with less room than the budget
        }
        var probe = new byte[1]; // gen0: where the committed range starts
        fixed (byte* p = probe) Advise((void*)((nuint)p & ~(GcRegion - 1)), AdvisedBytes, MadvHugePage); // advice only: nothing to undo if it fails
    }
}
