using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using Microsoft.CodeAnalysis.Text;
using ResNet.Generator.Model;

namespace ResNet.Generator.Parsing
{
    /// <summary>
    /// Turns spec JSON into <see cref="NetworkSpec"/>. Attributes follow the torch.nn constructors: the
    /// required ones must be present, the rest default as PyTorch does, so a spec may be written as terse
    /// as a repr (which omits defaults) or as complete as tools/spec.py exports it.
    /// </summary>
    internal sealed class SpecParser
    {
        /// <summary>No real layer has more channels or pixels per side; larger values are typos or attacks.</summary>
        public const int MaxDimension = 1 << 20;

        private readonly string _path;
        private readonly SourceText _text;
        private readonly List<DiagnosticInfo> _diagnostics = new List<DiagnosticInfo>();

        private SpecParser(string path, SourceText text)
        {
            _path = path;
            _text = text;
        }

        public static (NetworkSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics) Parse(string path, SourceText text)
        {
            var parser = new SpecParser(path, text);
            var spec = parser.ParseNetwork();
            bool failed = parser._diagnostics.Exists(d => Diagnostics.ById(d.Id).DefaultSeverity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error);
            return (failed ? null : spec, parser._diagnostics.ToEquatableArray());
        }

        private NetworkSpec? ParseNetwork()
        {
            var root = JsonReader.TryParse(_text.ToString(), out int offset, out string? error);
            if (root == null)
            {
                Report(Diagnostics.MalformedJson, new TextSpan(offset, 0), $"{error} at line {_text.Lines.GetLinePosition(offset).Line + 1}");
                return null;
            }
            var location = Locate(root);
            if (root.Kind != JsonKind.Object)
            {
                Report(Diagnostics.MalformedJson, location.Span, $"the top level must be an object, found {root.Describe()}");
                return null;
            }
            string className = DefaultClassName();
            var nameNode = root.Get("name");
            if (nameNode != null)
            {
                if (nameNode.Kind == JsonKind.String && IsIdentifier(nameNode.Text!)) className = nameNode.Text!;
                else ReportProperty("$", "network", nameNode, "name", "must be a C# identifier such as \"ResNet18\"");
            }

            // The top level's "type" is the exporter's class name ("ResNet"), informative only.
            ReportUnknown(root, "$", "network", "network", new[] { "name", "type", "input", "modules" });
            var input = ParseInput(root);
            var modules = ParseChildren(root, "$", "", "network", required: true);
            if (input == null || modules == null) return null;
            return new NetworkSpec(className, _path, location, input.Value, modules.Value);
        }

        private Shape? ParseInput(JsonNode root)
        {
            var node = root.Get("input");
            string? problem = null;
            if (node == null) problem = "the spec has no \"input\" property";
            else if (node.Kind != JsonKind.Array || node.Items.Count != 3) problem = $"\"input\" is {node.Describe()} of the wrong form";
            else
            {
                var dims = new int[3];
                for (int i = 0; i < 3; i++)
                {
                    var item = node.Items[i];
                    if (item.Kind != JsonKind.Number || item.Number != Math.Floor(item.Number) || item.Number < 1 || item.Number > MaxDimension)
                    {
                        problem = $"input[{i}] is {item.Text ?? item.Describe()}";
                        break;
                    }
                    dims[i] = (int)item.Number;
                }
                if (problem == null) return new Shape(dims[0], dims[1], dims[2]);
            }
            Report(Diagnostics.BadInput, Locate(node ?? root).Span, "$.input", problem!);
            return null;
        }

        private EquatableArray<ModuleSpec>? ParseChildren(JsonNode parent, string jsonPath, string prefix, string owner, bool required)
        {
            var list = parent.Get("modules");
            if (list == null)
            {
                if (required) ReportProperty(jsonPath, owner, parent, "modules", "is missing; expected an array of modules");
                return required ? (EquatableArray<ModuleSpec>?)null : EquatableArray<ModuleSpec>.Empty;
            }
            if (list.Kind != JsonKind.Array)
            {
                ReportProperty(jsonPath, owner, list, "modules", $"is {list.Describe()}; expected an array of modules");
                return null;
            }
            var result = new List<ModuleSpec>();
            var names = new HashSet<string>();
            bool ok = true;
            for (int i = 0; i < list.Items.Count; i++)
            {
                var child = ParseModule(list.Items[i], $"{jsonPath}.modules[{i}]", prefix);
                if (child == null)
                {
                    ok = false;
                    continue;
                }
                if (!names.Add(child.Name))
                {
                    Report(Diagnostics.BadStructure, child.Location.Span, child.JsonPath, child.Path, $"a sibling is already named '{child.Name}'; expected unique names, as state_dict keys are");
                    ok = false;
                }
                result.Add(child);
            }
            return ok ? result.ToEquatableArray() : (EquatableArray<ModuleSpec>?)null;
        }

