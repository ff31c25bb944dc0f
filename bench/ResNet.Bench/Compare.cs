using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ResNet.Runtime;

namespace ResNet.Bench;

/// <summary>
/// A quick side-by-side: the generated network and ONNX Runtime, alternating block by block so both see the same
/// machine noise, for each (threads, batch); prints medians and ratios.
/// `compare [--iterations N] [--svg FILE] [--binary out/resnet18]`: with --binary the generated side is the
/// published NativeAOT program (`resnet18 bench --json`, ten passes per block, its own median), which is what
/// users run; without it, this process's JIT-compiled copy of the same kernels.
/// </summary>
internal static class Compare
{
    public static int Run(string[] args)
    {
        int iterations = 30;
        string? svg = null, binary = null;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            if (args[i] == "--iterations") iterations = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            else if (args[i] == "--svg") svg = args[i + 1];
            else if (args[i] == "--binary") binary = args[i + 1];
        }
        var rows = new List<(string Label, double Ours, double Theirs)>();
        var weights = binary == null ? BenchFixtures.Weights() : null;
        Console.WriteLine("threads batch  generated ms  ORT ms  ratio  generated img/s  ORT img/s  isa");
        foreach (int threads in new[] { 1, 2 })
        foreach (int batch in new[] { 1, 8 })
        {
            var input = BenchFixtures.Input(batch);
            var output = new float[batch * 1000];
            // With --binary no in-process network exists: its idle workers would only compete for the cores.
            using var net = binary == null ? new ResNet18(weights!, new NetworkOptions { MaxBatch = batch, Threads = threads }) : null;
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
                if (binary != null) ours.Add(RunBinary(binary, threads, batch));
                else Time(() => net!.Run(input, output), ours);
                Thread.Sleep(30);
                Time(() => { using (ort.Run(feeds)) { } }, theirs);
                Thread.Sleep(binary != null ? 500 : 30);
            }
            double mo = Median(ours), mt = Median(theirs);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{threads,7} {batch,5} {mo,13:0.00} {mt,7:0.00} {mo / mt,6:0.00} {batch * 1000 / mo,16:0.0} {batch * 1000 / mt,10:0.0}  {(net != null ? net.Isa.ToString() : "native " + Path.GetFileName(binary))}"));
            rows.Add(($"{threads} thread{(threads > 1 ? "s" : "")}, batch {batch}", batch * 1000 / mo, batch * 1000 / mt));
        }
        if (svg != null) File.WriteAllText(svg, Chart(rows));
        return 0;
    }

    /// <summary>A grouped bar chart of images/s (generated vs ONNX Runtime), as plain SVG.</summary>
    private static string Chart(List<(string Label, double Ours, double Theirs)> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        double max = rows.Max(r => Math.Max(r.Ours, r.Theirs)) * 1.15;
        int width = 640, height = 320, left = 60, bottom = 260, plot = 200, group = (width - left - 20) / rows.Count;
        var sb = new System.Text.StringBuilder();
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append(inv, $"<text x=\"{left}\" y=\"20\" font-size=\"14\">ResNet-18 fp32 throughput, images/s (higher is better)</text>\n");
        sb.Append(inv, $"<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{width - 10}\" y2=\"{bottom}\" stroke=\"#333\"/>\n");
        for (int i = 0; i < rows.Count; i++)
        {
            var (label, ours, theirs) = rows[i];
            int x = left + i * group + 10, bw = (group - 30) / 2;
            foreach (var (value, color, dx) in new[] { (ours, "#2b7bb9", 0), (theirs, "#c0504d", bw + 4) })
            {
                double h = value / max * plot;
                sb.Append(inv, $"<rect x=\"{x + dx}\" y=\"{bottom - h:0.0}\" width=\"{bw}\" height=\"{h:0.0}\" fill=\"{color}\"/>\n");
                sb.Append(inv, $"<text x=\"{x + dx + bw / 2}\" y=\"{bottom - h - 4:0.0}\" text-anchor=\"middle\">{value:0}</text>\n");
            }
            sb.Append(inv, $"<text x=\"{x + bw + 2}\" y=\"{bottom + 16}\" text-anchor=\"middle\">{label}</text>\n");
        }
        sb.Append(inv, $"<rect x=\"{left}\" y=\"32\" width=\"12\" height=\"12\" fill=\"#2b7bb9\"/><text x=\"{left + 16}\" y=\"43\">generated (this project)</text>\n");
        sb.Append(inv, $"<rect x=\"{left + 200}\" y=\"32\" width=\"12\" height=\"12\" fill=\"#c0504d\"/><text x=\"{left + 216}\" y=\"43\">ONNX Runtime 1.31.1</text>\n");
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>One block of the published program's own benchmark on the same weights: its median ms per batch.</summary>
    private static double RunBinary(string binary, int threads, int batch)
    {
        var psi = new ProcessStartInfo(binary) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "bench", "--threads", threads.ToString(CultureInfo.InvariantCulture), "--batch", batch.ToString(CultureInfo.InvariantCulture),
                     "--iterations", "10", "--weights", Path.Combine(BenchFixtures.Dir, "weights.pth"), "--json" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string json = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{binary} bench exited with {p.ExitCode}");
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("median_ms").GetDouble();
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
