using System.Runtime.CompilerServices;
using ResNet.Runtime;
using Xunit;

namespace ResNet.Tests;

/// <summary>The kernels' stack is mapped before the first inference: every page of <see cref="StackPages.Bytes"/> below the caller.</summary>
public sealed class StackPagesTests
{
    [Fact]
    public void APopulatedStackIsResidentThroughout()
    {
        if (!OperatingSystem.IsLinux()) return;
        var (populated, missing) = OnFreshThread(() => StackPages.Populate());
        Assert.True(populated, "MADV_POPULATE_WRITE failed (Linux 5.14 or later has it)");
        Assert.Equal(0, missing);
    }

    [Fact]
    public void MapLeavesNoPageOfTheStackUnmapped()
    {
        if (!OperatingSystem.IsLinux()) return;
        var (_, missing) = OnFreshThread(() =>
        {
            StackPages.Map();
            return true;
        });
        Assert.Equal(0, missing);
    }

    /// <summary>
    /// Runs <paramref name="map"/> on a new thread, then counts the pages not resident between 16 KiB below the
    /// mapped range's bottom and the frame that mapped it (the frames between hold a few KiB at most).
    /// </summary>
    private static (bool Result, int Missing) OnFreshThread(Func<bool> map)
    {
        (bool, int) result = default;
        var thread = new Thread(() => result = MapAndCount(map), 16 << 20);
        thread.Start();
        thread.Join();
        return result;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe (bool, int) MapAndCount(Func<bool> map)
    {
        bool mapped = map();
        byte here = 0;
        nuint top = ((nuint)(&here) & ~(nuint)4095) - 4 * 4096;
        nuint bottom = top - (StackPages.Bytes - 8 * 4096);
        return (mapped, PageResidency.Missing((void*)bottom, top - bottom));
    }
}