        private ModuleSpec? ParseModule(JsonNode node, string jsonPath, string prefix)
        {
            if (node.Kind != JsonKind.Object)
            {
                Report(Diagnostics.BadStructure, Locate(node).Span, jsonPath, prefix.TrimEnd('.'), $"found {node.Describe()}; expected a module object");
                return null;
            }
            var fields = new Fields(this, node, jsonPath, prefix + "?");
            string? name = fields.String("name", null, IsModuleName, "must be a name such as \"conv1\" or \"0\" (letters, digits, '_')");
            if (name == null) return null;
            string path = prefix + name;
            fields = new Fields(this, node, jsonPath, path);
            string? type = fields.String("type", null, _ => true, "must name a module type such as \"Conv2d\"");
            if (type == null) return null;
            var location = Locate(node);
            ConvSpec? conv = null;
            BatchNormSpec? bn = null;
            MaxPoolSpec? pool = null;
            AvgPoolSpec? avg = null;
            LinearSpec? linear = null;
            bool inplace = false;
            EquatableArray<ModuleSpec> children = EquatableArray<ModuleSpec>.Empty;
            switch (type)
            {
                case "Conv2d":
                    {
                        int? ic = fields.Int("in_channels", null, 1), oc = fields.Int("out_channels", null, 1);
                        Pair? k = fields.Pair("kernel_size", null, 1), s = fields.Pair("stride", new Pair(1, 1), 1);
                        Pair? p = fields.Pair("padding", new Pair(0, 0), 0), d = fields.Pair("dilation", new Pair(1, 1), 1);
                        int? g = fields.Int("groups", 1, 1);
                        bool? bias = fields.Bool("bias", true);
                        string? mode = fields.String("padding_mode", "zeros", m => m == "zeros" || m == "reflect" || m == "replicate" || m == "circular",
                            "must be one of \"zeros\", \"reflect\", \"replicate\", \"circular\"");
                        if (!fields.Ok) return null;
                        conv = new ConvSpec(ic!.Value, oc!.Value, k!.Value, s!.Value, p!.Value, d!.Value, g!.Value, bias!.Value, mode!);
                        break;
                    }
                case "BatchNorm2d":
                    {
                        int? n = fields.Int("num_features", null, 1);
                        double? eps = fields.Double("eps", 1e-5, positive: true), momentum = fields.Double("momentum", 0.1, positive: false);
                        bool? affine = fields.Bool("affine", true), track = fields.Bool("track_running_stats", true);
                        if (!fields.Ok) return null;
                        bn = new BatchNormSpec(n!.Value, eps!.Value, momentum ?? 0.1, affine!.Value, track!.Value);
                        break;
                    }
                case "ReLU":
                    inplace = fields.Bool("inplace", false) ?? false;
                    if (!fields.Ok) return null;
                    break;
                case "MaxPool2d":
                    {
                        Pair? k = fields.Pair("kernel_size", null, 1);
                        Pair? s = fields.Pair("stride", k, 1), p = fields.Pair("padding", new Pair(0, 0), 0), d = fields.Pair("dilation", new Pair(1, 1), 1);
                        bool? ceil = fields.Bool("ceil_mode", false);
                        if (!fields.Ok) return null;
                        pool = new MaxPoolSpec(k!.Value, s!.Value, p!.Value, d!.Value, ceil!.Value);
                        break;
                    }
                case "AdaptiveAvgPool2d":
                    {
                        Pair? o = fields.Pair("output_size", null, 1);
                        if (!fields.Ok) return null;
                        avg = new AvgPoolSpec(o!.Value);
                        break;
                    }
                case "Linear":
                    {
                        int? i = fields.Int("in_features", null, 1), o = fields.Int("out_features", null, 1);
                        bool? bias = fields.Bool("bias", true);
                        if (!fields.Ok) return null;
                        linear = new LinearSpec(i!.Value, o!.Value, bias!.Value);
                        break;
                    }
                case "Sequential":
                case "BasicBlock":
                    {
                        fields.Read.Add("modules");
                        var kids = ParseChildren(node, jsonPath, path + ".", path, required: true);
                        if (kids == null) return null;
                        children = kids.Value;
                        break;
                    }
                default:
                    Report(Diagnostics.UnknownModule, location.Span, jsonPath, path, type);
                    return null;
            }
            if (type != "Sequential" && type != "BasicBlock" && node.Get("modules") is JsonNode stray)
            {
                ReportProperty(jsonPath, path, stray, "modules", $"is not allowed on a {type}; only Sequential and BasicBlock have children");
                return null;
            }
            ReportUnknown(node, jsonPath, path, type, fields.Read);
            return new ModuleSpec(name, path, jsonPath, type, location, conv, bn, pool, avg, linear, inplace, children);
        }

