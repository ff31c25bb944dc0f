using ResNet.Runtime.Images;

namespace ResNet.Native;

/// <summary>Command-line options of `resnet18` (classification mode).</summary>
internal sealed class Options
{
    public string? Weights { get; set; }
    public string? Labels { get; set; }
    public int Top { get; set; } = 5;
    public bool Json { get; set; }
    public bool Logits { get; set; }
    public bool Offline { get; set; }
    public bool Version { get; set; }
    public bool Exact { get; set; }
    public bool NoCache { get; set; }
    public int Threads { get; set; } = Environment.ProcessorCount;
    public long MaxPixels { get; set; } = ImageDecoder.DefaultMaxPixels;
    public List<string> Files { get; } = new();

    /// <summary>Parses arguments; returns null and an error message on a usage error.</summary>
    public static Options? Parse(string[] args, out string? error)
    {
        var o = new Options();
        error = null;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            switch (a)
            {
                case "--weights":
                    o.Weights = Value();
                    if (string.IsNullOrEmpty(o.Weights)) { error = "--weights needs a file"; return null; }
                    break;
                case "--labels":
                    o.Labels = Value();
                    if (string.IsNullOrEmpty(o.Labels)) { error = "--labels needs a file"; return null; }
                    break;
                case "--top":
                    {
                        var v = Value();
                        if (!int.TryParse(v, out int k) || k < 1 || k > 1000) { error = $"--top needs an integer from 1 to 1000, not '{v}'"; return null; }
                        o.Top = k;
                        break;
                    }
                case "--max-pixels":
                    {
                        var v = Value();
                        if (!long.TryParse(v, out long p) || p < 1) { error = $"--max-pixels needs a positive integer, not '{v}'"; return null; }
                        o.MaxPixels = p;
                        break;
                    }
                case "--json": o.Json = true; break;
                case "--logits": o.Logits = true; break;
                case "--offline": o.Offline = true; break;
                case "--version": o.Version = true; break;
                case "--exact": o.Exact = true; break;
                case "--no-cache": o.NoCache = true; break;
                case "--threads":
                    {
                        var v = Value();
                        if (!int.TryParse(v, out int t) || t < 1 || t > 256) { error = $"--threads needs an integer from 1 to 256, not '{v}'"; return null; }
                        o.Threads = t;
                        break;
                    }
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
        if (o.Files.Count == 0 && !o.Version) { error = "no input files"; return null; }
        // An unset shell variable ("$photo") more often than not: the .NET file APIs throw on an empty path.
        if (o.Files.Contains("")) { error = "an input file name is empty"; return null; }
        return o;
    }
}
