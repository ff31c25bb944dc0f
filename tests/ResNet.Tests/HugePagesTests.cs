using ResNet.Runtime;
using Xunit;

namespace ResNet.Tests;

/// <summary>The activation buffers' memory: zeroed, aligned, and whole whichever way its pages are faulted in.</summary>
public sealed class HugePagesTests
{
    [Theory]
    [InlineData(false)] // no fault is slow: huge pages throughout
    [InlineData(true)]  // the first is slow: the rest advised to small pages and touched one by one
    public unsafe void PrefaultedMemoryIsZeroAndUsableThroughout(bool firstIsSlow)
    {
        nuint bytes = (5u << 20) + 12345;
        byte* p = (byte*)HugePages.Allocate(bytes);
        try
        {
            Assert.Equal(0u, (nuint)p % 64);
            HugePages.Prefault(p, bytes, firstIsSlow ? -1 : long.MaxValue);
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
}
