using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using ResNet.Runtime;

namespace ResNet.Native;

/// <summary>
/// NativeAOT fixes <c>IsSupported</c> when it compiles, so one binary cannot pick AVX-512 at run time: an
/// x86-64-v3 build never runs AVX-512 code, and an x86-64-v4 build refuses to start on an AVX2-only CPU.
/// So the published <c>resnet18</c> is the v3 build (AVX2 kernels) carrying the v4 build of the same
/// program inside it; on a CPU (and kernel) with AVX-512 it hands the process over to that image with
/// fexecve: arguments, stdio and exit code pass through. The image runs from the cache directory
/// (<see cref="ExtractedImage"/>), or, with --no-cache or where that directory cannot be trusted or executed
/// from, from a copy in memory (memfd_create), which costs ~4 ms a run.
/// RESNET18_ISA=avx2|portable keeps the v3 process (and picks its kernels). The v4 image is built without the
/// weights download (the HTTPS stack was half of it): the launcher downloads before handing over (Program).
/// Once the image is in the cache directory, EarlyHandOver.c execs it before this runtime even starts; the image
/// then hands a download back to the launcher (<see cref="HandBackForDownload"/>), which downloads and hands over again.
/// </summary>
internal static unsafe partial class IsaLauncher
{
    private const string ResourceName = "resnet18-avx512";
    private const string IdResourceName = "resnet18-avx512.sha256";
    private const string ChildMarker = "RESNET18_LAUNCHED_FROM";
    private const string EarlyMarker = "RESNET18_LAUNCHED_EARLY"; // set by EarlyHandOver.c
    private const string DownloadMarker = "RESNET18_DOWNLOAD_IN_LAUNCHER";

    /// <summary>The kernels the user asked for with RESNET18_ISA, if any.</summary>
    public static InstructionSet? Requested => Environment.GetEnvironmentVariable("RESNET18_ISA")?.ToLowerInvariant() switch
    {
        "avx512" => InstructionSet.Avx512,
        "avx2" => InstructionSet.Avx2,
        "portable" => InstructionSet.Portable,
        _ => null,
    };

    /// <summary>The instruction set to build networks with: the request if this process can run it, else the best it can.</summary>
    public static InstructionSet Effective => Requested is InstructionSet r && NetworkOptions.IsSupported(r) ? r : NetworkOptions.Best;

    /// <summary>Whether this process is the launcher on a CPU (and kernel) with AVX-512 and should hand over.</summary>
    public static bool WillHandOver()
    {
#if !RESNET_VARIANT_AVX512
        if (!OperatingSystem.IsLinux() || RuntimeFeature.IsDynamicCodeSupported) return false; // JIT picks the best ISA itself
        if (Requested is InstructionSet.Avx2 or InstructionSet.Portable) return false;
        return Environment.GetEnvironmentVariable(ChildMarker) == null && CpuHasAvx512();
#else
        return false;
#endif
    }

    /// <summary>Becomes the embedded x86-64-v4 image; returns only if that failed (this process then carries on with AVX2).</summary>
    public static void HandOver(string[] args)
    {
#if !RESNET_VARIANT_AVX512
        var assembly = typeof(IsaLauncher).Assembly;
        using var resource = assembly.GetManifestResourceStream(ResourceName);
        if (resource == null) return;
        // NativeAOT exposes the resource as the bytes mapped with this binary: no copy is made of them.
        ReadOnlySpan<byte> image = resource is UnmanagedMemoryStream mapped
            ? new ReadOnlySpan<byte>(mapped.PositionPointer, checked((int)(mapped.Length - mapped.Position)))
            : ReadAll(resource);
        var argv = new List<string> { Environment.ProcessPath ?? "resnet18" };
        argv.AddRange(args);
        var envp = EnvironmentWith($"{ChildMarker}={Environment.ProcessPath}", except: [EarlyMarker]);
        // --no-cache writes nothing to disk, so it also keeps the image in memory.
        if (!args.Contains("--no-cache") && WeightsResolver.PackedCacheDirectory is string directory
            && ExtractedImage.Id(assembly.GetManifestResourceStream(IdResourceName)) is string id)
        {
            int cached = ExtractedImage.Open(directory, id, image);
            if (cached >= 0)
            {
                Exec(cached, argv, envp);
                ExtractedImage.Close(cached); // a noexec mount, say: fall back to the in-memory copy
            }
        }
        int fd = MemfdCreate("resnet18-avx512", 1 /* MFD_CLOEXEC */);
        if (fd < 0) return;
        bool written;
        fixed (byte* p = image) written = ExtractedImage.WriteAll(fd, p, image.Length);
        if (written) Exec(fd, argv, envp);
        ExtractedImage.Close(fd); // fexecve returned: it failed; carry on with the AVX2 kernels in this process
#endif
    }

