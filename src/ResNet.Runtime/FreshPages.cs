namespace ResNet.Runtime;

/// <summary>
/// Maps the pages of a just-allocated array in one call (MADV_POPULATE_WRITE) before a loop writes it, instead of
/// one fault per page as the loop reaches each. Contents are left as they are; where the call is unavailable (not
/// Linux, or before 5.14) nothing happens and the loop faults as before.
/// </summary>
internal static unsafe class FreshPages
{
    private const int Page = 4096;

    /// <summary>Elements [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="array"/>, the whole pages among them.</summary>
    public static void Populate<T>(T[] array, long start, long end) where T : unmanaged
    {
        if (!OperatingSystem.IsLinux() || (end - start) * sizeof(T) < 4 * Page) return;
        fixed (T* p = array)
        {
            nuint from = ((nuint)(p + start) + Page - 1) & ~(nuint)(Page - 1);
            nuint to = (nuint)(p + end) & ~(nuint)(Page - 1);
            if (to > from) MemoryMap.Advise((void*)from, to - from, MemoryMap.MadvPopulateWrite);
        }
    }
}
