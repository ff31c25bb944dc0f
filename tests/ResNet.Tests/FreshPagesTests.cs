using ResNet.Runtime;
using Xunit;

namespace ResNet.Tests;

/// <summary>A fresh array's pages mapped ahead of the loop that writes it: the range asked for, contents untouched.</summary>
public sealed class FreshPagesTests
{
    [Fact]
    public unsafe void TheWholePagesOfTheRangeAreMappedAndTheContentsKept()
    {
        if (!OperatingSystem.IsLinux()) return;
        const int pages = 256;
        // A megabyte on the pinned object heap: fresh pages, and the array cannot move while its pages are looked at.
        var array = GC.AllocateUninitializedArray<float>(pages * 1024 + 1000, pinned: true);
        array[5] = 1.5f;
        long start = 3000, end = array.Length - 2000;
        FreshPages.Populate(array, start, end);
        fixed (float* p = array)
        {
            nuint from = ((nuint)(p + start) + 4095) & ~(nuint)4095, to = (nuint)(p + end) & ~(nuint)4095;
            Assert.Equal(0, PageResidency.Missing((void*)from, to - from));
        }
        Assert.Equal(1.5f, array[5]);
    }
}
