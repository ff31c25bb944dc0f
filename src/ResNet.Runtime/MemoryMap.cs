using System.Runtime.InteropServices;

namespace ResNet.Runtime;

/// <summary>mmap, munmap and madvise (Linux x86-64 values), for the huge-page buffers and the mapped weights cache.</summary>
internal static unsafe partial class MemoryMap
{
    public const int ProtRead = 1, ProtReadWrite = 3;
    public const int MapPrivate = 0x02, MapAnonymous = 0x20;
    public const int MadvHugePage = 14, MadvNoHugePage = 15, MadvPopulateWrite = 23;

    /// <summary>What mmap returns on failure.</summary>
    public static readonly void* Failed = (void*)-1;

    [LibraryImport("libc", EntryPoint = "mmap")]
    public static partial void* Map(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    public static partial int Unmap(void* address, nuint length);

    [LibraryImport("libc", EntryPoint = "madvise")]
    public static partial int Advise(void* address, nuint length, int advice);

    /// <summary>
    /// Maps the whole pages within [<paramref name="start"/>, <paramref name="end"/>) writable in one call
    /// (MADV_POPULATE_WRITE, Linux 5.14 and later) instead of a fault per page at first touch; contents are left as
    /// they are. False where the call failed (or there is no whole page).
    /// </summary>
    public static bool PopulateWrite(void* start, void* end)
    {
        nuint from = ((nuint)start + Page - 1) & ~(nuint)(Page - 1), to = (nuint)end & ~(nuint)(Page - 1);
        return to > from && Advise((void*)from, to - from, MadvPopulateWrite) == 0;
    }

    private const int Page = 4096;

    /// <summary>
    /// Maps a file mapping's pages by reading a byte every 64 KiB: each fault maps the pages around it that the
    /// page cache holds (the kernel's fault-around, 64 KiB by default; a 2 MiB folio at once where it has one).
    /// Not MADV_POPULATE_READ, even in steps: it takes the mmap lock, and the thread decoding the image, whose GC
    /// commits heap with mprotect (a writer), and the populate kept queueing behind each other — a one-image run
    /// decoded in 7.9 ms beside it instead of 5.1, and took 21.7 ms instead of 18.9 (medians of 25 alternations).
    /// A fault takes only its VMA's lock. Alone, the 97 MB of weights map in 0.7 ms this way, 1.2 ms populated.
    /// </summary>
    public static int Touch(void* address, nuint length)
    {
        int sum = 0;
        for (nuint at = 0; at < length; at += 64 << 10) sum += Volatile.Read(ref ((byte*)address)[at]);
        return sum;
    }
}
