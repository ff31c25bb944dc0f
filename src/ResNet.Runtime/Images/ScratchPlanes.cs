namespace ResNet.Runtime.Images;

/// <summary>
/// A few decoded-JPEG planes kept between images made into tensors. A fresh array's pages are new to the process
/// each time (the GC decommits the large-object regions it frees), and on a VM that traps page faults filling
/// them costs more than the decoding: a program classifying photo after photo spent ~2.5 ms of ~6 per 768×576
/// JPEG on it. Only planes no caller can see are kept: those of an image decoded for a tensor, returned once the
/// tensor is made (<see cref="ImageNetTransform"/>).
/// </summary>
internal static class ScratchPlanes
{
    /// <summary>Planes larger than this are not kept (a 12-megapixel photo's luma is 12 MB).</summary>
    private const int MaxKeptBytes = 8 << 20;

    private static readonly byte[]?[] Kept = new byte[]?[6];

    /// <summary>Tests: how many planes were handed out again.</summary>
    internal static long Reused;

    /// <summary>A kept plane of at least <paramref name="length"/> bytes (the smallest that fits), else a new one (<paramref name="fresh"/>).</summary>
    public static byte[] Rent(int length, out bool fresh)
    {
        for (int attempt = 0; attempt < 2; attempt++)
        {
            int best = -1, bestLength = int.MaxValue;
            for (int i = 0; i < Kept.Length; i++)
            {
                var a = Volatile.Read(ref Kept[i]); // other threads take and give back meanwhile: read each slot once
                if (a != null && a.Length >= length && a.Length < bestLength) (best, bestLength) = (i, a.Length);
            }
            if (best < 0) break;
            var taken = Interlocked.Exchange(ref Kept[best], null);
            if (taken != null && taken.Length >= length)
            {
                Interlocked.Increment(ref Reused);
                fresh = false;
                return taken;
            }
            if (taken != null) Return(taken); // another thread swapped in a smaller one meanwhile
        }
        fresh = true;
        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>Keeps <paramref name="plane"/> for a later image if a slot is free (else the GC takes it).</summary>
    public static void Return(byte[] plane)
    {
        if (plane.Length > MaxKeptBytes) return;
        for (int i = 0; i < Kept.Length; i++)
            if (Interlocked.CompareExchange(ref Kept[i], plane, null) == null) return;
    }
}
