using System.Text.Json.Nodes;
using Microsoft.CodeAnalysis;
using ResNet.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace ResNet.Generator.Tests;

/// <summary>
/// The generator specializes every kernel to its shapes, so an unusual shape is where a planner or emitter bug would
/// hide. Seeded random reshapes of the tiny ResNet that keep it a valid network (input size, stem, pool, widths,
/// size-preserving kernels, block strides, pooled size, classes; no max pool, no stem BatchNorm, an extra block, an
/// identity residual in place of a downsample, no classifier bias) must each generate code that compiles and computes
/// what the reference kernels compute, on every instruction set this machine runs, Winograd, exact and generic, at
/// batch 1 and 3 and with the input streamed (bit for bit batch 1's); and the generator must never throw.
/// </summary>
public class ShapeFuzzTests(ITestOutputHelper log)
{
    /// <summary>RESNET18_SHAPE_FUZZ=N adds N seeds of 12 specs each (from 3 on): for a longer search than the default run's.</summary>
    public static TheoryData<int, int> MoreSeeds() => GeneratorHarness.MoreSeeds("RESNET18_SHAPE_FUZZ", 12);

    [Theory]
    [InlineData(1, 6)]
    [InlineData(2, 6)]
    [MemberData(nameof(MoreSeeds))]
    public void RandomValidReshapesComputeWhatTheReferenceDoes(int seed, int specs)
    {
        var rng = new Random(seed);
        for (int i = 0; i < specs; i++)
        {
            var (json, what) = Reshape(rng, $"Fuzz{seed}x{i}");
            var (_, result, output) = GeneratorHarness.Run("/arch/fuzz.json", json);
            // Which ISAs planned a batched variant: "BatchedFrom: new int[] { 0, …, 3, … }" with a nonzero entry.
            var batched = result.GeneratedTrees.SelectMany(t => System.Text.RegularExpressions.Regex.Matches(t.ToString(), @"BatchedFrom: new int\[\] \{ ([^}]*) \}"))
                .Count(m => m.Groups[1].Value.Split(", ").Any(v => v != "0"));
            log.WriteLine($"{i}: {what}{(batched > 0 ? $" (batched variants on {batched} ISAs)" : "")}");
            Assert.True(result.Results.All(r => r.Exception == null), $"the generator threw on {what}");
            var errors = result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
            Assert.True(errors.Count == 0, $"{what}: {string.Join("; ", errors)}");
            // The generated code compiles in the user's project, which may treat warnings as errors.
            var warnings = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Warning).Take(3).ToList();
            Assert.True(warnings.Count == 0, $"{what}: {string.Join("; ", warnings)}");
            Check(output, $"Fuzz{seed}x{i}", what);
        }
    }

    private static void Check(Compilation output, string className, string what)
    {
        var run = GeneratorHarness.AgainstReference(output, className, images: 3, out var context);
        var (info, input, expected, scale) = (run.Info, run.Input, run.Expected, run.Scale);
        try
        {
            foreach (var isa in Enum.GetValues<InstructionSet>().Where(NetworkOptions.IsSupported))
            foreach (var mode in new[] { "Winograd", "exact", "generic" })
            {
                using var net = run.Create(new NetworkOptions
                {
                    InstructionSet = isa, Exact = mode == "exact", GenericKernels = mode == "generic", MaxBatch = 3, Threads = 2,
                });
                var image = input.AsSpan(0, info.Input.Elements);
                var one = net.Run(image);
                // Three images on two threads: the prefix takes two apart and the third on both; a batched variant may run.
                var three = net.Run(input);
                // The first image again, its rows given a few at a time with the first layer's bands run in between.
                var streamed = new float[net.OutputLength];
                net.BeginStreamedInput();
                for (int rows = 0; rows <= info.Input.H; rows += 3)
                {
                    net.StreamInputRows(image, rows);
                    while (net.RunReadyBand()) { }
                }
                net.RunStreamed(image, streamed);
                Assert.Equal(one, streamed);
                float diff = Math.Max(one.Zip(expected, (a, b) => Math.Abs(a - b)).Max(), three.Zip(expected, (a, b) => Math.Abs(a - b)).Max());
                Assert.True(diff <= 1e-4f * scale, $"{what}, {isa} {mode}: max |Δ| = {diff} (logits up to {scale})");
            }
        }
        finally
        {
            context.Unload();
        }
    }

    private static int Conv(int size, int k, int s, int p, int d) => size + 2 * p - d * (k - 1) - 1 is var span and >= 0 ? span / s + 1 : 0;

    /// <summary>PyTorch's pooled size: with ceil_mode the last window must still start inside the input or its left padding.</summary>
    private static int Pooled(int size, int k, int s, int p, bool ceil)
    {
        int span = size + 2 * p - (k - 1) - 1;
        if (span < 0) return 0;
        int n = (ceil ? (span + s - 1) / s : span / s) + 1;
        return ceil && (n - 1) * s >= size + p ? n - 1 : n;
    }

    /// <summary>A valid reshape of tiny_resnet.json and a line saying what was changed.</summary>
    private static (string Json, string What) Reshape(Random rng, string name)
    {
        var spec = JsonNode.Parse(GeneratorHarness.Spec("tiny_resnet.json"))!.AsObject();
        spec["name"] = name;
        var what = new List<string>();
        T Pick<T>(params T[] options) => options[rng.Next(options.Length)];
        JsonArray Pair(int a, int b) => new(a, b);
        JsonObject Module(string path)
        {
            JsonObject node = spec;
            foreach (var part in path.Split('.'))
                node = node["modules"]!.AsArray().Select(m => m!.AsObject()).Single(m => (string)m["name"]! == part);
            return node;
        }

        int h = rng.Next(9, 70), w = rng.Next(9, 70);
        spec["input"] = new JsonArray(3, h, w);
        what.Add($"input {h}×{w}");

        // The stem: any kernel, stride, padding (at most half the kernel, as PyTorch requires) and dilation.
        var conv1 = Module("conv1");
        int kh = Pick(1, 2, 3, 5, 7), kw = Pick(1, 2, 3, 5, 7), sh = Pick(1, 2, 3), sw = Pick(1, 2, 3), dh = Pick(1, 1, 2), dw = Pick(1, 1, 2);
        int ph = rng.Next(0, kh / 2 + 1), pw = rng.Next(0, kw / 2 + 1);
        (conv1["kernel_size"], conv1["stride"], conv1["padding"], conv1["dilation"]) = (Pair(kh, kw), Pair(sh, sw), Pair(ph, pw), Pair(dh, dw));
        what.Add($"stem {kh}×{kw}/{sh}×{sw} pad {ph}×{pw} dil {dh}×{dw}");

        var pool = Module("maxpool");
        int pk = Pick(1, 2, 3), ps = Pick(1, 2), pp = rng.Next(0, pk / 2 + 1);
        bool ceil = rng.Next(2) == 0;
        // Too small an input for this stem and pool leaves nothing to convolve (the generator refuses that): draw again.
        int stemH = Conv(h, kh, sh, ph, dh), stemW = Conv(w, kw, sw, pw, dw);
        int pooledH = Pooled(stemH, pk, ps, pp, ceil), pooledW = Pooled(stemW, pk, ps, pp, ceil);
        if (Math.Min(Math.Min(stemH, stemW), Math.Min(pooledH, pooledW)) < 1) return Reshape(rng, name);
        (pool["kernel_size"], pool["stride"], pool["padding"], pool["ceil_mode"]) = (pk, ps, pp, ceil);
        what.Add($"pool {pk}/{ps} pad {pp}{(ceil ? " ceil" : "")}");

        // Widths: one per stage, every field that names it.
        var strides = new[] { Pick(1, 2, 2, 3), Pick(1, 2, 2, 3) };
        // A wide last stage only where it is small (the reference kernels are scalar): where the planner may give
        // its Winograd layers a batched variant, as ResNet-18's layer4 has.
        int Stage(int size) => (size - 1) / strides[1] + 1;
        bool small = Stage((pooledH - 1) / strides[0] + 1) * Stage((pooledW - 1) / strides[0] + 1) <= 64;
        int c1 = Pick(1, 5, 8, 16, 17), c2 = Pick(3, 8, 16, 24, 33), c3 = small && rng.Next(3) == 0 ? Pick(160, 256) : Pick(8, 16, 40, 48);
        void Width(string path, int cin, int cout)
        {
            var m = Module(path);
            if ((string)m["type"]! == "Conv2d") (m["in_channels"], m["out_channels"]) = (cin, cout);
            else m["num_features"] = cout;
        }
        Width("conv1", 3, c1); Width("bn1", 0, c1);
        foreach (var (layer, cin, cout) in new[] { ("layer1.0", c1, c1), ("layer2.0", c1, c2), ("layer2.1", c2, c2), ("layer3.0", c2, c3) })
        {
            Width($"{layer}.conv1", cin, cout); Width($"{layer}.bn1", 0, cout);
            Width($"{layer}.conv2", cout, cout); Width($"{layer}.bn2", 0, cout);
        }
        Width("layer2.0.downsample.0", c1, c2); Width("layer2.0.downsample.1", 0, c2);
        Width("layer3.0.downsample.0", c2, c3); Width("layer3.0.downsample.1", 0, c3);
        what.Add($"widths {c1}/{c2}/{c3}");

        // Kernels that keep the size (d·(k − 1) = 2p), so residuals still add up; stage strides shared with their downsample.
        var keeping = new (int K, int P, int D)[] { (1, 0, 1), (3, 1, 1), (3, 2, 2), (5, 2, 1), (3, 3, 3), (7, 3, 1) };
        foreach (var path in new[] { "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv2", "layer2.1.conv1", "layer2.1.conv2", "layer3.0.conv2" })
        {
            var (k, p, d) = rng.Next(3) == 0 ? Pick(keeping) : (3, 1, 1);
            var m = Module(path);
            (m["kernel_size"], m["padding"], m["dilation"]) = (Pair(k, k), Pair(p, p), Pair(d, d));
            if (k != 3 || d != 1) what.Add($"{path} {k}×{k} dil {d}");
        }
        foreach (var (stage, s) in new[] { ("layer2.0", strides[0]), ("layer3.0", strides[1]) })
        {
            Module($"{stage}.conv1")["stride"] = Pair(s, s);
            Module($"{stage}.downsample.0")["stride"] = Pair(s, s);
            what.Add($"{stage} stride {s}");
        }

        int oh = Pick(1, 1, 2, 3), ow = Pick(1, 1, 2, 3), classes = Pick(1, 7, 19, 33);
        Module("avgpool")["output_size"] = Pair(oh, ow);
        var fc = Module("fc");
        (fc["in_features"], fc["out_features"]) = (c3 * oh * ow, classes);
        what.Add($"pooled {oh}×{ow}, {classes} classes");

        // The structure: what torchvision's ResNets vary or a user's edit might.
        var top = spec["modules"]!.AsArray();
        JsonNode Named(JsonArray list, string n) => list.Single(m => (string)m!["name"]! == n)!;
        if (rng.Next(4) == 0)
        {
            top.Remove(Named(top, "maxpool"));
            what.Add("no max pool");
        }
        if (rng.Next(4) == 0)
        {
            top.Remove(Named(top, "bn1"));
            conv1["bias"] = true;
            what.Add("stem without BatchNorm (a bias)");
        }
        if (rng.Next(4) == 0)
        {
            var stage = Module("layer1")["modules"]!.AsArray();
            var copy = Module("layer1.0").DeepClone().AsObject();
            copy["name"] = "1";
            stage.Add(copy);
            what.Add("layer1 of two blocks");
        }
        if (strides[0] == 1 && c1 == c2 && rng.Next(2) == 0)
        {
            Module("layer2.0")["modules"]!.AsArray().Remove(Named(Module("layer2.0")["modules"]!.AsArray(), "downsample"));
            what.Add("layer2.0 without downsample");
        }
        if (rng.Next(4) == 0)
        {
            fc["bias"] = false;
            what.Add("fc without bias");
        }
        return (spec.ToJsonString(), string.Join(", ", what));
    }
}
