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
}
