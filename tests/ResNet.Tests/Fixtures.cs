using ResNet.Runtime.IO;

namespace ResNet.Tests;

/// <summary>Paths to checked-in fixtures (copied beside the test assembly) and the full-size ones CI generates.</summary>
internal static class Fixtures
{
    public static string Dir(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    public static float[] Npy(string path) => ResNet.Runtime.IO.Npy.Read(path).Data;

    /// <summary>
    /// The full-size resnet18 fixtures made by tools/make_fixtures.py with real PyTorch: $RESNET18_FULL_FIXTURES,
    /// else fixtures/full at the repository root. Null when absent (a machine without Python).
    /// </summary>
    public static string? FullSize() => FullSize("full");

    /// <summary>
    /// Full-size fixture set <paramref name="set"/>: "full" (uniformly random BatchNorm statistics, random inputs) or
    /// "calibrated" (statistics measured on photos, near-dead channels, the photos as inputs; make_fixtures.py
    /// --calibrate): $RESNET18_FULL_FIXTURES or $RESNET18_CALIBRATED_FIXTURES, else fixtures/SET at the
    /// repository root. Null when absent.
    /// </summary>
    public static string? FullSize(string set)
    {
        var env = Environment.GetEnvironmentVariable(set == "full" ? "RESNET18_FULL_FIXTURES" : "RESNET18_CALIBRATED_FIXTURES");
        if (!string.IsNullOrEmpty(env)) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "fixtures", set);
            if (File.Exists(Path.Combine(candidate, "weights.pth"))) return candidate;
        }
        return null;
    }

    /// <summary>The full-size fixture sets the parity tests run on.</summary>
    public static readonly string[] FullSizeSets = ["full", "calibrated"];

    /// <summary>
    /// Until disposed, every image counts as large enough for the second core (ImageParallel's threshold at 0),
    /// so the small fixtures take the split and pipelined paths. Counted: test classes run in parallel, and two
    /// overlapping save-and-restore pairs could leave the threshold at 0 for the rest of the run.
    /// </summary>
    public static IDisposable SplitEveryImage()
    {
        lock (SplitLock)
        {
            if (s_splitUsers++ == 0)
            {
                s_savedMinWork = ResNet.Runtime.Images.ImageParallel.MinWork;
                ResNet.Runtime.Images.ImageParallel.MinWork = 0;
            }
        }
        return new SplitScope();
    }

    private static readonly object SplitLock = new();
    private static int s_splitUsers;
    private static long s_savedMinWork;

    private sealed class SplitScope : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            lock (SplitLock)
            {
                if (_disposed) return;
                _disposed = true;
                if (--s_splitUsers == 0) ResNet.Runtime.Images.ImageParallel.MinWork = s_savedMinWork;
            }
        }
    }

    /// <summary>CI sets this so a missing full-size fixture fails instead of skipping.</summary>
    public static bool FullSizeRequired => Environment.GetEnvironmentVariable("RESNET18_REQUIRE_FULL") == "1";

    public static IEnumerable<Runtime.InstructionSet> SupportedIsas() =>
        Enum.GetValues<Runtime.InstructionSet>().Where(Runtime.NetworkOptions.IsSupported);

    /// <summary>Both generated test networks on every instruction set this process runs, Winograd and exact.</summary>
    public static Xunit.TheoryData<string, Runtime.InstructionSet, bool> NetworkCases()
    {
        var data = new Xunit.TheoryData<string, Runtime.InstructionSet, bool>();
        foreach (var isa in SupportedIsas())
        foreach (bool exact in new[] { false, true })
        {
            data.Add("TinyResNet", isa, exact);
            data.Add("ResNet18", isa, exact);
        }
        return data;
    }

    /// <summary>The graph of test network <paramref name="network"/> ("ResNet18" or "TinyResNet").</summary>
    public static Runtime.NetworkInfo Network(string network) => network == "ResNet18" ? Runtime.ResNet18.Network : TinyResNet.Network;

    /// <summary>Builds test network <paramref name="network"/>.</summary>
    public static Runtime.GeneratedNetwork Build(string network, Runtime.Weights.StateDict weights, Runtime.NetworkOptions options) =>
        network == "ResNet18" ? new Runtime.ResNet18(weights, options) : new TinyResNet(weights, options);

    /// <summary>
    /// Fails with <paramref name="what"/> unless <paramref name="task"/> ends within <paramref name="seconds"/>: a hang
    /// (a worker that missed a layer, a lock never released) fails its test instead of stopping the run.
    /// </summary>
    public static async Task EndsWithin(Task task, int seconds, string what) =>
        Xunit.Assert.True(await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(seconds))) == task, what);

    /// <summary>max |a − b|.</summary>
    public static float MaxDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths differ: {a.Length} vs {b.Length}");
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    public static int[] Top(ReadOnlySpan<float> logits, int k) =>
        logits.ToArray().Select((v, i) => (v, i)).OrderByDescending(p => p.v).ThenBy(p => p.i).Take(k).Select(p => p.i).ToArray();
}
