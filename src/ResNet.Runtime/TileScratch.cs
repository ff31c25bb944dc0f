namespace ResNet.Runtime;

/// <summary>
/// Each thread's scratch for the Winograd kernels' transformed tiles (a work item keeps up to ~640 KB of them), in
/// one 2 MiB huge page instead of on the thread's stack. On a VM whose page faults trap to the host, the first store
/// to a 4 KiB page costs ~5 µs even after MADV_POPULATE_WRITE mapped it (the host backs the page only then; a C probe:
/// 5.3 µs a page populated, 0.02 in a populated huge page), so a first pass paid ~1 ms per thread for the ~200 stack
/// pages its tiles covered. A huge page is also 64-byte aligned, where stackalloc gave 16: every vector load and
/// store of the tiles now stays within one cache line. Mapped once per thread, and only for networks whose kernels
/// keep tiles (not an exact one), before the first layer where the network can (its constructor; a pool's workers
/// get theirs from the thread that builds the network, see <see cref="WorkerPool.MapStacks"/>), else at the first
/// use; freed when the thread's last reference goes (its owner's finalizer), a worker's with its pool.
/// </summary>
public static unsafe class TileScratch
{
    /// <summary>
    /// Bytes of every thread's scratch: one huge page. A network whose kernels need more
    /// (<see cref="IsaLayout.TileFloats"/>) is refused when built; the generator plans ResNet-18's within 640 KB.
    /// </summary>
    public const int Bytes = 2 << 20;

    [ThreadStatic] private static float* t_tiles;
    [ThreadStatic] private static Owner? t_owner;

    /// <summary>This thread's scratch, <see cref="Bytes"/> long and 64-byte aligned; mapped now if it was not.</summary>
    public static float* Tiles => t_tiles != null ? t_tiles : Map();

    /// <summary>Whether this thread has its scratch.</summary>
    internal static bool Mapped => t_tiles != null;

    /// <summary>Maps this thread's scratch, once per thread: one huge page faulted in at once.</summary>
    internal static float* Map()
    {
        if (t_tiles != null) return t_tiles;
        float* p = Allocate();
        t_owner = new Owner(p);
        return t_tiles = p;
    }

    /// <summary>A scratch, faulted in by the calling thread, for <see cref="Use"/> on another; free it with <see cref="Free"/>.</summary>
    internal static float* Allocate()
    {
        void* p = HugePages.Allocate(Bytes);
        HugePages.Prefault(p, Bytes);
        return (float*)p;
    }

    internal static void Free(float* tiles) => HugePages.Free(tiles, Bytes);

    /// <summary>
    /// Makes <paramref name="tiles"/> (from <see cref="Allocate"/>) this thread's scratch unless it has one; the
    /// caller frees it once the thread has ended (a <see cref="WorkerPool"/>'s worker).
    /// </summary>
    internal static void Use(float* tiles)
    {
        if (t_tiles == null) t_tiles = tiles;
    }

    /// <summary>Frees a thread's scratch once the thread is gone (its thread-static reference with it).</summary>
    private sealed class Owner(float* memory)
    {
        ~Owner() => Free(memory);
    }
}
