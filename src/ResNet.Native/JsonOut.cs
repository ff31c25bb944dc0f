using System.Globalization;
using System.Text;
using ResNet.Runtime;

namespace ResNet.Native;

/// <summary>JSON lines written by hand: NativeAOT rules out reflection-based serializers, and the shape is fixed.</summary>
internal static class JsonOut
{
    public static string Result(string file, IReadOnlyList<Prediction> top, float[]? logits)
    {
        var sb = new StringBuilder();
        sb.Append("{\"file\":").Append(Str(file)).Append(",\"top\":[");
        for (int i = 0; i < top.Count; i++)
        {
            var p = top[i];
            if (i > 0) sb.Append(',');
            sb.Append("{\"index\":").Append(p.Index.ToString(CultureInfo.InvariantCulture))
              .Append(",\"label\":").Append(p.Label == null ? "null" : Str(p.Label))
              .Append(",\"probability\":").Append(Num(p.Probability)).Append('}');
        }
        sb.Append(']');
        if (logits != null)
        {
            sb.Append(",\"logits\":[");
            for (int i = 0; i < logits.Length; i++)
            {
                if (i > 0) sb.Append(',');
                sb.Append(Num(logits[i]));
            }
            sb.Append(']');
        }
        return sb.Append('}').ToString();
    }

    public static string Error(string file, string message) => "{\"file\":" + Str(file) + ",\"error\":" + Str(message) + "}";

    /// <summary>Shortest round-trip float text; JSON has no NaN or infinity, so those become null.</summary>
    public static string Num(float v) => float.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null";

    public static string Str(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < ' ') sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}
