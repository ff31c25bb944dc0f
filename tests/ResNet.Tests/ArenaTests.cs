using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>The generator's arena: buffers share memory only when never alive at once, and shared halos are cleared.</summary>
public class ArenaTests
{
    public static TheoryData<string, InstructionSet> Cases()
    {
        var data = new TheoryData<string, InstructionSet>();
        foreach (var isa in Fixtures.SupportedIsas())
        foreach (var network in new[] { "TinyResNet", "ResNet18" })
            data.Add(network, isa);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BuffersAliveTogetherNeverShareMemory(string network, InstructionSet isa)
    {
        var info = Fixtures.Network(network);
        using var net = Fixtures.Build(network, RandomWeights.For(info, seed: 1), new NetworkOptions { InstructionSet = isa });
        var layout = net.ActiveLayout;
        int buffers = layout.BufferFloats.Length;
        // When each buffer is written first and read last, counted in layers: the input before layer 0, the output after the last.
        var first = Enumerable.Repeat(int.MaxValue, buffers).ToArray();
        var last = Enumerable.Repeat(int.MinValue, buffers).ToArray();
        void Use(int tensor, int at)
        {
            int b = layout.Tensors[tensor].Buffer;
            first[b] = Math.Min(first[b], at);
            last[b] = Math.Max(last[b], at);
        }
        Use(0, -1);
        for (int i = 0; i < info.Layers.Count; i++)
        {
            var l = info.Layers[i];
            Use(l.Input, i);
            if (l.Residual >= 0) Use(l.Residual, i);
            Use(l.Output, i);
        }
        Use(info.Layers[^1].Output, int.MaxValue);
        bool SharesMemory(int a, int b) =>
            layout.BufferOffsets[a] < layout.BufferOffsets[b] + layout.BufferFloats[b] && layout.BufferOffsets[b] < layout.BufferOffsets[a] + layout.BufferFloats[a];
        for (int a = 0; a < buffers; a++)
        {
            Assert.True(layout.BufferOffsets[a] % 16 == 0 && layout.BufferOffsets[a] + layout.BufferFloats[a] <= layout.ArenaFloats, $"buffer {a}");
            for (int b = a + 1; b < buffers; b++)
            {
                bool together = first[a] <= last[b] && first[b] <= last[a];
                Assert.False(together && SharesMemory(a, b), $"buffers {a} and {b} are alive together and overlap");
            }
            var own = layout.Tensors.First(t => t.Buffer == a);
            bool haloShared = (own.PadH > 0 || own.PadW > 0) && Enumerable.Range(0, buffers).Any(b => b != a && SharesMemory(a, b));
            Assert.Equal(haloShared, layout.HaloZeroed.Contains(a));
        }
        if (network == "ResNet18")
        {
            // conv1's 3.2 MB output and the input take turns with every later buffer: 4.1 MB instead of 10.1.
            Assert.True(layout.ArenaFloats < 0.45 * layout.BufferFloats.Sum(), $"{layout.ArenaFloats} of {layout.BufferFloats.Sum()} floats");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void APassLeavesNothingInTheNextOnesHalos(string network, InstructionSet isa)
    {
        var info = Fixtures.Network(network);
        var weights = RandomWeights.For(info, seed: 2);
        var rng = new Random(3);
        float[] Input() => Enumerable.Range(0, info.Input.Elements).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        float[] a = Input(), b = Input();
        using var fresh = Fixtures.Build(network, weights, new NetworkOptions { InstructionSet = isa });
        var alone = fresh.Run(a);
        using var used = Fixtures.Build(network, weights, new NetworkOptions { InstructionSet = isa, MaxBatch = 2 });
        used.Run(b.Concat(b).ToArray());
        used.Run(b);
        Assert.Equal(alone, used.Run(a));
    }
}
