using ResNet.Generator.Model;
using Xunit;

namespace ResNet.Generator.Tests;

/// <summary>The direct convolutions' register tiles the planner picks (Planner.ChooseTile).</summary>
public class ConvTilePlanTests
{
    [Fact]
    public void SevenPixelRowsOnSixteenRegistersTakeOneTileNotALatencyBoundRemainder()
    {
        // AVX2 has 16 registers: 2 blocks × 2 rows × 3 pixels would leave a 1-pixel tile of 4 accumulators per row,
        // too few to hide the FMA latency; 1 block × 2 rows × 7 pixels (14 accumulators) covers the row.
        var plan = GeneratorHarness.Plan("resnet18.json");
        var graph = plan.Graph;
        int layer = Enumerable.Range(0, graph.Layers.Count).Single(i => graph.Layers[i].Path == "layer4.0.conv1");
        var avx2 = plan.Isas.Single(i => i.Isa.Name == "Avx2").Layers[layer].Tile!;
        Assert.Equal((1, 7, 0, 2), (avx2.OcBlocks, avx2.Pixels, avx2.Remainder, avx2.Rows));
        // AVX-512's 32 registers hold 2 blocks × 2 rows × 7 pixels already.
        var avx512 = plan.Isas.Single(i => i.Isa.Name == "Avx512").Layers[layer].Tile!;
        Assert.Equal((2, 7, 0, 2), (avx512.OcBlocks, avx512.Pixels, avx512.Remainder, avx512.Rows));
    }
}
