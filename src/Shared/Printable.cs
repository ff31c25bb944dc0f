namespace ResNet.Runtime;

/// <summary>
/// Text made safe for a one-line message: taken from a file (a hostile header), or a file's own name (a name may hold a
/// newline). Compiled into the runtime and the command, as <c>FileFailures</c> is.
/// </summary>
internal static class Printable
{
    /// <summary>Control characters become '?', and long text is cut: a hostile header must not break the line.</summary>
    public static string Quote(string text, int max = 80) =>
        text.Length > max ? Line(text[..max]) + "…" : Line(text);

    /// <summary>Control characters become '?', as `ls` shows such names on a terminal; the text unchanged when it has none.</summary>
    public static string Line(string text)
    {
        int first = 0;
        while (first < text.Length && !char.IsControl(text[first])) first++;
        if (first == text.Length) return text;
        var chars = text.ToCharArray();
        for (int i = first; i < chars.Length; i++)
        {
            if (char.IsControl(chars[i])) chars[i] = '?';
        }
        return new string(chars);
    }
}
