using BenchmarkDotNet.Attributes;
using ResNet.Runtime;
using ResNet.Runtime.Weights;

namespace ResNet.Bench;

/// <summary>
/// Each convolution of ResNet-18, one thread: the generated, shape-specialized kernel against the generic kernel
/// of the same algorithm (Winograd where the generator chose it, direct with Exact), on the same layouts.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 5)]
public class LayerBenchmarks
{
    public static IEnumerable<string> Layers => ResNet18.Network.Layers.Where(l => l.Kind == LayerKind.Conv).Select(l => l.Name);

    [ParamsSource(nameof(Layers))]
    public string Layer { get; set; } = "";

    [Params(false, true)]
    public bool Exact { get; set; }

    private ResNet18 _generated = null!, _generic = null!;
    private int _index;

    [GlobalSetup]
    public void Setup()
    {
        var weights = RandomWeights.For(ResNet18.Network, 1);
        var options = new NetworkOptions { Threads = 1, Exact = Exact };
        _generated = new ResNet18(weights, options);
        _generic = new ResNet18(weights, options with { GenericKernels = true });
        _index = ResNet18.Network.Layers.ToList().FindIndex(l => l.Name == Layer);
        // A whole pass first, so every layer's input buffer holds real activations.
        _generated.Run(BenchFixtures.Input(1), new float[1000]);
        _generic.Run(BenchFixtures.Input(1), new float[1000]);
    }

    [Benchmark(Baseline = true)]
    public void Generic() => _generic.RunLayer(_index);

    [Benchmark]
    public void Generated() => _generated.RunLayer(_index);

    [GlobalCleanup]
    public void Cleanup()
    {
        _generated.Dispose();
        _generic.Dispose();
    }
}
