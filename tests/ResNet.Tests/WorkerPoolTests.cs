using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>The worker pool runs every item exactly once, also when a layer arrives before its threads have started.</summary>
public class WorkerPoolTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task RunRightAfterConstructionDoesEveryItemOnce(int threads)
    {
        // Workers start asleep and may not be running yet when the first Run publishes its work: none may miss it
        // (one that did would leave Run waiting forever, hence the time limit).
        var work = Task.Run(() => Rounds(threads, 500));
        await Fixtures.EndsWithin(work, 60, "a Run did not finish: a worker missed it");
        await work;
    }

    [Fact]
    public async Task APoolWithMoreThreadsThanProcessorsBlocksInsteadOfPolling()
    {
        // A polling worker would take the core a thread still holding items needs: 3 or 4 threads on 2 cores ran a
        // pass 15× slower than 2 threads, 16 threads ~100×. Such a pool's workers block between layers, and still run
        // every item once.
        using (var fits = new WorkerPool(Environment.ProcessorCount)) Assert.True(fits.Polls);
        int threads = Environment.ProcessorCount + 2;
        using (var over = new WorkerPool(threads)) Assert.False(over.Polls);
        var work = Task.Run(() => Rounds(threads, 200));
        await Fixtures.EndsWithin(work, 60, "a Run did not finish: a worker missed it");
        await work;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    public unsafe void EveryThreadRunsThePrologueIntoItsOwnSlotFirst(int items)
    {
        // The prologue fills its thread's slot with ones; each item adds what it reads in its thread's slot,
        // so an item that ran before its thread's prologue, or read another slot, counts 0.
        const int prologueItems = 16, threads = 2;
        var slots = new float[threads * prologueItems];
        var counts = new int[items];
        for (int round = 0; round < 50; round++)
        {
            Array.Clear(slots);
            Array.Clear(counts);
            using var pool = new WorkerPool(threads);
            fixed (float* s = slots)
            fixed (int* c = counts)
            {
                pool.Run(&Fill, new KernelArgs(null, null, null, s, null), prologueItems,
                    &Add, new KernelArgs(s, (float*)c, null, null, null), items, prologueItems);
            }
            Assert.All(counts, n => Assert.Equal(1, n));
        }
    }

    [Fact]
    public void NetworksShareAPoolTheyDoNotStop()
    {
        // NetworkOptions.Workers: the same logits as a network with threads of its own, and the pool outlives
        // the network (the CLI starts it before the decoding, and disposes it after the network).
        var weights = RandomWeights.For(TinyResNet.Network, seed: 5);
        var input = new float[TinyResNet.Network.Input.Elements];
        var rng = new Random(7);
        for (int i = 0; i < input.Length; i++) input[i] = rng.NextSingle() * 2 - 1;
        float[] own;
        using (var net = new TinyResNet(weights, new NetworkOptions { Threads = 2 })) own = net.Run(input);
        using var pool = new WorkerPool(2);
        for (int round = 0; round < 2; round++)
        {
            using var net = new TinyResNet(weights, new NetworkOptions { Threads = 1, Workers = pool });
            Assert.Equal(2, net.Threads); // the pool's count wins
            Assert.Equal(own, net.Run(input));
        }
    }

    [Fact]
    public async Task AnOverlappingRunThrowsAndADisposedPoolRefuses()
    {
        var pool = new WorkerPool(2);
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        s_entered = entered;
        s_release = release;
        var first = Task.Run(() =>
        {
            unsafe { pool.Run(&Block, default, 2); }
        });
        Assert.True(entered.Wait(TimeSpan.FromSeconds(30)));
        // On another task, with a time limit: a pool that let it in would never finish either run.
        var second = Task.Run(() =>
        {
            unsafe { pool.Run(&Block, default, 2); }
        });
        await Fixtures.EndsWithin(second, 60, "an overlapping Run went ahead");
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => second);
        Assert.Contains("must not overlap", e.Message);
        release.Set();
        await first;
        unsafe { pool.Run(&Block, default, 2); } // free again once the first run returned
        pool.Dispose();
        unsafe { Assert.Throws<ObjectDisposedException>(() => pool.Run(&Block, default, 2)); }
    }

    [Fact]
    public async Task WorkPostedToAWorkerRunsThereWhileTheCallerGoesOnAndLayersStillRun()
    {
        // RunOnWorker returns at once and the work runs on another thread: run on the caller's, it would report
        // the caller's id; never run, the wait would time out.
        using var pool = new WorkerPool(2);
        using var started = new ManualResetEventSlim();
        int caller = Environment.CurrentManagedThreadId;
        var posted = pool.RunOnWorker(() =>
        {
            started.Set();
            return Environment.CurrentManagedThreadId;
        });
        Assert.True(started.Wait(TimeSpan.FromSeconds(30)), "the posted work did not start while the caller waited");
        Assert.NotEqual(caller, await posted);
        var failed = pool.RunOnWorker<int>(() => throw new InvalidDataException("in the posted work"));
        Assert.Equal("in the posted work", (await Assert.ThrowsAsync<InvalidDataException>(() => failed)).Message);
        var counts = new int[37];
        unsafe
        {
            fixed (int* c = counts) pool.Run(&Count, new KernelArgs(null, null, null, (float*)c, null), counts.Length);
        }
        Assert.All(counts, n => Assert.Equal(1, n));
        using var single = new WorkerPool(1); // no workers: the thread pool runs it
        Assert.Equal(42, await single.RunOnWorker(() => 42));
    }

    [Fact]
    public async Task WorkPostedJustBeforeDisposeStillCompletes()
    {
        for (int round = 0; round < 100; round++)
        {
            var pool = new WorkerPool(2);
            var posted = pool.RunOnWorker(() => round);
            pool.Dispose();
            await Fixtures.EndsWithin(posted, 30, "posted work was dropped");
            Assert.Equal(round, await posted);
        }
    }

    private static ManualResetEventSlim? s_entered, s_release;

    /// <summary>Item 0, on whichever thread takes it, signals and then waits for the test; the run stays in progress.</summary>
    private static void Block(in KernelArgs args, int begin, int end)
    {
        if (begin != 0) return;
        s_entered!.Set();
        s_release!.Wait(TimeSpan.FromSeconds(30)); // bounded: a pool that let the overlapping run in would otherwise hang the test
    }

    private static unsafe void Fill(in KernelArgs args, int begin, int end)
    {
        for (int i = begin; i < end; i++) args.Output[i] = 1;
    }

    /// <summary>counts[item] (the args' weights) += slot[item % 16] (the args' input).</summary>
    private static unsafe void Add(in KernelArgs args, int begin, int end)
    {
        for (int i = begin; i < end; i++) Interlocked.Add(ref *(int*)(args.Weights + i), (int)args.Input[i % 16]);
    }

    private static unsafe void Rounds(int threads, int rounds)
    {
        const int items = 37;
        var counts = new int[items];
        for (int round = 0; round < rounds; round++)
        {
            Array.Clear(counts);
            using (var pool = new WorkerPool(threads))
            {
                fixed (int* c = counts)
                {
                    var args = new KernelArgs(null, null, null, (float*)c, null);
                    pool.Run(&Count, args, items);
                    pool.Run(&Count, args, items);
                }
            }
            Assert.All(counts, n => Assert.Equal(2, n));
        }
    }

    /// <summary>Adds 1 to the int at output[item] for each item of the range.</summary>
    private static unsafe void Count(in KernelArgs args, int begin, int end)
    {
        for (int i = begin; i < end; i++) Interlocked.Increment(ref *(int*)(args.Output + i));
    }
}
