using System.Runtime.InteropServices;
using Xunit;

namespace ResNet.Tests;

/// <summary>Which pages of a mapping are in memory (mincore), for the tests of what the runtime maps ahead.</summary>
internal static unsafe partial class PageResidency
{
    /// <summary>Pages of [<paramref name="start"/>, +<paramref name="length"/>) not resident; the start is a page's.</summary>
    public static int Missing(void* start, nuint length) => Count(start, length, resident: false);

    /// <summary>Pages of [<paramref name="start"/>, +<paramref name="length"/>) resident; the start is a page's.</summary>
    public static int Present(void* start, nuint length) => Count(start, length, resident: true);

    private static int Count(void* start, nuint length, bool resident)
    {
        var vector = new byte[(length + 4095) / 4096];
        fixed (byte* v = vector) Assert.Equal(0, Mincore(start, length, v));
        return vector.Count(r => ((r & 1) != 0) == resident);
    }

    [LibraryImport("libc", EntryPoint = "mincore")]
    private static partial int Mincore(void* address, nuint length, byte* vector);
}
