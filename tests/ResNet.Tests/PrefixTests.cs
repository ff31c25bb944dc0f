using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// A batch's first layers image by image, a thread per image (GeneratedNetwork.Prefix.cs): the same kernels as one
/// image alone, so a batch gets, float for float, what it gets with every layer run on the whole batch.
/// </summary>
public sealed class PrefixTests
{
    [Fact]
    public void TheBoundaryIsWhereLayer3Begins()
    {
        // conv1 to layer2 have at most 0.6 MB of (direct) weights a layer; layer3.0.conv1 has 1.2 MB.
        using var net = new ResNet18(RandomWeights.For(ResNet18.Network, 3), new NetworkOptions { MaxBatch = 2 });
        int end = net.PrefixLayers;
        Assert.Equal("layer3.0.conv1", ResNet18.Network.Layers[end].Name);
        Assert.Equal(ResNet18.Network.Layers[end - 1].Output, ResNet18.Network.Layers[end].Input);
        Assert.Equal(0, GeneratedNetwork.PrefixEnd(ResNet18.Network, Enumerable.Repeat(1, ResNet18.Network.Layers.Count).ToArray()));
    }

    [Fact]
    public void APrefixStopsBeforeABatchedVariant()
    {
        // TinyResNet's weights are all small: its prefix ends where its first batched variant begins, or before fc.
        using var net = TinyResNet.Load(Path.Combine(Fixtures.Dir("tiny"), "weights.pth"), new NetworkOptions { MaxBatch = 4 });
        var layers = TinyResNet.Network.Layers;
        Assert.InRange(net.PrefixLayers, 1, layers.Count - 1);
        var batched = Enumerable.Range(0, layers.Count).Where(l => net.BatchedFrom(l) > 0).ToList();
        Assert.Equal(batched.Count > 0 ? batched[0] : layers.Count - 1, net.PrefixLayers);
    }

    [Theory]
    [MemberData(nameof(ParityTests.Isas), MemberType = typeof(ParityTests))]
    public void ABatchGetsWhatItGetsLayerByLayer(InstructionSet isa)
    {
        var weights = RandomWeights.For(ResNet18.Network, seed: 5);
        var random = new Random(6);
        var input = Enumerable.Range(0, 5 * ResNet18.Network.Input.Elements).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        foreach (int threads in new[] { 1, 2 })
        {
            // At two threads, the boundary's buffer out of the arena as where it shares memory with the input's.
            using var prefix = new ResNet18(weights, new NetworkOptions { InstructionSet = isa, MaxBatch = 5, Threads = threads, MovePrefixBoundary = threads == 2 });
            using var whole = new ResNet18(weights, new NetworkOptions { InstructionSet = isa, MaxBatch = 5, Threads = threads, ImageMajorPrefix = false });
            foreach (int n in new[] { 2, 5, 3, 4 }) // 5 and 3 at two threads: the last image on both threads
            {
                Assert.True(prefix.RunsPrefix(n), $"{isa}, {threads} threads, batch {n}");
                Assert.False(whole.RunsPrefix(n));
                var batch = input.AsSpan(0, n * prefix.InputLength);
                var expected = whole.Run(batch);
                Assert.Equal(expected, prefix.Run(batch));
                Assert.Equal(expected, prefix.Run(batch)); // the frames again, as the last run left them
            }
        }
    }

    [Theory]
    [MemberData(nameof(ParityTests.Isas), MemberType = typeof(ParityTests))]
    public void ABufferWrittenInThePrefixAndAgainAfterItHasItsHaloCleared(InstructionSet isa)
    {
        // Found by ShapeFuzzTests: PrefixHalo's 24-channel buffer (halo 3, for layer2.1.conv2's 7×7) is first written
        // in the prefix, where its halo was cleared in the thread's frame only, and again after it in the batch's
        // arena, whose halo then held what the previous pass's other tenants of that memory left: both images' logits
        // were off by up to 0.85 (ResNet-18 itself has no such buffer).
        var weights = RandomWeights.For(PrefixHalo.Network, seed: 9);
        var input = Enumerable.Range(0, 2 * PrefixHalo.Network.Input.Elements).Select(i => MathF.Sin(i * 0.37f)).ToArray();
        foreach (int threads in new[] { 1, 2 })
        {
            using var prefix = new PrefixHalo(weights, new NetworkOptions { InstructionSet = isa, MaxBatch = 2, Threads = threads });
            using var whole = new PrefixHalo(weights, new NetworkOptions { InstructionSet = isa, MaxBatch = 2, Threads = threads, ImageMajorPrefix = false });
            Assert.True(prefix.RunsPrefix(2));
            // The portable kernels' 4-channel blocks make other layouts, whose buffers the arena shares otherwise.
            Assert.Equal(isa != InstructionSet.Portable, prefix.HalosClearedAfterPrefix > 0);
            var expected = whole.Run(input);
            prefix.Run(input.AsSpan(0, prefix.InputLength)); // one image: the arena's other tenants write where the halo is
            Assert.Equal(expected, prefix.Run(input));
            Assert.Equal(expected, prefix.Run(input));
        }
        using var resnet18 = new ResNet18(RandomWeights.For(ResNet18.Network, 3), new NetworkOptions { InstructionSet = isa, MaxBatch = 2 });
        Assert.Equal(0, resnet18.HalosClearedAfterPrefix);
    }

    [Fact]
    public void OneImageRunsEveryLayerAsBefore()
    {
        using var net = new ResNet18(RandomWeights.For(ResNet18.Network, 3), new NetworkOptions { MaxBatch = 3, Threads = 2 });
        Assert.False(net.RunsPrefix(1));
        Assert.True(net.RunsPrefix(3));
        using var single = new ResNet18(RandomWeights.For(ResNet18.Network, 3), new NetworkOptions { MaxBatch = 1 });
        Assert.False(single.RunsPrefix(1));
        Assert.Equal(0, single.PrefixLayers);
    }
}
