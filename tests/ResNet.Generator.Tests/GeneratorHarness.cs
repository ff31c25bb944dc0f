using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using ResNet.Runtime;
using ResNet.Runtime.Reference;
using ResNet.Runtime.Weights;

namespace ResNet.Generator.Tests;

/// <summary>Drives ResNetGenerator with CSharpGeneratorDriver on in-memory specs, and compiles what it emits.</summary>
internal static class GeneratorHarness
{
    public static string Spec(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "specs", name));

    /// <summary>The planner's decisions for spec <paramref name="file"/>, optionally edited first.</summary>
    public static ResNet.Generator.Model.NetworkPlan Plan(string file, Func<string, string>? edit = null)
    {
        string spec = Spec(file);
        var parsed = ResNetGenerator.ParseSafely($"/arch/{file}", SourceText.From(edit != null ? edit(spec) : spec));
        return ResNetGenerator.PlanSafely(parsed.Spec, "ResNet.Generated").Plan!;
    }

    /// <summary>
    /// (seed, specs) for seeds 3 to 2 + N, N read from environment variable <paramref name="variable"/> (none when it is
    /// unset): how a fuzz test adds a longer search to the default run's seeds 1 and 2.
    /// </summary>
    public static Xunit.TheoryData<int, int> MoreSeeds(string variable, int specs)
    {
        var data = new Xunit.TheoryData<int, int>();
        int n = int.TryParse(Environment.GetEnvironmentVariable(variable), out var v) ? v : 0;
        for (int seed = 3; seed < 3 + n; seed++) data.Add(seed, specs);
        return data;
    }

    public static CSharpCompilation EmptyCompilation() => CSharpCompilation.Create("Generated",
        [CSharpSyntaxTree.ParseText("namespace Probe { }")],
        References(),
        new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true, optimizationLevel: OptimizationLevel.Release));

    public static GeneratorDriver Driver() => CSharpGeneratorDriver.Create(
        [new ResNetGenerator().AsSourceGenerator()],
        driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static (GeneratorDriver Driver, GeneratorDriverRunResult Result, Compilation Output) Run(string path, string json, GeneratorDriver? driver = null)
    {
        driver ??= Driver();
        driver = driver.AddAdditionalTexts([new InMemoryText(path, json)]);
        return Run(driver);
    }

    public static (GeneratorDriver Driver, GeneratorDriverRunResult Result, Compilation Output) Run(GeneratorDriver driver)
    {
        driver = driver.RunGeneratorsAndUpdateCompilation(EmptyCompilation(), out var output, out _);
        return (driver, driver.GetRunResult(), output);
    }

    /// <summary>Compiles and loads the generated code in a collectible context; on failure shows the source with line numbers.</summary>
    public static Assembly Load(Compilation compilation, out AssemblyLoadContext context)
    {
        using var ms = new MemoryStream();
        var emit = compilation.Emit(ms);
        if (!emit.Success)
        {
            var errors = emit.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Take(10).ToList();
            var tree = errors[0].Location.SourceTree;
            var numbered = tree == null ? "" : string.Join("\n", tree.ToString().Split('\n').Select((l, i) => $"{i + 1,5}: {l}"));
            throw new Xunit.Sdk.XunitException(string.Join("\n", errors) + "\n" + numbered);
        }
        ms.Position = 0;
        context = new AssemblyLoadContext("generated", isCollectible: true);
        return context.LoadFromStream(ms);
    }

    /// <summary>
    /// Generated class <paramref name="className"/>, loaded in a collectible context, with what the reference kernels
    /// compute for it: seeded random weights and <paramref name="images"/> smooth test images.
    /// </summary>
    public static ReferenceRun AgainstReference(Compilation compilation, string className, int images, out AssemblyLoadContext context)
    {
        var type = Load(compilation, out context).GetType($"ResNet.Generated.{className}")!;
        var info = (NetworkInfo)type.GetProperty("Network")!.GetValue(null)!;
        var weights = RandomWeights.For(info, seed: 9);
        var input = Enumerable.Range(0, images * info.Input.Elements).Select(i => MathF.Sin(i * 0.37f)).ToArray();
        var expected = new ReferenceNetwork(info, weights).Run(input);
        return new ReferenceRun(type, info, weights, input, expected, Math.Max(1f, expected.Max(MathF.Abs)));
    }

    /// <summary>A generated network's class, its reference logits and their largest magnitude (the tolerance's scale).</summary>
    public sealed record ReferenceRun(Type Type, NetworkInfo Info, StateDict Weights, float[] Input, float[] Expected, float Scale)
    {
        public GeneratedNetwork Create(NetworkOptions options) => (GeneratedNetwork)Activator.CreateInstance(Type, Weights, options)!;
    }

    private static ImmutableArray<MetadataReference> References()
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        return tpa.Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .Append(MetadataReference.CreateFromFile(typeof(ResNet.Runtime.GeneratedNetwork).Assembly.Location))
            .ToImmutableArray();
    }

    private sealed class InMemoryText(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }
}
