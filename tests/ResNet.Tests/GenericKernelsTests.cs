using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// The generic kernels (any shape, sizes read at run time) against the generated ones, Winograd and direct: each
/// output is the same transforms and the same chain of multiply-adds in the same order, so the results are the
/// same floats, not merely close.
/// </summary>
public class GenericKernelsTests
{
    // TinyResNet's 8, 24 and 40 channels are 1, 2 and 3 blocks of 16: the one-block groups.
    public static TheoryData<string, InstructionSet, bool> Cases() => Fixtures.NetworkCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void GenericKernelsComputeTheSameFloatsAsTheGeneratedOnes(string network, InstructionSet isa, bool exact)
    {
        var info = Fixtures.Network(network);
        var weights = RandomWeights.For(info, seed: 17);
        var options = new NetworkOptions { InstructionSet = isa, MaxBatch = 3, Threads = 2, Exact = exact };
        // The generic kernels have no batched variants (work items spanning images): compare the same algorithm.
        using var generated = Fixtures.Build(network, weights, options with { BatchedVariants = false });
        using var generic = Fixtures.Build(network, weights, options with { GenericKernels = true });
        var convolutions = Enumerable.Range(0, info.Layers.Count).Where(l => info.Layers[l].Kind == LayerKind.Conv).ToList();
        Assert.NotEmpty(convolutions);
        // Every plain convolution must really have gone through the generic kernel, or this test would compare the generated one with itself.
        foreach (int l in convolutions)
            Assert.Equal(info.Layers[l].Conv!.Groups == 1 && info.Layers[l].Conv!.PaddingMode == PaddingMode.Zeros, generic.RunsGeneric(l));
        Assert.Contains(convolutions, generic.RunsGeneric);
        Assert.DoesNotContain(convolutions, generated.RunsGeneric);

        var rng = new Random(9);
        var input = Enumerable.Range(0, 3 * generated.InputLength).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var expected = generated.Run(input);
        var actual = generic.Run(input);
        Assert.Equal(expected, actual);
        Assert.Contains(actual, v => v != 0);
    }
}
