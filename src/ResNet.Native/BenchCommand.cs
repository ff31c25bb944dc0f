using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using ResNet.Runtime;
using ResNet.Runtime.Reference;
using ResNet.Runtime.Weights;

namespace ResNet.Native;

/// <summary>
/// `resnet18 bench`: times whole forward passes (median and min of M iterations after warm-up) with the
/// generated kernels, the generic ones (same algorithm, any shape) or the scalar reference; `--layers` adds a per-layer table.
/// </summary>
internal static class BenchCommand
{
    public const string Usage = "usage: resnet18 bench [--threads N] [--batch B] [--iterations M] [--kernels generated|generic|reference] [--isa avx512|avx2|portable] [--weights W.pth] [--exact] [--layers] [--json]";

    /// <summary>Each pass's time is kept for the median: a bound keeps that array small (10⁵ passes are ~15 minutes).</summary>
    private const int MaxIterations = 100_000;

    private const string Help = Usage + """


        Times whole forward passes over a batch of random images, after one untimed pass: the median and the
        minimum ms per batch, images/s, and GFLOP/s counting 3.63 GFLOP per image.

          --threads N        threads (default: all cores)
          --batch B          images per pass (default 1, at most 256)
          --iterations M     timed passes (default 20, at most 100000; 3 at most with --kernels reference)
          --kernels K        generated (default); generic: the same algorithm per layer, written once for any
                             shape; reference: the scalar kernels the tests use as the oracle
          --isa I            avx512, avx2 or portable kernels (default: the best this CPU runs)
          --weights W        the weights to run (default: seeded random weights)
          --exact            direct convolution everywhere instead of Winograd
          --layers           then a table per layer: ms, GFLOP/s and % of the FMA peak measured on the spot
                             (Winograd layers counted at their direct-convolution FLOPs)
          --json             one JSON object: threads, batch, kernels, exact, isa, median_ms, min_ms,
                             images_per_s, gflops
        """;

    public static int Run(string[] args)
    {
        int batch = 1, iterations = 20, threads = Environment.ProcessorCount;
        string kernels = "generated";
        string? weightsPath = null;
        bool json = false, layers = false, exact = false;
        InstructionSet? isa = IsaLauncher.Effective;
        for (int i = 0; i < args.Length; i++)
        {
            int option = i;
            string? Next() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--batch" when int.TryParse(Next(), out batch) && batch is >= 1 and <= 256: break;
                case "--iterations" when int.TryParse(Next(), out iterations) && iterations is >= 1 and <= MaxIterations: break;
                case "--threads" when int.TryParse(Next(), out threads) && threads is >= 1 and <= 256: break;
                case "--kernels" when Next() is "generated" or "generic" or "reference" && (kernels = args[i]) != null: break;
                case "--isa" when ParseIsa(Next()) is InstructionSet s && (isa = s) != null: break;
                case "--weights" when (weightsPath = Next()) is { Length: > 0 }: break; // an empty name failed as a stack trace
                case "--json": json = true; break;
                case "-h" or "--help":
                    StandardOutput.WriteLine(Help);
                    return 0;
                case "--layers": layers = true; break;
                case "--exact": exact = true; break;
                default:
                    Program.ErrorLine($"resnet18 bench: {UsageError(args[option], option < i ? args[i] : null)}");
                    Console.Error.WriteLine(Usage);
                    Console.Error.WriteLine("resnet18 bench --help describes the options.");
                    return 2;
            }
        }
        if (isa is InstructionSet want && !NetworkOptions.IsSupported(want))
        {
            Console.Error.WriteLine($"resnet18 bench: this binary cannot run {want} kernels here (best: {NetworkOptions.Best})");
            return 2;
        }
        StateDict weights;
        try
        {
            weights = weightsPath != null ? StateDict.Load(weightsPath) : RandomWeights.For(ResNet18.Network, seed: 1);
        }
        catch (ResNetException e)
        {
            Program.ErrorLine($"resnet18: {e.Message}");
            return 1;
        }
        var input = new float[batch * ResNet18.Network.Input.Elements];
        var rng = new Random(2);
        for (int i = 0; i < input.Length; i++) input[i] = (float)(rng.NextDouble() * 2 - 1);

