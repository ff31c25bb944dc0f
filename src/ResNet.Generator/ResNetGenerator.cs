using System;
using System.IO;
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

            // Cacheable: the plan holds no locations, so whitespace edits in the spec leave it equal.
            var planned = parsed.Combine(ns)
                .Select((input, _) => PlanSafely(input.Left.Spec, input.Right))
                .WithTrackingName(PlanStep);

            context.RegisterSourceOutput(parsed.Select((p, _) => p.Diagnostics), Report);
            context.RegisterSourceOutput(planned.Select((p, _) => p.Diagnostics), Report);
            context.RegisterSourceOutput(planned.Select((p, _) => p.Plan), (spc, plan) =>
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
                return new PlanResult(graph != null ? Planner.Plan(graph, ns) : null, diagnostics);
            }
            catch (Exception e) when (!(e is OperationCanceledException))
            {
                return new PlanResult(null, Single("RN1008", spec.FilePath, "$", "network", $"internal error while planning ({e.GetType().Name}: {e.Message})"));
            }
        }

        private static EquatableArray<DiagnosticInfo> Single(string id, string path, params string[] args) =>
            new[] { new DiagnosticInfo(id, path, default, default, args.ToEquatableArray()) }.ToEquatableArray();
    }

    internal sealed record ParseResult(NetworkSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics);

    internal sealed record PlanResult(NetworkPlan? Plan, EquatableArray<DiagnosticInfo> Diagnostics);
}
