using ResNet.Runtime;
using ResNet.Runtime.Reference;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>Every generated layer against the scalar reference kernel on random data, for every instruction set.</summary>
public class LayerTests
{
    public static TheoryData<string, InstructionSet, bool> Cases() => Fixtures.NetworkCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryLayerMatchesReferenceKernel(string network, InstructionSet isa, bool exact)
    {
        var info = Fixtures.Network(network);
        var weights = RandomWeights.For(info, seed: 11);
        using var net = Fixtures.Build(network, weights, new NetworkOptions { InstructionSet = isa, Exact = exact });
        var rng = new Random(5);
        var input = Enumerable.Range(0, net.InputLength).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var snapshots = new float[info.Tensors.Count][];
        snapshots[0] = input;
        net.LayerObserver = layer => snapshots[info.Layers[layer].Output] = net.ReadTensor(info.Layers[layer].Output);
        net.Run(input);
        var reference = new ReferenceNetwork(info, weights);
        for (int i = 0; i < info.Layers.Count; i++)
        {
            var l = info.Layers[i];
            var expected = reference.RunLayer(l, snapshots[l.Input], 1, l.Residual >= 0 ? snapshots[l.Residual] : null);
            var actual = snapshots[l.Output];
            // fp32 sums in a different order: the bound grows with the reduction size and the magnitudes;
            // Winograd's transforms (constants up to 8, weights scaled by 1/24) round more.
            int reduction = l.Conv != null ? l.Conv.InChannels * l.Conv.KernelH * l.Conv.KernelW : l.Linear?.InFeatures ?? 1;
            float scale = expected.Max(Math.Abs) + 1;
            float tolerance = (exact ? 2e-6f : 1e-5f) * MathF.Sqrt(reduction) * scale;
            float diff = Fixtures.MaxDiff(actual, expected);
            Assert.True(diff <= tolerance, $"{network} {isa} exact={exact} layer {l.Description} ({l.InShape} → {l.OutShape}): max |Δ| {diff} > {tolerance}");
        }
    }
}
