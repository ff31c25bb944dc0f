using System.Text;
using System.Text.Json;
using ResNet.Runtime;

namespace ResNet.Native;

/// <summary>
/// The class names the output is printed with: `--labels FILE`, else ImageNet's when the network has its 1000
/// outputs, else none (a network generated for other classes prints their indices).
/// </summary>
internal static class LabelsFile
{
    /// <summary>Larger label files are refused before reading them whole.</summary>
    private const long MaxBytes = 16 << 20;

    public static IReadOnlyList<string>? For(string? path, int outputs) =>
        path != null ? Load(path, outputs) : outputs == ImageNetLabels.All.Count ? ImageNetLabels.All : null;

    /// <summary>
    /// One label per line (the usual classes.txt; empty lines at the end and Windows line ends are ignored), or a JSON
    /// array of strings (a dataset's `classes` as json.dump writes it). Exactly one per output.
    /// </summary>
    public static IReadOnlyList<string> Load(string path, int outputs)
    {
        string text;
        try
        {
            if (FileFailures.BeforeOpening(path, MaxBytes, "a labels file") is { } reason) throw Error(path, reason);
            text = File.ReadAllText(path, new UTF8Encoding(false, throwOnInvalidBytes: true));
        }
        catch (DecoderFallbackException) { throw Error(path, "not UTF-8 text"); }
        catch (Exception e) when (FileFailures.Of(e) is { } reason) { throw Error(path, reason); }
        // ReadAllText has taken off a byte-order mark.
        var labels = text.TrimStart().StartsWith('[') ? FromJson(path, text) : FromLines(text);
        if (labels.Count != outputs)
        {
            int empty = labels.Count(l => l.Length == 0);
            throw Error(path, $"{labels.Count} labels{(empty > 0 ? $" ({empty} of them empty)" : "")}; the network has {outputs} outputs, one label each");
        }
        return labels;
    }

    private static List<string> FromLines(string text)
    {
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        // Blank lines after the last name are an editor's, not classes (they made "1002 labels" of 1000 names).
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines;
    }

    private static List<string> FromJson(string path, string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Array) throw Error(path, "expected a JSON array of strings");
            var labels = new List<string>();
            foreach (var e in doc.RootElement.EnumerateArray())
                labels.Add(e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Error(path, $"label {labels.Count} is not a string"));
            return labels;
        }
        catch (JsonException e)
        {
            throw Error(path, $"not a JSON array of strings ({e.Message.Split('.')[0]})");
        }
    }

    private static ResNetException Error(string path, string reason) => new($"{path}: {reason}");
}
