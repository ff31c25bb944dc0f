using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ResNet.Runtime;

namespace ResNet.Bench;

/// <summary>
/// A quick side-by-side: the generated network, ONNX Runtime and PyTorch, alternating block by block so all see
/// the same machine noise, for each (threads, batch); prints medians and ratios.
/// `compare [--iterations N] [--svg FILE] [--binary out/resnet18] [--python /usr/bin/python3 | --no-torch]`: with
/// --binary the generated side is the published NativeAOT program (`resnet18 bench --json`, ten passes per block,
/// its own median), which is what users run; without it, this process's JIT-compiled copy of the same kernels.
/// PyTorch (tools/bench_torch.py: torchvision's resnet18 on the same weights.pth, eager and as frozen TorchScript)
/// runs when that Python can import torch and torchvision; otherwise the first line says why it was left out.
/// </summary>
internal static class Compare
{
    private const int PassesPerBlock = 5;

    public static int Run(string[] args)
    {
        int iterations = 30;
        string? svg = null, binary = null;
        string python = "/usr/bin/python3";
        bool torchWanted = true;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--no-torch") { torchWanted = false; continue; }
            if (i + 1 >= args.Length) break;
            if (args[i] == "--iterations") iterations = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (args[i] == "--svg") svg = args[++i];
            else if (args[i] == "--binary") binary = args[++i];
            else if (args[i] == "--python") python = args[++i];
        }
        var rows = new List<Row>();
        var weights = binary == null ? BenchFixtures.Weights() : null;
        string? torchSkipped = "--no-torch";
        using var torch = torchWanted ? TorchProcess.TryStart(python, Path.Combine(BenchFixtures.Dir, "weights.pth"), out torchSkipped) : null;
        Console.WriteLine(torch != null
            ? string.Create(CultureInfo.InvariantCulture, $"PyTorch {torch.Version} ({python}); frozen vs eager max |Δlogit| {torch.FrozenDelta:0.0e0}")
            : $"PyTorch left out: {torchSkipped}");
        var names = new List<string> { "generated", "ORT" };
        if (torch != null) names.AddRange(["PyTorch", "frozen"]);
        Console.WriteLine($"threads batch {string.Concat(names.Select(n => $"{n + " ms",13}"))} {string.Concat(names.Skip(1).Select(n => $"{"÷" + n,9}"))}  generated img/s  isa");
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
            // One block per engine in turn, each adding its times to its own list.
            var blocks = new List<Action<List<double>>>
            {
                binary != null ? times => times.Add(RunBinary(binary, threads, batch)) : times => Time(() => net!.Run(input, output), times),
                times => Time(() => { using (ort.Run(feeds)) { } }, times),
            };
            if (torch != null)
                foreach (var mode in new[] { "eager", "frozen" })
                    blocks.Add(times => times.AddRange(torch.Block(mode, threads, batch, PassesPerBlock)));
            var ms = blocks.Select(_ => new List<double>()).ToArray();
            // Alternate in blocks with a pause between, so no engine's spinning threads eat the next one's core.
            for (int round = 0; round < Math.Max(1, iterations / PassesPerBlock); round++)
                for (int e = 0; e < blocks.Count; e++)
                {
                    blocks[e](ms[e]);
                    Thread.Sleep(binary != null && e == blocks.Count - 1 ? 500 : 30);
                }
            double[] medians = ms.Select(Median).ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{threads,7} {batch,5} {string.Concat(medians.Select(m => $"{m,13:0.00}"))} {string.Concat(medians.Skip(1).Select(m => $"{medians[0] / m,9:0.00}"))} {batch * 1000 / medians[0],16:0.0}  {(net != null ? net.Isa.ToString() : "native " + Path.GetFileName(binary))}"));
            rows.Add(new Row($"{threads} thread{(threads > 1 ? "s" : "")}, batch {batch}", medians.Select(m => batch * 1000 / m).ToArray()));
        }
        if (svg != null) File.WriteAllText(svg, Chart(rows, torch?.Version));
        return 0;
    }

    /// <summary>One (threads, batch) case: images/s per engine, in the order generated, ORT[, eager, frozen].</summary>
    private sealed record Row(string Label, double[] ImagesPerSecond);

    /// <summary>A grouped bar chart of images/s (generated, ONNX Runtime and, when it ran, PyTorch both ways), as plain SVG.</summary>
    private static string Chart(List<Row> rows, string? torchVersion)
    {
        var inv = CultureInfo.InvariantCulture;
        var engines = new List<(string Name, string Color)> { ("generated (this project)", "#2b7bb9"), ("ONNX Runtime 1.31.1", "#c0504d") };
        if (torchVersion != null)
        {
            string v = string.Join('.', torchVersion.Split('.').Take(2)); // "1.13.0a0" is Debian's 1.13
            engines.AddRange([($"PyTorch {v} eager", "#9bbb59"), ($"PyTorch {v} frozen", "#f79646")]);
        }
        double max = rows.Max(r => r.ImagesPerSecond.Max()) * 1.15;
        int width = 160 * rows.Count + 40 * engines.Count, height = 320, left = 60, bottom = 260, plot = 200, group = (width - left - 20) / rows.Count;
        int bw = (group - 20 - 4 * (engines.Count - 1)) / engines.Count;
        var sb = new System.Text.StringBuilder();
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append(inv, $"<text x=\"{left}\" y=\"20\" font-size=\"14\">ResNet-18 fp32 throughput, images/s (higher is better)</text>\n");
        sb.Append(inv, $"<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{width - 10}\" y2=\"{bottom}\" stroke=\"#333\"/>\n");
        for (int i = 0; i < rows.Count; i++)
        {
            int x = left + i * group + 10;
            for (int k = 0; k < engines.Count; k++)
            {
                double value = rows[i].ImagesPerSecond[k], h = value / max * plot;
                int bx = x + k * (bw + 4);
                sb.Append(inv, $"<rect x=\"{bx}\" y=\"{bottom - h:0.0}\" width=\"{bw}\" height=\"{h:0.0}\" fill=\"{engines[k].Color}\"/>\n");
                sb.Append(inv, $"<text x=\"{bx + bw / 2}\" y=\"{bottom - h - 4:0.0}\" text-anchor=\"middle\">{value:0}</text>\n");
            }
            sb.Append(inv, $"<text x=\"{x + (engines.Count * (bw + 4) - 4) / 2}\" y=\"{bottom + 16}\" text-anchor=\"middle\">{rows[i].Label}</text>\n");
        }
        for (int k = 0, lx = left; k < engines.Count; lx += 36 + 7 * engines[k].Name.Length, k++)
        {
            sb.Append(inv, $"<rect x=\"{lx}\" y=\"32\" width=\"12\" height=\"12\" fill=\"{engines[k].Color}\"/><text x=\"{lx + 16}\" y=\"43\">{engines[k].Name}</text>\n");
        }
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
        for (int i = 0; i < PassesPerBlock; i++)
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
