namespace ResNet.Runtime;

/// <summary>Text taken from a file, made safe to quote in a one-line message.</summary>
internal static class Printable
{
    /// <summary>Control characters become '?', and long text is cut: a hostile header must not break the line.</summary>
    public static string Quote(string text, int max = 80)
    {
        var chars = text.Length > max ? text[..max].ToCharArray() : text.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (char.IsControl(chars[i])) chars[i] = '?';
        }
        return new string(chars) + (text.Length > max ? "…" : "");
    }
}
