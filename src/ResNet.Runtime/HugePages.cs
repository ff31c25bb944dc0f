using System.Diagnostics;
using System.Runtime.CompilerServices;
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
    /// 2 MiB, the C heap, nothing to do). Not one MADV_POPULATE_WRITE: it holds the process's mmap lock, which the
    /// thread decoding the image needs whenever its GC commits heap; a fault takes only its mapping's lock. With
    /// the libc imports bound at link time the buffers fault in 0.3 ms sooner, right when the decoding allocates,
    /// and populating them then slowed the decoding by ~0.4 ms (medians of 30 alternations); touching did not.
    /// </summary>
    /// <remarks>
    /// A huge page that takes longer than <see cref="SlowHugePage"/> to fault in is one whose memory the host took
    /// back: this VM reports free 2 MiB blocks to the host (virtio-balloon free page reporting, order 9), and a run
    /// more than a few seconds after the last one gets exactly those blocks for its huge pages — 2–5 ms each to fault
    /// in instead of ~0.1. Small pages come mostly from lower-order free lists, which are not reported. So after a
    /// slow huge page the rest of the allocation is advised to small pages. The 12 MiB of a one-image run's buffers,
    /// 14 runs 3 s apart each way: huge pages only, 9 under 1 ms and the rest 3.7–25.4 ms; with this, 7 under 1.6 ms
    /// and the rest 6.4–8.4 ms (the mean 4.9 → 4.1 ms, the worst case a third). The small pages are populated a
    /// quarter megabyte per call (MADV_POPULATE_WRITE, ~0.7 µs a page) and then touched: on a VM whose page faults
    /// trap to the host (session 18) a first touch costs ~12 µs, and after the populate still ~6 µs (the host maps a
    /// page at the first store from user mode) but no fault; elsewhere the touches find their pages mapped. The 2 MiB
    /// after a first huge page (a C probe, runs 4 s apart): touched 7.7–8.8 ms, populated and touched 4.1; populated
    /// only 0.5 ms, but the first writes then took 2.7–3.8 ms, which would land in the inference. In the process, a
    /// slow first huge page had made the prefault 12–16 ms.
    /// </remarks>
    public static void Prefault(void* p, nuint bytes) => Prefault(p, bytes, SlowHugePage);

    /// <summary><see cref="Prefault(void*, nuint)"/> with the slow fault's threshold in Stopwatch ticks (tests: −1, every one slow).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Prefault(void* p, nuint bytes, long slowHugePage)
    {
        if (bytes < HugePage || !OperatingSystem.IsLinux()) return;
        byte* b = (byte*)p;
        for (nuint at = 0; at < bytes; at += HugePage)
        {
            long started = Stopwatch.GetTimestamp();
            b[at] = 0;
            if (Stopwatch.GetTimestamp() - started <= slowHugePage || at + HugePage >= bytes) continue;
            nuint rest = at + HugePage;
            MemoryMap.Advise(b + rest, Mapped(bytes) - rest, MemoryMap.MadvNoHugePage);
            for (nuint step = rest; step < bytes; step += PopulateStep)
            {
                nuint end = Math.Min(Mapped(bytes), step + PopulateStep);
                MemoryMap.PopulateWrite(b + step, b + end);
                for (nuint page = step; page < end; page += 4096) b[page] = 0; // mapped already: cheap, except on a VM (remarks)
            }
            return;
        }
    }

    /// <summary>
    /// Small pages are populated this many bytes per call (64 pages, ~50 µs): between calls the mmap lock is free
    /// for the decoding thread's GC, which a single call over the whole rest would hold off for milliseconds.
    /// </summary>
    private const nuint PopulateStep = 256 << 10;

    /// <summary>A huge page's fault beyond this (0.5 ms) came from the host (see <see cref="Prefault(void*, nuint)"/>); ~0.1 ms is usual.</summary>
    internal static readonly long SlowHugePage = Stopwatch.Frequency / 2000;

    public static void Free(void* p, nuint bytes)
    {
        if (bytes < HugePage || !OperatingSystem.IsLinux()) NativeMemory.AlignedFree(p);
        else MemoryMap.Unmap(p, Mapped(bytes));
    }

    private static nuint Mapped(nuint bytes) => (bytes + HugePage - 1) & ~(HugePage - 1);
}
