using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ResNet.Runtime;

/// <summary>
/// Maps the part of a thread's stack a pass uses before the first inference, writable. Left to the kernels, the
/// runtime's stack probes would read each new page first, which maps the shared zero page; the kernel's first store
/// then faults again to replace it, and with the process running on another core, that replacement flushes the other
/// core's TLB by interrupt (a one-image run's inference went from 6.1–6.5 to 5.3–5.7 ms once the pages were written
/// beforehand, when the Winograd tiles were still kept on the stack). One MADV_POPULATE_WRITE maps them all without
/// a fault each (on a VM whose faults trap to the host, ~11 µs each). Where that call is missing, a store per page.
/// Since session 20 the tiles are in <see cref="TileScratch"/>, and what is left on the stack is frames.
/// </summary>
internal static partial class StackPages
{
    /// <summary>Stack a pass may use, with room to spare (its frames; the Winograd tiles are in <see cref="TileScratch"/>).</summary>
    internal const int Bytes = 128 << 10;
    /// <summary>Below a page, so the frame is not probed: the zeroing stores are the first touch.</summary>
    private const int FrameBytes = 3072;

    [ThreadStatic] private static bool t_mapped;

    /// <summary>Maps this thread's next <see cref="Bytes"/> of stack, once per thread.</summary>
    public static void Map()
    {
        if (t_mapped) return;
        t_mapped = true;
        if (IsLinuxMainThread()) GrowFirst();
        if (!Populate()) Touch(Bytes / FrameBytes);
    }

    /// <summary>
    /// Maps the <see cref="Bytes"/> below this frame writable in one call (MADV_POPULATE_WRITE, Linux 5.14 and
    /// later), which, unlike a store, leaves their contents alone; false where the call fails, and they are touched.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static unsafe bool Populate()
    {
        if (!OperatingSystem.IsLinux()) return false;
        byte here = 0;
        // The whole pages between: this frame's page is mapped already, and on the main thread the lowest one is
        // within what GrowFirst grew.
        return MemoryMap.PopulateWrite(&here - Bytes, &here);
    }

    /// <summary>
    /// Writes the deepest page <see cref="Populate"/> or <see cref="Touch"/> will reach, first. The main thread's stack
    /// mapping grows to a faulting address under the process's mmap lock, held for writing: touched top-down, that was
    /// 256 growths, each also stalling the decoding thread's heap commits; this way it is one (the loading's stack
    /// phase 0.59 → 0.37 ms, and the decoding beside it 3.36 → 3.10, medians of 30). The address, <see cref="Bytes"/> and a
    /// page down, is inside the range Touch's frames cover anyway (Bytes / 3 KiB frames plus their headers, called from
    /// the same frame) and below what Populate asks for (Bytes below its own frame, rounded up to a page). Only on the
    /// main thread: the kernel keeps at least 128 MiB below its stack free of other mappings, so the jump cannot land
    /// in one, while another thread's stack may end, past a one-page guard, at anything (Touch, going page by page,
    /// would stop at the guard; those stacks are mapped whole anyway and never grow).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void GrowFirst()
    {
        byte here = 0;
        Volatile.Write(ref *(&here - Bytes - 4096), here); // a page deeper than Populate reaches from its own frame
    }

    private static bool IsLinuxMainThread() =>
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
        && Syscall(SysGettid) == Environment.ProcessId;

    private const long SysGettid = 186; // x86-64

    [LibraryImport("libc", EntryPoint = "syscall")]
    private static partial long Syscall(long number);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe int Touch(int depth)
    {
        byte* frame = stackalloc byte[FrameBytes]; // zero-initialised: its first touch is a store
        return depth == 0 ? frame[0] : Touch(depth - 1) + frame[FrameBytes - 1];
    }
}
