using System.Runtime.InteropServices;

namespace ResNet.Runtime;

/// <summary>
/// Zeroed, aligned native memory. On Linux, anything of 2 MiB or more is its own anonymous mapping, aligned to
/// 2 MiB and advised for transparent huge pages (the usual "madvise" setting): it is zero when mapped, so it is
/// never cleared again, and its pages fault in 2 MiB at a time. (Allocating and clearing the activation
/// buffers page by page was 5 ms of a 30 ms one-image run; the ~100 MB of freshly packed weights fault in ~50
/// pages instead of ~25,000.) Elsewhere, and below 2 MiB, the C heap, cleared.
/// </summary>
internal static unsafe class HugePages
{
    private const nuint HugePage = 2 << 20;

    /// <summary>Zeroed memory of at least <paramref name="bytes"/>, 64-byte aligned; free with <see cref="Free"/> and the same size.</summary>
    public static void* Allocate(nuint bytes)
    {
        if (bytes < HugePage || !OperatingSystem.IsLinux())
        {
            void* p = NativeMemory.AlignedAlloc(bytes, 64); // throws OutOfMemoryException itself
            NativeMemory.Clear(p, bytes);
            return p;
        }
        nuint length = Mapped(bytes);
        // Over-map by one huge page, then trim both ends, for a 2 MiB-aligned start.
        byte* raw = (byte*)MemoryMap.Map(null, length + HugePage, MemoryMap.ProtReadWrite, MemoryMap.MapPrivate | MemoryMap.MapAnonymous, -1, 0);
        if (raw == MemoryMap.Failed) throw new OutOfMemoryException($"cannot map {length} bytes");
        byte* start = (byte*)(((nuint)raw + HugePage - 1) & ~(HugePage - 1));
        if (start > raw) MemoryMap.Unmap(raw, (nuint)(start - raw));
        nuint tail = (nuint)(raw + HugePage - start); // what the start's alignment left unused at the end
        if (tail > 0) MemoryMap.Unmap(start + length, tail);
        MemoryMap.Advise(start, length, MemoryMap.MadvHugePage); // advice only: where huge pages are off this fails and nothing changes
        return start;
    }

    /// <summary>
    /// Maps every page of an allocation now rather than at its first touch, by writing a byte per huge page (below
    /// 2 MiB, the C heap, nothing to do). Not MADV_POPULATE_WRITE: it holds the process's mmap lock, which the
    /// thread decoding the image needs whenever its GC commits heap; a fault takes only its mapping's lock. With
    /// the libc imports bound at link time the buffers fault in 0.3 ms sooner, right when the decoding allocates,
    /// and populating them then slowed the decoding by ~0.4 ms (medians of 30 alternations); touching did not.
    /// </summary>
    public static void Prefault(void* p, nuint bytes)
    {
        if (bytes < HugePage || !OperatingSystem.IsLinux()) return;
        for (nuint at = 0; at < bytes; at += HugePage) ((byte*)p)[at] = 0;
    }

    public static void Free(void* p, nuint bytes)
    {
        if (bytes < HugePage || !OperatingSystem.IsLinux()) NativeMemory.AlignedFree(p);
        else MemoryMap.Unmap(p, Mapped(bytes));
    }

    private static nuint Mapped(nuint bytes) => (bytes + HugePage - 1) & ~(HugePage - 1);
}
