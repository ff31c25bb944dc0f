using System.Runtime.InteropServices;

namespace ResNet.Runtime;

/// <summary>mmap, munmap and madvise (Linux x86-64 values), for the huge-page buffers and the mapped weights cache.</summary>
internal static unsafe partial class MemoryMap
{
    public const int ProtRead = 1, ProtReadWrite = 3;
    public const int MapPrivate = 0x02, MapAnonymous = 0x20, MapPopulate = 0x8000;
    public const int MadvHugePage = 14, MadvPopulateRead = 22, MadvPopulateWrite = 23;

    /// <summary>What mmap returns on failure.</summary>
    public static readonly void* Failed = (void*)-1;

    [LibraryImport("libc", EntryPoint = "mmap")]
    public static partial void* Map(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    public static partial int Unmap(void* address, nuint length);

    [LibraryImport("libc", EntryPoint = "madvise")]
    public static partial int Advise(void* address, nuint length, int advice);

    /// <summary>
    /// MADV_POPULATE_READ or _WRITE in 2 MiB steps. One call holds the process's mmap lock from start to end,
    /// and any other thread that maps or protects memory meanwhile waits for all of it: under strace, the
    /// thread decoding the image (the GC committing heap for it) sat 3.75 ms in an mprotect behind the packed
    /// weights' populate. Between steps a waiting writer gets in (one-image run: median 22.47 vs 22.61 ms over
    /// 30 alternations, p25 21.81 vs 22.15, on a slow morning of this host). Returns the first failure (0: all succeeded).
    /// </summary>
    public static int Populate(void* address, nuint length, int advice)
    {
        const nuint Step = 2 << 20;
        for (nuint done = 0; done < length; done += Step)
        {
            int result = Advise((byte*)address + done, Math.Min(Step, length - done), advice);
            if (result != 0) return result;
        }
        return 0;
    }
}
