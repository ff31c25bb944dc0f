using Microsoft.CodeAnalysis;

namespace ResNet.Generator
{
    /// <summary>
    /// Every diagnostic the generator reports. IDs are stable: tests and users' NoWarn lists refer to them.
    /// Messages name the spec file's JSON path and module, then say what was expected.
    /// </summary>
    internal static class Diagnostics
    {
        private const string Category = "ResNet.Generator";

        public static readonly DiagnosticDescriptor MalformedJson = Error("RN1001", "Malformed spec JSON",
            "Spec is not valid JSON: {0}");
        public static readonly DiagnosticDescriptor BadProperty = Error("RN1002", "Missing or invalid property",
            "{0} ({1}): property '{2}' {3}");
        public static readonly DiagnosticDescriptor UnknownModule = Error("RN1003", "Unknown module type",
            "{0} ({1}): unknown module type '{2}'; expected one of Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Linear, Sequential, BasicBlock");
        public static readonly DiagnosticDescriptor BadInput = Error("RN1004", "Missing or invalid input shape",
            "{0}: {1}; expected \"input\": [channels, height, width] with positive integers");
        public static readonly DiagnosticDescriptor ChannelMismatch = Error("RN1005", "Channel mismatch",
            "{0} ({1}): {2} is {3} but the incoming tensor has {4} channels");
        public static readonly DiagnosticDescriptor ImpossibleWindow = Error("RN1006", "Impossible kernel, stride or padding",
            "{0} ({1}): {2}");
        public static readonly DiagnosticDescriptor ShapeMismatch = Error("RN1007", "Shape mismatch",
            "{0} ({1}): {2}");
        public static readonly DiagnosticDescriptor BadStructure = Error("RN1008", "Invalid network structure",
            "{0} ({1}): {2}");
        public static readonly DiagnosticDescriptor Unsupported = Error("RN1009", "Not supported by the generator",
            "{0} ({1}): {2}");
        public static readonly DiagnosticDescriptor TooLarge = Error("RN1010", "Tensor too large",
            "{0} ({1}): {2}");
        public static readonly DiagnosticDescriptor SlowPath = new DiagnosticDescriptor("RN1011", "Layer uses a slower kernel",
            "{0} ({1}): {2}", Category, DiagnosticSeverity.Info, isEnabledByDefault: true);
        /// <summary>A warning, not an error: specs from other exporters may carry extra attributes, but a typo here
        /// ("strides") would otherwise leave the default in force without a word.</summary>
        public static readonly DiagnosticDescriptor UnknownProperty = new DiagnosticDescriptor("RN1012", "Unknown property",
            "{0} ({1}): unknown property '{2}' on a {3}, ignored; {4}", Category, DiagnosticSeverity.Warning, isEnabledByDefault: true);

        public static DiagnosticDescriptor ById(string id) => id switch
        {
            "RN1001" => MalformedJson,
            "RN1002" => BadProperty,
            "RN1003" => UnknownModule,
            "RN1004" => BadInput,
            "RN1005" => ChannelMismatch,
            "RN1006" => ImpossibleWindow,
            "RN1007" => ShapeMismatch,
            "RN1008" => BadStructure,
            "RN1009" => Unsupported,
            "RN1010" => TooLarge,
            "RN1012" => UnknownProperty,
            _ => SlowPath,
        };

        private static DiagnosticDescriptor Error(string id, string title, string format) =>
            new DiagnosticDescriptor(id, title, format, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);
    }
}
