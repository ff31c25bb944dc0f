using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// An input given a few rows at a time (<see cref="GeneratedNetwork.StreamInputRows"/>): the first layer's bands run
/// only on rows given, and the finished pass is Run's, bit for bit.
/// </summary>
public class StreamedInputTests
{
    /// <summary>What a row not given yet holds: a band that read it would carry it into the logits.</summary>
    private const float NotYet = 1e30f;

    private static float[] RandomImage(NetworkInfo info, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, info.Input.Elements).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
    }

    /// <summary>Copies rows [from, to) of every channel of <paramref name="image"/> into <paramref name="arriving"/>.</summary>
    private static void Give(NetworkInfo info, float[] image, float[] arriving, int from, int to)
    {
        var s = info.Input;
        for (int c = 0; c < s.C; c++)
            Array.Copy(image, (c * s.H + from) * s.W, arriving, (c * s.H + from) * s.W, (to - from) * s.W);
    }

    /// <summary>Streams <paramref name="image"/> in uneven steps, running every ready band after each; the bands run before the last row.</summary>
    private static (float[] Logits, int Early, int Bands) Stream(GeneratedNetwork net, float[] image, int seed)
    {
        var info = net.Info;
        var arriving = Enumerable.Repeat(NotYet, image.Length).ToArray();
        var rng = new Random(seed);
        net.BeginStreamedInput();
        int rows = 0, bands = 0, early = 0;
        while (rows < info.Input.H)
        {
            int next = Math.Min(info.Input.H, rows + rng.Next(0, 6));
            Give(info, image, arriving, rows, next);
            net.StreamInputRows(arriving, next);
            rows = next;
            while (net.RunReadyBand())
            {
                bands++;
                if (rows < info.Input.H) early++;
            }
        }
        var logits = new float[net.OutputLength];
        net.RunStreamed(arriving, logits);
        return (logits, early, bands);
    }

    [Theory]
    [MemberData(nameof(Fixtures.NetworkCases), MemberType = typeof(Fixtures))]
    public void BandsReadOnlyRowsGivenAndThePassIsRuns(string network, InstructionSet isa, bool exact)
    {
        var info = Fixtures.Network(network);
        var image = RandomImage(info, 7);
        using var net = Fixtures.Build(network, RandomWeights.For(info, seed: 6), new NetworkOptions { InstructionSet = isa, Exact = exact });
        var expected = net.Run(image);
        var (logits, early, bands) = Stream(net, image, seed: 8);
        Assert.Equal(expected, logits);
        // Most bands ran before the last row: none waits for rows it does not read.
        Assert.True(bands > 0 && early >= bands / 2, $"{early} of {bands} bands ran before the last row");
        // And again, on the same network: nothing of the last pass is carried into the next.
        Assert.Equal(expected, Stream(net, image, seed: 9).Logits);
    }

    [Fact]
    public void BandsAreSkippedByTheFinishWhereTheyRan()
    {
        // Given whole at the end, no band runs early; given halfway with no band run, RunStreamed runs them all.
        var info = ResNet18.Network;
        var image = RandomImage(info, 10);
        using var net = new ResNet18(RandomWeights.For(info, seed: 11), new NetworkOptions { Threads = 2 });
        var expected = net.Run(image);
        net.BeginStreamedInput();
        net.StreamInputRows(image, info.Input.H / 2);
        Assert.Equal(0, net.StreamedItems);
        var logits = new float[net.OutputLength];
        net.RunStreamed(image, logits);
        Assert.Equal(expected, logits);
        // Half the bands run here, the rest on both threads.
        net.BeginStreamedInput();
        net.StreamInputRows(image, info.Input.H / 2);
        for (int i = 0; i < 20 && net.RunReadyBand(); i++) { }
        Assert.True(net.StreamedItems > 0);
        net.RunStreamed(image, logits);
        Assert.Equal(expected, logits);
    }

    [Fact]
    public void ARunAbandonsAStreamedPass()
    {
        var info = ResNet18.Network;
        var (a, b) = (RandomImage(info, 12), RandomImage(info, 13));
        using var net = new ResNet18(RandomWeights.For(info, seed: 14));
        var expectedA = net.Run(a);
        var expectedB = net.Run(b);
        net.BeginStreamedInput();
        net.StreamInputRows(a, 100);
        while (net.RunReadyBand()) { }
        Assert.Equal(expectedB, net.Run(b));
        Assert.Throws<InvalidOperationException>(() => net.StreamInputRows(a, 120));
        Assert.Throws<InvalidOperationException>(() => net.RunReadyBand());
        // Begun again, it starts from the first row.
        net.BeginStreamedInput();
        net.StreamInputRows(b, 50);
        while (net.RunReadyBand()) { }
        net.BeginStreamedInput();
        Assert.Equal(expectedA, Stream(net, a, seed: 15).Logits);
    }

    [Fact]
    public void MisuseIsRefused()
    {
        var info = ResNet18.Network;
        using var net = new ResNet18(RandomWeights.For(info, seed: 16));
        var image = new float[net.InputLength];
        var logits = new float[net.OutputLength];
        Assert.Throws<InvalidOperationException>(() => net.RunStreamed(image, logits));
        net.BeginStreamedInput();
        net.StreamInputRows(image, 10);
        Assert.Throws<ArgumentOutOfRangeException>(() => net.StreamInputRows(image, 9));
        Assert.Throws<ArgumentOutOfRangeException>(() => net.StreamInputRows(image, info.Input.H + 1));
        Assert.Throws<ArgumentException>(() => net.StreamInputRows(new float[2 * net.InputLength], 20));
        Assert.Throws<ArgumentException>(() => net.RunStreamed(image, new float[net.OutputLength - 1]));
        net.RunStreamed(image, logits); // still usable after the refusals
        Assert.Throws<InvalidOperationException>(() => net.RunReadyBand());
    }

    [Fact]
    public void GenericKernelsRunTheFirstLayerAtTheFinish()
    {
        // The generic kernels' items are not the generated bands: nothing runs early, the pass is still Run's.
        var info = ResNet18.Network;
        var image = RandomImage(info, 17);
        using var net = new ResNet18(RandomWeights.For(info, seed: 18), new NetworkOptions { GenericKernels = true });
        var expected = net.Run(image);
        var (logits, early, bands) = Stream(net, image, seed: 19);
        Assert.Equal(0, bands + early);
        Assert.Equal(expected, logits);
    }

    [Fact]
    public void AStreamedPassAllocatesNothing()
    {
        using var net = new ResNet18(RandomWeights.For(ResNet18.Network, 20));
        var image = new float[net.InputLength];
        var logits = new float[net.OutputLength];
        void Pass()
        {
            net.BeginStreamedInput();
            for (int rows = 0; rows <= ResNet18.Network.Input.H; rows += 8)
            {
                net.StreamInputRows(image, rows);
                while (net.RunReadyBand()) { }
            }
            net.RunStreamed(image, logits);
        }
        Pass();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Pass();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
