using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.CodeAnalysis;
using ResNet.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace ResNet.Generator.Tests;

/// <summary>
/// What a user's hand does to a spec: seeded random edits of resnet18.json and the tiny ResNet (a value replaced by
/// one of another type or out of range, a number nudged, a property removed or added, a module removed, duplicated
/// or swapped). Each edited spec must get a diagnostic that is one of the generator's own (never an exception, never
/// the internal-error safety net) and names a JSON path, or else generate code that compiles without warnings and,
/// for the tiny network, computes what the reference kernels compute.
/// </summary>
public class SpecMutationFuzzTests(ITestOutputHelper log)
{
    /// <summary>RESNET18_SPEC_FUZZ=N adds N seeds of 30 edited specs each (from 3 on) to the default two of 12.</summary>
    public static TheoryData<int, int> MoreSeeds() => GeneratorHarness.MoreSeeds("RESNET18_SPEC_FUZZ", 30);

    [Theory]
    [InlineData(1, 12)]
    [InlineData(2, 12)]
    [MemberData(nameof(MoreSeeds))]
    public void EditedSpecsGetADiagnosticOrWorkingCode(int seed, int specs)
    {
        var rng = new Random(seed);
        var failures = new List<string>();
        int accepted = 0;
        for (int i = 0; i < specs; i++)
        {
            string className = $"Edited{seed}x{i}";
            var (json, tiny, what) = Edit(rng, className);
            var (_, result, output) = GeneratorHarness.Run("/arch/edited.json", json);
            if (result.Results.FirstOrDefault(r => r.Exception != null).Exception is Exception thrown)
            {
                failures.Add($"{what}: the generator threw {thrown}");
                continue;
            }
            foreach (var d in result.Diagnostics)
            {
                string message = d.GetMessage(CultureInfo.InvariantCulture);
                if (!d.Id.StartsWith("RN10", StringComparison.Ordinal) || message.Contains("internal error") || (d.Id != "RN1001" && !message.StartsWith("$", StringComparison.Ordinal)))
                    failures.Add($"{what}: {d.Id} {message}");
            }
            var error = result.Diagnostics.FirstOrDefault(d => d.Severity == DiagnosticSeverity.Error);
            log.WriteLine($"{i}: {what} -> {(error == null ? "generated" : $"{error.Id} {error.GetMessage(CultureInfo.InvariantCulture)}")}");
            if (error != null) continue;
            accepted++;
            var problems = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).Take(3).ToList();
            if (problems.Count > 0) failures.Add($"{what}: {string.Join("; ", problems)}");
            // resnet18.json's reference pass takes seconds per ISA; the tiny network's results stand for both.
            else if (tiny)
            {
                try { Check(output, className); }
                catch (Exception e) { failures.Add($"{what}: {e.Message.Split('\n')[0]}"); }
            }
        }
        log.WriteLine($"{accepted} of {specs} generated code");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static void Check(Compilation output, string className)
    {
        var run = GeneratorHarness.AgainstReference(output, className, images: 1, out var context);
        try
        {
            foreach (var isa in Enum.GetValues<InstructionSet>().Where(NetworkOptions.IsSupported))
            foreach (bool exact in new[] { false, true })
            {
                using var net = run.Create(new NetworkOptions { InstructionSet = isa, Exact = exact, Threads = 1 });
                float diff = net.Run(run.Input).Zip(run.Expected, (a, b) => Math.Abs(a - b)).Max();
                if (!(diff <= 1e-4f * run.Scale)) throw new Exception($"{isa}{(exact ? " exact" : "")}: max |Δ| = {diff} (logits up to {run.Scale})");
            }
        }
        finally
        {
            context.Unload();
        }
    }

