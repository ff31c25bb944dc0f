using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ResNet.Runtime;

namespace ResNet.Bench;

/// <summary>
/// A quick side-by-side: the generated network and ONNX Runtime, alternating pass by pass so both see the same
/// machine noise, for each (threads, batch); prints medians and ratios. `compare [--iterations N]`.
/// </summary>
internal static class Compare
{
    public static int Run(string[] args)
    {
        int iterations = args.Length == 2 && args[0] == "--iterations" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 30;
        var weights = BenchFixtures.Weights();
        Console.WriteLine("threads batch  generated ms  ORT ms  ratio  generated img/s  ORT img/s  isa");
        foreach (int threads in new[] { 1, 2 })
        foreach (int batch in new[] { 1, 8 })
        {
            var input = BenchFixtures.Input(batch);
            var output = new float[batch * 1000];
            using var net = new ResNet18(weights, new NetworkOptions { MaxBatch = batch, Threads = threads });
            using var ort = new InferenceSession(BenchFixtures.Onnx, new SessionOptions
            {
                IntraOpNumThreads = threads, InterOpNumThreads = 1,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            });
            var feeds = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(input, [batch, 3, 224, 224])) };
            var ours = new List<double>();
            var theirs = new List<double>();
            // Alternate in blocks with a pause between, so neither engine's spinning threads eat the other's core.
            for (int round = 0; round < Math.Max(1, iterations / 5); round++)
            {
                Time(() => net.Run(input, output), ours);
                Thread.Sleep(30);
                Time(() => { using (ort.Run(feeds)) { } }, theirs);
                Thread.Sleep(30);
            }
            double mo = Median(ours), mt = Median(theirs);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{threads,7} {batch,5} {mo,13:0.00} {mt,7:0.00} {mo / mt,6:0.00} {batch * 1000 / mo,16:0.0} {batch * 1000 / mt,10:0.0}  {net.Isa}"));
        }
        return 0;
    }

    private static void Time(Action pass, List<double> times)
    {
        pass(); // the first pass of a block warms caches after the pause
        for (int i = 0; i < 5; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            pass();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
    }

    private static double Median(List<double> v)
    {
        v.Sort();
        return v[v.Count / 2];
    }
}
