namespace ResNet.Runtime;

/// <summary>
/// Maps the pages of a just-allocated array in one call (<see cref="MemoryMap.PopulateWrite"/>) before a loop writes
/// it, instead of one fault per page as the loop reaches each. Contents are left as they are; where the call is
/// unavailable (not Linux, or before 5.14) nothing happens and the loop faults as before.
/// </summary>
internal static unsafe class FreshPages
{
    /// <summary>Elements [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="array"/>, the whole pages among them.</summary>
    public static void Populate<T>(T[] array, long start, long end) where T : unmanaged
    {
        if (!OperatingSystem.IsLinux() || (end - start) * sizeof(T) < 4 * 4096) return;
        fixed (T* p = array) MemoryMap.PopulateWrite(p + start, p + end);
    }
}