        /// <summary>RN1012 for each member of <paramref name="node"/> not among <paramref name="known"/>, naming the closest known one.</summary>
        private void ReportUnknown(JsonNode node, string jsonPath, string module, string type, IReadOnlyList<string> known)
        {
            foreach (var member in node.Members)
            {
                if (Contains(known, member.Key)) continue;
                string? near = Closest(member.Key, known);
                string expected = (near != null ? $"did you mean '{near}'? " : "") + $"a {type} has {string.Join(", ", known)}";
                Report(Diagnostics.UnknownProperty, Locate(member.Value).Span, $"{jsonPath}.{member.Key}", module, member.Key, type, expected);
            }
        }

        private static bool Contains(IReadOnlyList<string> list, string s)
        {
            foreach (var x in list)
            {
                if (x == s) return true;
            }
            return false;
        }

        /// <summary>The known name within a couple of edits of <paramref name="key"/> ("strides", "Stride", "dilaton"), if any.</summary>
        private static string? Closest(string key, IReadOnlyList<string> known)
        {
            string? best = null;
            int bestDistance = Math.Min(2, key.Length / 3);
            foreach (var k in known)
            {
                int d = Distance(key.ToLowerInvariant(), k);
                if (d <= bestDistance && (best == null || d < bestDistance))
                {
                    best = k;
                    bestDistance = d;
                }
            }
            return best;
        }

        private static int Distance(string a, string b)
        {
            var row = new int[b.Length + 1];
            for (int j = 0; j <= b.Length; j++) row[j] = j;
            for (int i = 1; i <= a.Length; i++)
            {
                int diagonal = row[0];
                row[0] = i;
                for (int j = 1; j <= b.Length; j++)
                {
                    int above = row[j];
                    row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                    diagonal = above;
                }
            }
            return row[b.Length];
        }

        internal void ReportProperty(string jsonPath, string module, JsonNode at, string property, string expected) =>
            Report(Diagnostics.BadProperty, Locate(at).Span, $"{jsonPath}.{property}", module, property, expected);

        private void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, TextSpan span, params string[] args)
        {
            _diagnostics.Add(new DiagnosticInfo(descriptor.Id, _path, span, _text.Lines.GetLinePositionSpan(span), args.ToEquatableArray()));
        }

        private SpecLocation Locate(JsonNode node)
        {
            // Point at the opening line of the value, not its whole extent: a module's first line is the one to read.
            int end = Math.Min(node.End, _text.Lines.GetLineFromPosition(node.Start).End);
            var span = TextSpan.FromBounds(node.Start, Math.Max(node.Start, end));
            return new SpecLocation(_path, span, _text.Lines.GetLinePositionSpan(span));
        }

        private string DefaultClassName()
        {
            var sb = new StringBuilder();
            bool upper = true;
            foreach (char c in Path.GetFileNameWithoutExtension(_path))
            {
                if (!char.IsLetterOrDigit(c))
                {
                    upper = true;
                    continue;
                }
                sb.Append(upper ? char.ToUpperInvariant(c) : c);
                upper = false;
            }
            if (sb.Length == 0 || char.IsDigit(sb[0])) sb.Insert(0, "Net");
            return sb.ToString();
        }