    /// <summary>Replacement values: other JSON types, bounds, and values that are right somewhere else in a spec.</summary>
    private static readonly Func<JsonNode?>[] Values =
    [
        () => 0, () => 1, () => 2, () => 3, () => -1, () => 7, () => 64, () => 65536, () => int.MaxValue, () => 2147483648L,
        () => 1e300, () => 0.5, () => JsonNode.Parse("1.0"), () => JsonNode.Parse("3e0"), () => JsonNode.Parse("-0"), () => JsonNode.Parse("1e-5"),
        () => JsonNode.Parse("-1e-5"), () => "3", () => "", () => null, () => true, () => false, () => new JsonObject(),
        () => new JsonArray(), () => new JsonArray(1), () => new JsonArray(2, 3), () => new JsonArray(1, 2, 3), () => new JsonArray(0, 0),
        () => new JsonArray(-1, 3), () => new JsonArray(new JsonArray(1)), () => new JsonArray(3, 8, 8), () => new JsonArray(3, 100000, 100000),
        () => "Conv2d", () => "ReLU", () => "Sequential", () => "BasicBlock", () => "zeros", () => "circular",
    ];

    private static readonly string[] Keys = ["stride", "padding", "dilation", "kernel_size", "bias", "ceil_mode", "groups", "output_size", "in_channels", "strides", "modules"];

    /// <summary>One to three edits of a spec, and a line saying what they were.</summary>
    private static (string Json, bool Tiny, string What) Edit(Random rng, string name)
    {
        bool tiny = rng.Next(5) != 0;
        var spec = JsonNode.Parse(GeneratorHarness.Spec(tiny ? "tiny_resnet.json" : "resnet18.json"))!.AsObject();
        spec["name"] = name;
        var what = new List<string> { tiny ? "tiny" : "resnet18" };
        // Some draws do not apply (a nudge of a string, a swap in a one-module list): draw until enough have.
        for (int edits = rng.Next(1, 4); edits > 0;)
        {
            int before = what.Count;
            var objects = new List<(JsonObject Node, string Path)>();
            void Walk(JsonObject o, string path)
            {
                objects.Add((o, path));
                if (o["modules"] is JsonArray list)
                    for (int j = 0; j < list.Count; j++) if (list[j] is JsonObject child) Walk(child, $"{path}.modules[{j}]");
            }
            Walk(spec, "$");
            var (node, at) = objects[rng.Next(objects.Count)];
            var keys = node.Select(kv => kv.Key).ToList();
            string key = keys[rng.Next(keys.Count)];
            var modules = node["modules"] as JsonArray;
            switch (rng.Next(8))
            {
                case 0:
                case 1:
                    if (key == "modules") break;
                    node[key] = Values[rng.Next(Values.Length)]();
                    what.Add($"{at}.{key} = {node[key]?.ToJsonString() ?? "null"}");
                    break;
                case 2:
                case 3:
                    // A nudge keeps the type, so more edits get past the parser to shape inference and planning.
                    if (node[key] is JsonValue v && v.TryGetValue<int>(out int n)) node[key] = n + rng.Next(-2, 3);
                    else if (node[key] is JsonArray pair && pair.Count is 2 or 3 && rng.Next(pair.Count) is int e && pair[e] is JsonValue ev && ev.TryGetValue<int>(out int m)) pair[e] = m + rng.Next(-2, 3);
                    else break;
                    what.Add($"{at}.{key} = {node[key]!.ToJsonString()}");
                    break;
                case 4:
                    node.Remove(key);
                    what.Add($"{at}.{key} removed");
                    break;
                case 5:
                    string added = Keys[rng.Next(Keys.Length)];
                    node[added] = Values[rng.Next(Values.Length)]();
                    what.Add($"{at}.{added} := {node[added]?.ToJsonString() ?? "null"}");
                    break;
                case 6:
                    if (modules == null || modules.Count == 0) break;
                    int k = rng.Next(modules.Count);
                    if (rng.Next(2) == 0)
                    {
                        modules.RemoveAt(k);
                        what.Add($"{at}.modules[{k}] removed");
                    }
                    else
                    {
                        int to = rng.Next(modules.Count + 1);
                        modules.Insert(to, modules[k]!.DeepClone());
                        what.Add($"{at}.modules[{k}] copied to [{to}]");
                    }
                    break;
                case 7:
                    if (modules == null || modules.Count < 2) break;
                    int a = rng.Next(modules.Count), b = rng.Next(modules.Count);
                    if (a == b) break;
                    (modules[a], modules[b]) = (modules[b]!.DeepClone(), modules[a]!.DeepClone());
                    what.Add($"{at}.modules[{a}] <-> [{b}]");
                    break;
            }
            if (what.Count > before) edits--;
        }
        return (spec.ToJsonString(), tiny, string.Join(", ", what));
    }
}
