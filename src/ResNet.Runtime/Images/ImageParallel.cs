namespace ResNet.Runtime.Images;

/// <summary>
/// Splits the row loops of decoding and resizing across the cores when an image is large enough to repay it: a
/// 12-megapixel photo spends tens of milliseconds in them, on the critical path of a one-image run, while the
/// other core has nothing to do. Every row is computed exactly as on one thread, so the output is the same bytes.
/// </summary>
internal static class ImageParallel
{
    /// <summary>Below this much work (in inner-loop steps) one thread is faster than handing out chunks (tests lower it).</summary>
    internal static long MinWork = 2_000_000;

    /// <summary>Whether this much work (in inner-loop steps) is worth a second core.</summary>
    public static bool Worthwhile(long work) => work >= MinWork && Environment.ProcessorCount > 1;

    /// <summary>Runs <paramref name="body"/>(from, to) over [0, rows) in contiguous chunks, in parallel when worth it.</summary>
    public static void ForRows(int rows, long workPerRow, Action<int, int> body)
    {
        int chunks = Worthwhile(rows * workPerRow) ? Math.Min(rows, 4 * Environment.ProcessorCount) : 1;
        if (chunks <= 1)
        {
            body(0, rows);
            return;
        }
        Parallel.For(0, chunks, c => body((int)((long)rows * c / chunks), (int)((long)rows * (c + 1) / chunks)));
    }
}
