using ResNet.Generator.Model;
using Xunit;

namespace ResNet.Generator.Tests;

/// <summary>
/// Which first layers may start on an input still arriving, in bands of rows (the runtime's StreamedInputTests
/// check that the bands read only rows given).
/// </summary>
public class InputBandsTests
{
    [Theory]
    [InlineData("resnet18.json", "Avx512", 1, 1)] // conv1's 64 channels in one group: a band is a row
    [InlineData("resnet18.json", "Avx2", 4, 1)]   // four groups of 16, rows first
    [InlineData("resnet18.json", "Portable", 8, 1)]
    [InlineData("tiny_resnet.json", "Avx512", 1, 2)] // two rows per item, the odd last row alone
    public void AFirstConvolutionRunsInRowBands(string file, string isa, int items, int rows)
    {
        var plan = GeneratorHarness.Plan(file);
        var bands = InputBands.For(plan.Graph, plan.Isas.Single(i => i.Isa.Name == isa), exact: true);
        Assert.Equal((items, rows), (bands.Items, bands.Rows));
    }

    [Fact]
    public void AFirstLayerByChannelGroupsOrWinogradWaitsForItsInput()
    {
        // conv1 planned otherwise than the planner does for ResNet-18: items group by group (each group's rows in
        // turn) cover no band of rows until the last group; Winograd's items are tiles of a transformed input.
        var plan = GeneratorHarness.Plan("resnet18.json");
        var avx512 = plan.Isas.Single(i => i.Isa.Name == "Avx512");
        var conv1 = avx512.Layers[0];
        IsaPlan With(LayerPlan first) => avx512 with { Layers = new[] { first }.Concat(avx512.Layers.Skip(1)).ToEquatableArray() };
        var fourGroups = With(conv1 with { Tile = conv1.Tile! with { OcBlocks = 1 }, SplitRows = false });
        Assert.Equal(0, InputBands.For(plan.Graph, fourGroups, exact: true).Items);
        Assert.Equal(4, InputBands.For(plan.Graph, fourGroups with { Layers = With(fourGroups.Layers[0] with { SplitRows = true }).Layers }, exact: true).Items);
        var oneGroup = With(conv1 with { SplitRows = false });
        Assert.Equal(1, InputBands.For(plan.Graph, oneGroup, exact: true).Items);
        var winograd = With(conv1 with { Winograd = new WinogradPlan(4, 56, 56, 8, 8, 4, SharedInput: false, SplitRows: true) });
        Assert.Equal(0, InputBands.For(plan.Graph, winograd, exact: true).Items);
    }

    [Fact]
    public void TheLayoutsSayIt()
    {
        var (_, result, _) = GeneratorHarness.Run("/arch/resnet18.json", GeneratorHarness.Spec("resnet18.json"));
        string main = result.GeneratedTrees.Single(t => t.FilePath.EndsWith("ResNet18.g.cs")).ToString();
        foreach (int items in new[] { 1, 4, 8 }) Assert.Contains($"Bands: new InputBandsInfo({items}, 1, 3, 2),", main);
    }
}
