using System.Diagnostics;
using System.Globalization;

namespace ResNet.Native;

/// <summary>With RESNET18_TIMING=1, where the process's time went, on stderr at exit (summed per phase).</summary>
internal sealed class Timing
{
    private readonly bool _enabled = Environment.GetEnvironmentVariable("RESNET18_TIMING") == "1";
    private readonly Dictionary<string, double> _phases = new();
    private readonly List<string> _order = new();
    private long _last = Stopwatch.GetTimestamp();

    public void Mark(string phase)
    {
        if (!_enabled) return;
        long now = Stopwatch.GetTimestamp();
        if (!_phases.ContainsKey(phase)) _order.Add(phase);
        _phases[phase] = _phases.GetValueOrDefault(phase) + Stopwatch.GetElapsedTime(_last, now).TotalMilliseconds;
        _last = now;
    }

    /// <summary>Time spent on another thread (decoding the next image while this one loads or runs).</summary>
    public void Background(string phase, TimeSpan elapsed)
    {
        if (!_enabled) return;
        lock (_background) _background.Add($"{phase} {elapsed.TotalMilliseconds.ToString("0.0", CultureInfo.InvariantCulture)} ms");
    }

    private readonly List<string> _background = new();

    /// <summary>A fact for the report's last line.</summary>
    public void Note(string fact)
    {
        if (_enabled) _notes.Add(fact);
    }

    private readonly List<string> _notes = new();

    public void Report()
    {
        if (!_enabled) return;
        lock (_background)
            if (_background.Count > 0) Console.Error.WriteLine($"timing, other thread: {string.Join(", ", _background)}");
        double startup = (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalMilliseconds;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"timing: {string.Join(", ", _order.Select(p => $"{p} {_phases[p]:0.0} ms").Concat(_notes))}; process so far {startup:0} ms"));
    }
}
