using ResNet.Runtime.Images;
using Xunit;

namespace ResNet.Tests;

public class ScratchPlanesTests
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
                var plane = ScratchPlanes.Rent(1000 + rng.Next(3) * 500, out _);
                if (plane.Length < 1000) { Interlocked.Increment(ref short_); continue; }
                plane.AsSpan(0, 1000).Fill((byte)id);
                Thread.SpinWait(rng.Next(50));
                if (plane.AsSpan(0, 1000).IndexOfAnyExcept((byte)id) >= 0) Interlocked.Increment(ref twice);
                ScratchPlanes.Return(plane);
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
        ScratchPlanes.Return(new byte[100]);
        Assert.True(ScratchPlanes.Rent(5000, out _).Length >= 5000);
    }
}
