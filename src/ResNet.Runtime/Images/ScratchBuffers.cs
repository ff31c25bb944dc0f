namespace ResNet.Runtime.Images;

/// <summary>
/// A few large buffers kept between images made into tensors: decoded JPEG planes, PNG scanlines and pixels. A fresh array's
/// pages are new to the process each time (the GC decommits the large-object regions it frees), and on a VM that
/// traps page faults filling them costs more than the decoding: a program classifying photo after photo spent
/// ~2.5 ms of ~5 per 768×576 JPEG on it. Only buffers no caller can see are kept: those of an image decoded for a
/// tensor, returned once the tensor is made (<see cref="ImageNetTransform"/>).
/// </summary>
internal static class ScratchBuffers
{
    /// <summary>Buffers larger than this are not kept (a 12-megapixel photo's luma is 12 MB).</summary>
    public const int MaxKeptBytes = 8 << 20;

    private static readonly byte[]?[] Kept = new byte[]?[6];

    private static int _evict;

    /// <summary>Tests: how many buffers were handed out again.</summary>
    internal static long Reused;

    /// <summary>
    /// A kept buffer of at least <paramref name="length"/> bytes (the smallest that fits; with <paramref name="exact"/>
    /// only one of that length), else a new one (<paramref name="fresh"/>). Its contents are whatever they were.
    /// </summary>
    public static byte[] Rent(int length, out bool fresh, bool exact = false)
    {
        for (int attempt = 0; attempt < 2; attempt++)
        {
            int best = -1, bestLength = int.MaxValue;
            for (int i = 0; i < Kept.Length; i++)
            {
                var a = Volatile.Read(ref Kept[i]); // other threads take and give back meanwhile: read each slot once
                if (a != null && (exact ? a.Length == length : a.Length >= length) && a.Length < bestLength) (best, bestLength) = (i, a.Length);
            }
            if (best < 0) break;
            var taken = Interlocked.Exchange(ref Kept[best], null);
            if (taken != null && (exact ? taken.Length == length : taken.Length >= length))
            {
                Interlocked.Increment(ref Reused);
                fresh = false;
                return taken;
            }
            if (taken != null) Return(taken); // another thread swapped in another one meanwhile
        }
        fresh = true;
        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>
    /// Keeps <paramref name="buffer"/> for a later image: in a free slot, else in place of a kept one (the slots
    /// in turn), so that sizes no image asks for any more do not hold the slots forever.
    /// </summary>
    public static void Return(byte[] buffer)
    {
        if (buffer.Length > MaxKeptBytes) return;
        for (int i = 0; i < Kept.Length; i++)
            if (Interlocked.CompareExchange(ref Kept[i], buffer, null) == null) return;
        Volatile.Write(ref Kept[(int)((uint)Interlocked.Increment(ref _evict) % Kept.Length)], buffer);
    }
}
