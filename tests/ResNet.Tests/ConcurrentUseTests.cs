using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// A network has one set of activation buffers, so calls from several threads take turns: each gets its own
/// image's logits (a server calling Run from its request threads), networks sharing a pool take turns on it, and a
/// Dispose waits for the run in progress instead of freeing its buffers under it.
/// </summary>
public class ConcurrentUseTests
{
    private static readonly StateDict Weights = RandomWeights.For(TinyResNet.Network, seed: 11);

    private static float[][] Inputs(int count)
    {
        var rng = new Random(3);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var x = new float[TinyResNet.Network.Input.Elements];
            for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle() * 2 - 1;
            return x;
        }).ToArray();
    }

    /// <summary>Each thread runs its own input <paramref name="rounds"/> times on its network; every result must be that input's.</summary>
    private static async Task RunTogether(IReadOnlyList<GeneratedNetwork> nets, float[][] inputs, float[][] expected, int rounds)
    {
        using var start = new Barrier(inputs.Length);
        var threads = inputs.Select((input, t) => Task.Factory.StartNew(() =>
        {
            var output = new float[expected[t].Length];
            start.SignalAndWait();
            for (int r = 0; r < rounds; r++)
            {
                nets[t % nets.Count].Run(input, output);
                Assert.Equal(expected[t], output);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        var all = Task.WhenAll(threads);
        await Fixtures.EndsWithin(all, 120, "concurrent runs did not finish");
        await all;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task RunsFromSeveralThreadsEachGetTheirOwnImagesLogits(int threads)
    {
        var inputs = Inputs(4);
        using var net = new TinyResNet(Weights, new NetworkOptions { Threads = threads });
        var expected = inputs.Select(x => net.Run(x)).ToArray();
        Assert.NotEqual(expected[0], expected[1]);
        await RunTogether([net], inputs, expected, rounds: 200);
    }

    [Fact]
    public async Task NetworksSharingAPoolTakeTurnsOnIt()
    {
        // Before, the second network's layer found the pool busy and threw in the middle of its pass.
        var inputs = Inputs(4);
        using var pool = new WorkerPool(2);
        using var a = new TinyResNet(Weights, new NetworkOptions { Workers = pool });
        using var b = new TinyResNet(Weights, new NetworkOptions { Workers = pool });
        var expected = inputs.Select(x => a.Run(x)).ToArray();
        await RunTogether([a, b], inputs, expected, rounds: 200);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task DisposeWaitsForTheRunInProgressAndLaterRunsRefuse(int threads)
    {
        var input = Inputs(1)[0];
        var net = new TinyResNet(Weights, new NetworkOptions { Threads = threads });
        var expected = net.Run(input);
        int runs = 0;
        using var running = new ManualResetEventSlim();
        var runner = Task.Factory.StartNew(() =>
        {
            var output = new float[expected.Length];
            while (true)
            {
                net.Run(input, output); // until it throws ObjectDisposedException
                Assert.Equal(expected, output);
                if (++runs == 20) running.Set();
            }
        }, TaskCreationOptions.LongRunning);
        Assert.True(running.Wait(TimeSpan.FromSeconds(60)));
        net.Dispose();
        await Fixtures.EndsWithin(runner, 60, "the run did not stop");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => runner);
        Assert.Throws<ObjectDisposedException>(() => net.Run(input));
    }
}
