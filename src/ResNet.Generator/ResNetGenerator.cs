using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;
using ResNet.Generator.Emitter;
using ResNet.Generator.Model;
using ResNet.Generator.Parsing;

namespace ResNet.Generator
{
    /// <summary>
    /// Turns every `*.json` layer spec among AdditionalFiles into a shape-specialized network class.
    /// Each step carries only value-equal data (text → spec → plan), so an edit that leaves the plan equal
    /// regenerates nothing, and diagnostics flow on their own output so moving text only re-reports them.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class ResNetGenerator : IIncrementalGenerator
    {
        public const string ParseStep = "Parse";
        public const string AnalyzeStep = "Analyze";
        public const string PlanStep = "Plan";

        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var ns = context.AnalyzerConfigOptionsProvider.Select((options, _) =>
                options.GlobalOptions.TryGetValue("build_property.RootNamespace", out var value) && !string.IsNullOrWhiteSpace(value) ? value : "ResNet.Generated");

            // Cacheable: a (path, text) pair becomes a value-equal spec or value-equal diagnostics.
            var parsed = context.AdditionalTextsProvider
                .Where(file => file.Path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
                .Select((file, token) => ParseSafely(file.Path, file.GetText(token)))
                .WithTrackingName(ParseStep);

            var planned = parsed.Combine(ns)
                .Select((input, _) => PlanSafely(input.Left.Spec, input.Right))
                .WithTrackingName(AnalyzeStep);
            // Cacheable: the plan holds no locations (its diagnostics, which do, flow apart), so whitespace edits
            // in the spec leave it equal and regenerate nothing.
            var plans = planned.Select((p, _) => p.Plan).WithTrackingName(PlanStep);

            context.RegisterSourceOutput(parsed.Select((p, _) => p.Diagnostics), Report);
            context.RegisterSourceOutput(planned.Select((p, _) => p.Diagnostics), Report);
            context.RegisterSourceOutput(plans, (spc, plan) =>
            {
                if (plan == null) return;
                foreach (var (hint, source) in NetworkEmitter.Emit(plan)) spc.AddSource(hint, SourceText.From(source, System.Text.Encoding.UTF8));
            });
        }

        private static void Report(SourceProductionContext spc, EquatableArray<DiagnosticInfo> diagnostics)
        {
            foreach (var d in diagnostics) spc.ReportDiagnostic(d.ToDiagnostic());
        }

        /// <summary>A generator that throws becomes warning CS8785 and silently no code, so nothing may escape.</summary>
        internal static ParseResult ParseSafely(string path, SourceText? text)
        {
            if (text == null) return new ParseResult(null, Single("RN1001", path, $"the file {Path.GetFileName(path)} could not be read"));
            try
            {
                var (spec, diagnostics) = SpecParser.Parse(path, text);
                return new ParseResult(spec, diagnostics);
            }
            catch (Exception e) when (!(e is OperationCanceledException))
            {
                return new ParseResult(null, Single("RN1001", path, $"internal error while reading the spec ({e.GetType().Name}: {e.Message})"));
            }
        }

        internal static PlanResult PlanSafely(NetworkSpec? spec, string ns)
        {
            if (spec == null) return new PlanResult(null, EquatableArray<DiagnosticInfo>.Empty);
            try
            {
                var (graph, diagnostics) = ShapeInference.Run(spec);
                if (graph == null) return new PlanResult(null, diagnostics);
                return new PlanResult(Planner.Plan(graph, ns), diagnostics.Concat(SlowPaths(spec, graph)).ToEquatableArray());
            }
            catch (Exception e) when (!(e is OperationCanceledException))
            {
                return new PlanResult(null, Single("RN1008", spec.FilePath, "$", "network", $"internal error while planning ({e.GetType().Name}: {e.Message})"));
            }
        }

        /// <summary>
        /// RN1011 (info), as Regex's generator reports limited code: a layer Winograd could compute that gets the
        /// direct kernel because, by the planner's estimate, streaming its transformed weights would cost more than Winograd saves.
        /// </summary>
        private static IEnumerable<DiagnosticInfo> SlowPaths(NetworkSpec spec, Graph graph)
        {
            foreach (var layer in graph.Layers)
            {
                if (!WinogradPlanner.IsWinogradShape(layer) || WinogradPlanner.Choose(layer, Isa.Avx512) != null) continue;
                var module = Find(spec.Modules, layer.Path);
                if (module == null) continue;
                string Mb(int m) => (WinogradPlanner.WeightBytes(layer, m) / 1048576).ToString("0.0", CultureInfo.InvariantCulture);
                var variants = new[] { 2, 4 }.Where(m => layer.OutShape.H >= m && layer.OutShape.W >= m).Select(m => $"F({m}×{m},3×3): {Mb(m)} MB");
                string text = $"direct convolution instead of Winograd: at batch 1 streaming its transformed weights ({string.Join(", ", variants)}) would take longer than the multiplies Winograd saves";
                yield return new DiagnosticInfo("RN1011", module.Location.FilePath, module.Location.Span, module.Location.Lines,
                    new[] { module.JsonPath, module.Path, text }.ToEquatableArray());
            }
        }

        private static ModuleSpec? Find(EquatableArray<ModuleSpec> modules, string path)
        {
            foreach (var m in modules)
            {
                if (m.Path == path) return m;
                if (path.StartsWith(m.Path + ".", StringComparison.Ordinal) && Find(m.Children, path) is ModuleSpec found) return found;
            }
            return null;
        }

        private static EquatableArray<DiagnosticInfo> Single(string id, string path, params string[] args) =>
            new[] { new DiagnosticInfo(id, path, default, default, args.ToEquatableArray()) }.ToEquatableArray();
    }

    internal sealed record ParseResult(NetworkSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics);

    internal sealed record PlanResult(NetworkPlan? Plan, EquatableArray<DiagnosticInfo> Diagnostics);
}
