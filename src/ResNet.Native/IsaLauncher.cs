using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ResNet.Runtime;

namespace ResNet.Native;

/// <summary>
/// NativeAOT fixes <c>IsSupported</c> when it compiles, so one binary cannot pick AVX-512 at run time: an
/// x86-64-v3 build never runs AVX-512 code, and an x86-64-v4 build refuses to start on an AVX2-only CPU.
/// So the published <c>resnet18</c> is the v4 build carrying the v3 build of the same program inside it, and
/// IsaGate.c, before this runtime starts, execs the v3 build where the v4 one cannot or should not run. This
/// class is the C# side of that arrangement: which kernels to use, the v3 build writing itself into the cache
/// when it ran from a copy in memory, the weights download that only the v3 build can do (the v4 build carries
/// no HTTPS stack: it was half its size), and the --version line that says which build ran and how.
/// </summary>
internal static unsafe partial class IsaLauncher
{
    private const string LauncherMarker = "RESNET18_LAUNCHED_FROM"; // set by IsaGate.c: the outer binary
    private const string ExtractMarker = "RESNET18_EXTRACT";        // set by IsaGate.c: the id to extract under
    private const string DownloadMarker = "RESNET18_DOWNLOAD";      // avx2-build (v4 → v3), then done (v3 → v4)

    /// <summary>The kernels the user asked for with RESNET18_ISA, if any.</summary>
    public static InstructionSet? Requested => BenchCommand.ParseIsa(Environment.GetEnvironmentVariable("RESNET18_ISA")?.ToLowerInvariant());

    /// <summary>
    /// Why RESNET18_ISA cannot be followed (a value other than avx512, avx2 or portable), or null: a typo that ran the
    /// default kernels instead would time or test other kernels than the user meant.
    /// </summary>
    public static string? RequestError =>
        Environment.GetEnvironmentVariable("RESNET18_ISA") is { Length: > 0 } value && Requested == null
            ? $"RESNET18_ISA must be avx512, avx2 or portable, not '{value}'"
            : null;

    /// <summary>The instruction set to build networks with: the request if this process can run it, else the best it can.</summary>
    public static InstructionSet Effective => Requested is InstructionSet r && NetworkOptions.IsSupported(r) ? r : NetworkOptions.Best;

    /// <summary>In the v3 build: whether the v4 build started this process to download the weights for it.</summary>
    public static bool DownloadingForAvx512Build =>
#if RESNET_VARIANT_AVX2
        Environment.GetEnvironmentVariable(DownloadMarker) == "avx2-build";
#else
        false;
#endif

