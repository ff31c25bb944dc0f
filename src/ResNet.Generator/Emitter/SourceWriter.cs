using System.Globalization;
using System.Text;

namespace ResNet.Generator.Emitter
{
    /// <summary>An indenting text writer, as dotnet/runtime's generators use instead of syntax trees.</summary>
    internal sealed class SourceWriter
    {
        private readonly StringBuilder _sb = new StringBuilder();
        private int _indent;

        public SourceWriter Line(string text = "")
        {
            if (text.Length > 0) _sb.Append(' ', _indent * 4).Append(text);
            _sb.Append('\n');
            return this;
        }

        public SourceWriter Open(string text)
        {
            Line(text);
            Line("{");
            _indent++;
            return this;
        }

        /// <summary>A bare block, for locals that must not be seen by the next one.</summary>
        public SourceWriter Open()
        {
            Line("{");
            _indent++;
            return this;
        }

        public SourceWriter Close(string suffix = "")
        {
            _indent--;
            return Line("}" + suffix);
        }

        public override string ToString() => _sb.ToString();

        /// <summary>Integers for generated code, never in the current culture.</summary>
        public static string I(long v) => v.ToString(CultureInfo.InvariantCulture);

        /// <summary>A double literal that round-trips, never in the current culture (some print U+2212 for minus).</summary>
        public static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture) + (v == System.Math.Floor(v) && System.Math.Abs(v) < 1e15 ? ".0" : "");

        public static string Str(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
    }
}
