using ResNet.Generator.Model;
using Xunit;

namespace ResNet.Generator.Tests;

/// <summary>Which convolutions the planner gives the row-Winograd kernel, with what F(m, r), tiles and halo.</summary>
public class RowWinogradPlanTests
{
    [Theory]
    [InlineData("Avx512")]
    [InlineData("Avx2")]
    [InlineData("Portable")]
    public void ResNetsStemIsFourByFourOverTwoRowPhases(string isa)
    {
        var plan = GeneratorHarness.Plan("resnet18.json");
        var isaPlan = plan.Isas.Single(i => i.Isa.Name == isa);
        var rp = isaPlan.Layers[0].RowWinograd!;
        // 7 kernel rows at stride 2: phases of 4 and 3 taps, F(4, 4) on 7 phase rows; 112 output rows in 28 tiles.
        Assert.Equal((4, 4, 7, 2, 3, 28, 112), (rp.M, rp.R, rp.Alpha, rp.Phases, rp.Channels, rp.TilesH, rp.Width));
        // Columns 0…228 of the padded row are read (111·2 + 6), in whole cache lines per row.
        Assert.Equal((229, 240), (rp.Columns, rp.ColumnStride));
        // The last tile reads phase rows up to 4·27 + 6 = 114, input row 2·114 + 1 − 3 = 226: the halo of 3 covers it.
        Assert.Equal(3, isaPlan.Tensors[0].PadH);
        // Of the channel-blocked convolutions only the stride-2 3×3 ones, in the phase-split form (next test).
        var split = plan.Graph.Layers.Where((l, i) => i > 0 && isaPlan.Layers[i].RowWinograd != null).Select(l => l.Path);
        Assert.Equal(isa == "Avx512" ? new[] { "layer2.0.conv1" } : new[] { "layer2.0.conv1", "layer3.0.conv1" }, split);
        Assert.All(isaPlan.Layers.Skip(1).Where(l => l.RowWinograd != null), l => Assert.True(l.RowWinograd!.Split));
        // A streamed input's band is one tile: 4 output rows, reading input rows up to 8b + 10 (phase row 6 of phase 1).
        var bands = InputBands.For(plan.Graph, isaPlan, exact: false);
        Assert.Equal((1, 4, 10, 8), (bands.Items, bands.Rows, bands.LastInputRow, bands.InputRows));
    }

    [Theory]
    [InlineData("Avx2", 8)]
    [InlineData("Portable", 4)]
    public void StrideTwoThreeByThreeSplitsItsRowPhasesWhereTheExtraWeightsPay(string isa, int block)
    {
        var plan = GeneratorHarness.Plan("resnet18.json");
        var isaPlan = plan.Isas.Single(i => i.Isa.Name == isa);
        int At(string path) => plan.Graph.Layers.Select((l, i) => (l, i)).Single(p => p.l.Path == path).i;
        // layer3.0.conv1: 14 output rows in 4 tiles; the even rows by F(4, 2) (5 positions), the odd rows' 4 direct,
        // sharing one weight slot; columns 0…28 of the padded 28-wide input (13·2 + 3).
        var rp = isaPlan.Layers[At("layer3.0.conv1")].RowWinograd!;
        Assert.True(rp.Split);
        Assert.Equal((4, 2, 5, 9, 6, 128 / block, 4, 29), (rp.M, rp.R, rp.Alpha, rp.Positions, rp.Slots, rp.Channels, rp.TilesH, rp.Columns));
        Assert.Equal(128 / block * 29 * block, rp.PositionFloats);
        // The last tile's even rows reach padded row 2·(4·3 + 4) = 32, input row 31 of 0…27 (the odd rows it copies end
        // one row before, at 30): its input's halo grows from 1 to 4.
        Assert.Equal(4, isaPlan.Tensors[plan.Graph.Layers[At("layer3.0.conv1")].Input].PadH);
        // layer4.0.conv1 would save 19% of its multiply-adds but double 4.7 MB of weights: it stays direct.
        Assert.Null(isaPlan.Layers[At("layer4.0.conv1")].RowWinograd);
        Assert.Null(isaPlan.Layers[At("layer4.0.downsample.0")].RowWinograd);
        // AVX-512's multiply-adds take half as long, so there the same layer stays direct too (twice the weights,
        // each thread streaming all of them, for 19% fewer multiply-adds).
        Assert.Null(plan.Isas.Single(i => i.Isa.Name == "Avx512").Layers[At("layer3.0.conv1")].RowWinograd);
    }

    [Fact]
    public void ATileThatOverhangsTheImageWidensTheHalo()
    {
        // TinyResNet's 5×3 stride-2 stem: 19 output rows in 5 tiles of 4; the last reads phase rows up to 4·4 + 5 = 21,
        // input row 2·21 + 1 − 2 = 41 of 37: four rows past the last, so the halo grows from the padding's 2 to 5.
        var plan = GeneratorHarness.Plan("tiny_resnet.json");
        var isaPlan = plan.Isas.Single(i => i.Isa.Name == "Avx512");
        var rp = isaPlan.Layers[0].RowWinograd!;
        Assert.Equal((4, 3, 6, 2, 5), (rp.M, rp.R, rp.Alpha, rp.Phases, rp.TilesH));
        Assert.Equal(5, isaPlan.Tensors[0].PadH);
    }

    [Theory]
    [InlineData("\"stride\": [2, 2], \"padding\": [3, 3]", "\"stride\": [1, 1], \"padding\": [3, 3]")] // stride 1: F(4, 7) needs 10 points, past the 8 whose constants keep fp32's digits
    [InlineData("\"kernel_size\": [7, 7]", "\"kernel_size\": [3, 7]")] // 2 taps per phase at stride 2: F(4, 2) saves too little
    [InlineData("\"input\": [3, 224, 224]", "\"input\": [3, 224, 2000]")] // 1,000 output columns: a row of GEMM results outgrows the tile budget
    public void WhereItWouldNotPayTheDirectKernelStays(string from, string to)
    {
        var plan = GeneratorHarness.Plan("resnet18.json", spec =>
        {
            int at = spec.IndexOf(from, StringComparison.Ordinal);
            Assert.True(at >= 0);
            return spec.Substring(0, at) + to + spec.Substring(at + from.Length);
        });
        Assert.All(plan.Isas, isa => Assert.Null(isa.Layers[0].RowWinograd));
    }
}
