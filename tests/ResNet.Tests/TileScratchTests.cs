using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>The Winograd kernels' per-thread tile scratch: one aligned huge page per thread, and no kernel reaches past what its layout declares.</summary>
public sealed unsafe class TileScratchTests
{
    [Fact]
    public void EachThreadMapsItsOwnAlignedResidentScratchOnce()
    {
        var tiles = new nint[2];
        // Both threads hold their scratch until both have mapped one: a thread that ended first could have its page
        // freed (its owner finalized) and mapped again, at the same address, by the other.
        using var bothMapped = new Barrier(2);
        var threads = Enumerable.Range(0, 2).Select(i => new Thread(() =>
        {
            float* first = TileScratch.Map();
            Assert.True(first == TileScratch.Map() && first == TileScratch.Tiles, "mapped again on the same thread");
            Assert.Equal(0, (long)first % 64);
            if (OperatingSystem.IsLinux())
            {
                Assert.Equal(0, (long)first % (2 << 20)); // its own huge page
                Assert.Equal(0, PageResidency.Missing(first, TileScratch.Bytes));
            }
            tiles[i] = (nint)first;
            bothMapped.SignalAndWait(TimeSpan.FromSeconds(30));
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.NotEqual(tiles[0], tiles[1]);
    }

    [Fact]
    public void APoolsWorkersUseScratchOfTheirOwn()
    {
        using var pool = new WorkerPool(2);
        pool.MapStacks(tiles: true);
        s_first = 0;
        s_both = 0;
        var seen = new nint[8];
        fixed (nint* s = seen) pool.Run(&RecordTiles, new KernelArgs(null, null, null, (float*)s, null), seen.Length);
        Assert.DoesNotContain((nint)0, seen);
        Assert.Contains((nint)TileScratch.Tiles, seen);
        Assert.Equal(2, seen.Distinct().Count()); // this thread's and the worker's: each item ran on one of them
    }

    private static nint s_first;
    private static int s_both;

    /// <summary>Records the running thread's scratch per item; each item then waits (up to 5 s) until both threads have run one, so neither takes them all.</summary>
    private static void RecordTiles(in KernelArgs args, int begin, int end)
    {
        for (int i = begin; i < end; i++)
        {
            nint tiles = (nint)TileScratch.Tiles;
            ((nint*)args.Output)[i] = tiles;
            nint first = Interlocked.CompareExchange(ref s_first, tiles, 0);
            if (first != 0 && first != tiles) Volatile.Write(ref s_both, 1);
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (Volatile.Read(ref s_both) == 0 && waited.ElapsedMilliseconds < 5000) Thread.Yield();
        }
    }

    [Fact]
    public void OnlyNetworksWithWinogradKernelsMapIt()
    {
        bool afterExact = true, afterWinograd = false;
        var thread = new Thread(() =>
        {
            using (var exact = new ResNet18(RandomWeights.For(ResNet18.Network, 5), new NetworkOptions { Exact = true, Threads = 1 }))
            {
                exact.Run(new float[exact.InputLength], new float[exact.OutputLength]);
                afterExact = TileScratch.Mapped;
            }
            using var winograd = new ResNet18(RandomWeights.For(ResNet18.Network, 5), new NetworkOptions { Threads = 1 });
            afterWinograd = TileScratch.Mapped; // when built, not at the first layer
        });
        thread.Start();
        thread.Join();
        Assert.False(afterExact, "an exact network mapped a tile scratch it never uses");
        Assert.True(afterWinograd);
    }

    public static TheoryData<InstructionSet, int> IsasAndBatches()
    {
        var data = new TheoryData<InstructionSet, int>();
        foreach (var isa in new[] { InstructionSet.Avx512, InstructionSet.Avx2, InstructionSet.Portable }.Where(NetworkOptions.IsSupported))
        {
            data.Add(isa, 1);
            data.Add(isa, 3); // layer4's batched variant on AVX-512 and AVX2
        }
        return data;
    }

    /// <summary>
    /// The scratch is filled with a sentinel, a pass runs on this thread alone, and every float from the layout's
    /// TileFloats on must still hold it while some below it changed: a plan that under-counts what its kernels keep
    /// fails here instead of running past the scratch.
    /// </summary>
    [Theory]
    [MemberData(nameof(IsasAndBatches))]
    public void NoKernelWritesPastTheTilesItsLayoutDeclares(InstructionSet isa, int batch)
    {
        using var net = new ResNet18(RandomWeights.For(ResNet18.Network, 5), new NetworkOptions { InstructionSet = isa, MaxBatch = batch, Threads = 1 });
        Assert.InRange(net.TileFloats, 1, TileScratch.Bytes / sizeof(float));
        float* tiles = TileScratch.Tiles;
        const float Sentinel = -1.25e-37f;
        new Span<float>(tiles, TileScratch.Bytes / sizeof(float)).Fill(Sentinel);
        var input = new float[batch * net.InputLength];
        for (int i = 0; i < input.Length; i++) input[i] = (i % 97) / 97f - 0.5f;
        net.Run(input, new float[batch * net.OutputLength]);
        var used = new Span<float>(tiles, net.TileFloats);
        var beyond = new Span<float>(tiles + net.TileFloats, TileScratch.Bytes / sizeof(float) - net.TileFloats);
        Assert.True(used.IndexOfAnyExcept(Sentinel) >= 0, "no kernel used the tile scratch");
        Assert.Equal(-1, beyond.IndexOfAnyExcept(Sentinel));
    }
}