        private static bool IsIdentifier(string s)
        {
            if (s.Length == 0 || !(char.IsLetter(s[0]) || s[0] == '_')) return false;
            foreach (char c in s)
            {
                if (!(char.IsLetterOrDigit(c) || c == '_')) return false;
            }
            return true;
        }

        private static bool IsModuleName(string s)
        {
            if (s.Length == 0 || s.Length > 64) return false;
            foreach (char c in s)
            {
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
            }
            return true;
        }

        /// <summary>Reads typed properties of one module, reporting each bad one; <see cref="Ok"/> says whether all were good.</summary>
        private sealed class Fields
        {
            private readonly SpecParser _parser;
            private readonly JsonNode _node;
            private readonly string _jsonPath;
            private readonly string _module;

            public Fields(SpecParser parser, JsonNode node, string jsonPath, string module)
            {
                _parser = parser;
                _node = node;
                _jsonPath = jsonPath;
                _module = module;
            }

            public bool Ok { get; private set; } = true;

            /// <summary>Every property asked for, in order: what this module type knows, for <see cref="ReportUnknown"/>.</summary>
            public List<string> Read { get; } = new List<string> { "name", "type" };

            private JsonNode? Get(string name)
            {
                if (!Read.Contains(name)) Read.Add(name);
                return _node.Get(name);
            }

            public int? Int(string name, int? fallback, int min)
            {
                var v = Get(name);
                if (v == null) return fallback ?? Fail<int>(_node, name, $"is missing; expected an integer from {min} to {MaxDimension}");
                if (TryInt(v, min, out int result)) return result;
                return Fail<int>(v, name, $"is {Show(v)}; expected an integer from {min} to {MaxDimension}");
            }

            public Pair? Pair(string name, Pair? fallback, int min)
            {
                var v = Get(name);
                string expected = $"an integer from {min} to {MaxDimension} or a pair [h, w] of them";
                if (v == null) return fallback ?? Fail<Pair>(_node, name, $"is missing; expected {expected}");
                if (TryInt(v, min, out int single)) return new Pair(single, single);
                if (v.Kind == JsonKind.Array && v.Items.Count == 2 && TryInt(v.Items[0], min, out int h) && TryInt(v.Items[1], min, out int w))
                    return new Pair(h, w);
                return Fail<Pair>(v, name, $"is {Show(v)}; expected {expected}");
            }

            public bool? Bool(string name, bool fallback)
            {
                var v = Get(name);
                if (v == null) return fallback;
                if (v.Kind == JsonKind.True) return true;
                if (v.Kind == JsonKind.False) return false;
                return Fail<bool>(v, name, $"is {Show(v)}; expected true or false");
            }

            public double? Double(string name, double fallback, bool positive)
            {
                var v = Get(name);
                if (v == null) return fallback;
                if (v.Kind == JsonKind.Null && !positive) return null;
                if (v.Kind == JsonKind.Number && (!positive || v.Number > 0)) return v.Number;
                return Fail<double>(v, name, $"is {Show(v)}; expected a {(positive ? "positive " : "")}number");
            }

            public string? String(string name, string? fallback, Func<string, bool> valid, string expected)
            {
                var v = Get(name);
                if (v == null)
                {
                    if (fallback != null) return fallback;
                    Fail<int>(_node, name, $"is missing; {expected}");
                    return null;
                }
                if (v.Kind == JsonKind.String && valid(v.Text!)) return v.Text;
                Fail<int>(v, name, $"is {Show(v)}; {expected}");
                return null;
            }

            private static bool TryInt(JsonNode v, int min, out int value)
            {
                value = 0;
                if (v.Kind != JsonKind.Number || v.Number != Math.Floor(v.Number) || v.Number < min || v.Number > MaxDimension) return false;
                value = (int)v.Number;
                return true;
            }

            private static string Show(JsonNode v) => v.Kind == JsonKind.Number ? v.Text! : v.Kind == JsonKind.String ? $"\"{v.Text}\"" : v.Describe();

            private T? Fail<T>(JsonNode at, string name, string expected) where T : struct
            {
                Ok = false;
                _parser.ReportProperty(_jsonPath, _module, at, name, expected);
                return null;
            }
        }
    }
}
