namespace ResNet.Native;

/// <summary>Command-line options of `resnet18` (classification mode).</summary>
internal sealed class Options
{
    public string? Weights { get; set; }
    public int Top { get; set; } = 5;
    public bool Json { get; set; }
    public bool Logits { get; set; }
    public List<string> Files { get; } = new();

    /// <summary>Parses arguments; returns null and an error message on a usage error.</summary>
    public static Options? Parse(string[] args, out string? error)
    {
        var o = new Options();
        error = null;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string? Value()
            {
                if (i + 1 < args.Length) return args[++i];
                return null;
            }
            switch (a)
            {
                case "--weights":
                    o.Weights = Value();
                    if (o.Weights == null) { error = "--weights needs a file"; return null; }
                    break;
                case "--top":
                    {
                        var v = Value();
                        if (!int.TryParse(v, out int k) || k < 1) { error = $"--top needs a positive integer, not '{v}'"; return null; }
                        o.Top = k;
                        break;
                    }
                case "--json": o.Json = true; break;
                case "--logits": o.Logits = true; break;
                case "--":
                    o.Files.AddRange(args[(i + 1)..]);
                    i = args.Length;
                    break;
                default:
                    if (a.StartsWith('-') && a.Length > 1) { error = $"unknown option '{a}'"; return null; }
                    o.Files.Add(a);
                    break;
            }
        }
        if (o.Files.Count == 0) { error = "no input files"; return null; }
        return o;
    }
}
