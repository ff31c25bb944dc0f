using ResNet.Runtime;
using ResNet.Runtime.Hub;
using ResNet.Runtime.Weights;

namespace ResNet.Native;

/// <summary>
/// Where the weights come from, in torch.hub's spirit: --weights FILE; $RESNET18_WEIGHTS; weights embedded
/// into this binary at build time; the torch.hub cache; otherwise a download into that cache (unless offline).
/// </summary>
internal sealed class WeightsResolver(string? explicitPath, bool offline)
{
    public const string EmbeddedResourceName = "embedded-weights.pth";

    public static string Url => Environment.GetEnvironmentVariable("RESNET18_WEIGHTS_URL") is { Length: > 0 } u ? u : TorchHub.DefaultUrl;

    public bool Offline { get; } = offline || Environment.GetEnvironmentVariable("RESNET18_OFFLINE") is "1" or "true" or "yes";

    public string CachePath => Path.Combine(TorchHub.CheckpointDirectory(), TorchHub.FileName(Url));

    private enum Source { Option, Environment, Embedded, Cache, Download, Nowhere, OtherClasses }

    /// <summary>
    /// A build generated for other classes than ImageNet's 1000 (a fine-tuned model): torchvision's weights, the
    /// torch.hub default, cannot fit it, so it looks there only when $RESNET18_WEIGHTS_URL names weights of its own.
    /// </summary>
    private static bool HubWeightsFit =>
        ResNet18.Network.Output.Elements == ImageNetLabels.All.Count || Environment.GetEnvironmentVariable("RESNET18_WEIGHTS_URL") is { Length: > 0 };

    private static string OtherClassesReason =>
        $"this build is generated for {ResNet18.Network.Output.Elements} classes, which torchvision's ImageNet weights do not fit; "
        + "pass its own with --weights, $RESNET18_WEIGHTS or $RESNET18_WEIGHTS_URL";

    /// <summary>The first place in the search order that applies now: the one order both --version and loading follow.</summary>
    private (Source Kind, string Path) Locate()
    {
        if (explicitPath != null) return (Source.Option, explicitPath);
        if (Environment.GetEnvironmentVariable("RESNET18_WEIGHTS") is { Length: > 0 } env) return (Source.Environment, env);
        if (HasEmbedded) return (Source.Embedded, "embedded weights");
        if (!HubWeightsFit) return (Source.OtherClasses, CachePath);
        if (File.Exists(CachePath)) return (Source.Cache, CachePath);
        return (Offline ? Source.Nowhere : Source.Download, CachePath);
    }

    /// <summary>One line saying where weights would be loaded from now, for --version.</summary>
    public string Describe()
    {
        var (kind, path) = Locate();
        return kind switch
        {
            Source.Option => $"{path} (--weights)",
            Source.Environment => $"{path} ($RESNET18_WEIGHTS)",
            Source.Embedded => "embedded in this binary",
            Source.Cache => $"{path} (torch.hub cache)",
            Source.Download => $"{path} (absent: would be downloaded from {Url})",
            Source.OtherClasses => $"none: {OtherClassesReason}",
            _ => $"none: {path} is absent and downloading is disabled (--offline / $RESNET18_OFFLINE)",
        };
    }

    /// <summary>
    /// Where packed weights are kept between runs: $XDG_CACHE_HOME/resnet18 or ~/.cache/resnet18 (beside
    /// torch.hub's cache). Weights embedded in the binary are kept there too, keyed by the binary itself (its path, size
    /// and modification time stand for them): packing them took ~60–90 ms of every run, mapping them takes ~5.
    /// None (null) without an absolute $XDG_CACHE_HOME or a home directory: a relative path would put the cache in
    /// whatever directory the command runs in (the XDG spec says to ignore a relative $XDG_CACHE_HOME).
    /// </summary>
    public static string? PackedCacheDirectory =>
        Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { } xdg && Path.IsPathRooted(xdg) ? Path.Combine(xdg, "resnet18")
        : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile, Environment.SpecialFolderOption.DoNotVerify) is { } home && Path.IsPathRooted(home) ? Path.Combine(home, ".cache", "resnet18")
        : null;

    /// <summary>The network with its weights from the first source in the search order (downloading if that is the one).</summary>
    public ResNet18 Load(NetworkOptions options)
    {
        var (kind, path) = Locate();
        switch (kind)
        {
            case Source.Embedded:
                using (var stream = typeof(WeightsResolver).Assembly.GetManifestResourceStream(EmbeddedResourceName)!)
                    return ResNet18.Load(stream, path, options, identifiedBy: Environment.ProcessPath);
            case Source.Nowhere:
                throw new WeightsException($"no weights: looked for --weights, $RESNET18_WEIGHTS and {path}; downloading is disabled (--offline or $RESNET18_OFFLINE)");
            case Source.OtherClasses:
                throw new WeightsException($"no weights: {OtherClassesReason}");
            case Source.Download:
                Download();
                break;
        }
        return ResNet18.Load(path, options);
    }

    private static bool HasEmbedded => typeof(WeightsResolver).Assembly.GetManifestResourceInfo(EmbeddedResourceName) != null;

    /// <summary>Whether loading now would download: the weights are in none of the places searched before.</summary>
    public bool WouldDownload => Locate().Kind == Source.Download;

    /// <summary>Downloads the weights into torch.hub's cache, with a progress bar on stderr.</summary>
    public void Download()
    {
#if RESNET_VARIANT_AVX512
        // This build carries no HTTPS stack: Program starts the v3 build inside it to download (IsaLauncher.DownloadInAvx2Build),
        // so only a failed start of that build, or weights deleted in between, get here.
        throw new WeightsException($"{CachePath}: absent, and the x86-64-v4 build does not download (its x86-64-v3 build could not); pass --weights");
#else
        string url = Url;
        Console.Error.WriteLine($"Downloading: \"{url}\" to {CachePath}");
        var bar = new ProgressBar();
        TorchHub.DownloadAsync(url, CachePath, TorchHub.HashPrefix(TorchHub.FileName(url)), bar.Report).GetAwaiter().GetResult();
        bar.Done();
#endif
    }

    /// <summary>A progress bar on stderr, redrawn in place on a terminal and at 10% steps otherwise.</summary>
    private sealed class ProgressBar
    {
        private int _lastShown = -1;

        public void Report(long received, long total)
        {
            int percent = total > 0 ? (int)(100 * received / total) : -1;
            bool terminal = !Console.IsErrorRedirected;
            if (percent == _lastShown || (!terminal && percent % 10 != 0)) return;
            _lastShown = percent;
            string text = total > 0 ? $"{percent,3}% {received / 1048576.0,7:0.0} / {total / 1048576.0:0.0} MiB" : $"{received / 1048576.0:0.0} MiB";
            if (terminal) Console.Error.Write($"\r[{new string('#', Math.Max(0, percent) / 4),-25}] {text}");
            else Console.Error.WriteLine(text);
        }

        public void Done()
        {
            if (!Console.IsErrorRedirected) Console.Error.WriteLine();
        }
    }
}
