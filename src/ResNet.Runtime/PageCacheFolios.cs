using System.Runtime.InteropServices;

namespace ResNet.Runtime;

/// <summary>
/// Keeps a mapped packed-cache file in 2 MiB page-cache folios, piece by piece. A file written in 2 MiB blocks, or
/// read from disk through a huge-page-advised mapping, sits in 2 MiB folios, each mapped by one fault and unmapped
/// as one entry; but the page cache can later drop part of a folio's range (reclaim; on this VM also DAMON's
/// pageout of cold memory), and what is read back into a partly cached range comes in small folios. Measured on
/// the AVX-512 packing's 97 MB: a warm 2 MiB piece maps in ~3 µs, one in small folios in 50–60 µs, and five such
/// pieces (of 46) added 0.7 ms to the touch and 0.7 ms to the unmap of every run. So the touch counts each piece's
/// page faults, and a piece that took more than one or two (one per 64 KiB read, as the kernel's fault-around maps
/// small folios) is dropped from the page cache when the mapping goes, for the next run to read from disk into one
/// 2 MiB folio (~1 ms once; a piece read from disk so is one fault). The file's last, partial piece can never be
/// mapped whole and is not judged.
/// </summary>
/// <remarks>
/// Counted, not timed: session 12 timed each piece against 20 µs, then looked again at the slow ones after zapping
/// this mapping's entries for them (a piece slow because it came from disk maps fast the second time). On session
/// 16's VM, whose faults trap to the host, a piece in one 2 MiB folio took 17–134 µs and one in small folios ~600,
/// so the time told neither apart reliably, and the second look cost ~0.6 ms per small piece at exit.
/// </remarks>
internal static unsafe partial class PageCacheFolios
{
    public const int Piece = 2 << 20;

    /// <summary>More faults than this for a piece's touch: it is not in one 2 MiB folio (see the class).</summary>
    internal const int MaxFaults = 2;

    /// <summary>
    /// Maps the pages of <paramref name="length"/> bytes at <paramref name="p"/> (as <see cref="MemoryMap.Touch"/>),
    /// a piece at a time; returns the whole pieces whose touch took more than <paramref name="maxFaults"/> page
    /// faults (<see cref="MaxFaults"/>), or null if none did or the faults cannot be counted (not Linux).
    /// </summary>
    public static List<int>? Touch(byte* p, nuint length, int maxFaults)
    {
        List<int>? small = null;
        int whole = (int)(length / Piece);
        long faults = ThreadFaults();
        for (int i = 0; i <= whole; i++)
        {
            nuint start = (nuint)i * Piece;
            if (start >= length) break;
            MemoryMap.Touch(p + start, Math.Min(Piece, length - start));
            long before = faults;
            faults = ThreadFaults();
            if (i < whole && before >= 0 && faults - before > maxFaults) (small ??= []).Add(i);
        }
        return small;
    }

    /// <summary>Page faults this thread has taken (minor and major), or −1 where they cannot be read.</summary>
    internal static long ThreadFaults()
    {
        if (!OperatingSystem.IsLinux()) return -1;
        var usage = stackalloc long[18]; // struct rusage: two timevals, then 14 longs
        return GetRusage(RusageThread, usage) == 0 ? usage[MinorFaults] + usage[MinorFaults + 1] : -1;
    }

    private const int RusageThread = 1;
    private const int MinorFaults = 8; // ru_minflt after ru_utime, ru_stime (2 longs each) and four longs; ru_majflt next

    [LibraryImport("libc", EntryPoint = "getrusage")]
    private static partial int GetRusage(int who, long* usage);

    /// <summary>
    /// Asks the kernel to drop <paramref name="pieces"/> of <paramref name="file"/> from the page cache. It drops
    /// only clean pages nobody maps, so this runs after the mapping is gone, and another process's mapping of the
    /// same file simply keeps its pages (a later run tries again). False if the file could not be opened.
    /// </summary>
    public static bool Drop(string file, IEnumerable<int> pieces)
    {
        try
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            int fd = (int)handle.DangerousGetHandle();
            foreach (int i in pieces) Advise(fd, (long)i * Piece, Piece, FadvDontNeed);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Pieces of a file are dropped at most every <see cref="RepairInterval"/>, marked by the file's modification
    /// time (which nothing else of the cache reads: names hash the weights file's time, pruning the access time).
    /// Where the kernel or file system keeps no large folios every piece stays small, and the extra cold read must
    /// not be every run's.
    /// </summary>
    internal static bool MayRepair(string file, DateTime now) => File.GetLastWriteTimeUtc(file) < now - RepairInterval;

    /// <summary>
    /// Ten minutes (it was an hour): on session 16's VM, 22–30 of the 46 pieces were small within half an hour of
    /// the file being written, and a one-image run then took ~50 ms instead of ~24, while reading the whole file
    /// back from disk took ~16 ms once (~100 ms on session 12's slower disk). A repair that cannot help (no large
    /// folios at all) so costs one cold read per ten minutes.
    /// </summary>
    internal static readonly TimeSpan RepairInterval = TimeSpan.FromMinutes(10);

    /// <summary>Marks <paramref name="file"/> as repaired now; false (and so no repair) where its time cannot be set.</summary>
    internal static bool MarkRepaired(string file, DateTime now)
    {
        try
        {
            File.SetLastWriteTimeUtc(file, now);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    internal const int FadvDontNeed = 4;

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    internal static partial int Advise(int fd, long offset, long length, int advice);
}