    /// <summary>
    /// The image, asked for weights it would have to download, execs the launcher it came from to download them
    /// (that launcher then hands over again, the weights in place); returns only if it cannot: run by hand, the
    /// launcher gone, or already handed back once. Loading then reports that this image does not download.
    /// </summary>
    public static void HandBackForDownload(string[] args)
    {
#if RESNET_VARIANT_AVX512
        if (Environment.GetEnvironmentVariable(ChildMarker) is not { Length: > 0 } launcher) return;
        if (Environment.GetEnvironmentVariable(DownloadMarker) != null) return;
        var argv = new List<string> { launcher };
        argv.AddRange(args);
        var envp = EnvironmentWith($"{DownloadMarker}=1", except: [ChildMarker, EarlyMarker]);
        int fd = ExtractedImage.OpenExecutable(launcher);
        if (fd < 0) return;
        Exec(fd, argv, envp);
        ExtractedImage.Close(fd);
#endif
    }

    /// <summary>This process's environment as NAME=value strings, less <paramref name="except"/>, plus <paramref name="add"/>.</summary>
    private static List<string> EnvironmentWith(string add, string[]? except = null)
    {
        var envp = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
            if (except == null || !except.Contains((string)e.Key)) envp.Add($"{e.Key}={e.Value}");
        envp.Add(add);
        return envp;
    }

    private static byte[] ReadAll(Stream stream)
    {
        var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>One line for --version: which build runs and which kernels it uses.</summary>
    public static string Describe()
    {
        string kernels = Effective.ToString().ToLowerInvariant();
#if RESNET_VARIANT_AVX512
        string from = Environment.GetEnvironmentVariable(ChildMarker) ?? "the launcher";
        string? path = Environment.ProcessPath;
        string where = path == null || path.StartsWith("/memfd:", StringComparison.Ordinal) ? "a copy in memory" : path;
        string when = Environment.GetEnvironmentVariable(EarlyMarker) != null ? "before" : "after";
        return $"{kernels} (x86-64-v4 NativeAOT build embedded in {from}, running from {where}; handed over {when} the launcher's runtime started)";
#else
        if (RuntimeFeature.IsDynamicCodeSupported) return $"{kernels} (JIT: the best this CPU runs)";
        string why = CpuHasAvx512()
            ? Requested != null ? $"AVX-512 present but RESNET18_ISA={Environment.GetEnvironmentVariable("RESNET18_ISA")}" : "AVX-512 present but no embedded x86-64-v4 image"
            : "this CPU has no AVX-512";
        return $"{kernels} (x86-64-v3 NativeAOT build; {why})";
#endif
    }

    /// <summary>AVX-512 F/CD/BW/DQ/VL (x86-64-v4) in CPUID, and enabled by the kernel (Linux lists the flags only then).</summary>
    public static bool CpuHasAvx512()
    {
        if (!X86Base.IsSupported) return false;
        var (_, ebx, _, _) = X86Base.CpuId(7, 0);
        const int needed = (1 << 16) | (1 << 17) | (1 << 28) | (1 << 30) | unchecked((int)(1u << 31));
        if ((ebx & needed) != needed) return false;
        // Enabled by the kernel: the XSAVE features it manages include the AVX-512 state (opmask, ZMM_Hi256,
        // Hi16_ZMM). arch_prctl answers in microseconds; /proc/cpuinfo, the fallback for kernels before 5.16,
        // takes about a millisecond (the kernel samples every CPU's clock to print it).
        ulong features = 0;
        if (ArchPrctl(ArchGetXcompSupp, &features) == 0) return (features & 0xE0) == 0xE0;
        try
        {
            string flags = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
            var set = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
            return new[] { "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl" }.All(set.Contains);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static void Exec(int fd, List<string> argv, List<string> envp)
    {
        var strings = new List<nint>();
        nint* a = stackalloc nint[argv.Count + 1];
        nint* e = (nint*)NativeMemory.Alloc((nuint)(envp.Count + 1), (nuint)sizeof(nint));
        try
        {
            for (int i = 0; i < argv.Count; i++) strings.Add(a[i] = Marshal.StringToCoTaskMemUTF8(argv[i]));
            a[argv.Count] = 0;
            for (int i = 0; i < envp.Count; i++) strings.Add(e[i] = Marshal.StringToCoTaskMemUTF8(envp[i]));
            e[envp.Count] = 0;
            Console.Out.Flush();
            Console.Error.Flush();
            Fexecve(fd, a, e);
        }
        finally
        {
            foreach (var s in strings) Marshal.FreeCoTaskMem(s);
            NativeMemory.Free(e);
        }
    }

    private const int ArchGetXcompSupp = 0x1021;

    [LibraryImport(Libc.Name, EntryPoint = "arch_prctl")]
    private static partial int ArchPrctl(int code, ulong* features);

    [LibraryImport(Libc.Name, EntryPoint = "memfd_create", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MemfdCreate(string name, uint flags);

    [LibraryImport(Libc.Name, EntryPoint = "fexecve")]
    private static partial int Fexecve(int fd, nint* argv, nint* envp);
}
