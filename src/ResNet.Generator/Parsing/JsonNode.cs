using System.Collections.Generic;

namespace ResNet.Generator.Parsing
{
    internal enum JsonKind { Object, Array, String, Number, True, False, Null }

    /// <summary>A parsed JSON value that remembers where it started, so diagnostics can point into the spec.</summary>
    internal sealed class JsonNode
    {
        public JsonNode(JsonKind kind, int start, int end)
        {
            Kind = kind;
            Start = start;
            End = end;
        }

        public JsonKind Kind { get; }
        public int Start { get; }
        public int End { get; set; }
        public string? Text { get; set; }
        public double Number { get; set; }
        /// <summary>Members in source order; duplicates are rejected by the reader.</summary>
        public List<KeyValuePair<string, JsonNode>> Members { get; } = new List<KeyValuePair<string, JsonNode>>();
        public List<JsonNode> Items { get; } = new List<JsonNode>();

        public JsonNode? Get(string name)
        {
            foreach (var m in Members)
            {
                if (m.Key == name) return m.Value;
            }
            return null;
        }

        public string Describe() => Kind switch
        {
            JsonKind.Object => "an object",
            JsonKind.Array => "an array",
            JsonKind.String => "a string",
            JsonKind.Number => "a number",
            JsonKind.Null => "null",
            _ => "a boolean",
        };
    }
}