        // Only the network being timed is built: the other would pack ~100 MB of weights for nothing.
        using var model = kernels != "reference"
            ? new ResNet18(weights, new NetworkOptions { MaxBatch = batch, InstructionSet = isa, Threads = threads, Exact = exact, GenericKernels = kernels == "generic" })
            : null;
        var reference = model == null ? new ReferenceNetwork(ResNet18.Network, weights) : null;
        var output = new float[batch * ResNet18.Network.Output.Elements];
        Action pass = model != null ? () => model.Run(input, output) : () => reference!.Run(input);
        if (model == null) iterations = Math.Min(iterations, 3);
        pass();
        var times = new double[iterations];
        for (int i = 0; i < iterations; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            pass();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        if (layers && model != null) PrintLayers(model, iterations, output, input);
        Array.Sort(times);
        double median = times[iterations / 2], min = times[0];
        double gflops = ResNet18.Network.Flops * batch / (median * 1e6);
        string isaName = model == null ? "scalar" : model.Isa.ToString().ToLowerInvariant();
        if (model != null) exact = model.Exact;
        var inv = CultureInfo.InvariantCulture;
        if (json)
            StandardOutput.WriteLine(string.Create(inv, $"{{\"threads\":{threads},\"batch\":{batch},\"kernels\":\"{kernels}\",\"exact\":{(exact ? "true" : "false")},\"isa\":\"{isaName}\",\"median_ms\":{median:0.###},\"min_ms\":{min:0.###},\"images_per_s\":{batch * 1000 / median:0.##},\"gflops\":{gflops:0.##}}}"));
        else
            StandardOutput.WriteLine(string.Create(inv, $"{kernels} ({isaName}{(exact ? ", exact" : "")}), {threads} thread(s), batch {batch}, {iterations} iterations: median {median:0.00} ms, min {min:0.00} ms, {batch * 1000 / median:0.0} images/s, {gflops:0.0} GFLOP/s"));
        return 0;
    }

    private static void PrintLayers(ResNet18 model, int iterations, float[] output, float[] input)
    {
        double peak = MeasurePeakGflops(model.Isa) * model.Threads;
        var times = model.ProfileLayers(true)!;
        for (int i = 0; i < iterations; i++) model.Run(input, output);
        model.ProfileLayers(false);
        var inv = CultureInfo.InvariantCulture;
        StandardOutput.WriteLine(string.Create(inv, $"peak measured now: {peak:0} GFLOP/s ({model.Threads} thread(s), {model.Isa}); Winograd layers count their direct-convolution FLOPs"));
        StandardOutput.WriteLine(string.Create(inv, $"{"layer",-32} {"ms",8} {"GFLOP/s",8} {"% peak",7}"));
        int n = input.Length / model.InputLength;
        for (int l = 0; l < times.Length; l++)
        {
            var info = model.Info.Layers[l];
            double ms = times[l] / iterations;
            double flops = info.Kind == LayerKind.Conv
                ? 2.0 * info.OutShape.Elements * info.Conv!.InChannels * info.Conv.KernelH * info.Conv.KernelW * n
                : info.Kind == LayerKind.Linear ? 2.0 * info.Linear!.InFeatures * info.Linear.OutFeatures * n : 0;
            double g = flops / (ms * 1e6);
            StandardOutput.WriteLine(string.Create(inv, $"{info.Name,-32} {ms,8:0.000} {g,8:0.0} {100 * g / peak,6:0}%"));
        }
    }

    /// <summary>
    /// fp32 FMA peak of one core for the kernels' vector width, measured now: 12 independent FMA chains on
    /// registers for about 0.1 s (on this machine: ~258 GFLOP/s with 512-bit vectors).
    /// </summary>
    public static double MeasurePeakGflops(InstructionSet isa)
    {
        long iterations = 2_000_000;
        double best = 0;
        for (int round = 0; round < 3; round++)
        {
            long t0 = Stopwatch.GetTimestamp();
            float sink = isa == InstructionSet.Avx512 ? Fma512(iterations) : isa == InstructionSet.Avx2 ? Fma256(iterations) : Fma128(iterations);
            double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            int lanes = isa == InstructionSet.Avx512 ? 16 : isa == InstructionSet.Avx2 ? 8 : 4;
            if (float.IsFinite(sink)) best = Math.Max(best, iterations * 12.0 * lanes * 2 / s / 1e9);
        }
        return best;
    }

