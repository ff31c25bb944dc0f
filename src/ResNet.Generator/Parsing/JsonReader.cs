using System;
using System.Globalization;
using System.Text;

namespace ResNet.Generator.Parsing
{
    /// <summary>
    /// A small strict JSON reader. The generator runs inside the compiler, where depending on
    /// System.Text.Json means shipping it beside the analyzer; a hundred lines of our own avoid that and
    /// keep the source offset of every value for diagnostics.
    /// </summary>
    internal sealed class JsonReader
    {
        /// <summary>Specs are shallow; a deeper document is hostile or broken, and recursion must stay bounded.</summary>
        public const int MaxDepth = 64;

        private readonly string _text;
        private int _pos;

        private JsonReader(string text) => _text = text;

        /// <summary>Parses <paramref name="text"/>; on failure returns null with the offset and reason.</summary>
        public static JsonNode? TryParse(string text, out int errorOffset, out string? error)
        {
            var reader = new JsonReader(text);
            try
            {
                reader.SkipWhitespace();
                var node = reader.ReadValue(0);
                reader.SkipWhitespace();
                if (reader._pos != text.Length) throw new JsonException(reader._pos, "unexpected text after the top-level value");
                errorOffset = 0;
                error = null;
                return node;
            }
            catch (JsonException e)
            {
                errorOffset = Math.Min(e.Offset, text.Length);
                error = e.Message;
                return null;
            }
        }

        private JsonNode ReadValue(int depth)
        {
            if (depth > MaxDepth) throw new JsonException(_pos, $"nesting deeper than {MaxDepth} levels");
            if (_pos >= _text.Length) throw new JsonException(_pos, "unexpected end of file, expected a value");
            char c = _text[_pos];
            switch (c)
            {
                case '{': return ReadObject(depth);
                case '[': return ReadArray(depth);
                case '"':
                    {
                        int start = _pos;
                        return new JsonNode(JsonKind.String, start, 0) { Text = ReadString(), End = _pos };
                    }
                case 't': return ReadLiteral("true", JsonKind.True);
                case 'f': return ReadLiteral("false", JsonKind.False);
                case 'n': return ReadLiteral("null", JsonKind.Null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) return ReadNumber();
                    throw new JsonException(_pos, $"unexpected character '{c}', expected a value");
            }
        }

        private JsonNode ReadObject(int depth)
        {
            var node = new JsonNode(JsonKind.Object, _pos, 0);
            _pos++;
            SkipWhitespace();
            if (Peek() == '}')
            {
                _pos++;
                node.End = _pos;
                return node;
            }
            while (true)
            {
                SkipWhitespace();
                if (Peek() != '"') throw new JsonException(_pos, "expected a property name in double quotes");
                int keyPos = _pos;
                string key = ReadString();
                if (node.Get(key) != null) throw new JsonException(keyPos, $"duplicate property \"{key}\"");
                SkipWhitespace();
                Expect(':');
                SkipWhitespace();
                node.Members.Add(new System.Collections.Generic.KeyValuePair<string, JsonNode>(key, ReadValue(depth + 1)));
                SkipWhitespace();
                char c = Next("'}'");
                if (c == '}') break;
                if (c != ',') throw new JsonException(_pos - 1, "expected ',' or '}' in object");
            }
            node.End = _pos;
            return node;
        }

        private JsonNode ReadArray(int depth)
        {
            var node = new JsonNode(JsonKind.Array, _pos, 0);
            _pos++;
            SkipWhitespace();
            if (Peek() == ']')
            {
                _pos++;
                node.End = _pos;
                return node;
            }
            while (true)
            {
                SkipWhitespace();
                node.Items.Add(ReadValue(depth + 1));
                SkipWhitespace();
                char c = Next("']'");
                if (c == ']') break;
                if (c != ',') throw new JsonException(_pos - 1, "expected ',' or ']' in array");
            }
            node.End = _pos;
            return node;
        }

        private string ReadString()
        {
            Expect('"');
            var sb = new StringBuilder();
            while (true)
            {
                if (_pos >= _text.Length) throw new JsonException(_pos, "unterminated string");
                char c = _text[_pos++];
                if (c == '"') return sb.ToString();
                if (c < ' ') throw new JsonException(_pos - 1, "control character in string");
                if (c != '\\')
                {
                    sb.Append(c);
                    continue;
                }
                if (_pos >= _text.Length) throw new JsonException(_pos, "unterminated escape");
                char e = _text[_pos++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        if (_pos + 4 > _text.Length || !int.TryParse(_text.Substring(_pos, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code))
                            throw new JsonException(_pos, "bad \\u escape");
                        sb.Append((char)code);
                        _pos += 4;
                        break;
                    default: throw new JsonException(_pos - 1, $"bad escape '\\{e}'");
                }
            }
        }

        private JsonNode ReadNumber()
        {
            int start = _pos;
            if (Peek() == '-') _pos++;
            while (_pos < _text.Length && "0123456789.eE+-".IndexOf(_text[_pos]) >= 0) _pos++;
            string s = _text.Substring(start, _pos - start);
            if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || double.IsInfinity(v))
                throw new JsonException(start, $"bad number '{s}'");
            return new JsonNode(JsonKind.Number, start, _pos) { Number = v, Text = s };
        }

        private JsonNode ReadLiteral(string word, JsonKind kind)
        {
            if (string.CompareOrdinal(_text, _pos, word, 0, word.Length) != 0) throw new JsonException(_pos, "unexpected word, expected a value");
            var node = new JsonNode(kind, _pos, _pos + word.Length);
            _pos += word.Length;
            return node;
        }

        private char Next(string closer)
        {
            if (_pos >= _text.Length) throw new JsonException(_pos, $"unexpected end of file, expected ',' or {closer}");
            return _text[_pos++];
        }

        private char Peek() => _pos < _text.Length ? _text[_pos] : '\0';

        private void Expect(char c)
        {
            if (Peek() != c) throw new JsonException(_pos, $"expected '{c}'");
            _pos++;
        }

        private void SkipWhitespace()
        {
            while (_pos < _text.Length && (_text[_pos] == ' ' || _text[_pos] == '\t' || _text[_pos] == '\n' || _text[_pos] == '\r')) _pos++;
        }

        private sealed class JsonException : Exception
        {
            public JsonException(int offset, string message) : base(message) => Offset = offset;
            public int Offset { get; }
        }
    }
}
