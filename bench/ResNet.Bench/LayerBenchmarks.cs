using BenchmarkDotNet.Attributes;
using ResNet.Runtime;
using ResNet.Runtime.Generic;
using ResNet.Runtime.Weights;

namespace ResNet.Bench;

/// <summary>
/// Each convolution of ResNet-18, one thread: the generated, shape-specialized kernel (exact = direct, the
/// same algorithm as the generic kernel) against the generic runtime-shaped reference kernel.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 5)]
public class LayerBenchmarks
{
    public static IEnumerable<string> Layers => ResNet18.Network.Layers.Where(l => l.Kind == LayerKind.Conv).Select(l => l.Name);

    [ParamsSource(nameof(Layers))]
    public string Layer { get; set; } = "";

    private ResNet18 _net = null!;
    private GenericNetwork _generic = null!;
    private LayerInfo _info = null!;
    private int _index;
    private float[] _input = null!;
    private float[]? _residual;

    [GlobalSetup]
    public void Setup()
    {
        var weights = RandomWeights.For(ResNet18.Network, 1);
        _net = new ResNet18(weights, new NetworkOptions { Threads = 1, Exact = true });
        _generic = new GenericNetwork(ResNet18.Network, weights);
        _index = ResNet18.Network.Layers.ToList().FindIndex(l => l.Name == Layer);
        _info = ResNet18.Network.Layers[_index];
        var rng = new Random(3);
        _input = Enumerable.Range(0, _info.InShape.Elements).Select(_ => (float)rng.NextDouble()).ToArray();
        _residual = _info.Residual >= 0 ? new float[_info.OutShape.Elements] : null;
        _net.Run(BenchFixtures.Input(1), new float[1000]);
    }

    [Benchmark(Baseline = true)]
    public float Generic() => _generic.RunLayer(_info, _input, 1, _residual)[0];

    [Benchmark]
    public void Generated() => _net.RunLayer(_index);

    [GlobalCleanup]
    public void Cleanup() => _net.Dispose();
}