    private static float Fma512(long n)
    {
        var a = Vector512.Create(1.0000001f);
        var b = Vector512.Create(0.9999999f);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(a, b, c0); c1 = Vector512.FusedMultiplyAdd(a, b, c1); c2 = Vector512.FusedMultiplyAdd(a, b, c2);
            c3 = Vector512.FusedMultiplyAdd(a, b, c3); c4 = Vector512.FusedMultiplyAdd(a, b, c4); c5 = Vector512.FusedMultiplyAdd(a, b, c5);
            c6 = Vector512.FusedMultiplyAdd(a, b, c6); c7 = Vector512.FusedMultiplyAdd(a, b, c7); c8 = Vector512.FusedMultiplyAdd(a, b, c8);
            c9 = Vector512.FusedMultiplyAdd(a, b, c9); c10 = Vector512.FusedMultiplyAdd(a, b, c10); c11 = Vector512.FusedMultiplyAdd(a, b, c11);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).ToScalar();
    }

    private static float Fma256(long n)
    {
        var a = Vector256.Create(1.0000001f);
        var b = Vector256.Create(0.9999999f);
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(a, b, c0); c1 = Vector256.FusedMultiplyAdd(a, b, c1); c2 = Vector256.FusedMultiplyAdd(a, b, c2);
            c3 = Vector256.FusedMultiplyAdd(a, b, c3); c4 = Vector256.FusedMultiplyAdd(a, b, c4); c5 = Vector256.FusedMultiplyAdd(a, b, c5);
            c6 = Vector256.FusedMultiplyAdd(a, b, c6); c7 = Vector256.FusedMultiplyAdd(a, b, c7); c8 = Vector256.FusedMultiplyAdd(a, b, c8);
            c9 = Vector256.FusedMultiplyAdd(a, b, c9); c10 = Vector256.FusedMultiplyAdd(a, b, c10); c11 = Vector256.FusedMultiplyAdd(a, b, c11);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).ToScalar();
    }

    private static float Fma128(long n)
    {
        var a = Vector128.Create(1.0000001f);
        var b = Vector128.Create(0.9999999f);
        Vector128<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector128.MultiplyAddEstimate(a, b, c0); c1 = Vector128.MultiplyAddEstimate(a, b, c1); c2 = Vector128.MultiplyAddEstimate(a, b, c2);
            c3 = Vector128.MultiplyAddEstimate(a, b, c3); c4 = Vector128.MultiplyAddEstimate(a, b, c4); c5 = Vector128.MultiplyAddEstimate(a, b, c5);
            c6 = Vector128.MultiplyAddEstimate(a, b, c6); c7 = Vector128.MultiplyAddEstimate(a, b, c7); c8 = Vector128.MultiplyAddEstimate(a, b, c8);
            c9 = Vector128.MultiplyAddEstimate(a, b, c9); c10 = Vector128.MultiplyAddEstimate(a, b, c10); c11 = Vector128.MultiplyAddEstimate(a, b, c11);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).ToScalar();
    }

    /// <summary>Why <paramref name="option"/> (given <paramref name="value"/>, or nothing after it) was refused, in the words the classifying command uses.</summary>
    private static string UsageError(string option, string? value)
    {
        string? needs = option switch
        {
            "--batch" or "--threads" => "an integer from 1 to 256",
            "--iterations" => $"an integer from 1 to {MaxIterations}",
            "--kernels" => "generated, generic or reference",
            "--isa" => "avx512, avx2 or portable",
            "--weights" => "a file",
            _ => null,
        };
        if (needs == null) return $"unknown option '{option}'";
        return value == null ? $"{option} needs {needs}" : $"{option} needs {needs}, not '{value}'";
    }

    /// <summary>`--isa`'s names, which RESNET18_ISA takes too (in any case).</summary>
    internal static InstructionSet? ParseIsa(string? s) => s switch
    {
        "avx512" => InstructionSet.Avx512,
        "avx2" => InstructionSet.Avx2,
        "portable" => InstructionSet.Portable,
        _ => null,
    };
}
