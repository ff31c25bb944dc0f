using System.Runtime.InteropServices;
using ResNet.Runtime;
using Xunit;

namespace ResNet.Tests;

/// <summary>The activation buffers' memory: zeroed, aligned, and whole whichever way its pages are faulted in.</summary>
public sealed class HugePagesTests
{
    [Theory]
    [InlineData(false)] // no fault is slow: huge pages throughout
    [InlineData(true)]  // the first is slow: the rest advised to small pages, populated in steps and touched
    public unsafe void PrefaultedMemoryIsZeroAndUsableThroughout(bool firstIsSlow)
    {
        nuint bytes = (5u << 20) + 12345;
        byte* p = (byte*)HugePages.Allocate(bytes);
        try
        {
            Assert.Equal(0u, (nuint)p % 64);
            HugePages.Prefault(p, bytes, firstIsSlow ? -1 : long.MaxValue);
            // Behind a slow huge page every page is mapped before anything else writes it (populated, then touched; where
            // MADV_POPULATE_WRITE is missing, touched); with huge pages that holds only where the kernel grants them.
            if (firstIsSlow && OperatingSystem.IsLinux()) Assert.Equal(0, NonResidentPages(p, bytes));
            var span = new Span<byte>(p, (int)bytes);
            Assert.True(span.IndexOfAnyExcept((byte)0) < 0);
            span.Fill(7);
            Assert.True(span.IndexOfAnyExcept((byte)7) < 0);
        }
        finally
        {
            HugePages.Free(p, bytes);
        }
    }

    private static unsafe int NonResidentPages(byte* p, nuint bytes)
    {
        int pages = (int)((bytes + 4095) / 4096);
        var vector = new byte[pages];
        fixed (byte* v = vector) Assert.Equal(0, mincore(p, bytes, v));
        return vector.Count(b => (b & 1) == 0);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern unsafe int mincore(void* address, nuint length, byte* vector);
}