    /// <summary>
    /// The v3 build, started by IsaGate.c from a copy in memory, writes that copy into the cache directory so
    /// that the next run execs the file instead (copying its 10 MB into memory first costs ~6 ms a run). Best effort:
    /// a cache that cannot be used only means the copy is made again next time.
    /// </summary>
    public static void ExtractSelf()
    {
#if RESNET_VARIANT_AVX2
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(ExtractMarker) is not { } marker) return;
        if (ExtractedImage.Id(marker) is not { } id || WeightsResolver.PackedCacheDirectory is not { } directory) return;
        if (!InMemory(RunningFrom)) return;
        try
        {
            int fd = ExtractedImage.Open(directory, id, File.ReadAllBytes("/proc/self/exe"));
            if (fd >= 0) ExtractedImage.Close(fd);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not cached: IsaGate.c copies it into memory again next time.
        }
#endif
    }

    /// <summary>
    /// In the v4 build, asked for weights it would have to download: this binary again with RESNET18_DOWNLOAD=avx2-build,
    /// which IsaGate.c turns into the v3 build; that downloads and execs this binary once more (<see cref="HandBack"/>).
    /// Returns only if that cannot happen (the v3 build already tried, or the exec failed): loading then reports it.
    /// </summary>
    public static void DownloadInAvx2Build(string[] args)
    {
#if RESNET_VARIANT_AVX512
        if (Environment.GetEnvironmentVariable(DownloadMarker) != null || Environment.ProcessPath is not { } self) return;
        Exec(self, args, $"{DownloadMarker}=avx2-build");
#endif
    }

    /// <summary>In the v3 build, the download done for the v4 build: that build again, which finds the weights in place.</summary>
    public static void HandBack(string[] args)
    {
#if RESNET_VARIANT_AVX2
        if (Environment.GetEnvironmentVariable(LauncherMarker) is not { Length: > 0 } outer) return;
        Exec(outer, args, $"{DownloadMarker}=done", except: [LauncherMarker, ExtractMarker]);
#endif
    }

    /// <summary>One line for --version: which build runs and which kernels it uses.</summary>
    public static string Describe()
    {
        string kernels = Effective.ToString().ToLowerInvariant();
        if (RuntimeFeature.IsDynamicCodeSupported) return $"{kernels} (JIT: the best this CPU runs)";
#if RESNET_VARIANT_AVX2
        string from = Environment.GetEnvironmentVariable(LauncherMarker) ?? "resnet18";
        string? path = RunningFrom;
        string where = path == null || InMemory(path) ? "a copy in memory" : path;
        string why = Requested is InstructionSet.Avx2 or InstructionSet.Portable ? $"RESNET18_ISA={Environment.GetEnvironmentVariable("RESNET18_ISA")}"
            : DownloadingForAvx512Build ? "downloading the weights for the x86-64-v4 build"
            : "this CPU has no AVX-512";
        return $"{kernels} (x86-64-v3 NativeAOT build embedded in {from}, running from {where}; {why})";
#elif RESNET_VARIANT_AVX512
        return $"{kernels} (x86-64-v4 NativeAOT build; AVX2-only CPUs run the x86-64-v3 build inside it)";
#else
        return $"{kernels} (NativeAOT build)";
#endif
    }

    /// <summary>
    /// The file this process executes, as the kernel names it: "/memfd:resnet18-avx2 (deleted)" for the copy in
    /// memory. Not Environment.ProcessPath: after fexecve that resolves the /dev/fd/N the program was started
    /// through, a descriptor closed at the exec and by then, as often as not, reused for another file.
    /// </summary>
    private static string? RunningFrom => OperatingSystem.IsLinux() ? new FileInfo("/proc/self/exe").LinkTarget : Environment.ProcessPath;

    private static bool InMemory(string? path) => path?.StartsWith("/memfd:", StringComparison.Ordinal) == true;

    /// <summary>Becomes the program at <paramref name="path"/> with these arguments and this environment changed; returns if that failed.</summary>
    private static void Exec(string path, string[] args, string add, string[]? except = null)
    {
        int fd = ExtractedImage.OpenExecutable(path);
        if (fd < 0) return;
        var strings = new List<nint>();
        var envp = new List<string>();
        foreach (System.Collections.DictionaryEntry variable in Environment.GetEnvironmentVariables())
        {
            string name = (string)variable.Key;
            if (name != add[..add.IndexOf('=')] && (except == null || !except.Contains(name))) envp.Add($"{name}={variable.Value}");
        }
        envp.Add(add);
        nint* a = (nint*)NativeMemory.Alloc((nuint)(args.Length + 2), (nuint)sizeof(nint));
        nint* e = (nint*)NativeMemory.Alloc((nuint)(envp.Count + 1), (nuint)sizeof(nint));
        try
        {
            strings.Add(a[0] = Marshal.StringToCoTaskMemUTF8(path));
            for (int i = 0; i < args.Length; i++) strings.Add(a[i + 1] = Marshal.StringToCoTaskMemUTF8(args[i]));
            a[args.Length + 1] = 0;
            for (int i = 0; i < envp.Count; i++) strings.Add(e[i] = Marshal.StringToCoTaskMemUTF8(envp[i]));
            e[envp.Count] = 0;
            Console.Out.Flush();
            Console.Error.Flush();
            Fexecve(fd, a, e);
        }
        finally
        {
            foreach (var s in strings) Marshal.FreeCoTaskMem(s);
            NativeMemory.Free(a);
            NativeMemory.Free(e);
            ExtractedImage.Close(fd);
        }
    }

    [LibraryImport(Libc.Name, EntryPoint = "fexecve")]
    private static partial int Fexecve(int fd, nint* argv, nint* envp);
}
