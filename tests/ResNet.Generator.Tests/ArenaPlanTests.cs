using ResNet.Generator.Model;
using Xunit;

namespace ResNet.Generator.Tests;

/// <summary>The planner's arena: memory is shared only between buffers never alive at once, and shared halos are cleared.</summary>
public class ArenaPlanTests
{
    [Theory]
    [InlineData("resnet18.json")]
    [InlineData("tiny_resnet.json")]
    public void BuffersAliveTogetherNeverShareMemory(string file)
    {
        var plan = GeneratorHarness.Plan(file);
        var graph = plan.Graph;
        foreach (var isa in plan.Isas)
        {
            // Every region the arena holds, with when it is first written and last read, counted in layers: the
            // input before layer 0, the output after the last; the scratch from its first Winograd layer to its last.
            int buffers = isa.BufferFloats.Count;
            var regions = new List<(int Offset, int Floats, int First, int Last)>();
            for (int b = 0; b < buffers; b++) regions.Add((isa.Arena.Offsets[b], isa.BufferFloats[b], int.MaxValue, int.MinValue));
            void Use(int tensor, int at)
            {
                int b = isa.Tensors[tensor].Buffer;
                regions[b] = regions[b] with { First = Math.Min(regions[b].First, at), Last = Math.Max(regions[b].Last, at) };
            }
            Use(0, -1);
            for (int i = 0; i < graph.Layers.Count; i++)
            {
                var l = graph.Layers[i];
                Use(l.Input, i);
                if (l.Residual >= 0) Use(l.Residual, i);
                Use(l.Output, i);
            }
            Use(graph.Layers[graph.Layers.Count - 1].Output, int.MaxValue);
            var scratchLayers = Enumerable.Range(0, graph.Layers.Count).Where(i => isa.Layers[i].Winograd is { SharedInput: true } || isa.Layers[i].Batched != null).ToList();
            Assert.Equal(scratchLayers.Count > 0, isa.Arena.ScratchOffset >= 0);
            if (scratchLayers.Count > 0)
                regions.Add((isa.Arena.ScratchOffset, ArenaPlanner.ScratchSlots * isa.ScratchFloats, scratchLayers.Min(), scratchLayers.Max()));

            bool Overlap(int a, int b) => regions[a].Offset < regions[b].Offset + regions[b].Floats && regions[b].Offset < regions[a].Offset + regions[a].Floats;
            for (int a = 0; a < regions.Count; a++)
            {
                Assert.True(regions[a].Offset % 16 == 0 && regions[a].Offset + regions[a].Floats <= isa.Arena.Floats, $"{isa.Isa.Name}: region {a}");
                for (int b = a + 1; b < regions.Count; b++)
                {
                    bool together = regions[a].First <= regions[b].Last && regions[b].First <= regions[a].Last;
                    Assert.False(together && Overlap(a, b), $"{isa.Isa.Name}: regions {a} and {b} are alive together and overlap");
                }
                if (a >= buffers) continue;
                var own = isa.Tensors.First(t => t.Buffer == a);
                bool haloShared = (own.PadH > 0 || own.PadW > 0) && Enumerable.Range(0, regions.Count).Any(b => b != a && Overlap(a, b));
                Assert.Equal(haloShared, isa.Arena.HaloZeroed.Contains(a));
            }
            if (file == "resnet18.json")
            {
                // conv1's 3.2 MB output and the input take turns with every later buffer and the scratch. On AVX-512
                // that is 4.1 MB per image instead of 10.1 for the buffers and 1.8 for two threads' scratch; AVX2's
                // layer1 shares a transformed input too, twice layer2's, which the gaps do not hold: 6.2 MB, not 13.7.
                long separate = isa.BufferFloats.Sum() + (long)ArenaPlanner.ScratchSlots * isa.ScratchFloats;
                Assert.True(isa.Arena.Floats < 0.5 * separate, $"{isa.Isa.Name}: {isa.Arena.Floats} of {separate} floats");
                if (isa.Isa == Isa.Avx512) Assert.Equal(1018112, isa.Arena.Floats);
            }
        }
    }
}
