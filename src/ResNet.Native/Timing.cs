using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace ResNet.Native;

/// <summary>With RESNET18_TIMING=1, where the process's time went, on stderr at exit (summed per phase).</summary>
internal sealed partial class Timing
{
    /// <summary>CLOCK_MONOTONIC when Main began (see <see cref="MainEntered"/>).</summary>
    private static long s_main;

    /// <summary>Called first thing in Main: the report then says how long the runtime took to get there.</summary>
    public static void MainEntered() => s_main = MonotonicNs();

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
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"timing: {string.Join(", ", _order.Select(p => $"{p} {_phases[p]:0.0} ms").Concat(_notes))}{SinceStart()}"));
    }

    /// <summary>
    /// Main's start and now, from the moment StartPages.c's constructor noted (RESNET18_STARTED_NS: the dynamic
    /// loader's work before it, ~1 ms, is not counted); nothing where no constructor noted it (under `dotnet`).
    /// </summary>
    internal static string SinceStart()
    {
        if (!long.TryParse(Environment.GetEnvironmentVariable("RESNET18_STARTED_NS"), out long started) || s_main < started) return "";
        long now = MonotonicNs();
        return string.Create(CultureInfo.InvariantCulture,
            $"; since the process's first constructor: Main at {(s_main - started) / 1e6:0.0} ms, this line at {(now - started) / 1e6:0.0} ms");
    }

    internal static long MonotonicNs() => clock_gettime(1 /* CLOCK_MONOTONIC */, out var t) == 0 ? t.Seconds * 1_000_000_000 + t.Nanoseconds : 0;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport(Libc.Name)]
    private static partial int clock_gettime(int clock, out Timespec time);
}
