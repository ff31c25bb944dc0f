using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ResNet.Runtime;

/// <summary>
/// Keeps a mapped packed-cache file in 2 MiB page-cache folios, piece by piece. A file written in 2 MiB blocks, or
/// read from disk through a huge-page-advised mapping, sits in 2 MiB folios, each mapped by one fault and unmapped
/// as one entry; but the page cache can later drop part of a folio's range (reclaim; on this VM also DAMON's
/// pageout of cold memory), and what is read back into a partly cached range comes in small folios. Measured here
/// on the AVX-512 packing's 97 MB: a warm 2 MiB piece maps in ~3 µs, one in small folios in 50–60 µs, and five such
/// pieces (of 46) added 0.7 ms to the touch and 0.7 ms to the unmap of every run. So the touch is timed per piece,
/// and a piece found in small folios is dropped from the page cache when the mapping goes, for the next run to read
/// from disk into one 2 MiB folio (~1 ms once). The file's last, partial piece can never be mapped whole and is
/// not judged.
/// </summary>
internal static unsafe partial class PageCacheFolios
{
    public const int Piece = 2 << 20;

    /// <summary>Slower than this, a piece's first touch either read it from disk or met small folios (see the class).</summary>
    internal static readonly long SlowTicks = Stopwatch.Frequency / 50_000; // 20 µs

    /// <summary>
    /// Maps the pages of <paramref name="length"/> bytes at <paramref name="p"/> (as <see cref="MemoryMap.Touch"/>),
    /// a piece at a time; returns the whole pieces whose touch took longer than <paramref name="slowTicks"/>
    /// (<see cref="SlowTicks"/>), or null if none did.
    /// </summary>
    public static List<int>? Touch(byte* p, nuint length, long slowTicks)
    {
        List<int>? slow = null;
        int whole = (int)(length / Piece);
        for (int i = 0; i <= whole; i++)
        {
            nuint start = (nuint)i * Piece;
            if (start >= length) break;
            long began = Stopwatch.GetTimestamp();
            MemoryMap.Touch(p + start, Math.Min(Piece, length - start));
            if (i < whole && Stopwatch.GetTimestamp() - began > slowTicks) (slow ??= []).Add(i);
        }
        return slow;
    }

    /// <summary>
    /// Of the <paramref name="slow"/> pieces, those in small folios: slow again once this mapping's entries for them
    /// are gone (MADV_DONTNEED on a private read-only file mapping drops only those, not the page cache), where a
    /// piece that was slow because it came from disk now maps in one fault.
    /// </summary>
    public static int[] Small(byte* p, IEnumerable<int> slow, long slowTicks)
    {
        var small = new List<int>();
        foreach (int i in slow)
        {
            byte* piece = p + (nuint)i * Piece;
            if (MemoryMap.Advise(piece, Piece, MemoryMap.MadvDontNeed) != 0) continue;
            long began = Stopwatch.GetTimestamp();
            MemoryMap.Touch(piece, Piece);
            if (Stopwatch.GetTimestamp() - began > slowTicks) small.Add(i);
        }
        return [.. small];
    }

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
    /// Pieces of a file are looked into and dropped at most hourly, marked by the file's modification time (which
    /// nothing else of the cache reads: names hash the weights file's time, pruning the access time). Where the
    /// kernel or file system keeps no large folios every piece stays small, and the extra cold read must not be
    /// every run's.
    /// </summary>
    internal static bool MayRepair(string file, DateTime now) => File.GetLastWriteTimeUtc(file) < now - RepairInterval;

    internal static readonly TimeSpan RepairInterval = TimeSpan.FromHours(1);

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

    private const int FadvDontNeed = 4;

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int Advise(int fd, long offset, long length, int advice);
}
