using BenchmarkDotNet.Attributes;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ResNet.Runtime;

namespace ResNet.Bench;

/// <summary>Whole forward passes: the generated network against ONNX Runtime on the same weights and input.</summary>
[SimpleJob(launchCount: 1, warmupCount: 5, iterationCount: 20)]
[MemoryDiagnoser]
public class EndToEndBenchmarks
{
    [Params(1, 8)]
    public int Batch { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    private ResNet18 _net = null!;
    private float[] _input = null!, _output = null!;
    private InferenceSession _ort = null!;
    private List<NamedOnnxValue> _ortInputs = null!;

    [GlobalSetup]
    public void Setup()
    {
        _input = BenchFixtures.Input(Batch);
        _output = new float[Batch * 1000];
        _net = new ResNet18(BenchFixtures.Weights(), new NetworkOptions { MaxBatch = Batch, Threads = Threads });
        var options = new SessionOptions
        {
            IntraOpNumThreads = Threads,
            InterOpNumThreads = 1,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        _ort = new InferenceSession(BenchFixtures.Onnx, options);
        _ortInputs = [NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(_input, [Batch, 3, 224, 224]))];
    }

    [Benchmark(Baseline = true, Description = "ONNX Runtime 1.31.1")]
    public float OnnxRuntime()
    {
        using var results = _ort.Run(_ortInputs);
        return results[0].AsTensor<float>()[0];
    }

    [Benchmark(Description = "generated")]
    public float Generated()
    {
        _net.Run(_input, _output);
        return _output[0];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _net.Dispose();
        _ort.Dispose();
    }
}
