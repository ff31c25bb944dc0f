using ResNet.Runtime;
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
        Assert.True(await Task.WhenAny(work, Task.Delay(TimeSpan.FromSeconds(60))) == work, "a Run did not finish: a worker missed it");
        await work;
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
