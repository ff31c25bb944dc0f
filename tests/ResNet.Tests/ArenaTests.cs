using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// The generator's arena at run time: buffers share memory, so what one pass leaves in a buffer must not reach the
/// next through a halo (the plan itself is checked in ResNet.Generator.Tests' ArenaPlanTests).
/// </summary>
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
