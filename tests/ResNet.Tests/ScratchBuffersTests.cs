using ResNet.Runtime.Images;
using Xunit;

namespace ResNet.Tests;

/// <summary>In the image tests' collection, which runs alone: no decoding elsewhere takes or gives back buffers meanwhile.</summary>
[Collection(nameof(ImageTests))]
public class ScratchBuffersTests
{
    [Fact]
    public void APlaneIsNeverHeldByTwoAtOnce()
    {
        // Threads rent, mark, check and give back planes of mixed sizes as concurrent decodings do; a plane handed out
        // twice would show another thread's mark.
        int twice = 0, short_ = 0;
        var threads = Enumerable.Range(1, 4).Select(id => new Thread(() =>
        {
            var rng = new Random(id);
            for (int i = 0; i < 20_000; i++)
            {
                var plane = ScratchBuffers.Rent(1000 + rng.Next(3) * 500, out _);
                if (plane.Length < 1000) { Interlocked.Increment(ref short_); continue; }
                plane.AsSpan(0, 1000).Fill((byte)id);
                Thread.SpinWait(rng.Next(50));
                if (plane.AsSpan(0, 1000).IndexOfAnyExcept((byte)id) >= 0) Interlocked.Increment(ref twice);
                ScratchBuffers.Return(plane);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(0, short_);
        Assert.Equal(0, twice);
    }

    [Fact]
    public void ASmallerKeptPlaneIsNotHandedOutForALargerOne()
    {
        ScratchBuffers.Return(new byte[100]);
        Assert.True(ScratchBuffers.Rent(5000, out _).Length >= 5000);
    }

    [Fact]
    public void AFullSetOfSlotsMakesRoomForTheBufferGivenBack()
    {
        // Sizes no image asks for any more must not hold the slots: the buffer given back replaces one of them.
        for (int i = 0; i < 10; i++) ScratchBuffers.Return(new byte[100]);
        var buffer = new byte[5000];
        ScratchBuffers.Return(buffer);
        Assert.Same(buffer, ScratchBuffers.Rent(5000, out bool fresh, exact: true));
        Assert.False(fresh);
    }
}
