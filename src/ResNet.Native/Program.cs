using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using ResNet.Runtime;
using ResNet.Runtime.Images;
using ResNet.Runtime.IO;

namespace ResNet.Native;

/// <summary>`resnet18`: classify images with the generated ResNet-18. Exit 0 all ok, 1 some input failed, 2 usage.</summary>
internal static class Program
{
    /// <summary>What a usage error prints after its reason.</summary>
    private const string Usage = """
        usage: resnet18 [options] FILE|DIR...
               resnet18 --version
               resnet18 bench [options]
        resnet18 --help and resnet18 bench --help describe the options.
        """;

    private const string Help = """
        usage: resnet18 [options] FILE|DIR...
               resnet18 --version
               resnet18 bench [options]   (times the network; resnet18 bench --help)

        Classifies images with ResNet-18 as torchvision's resnet18() with its eval transform does, and prints
        each file's top classes with their labels.

        FILE is a PNG, JPEG, BMP, GIF (its first frame), TIFF (its first page), PPM, PGM or PBM image, or a preprocessed float32 .npy
        tensor [3,224,224] or [1,3,224,224]; - reads one from standard input. DIR stands for the image files in
        it (.png, .jpg, .jpeg, .jpe, .jfif, .bmp, .dib, .gif, .tif, .tiff, .ppm, .pgm, .pbm, .pnm), sorted by name.

        options:
          --weights W      a state_dict saved by torch.save, or a .safetensors file. Without it: $RESNET18_WEIGHTS,
                           weights embedded at build time, then torch.hub's resnet18-f37072fd.pth in
                           $TORCH_HOME/hub/checkpoints (TORCH_HOME: $XDG_CACHE_HOME/torch or ~/.cache/torch),
                           downloaded there when absent
          --top K          classes per file (default 5)
          --labels FILE    the class names, one per line or a JSON array, one per output (default: ImageNet's,
                           for a network with its 1000 outputs; otherwise classes are printed by index)
          --json           one JSON object per line per file instead of a table
          --logits         add the logits (one per class) to each file's output
          --exact          direct convolution everywhere instead of Winograd (closer to PyTorch's rounding; slower)
          --threads N      threads for the network and for decoding images (default: all cores)
          --offline        never download the weights
          --no-cache       neither read nor write packed weights in $XDG_CACHE_HOME/resnet18 (~/.cache/resnet18)
          --max-pixels N   refuse larger images (default 89478485, PIL's limit)
          --version        the version, the instruction set in use, where the weights would come from
          -h, --help       this text

        environment: RESNET18_WEIGHTS (as above), RESNET18_OFFLINE=1 (as --offline), RESNET18_WEIGHTS_URL (download
        from there instead), RESNET18_ISA=avx2|portable (force those kernels), RESNET18_TIMING=1 (where the time went).

        exit status: 0 when every file was classified, 1 when any failed (each failure is one line on standard
        error naming the file, or a JSON line with --json), 2 on a usage error.
        """;

    /// <summary>Images per batch when several are given (the batch size of the throughput benchmark).</summary>
    private const int MaxBatch = 8;

    private static int Main(string[] args)
    {
        Timing.MainEntered();
        try
        {
            return Run(args);
        }
        catch (StandardOutput.Failed e)
        {
            return Report($"resnet18: {e.Message}: {e.Reason}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Standard error itself, or anything else of the system's that no reader turned into a message already.
            return Report($"resnet18: {OneLine(e)}");
        }
        catch (OutOfMemoryException e)
        {
            // The network's buffers (a large --batch, a tight ulimit -v): one input's own failure is reported with it.
            return Report($"resnet18: out of memory: {e.Message}");
        }
    }

    /// <summary>
    /// A line on standard error: every error is one, even for a file named with a newline (control characters show
    /// as '?', as `ls` shows them).
    /// </summary>
    internal static void ErrorLine(string line) => Console.Error.WriteLine(Printable.Line(line));

    /// <summary>The command's last word when it cannot go on: one line on standard error if that still works; exit 1.</summary>
    private static int Report(string line)
    {
        try
        {
            ErrorLine(line);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Nowhere left to say it: the exit code does.
        }
        return 1;
    }

    private static int Run(string[] args)
    {
#if RESNET_VARIANT_AVX2
        IsaLauncher.ExtractSelf();
#endif
        if (IsaLauncher.RequestError is { } isaError)
        {
            ErrorLine($"resnet18: {isaError}");
            return 2;
        }
        if (args.Length > 0 && args[0] == "bench") return BenchCommand.Run(args[1..]);
        if (args.Length == 1 && args[0] is "-h" or "--help")
        {
            StandardOutput.WriteLine(Help);
            return 0;
        }
        var options = Options.Parse(args, out var error);
        if (options == null)
        {
            ErrorLine($"resnet18: {error}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var resolver = new WeightsResolver(options.Weights, options.Offline);
        if (options.Version)
        {
            PrintVersion(resolver);
            return 0;
        }
        IReadOnlyList<string>? labels;
        try
        {
            labels = LabelsFile.For(options.Labels, ResNet18.Network.Output.Elements);
        }
        catch (ResNetException e)
        {
            ErrorLine($"resnet18: {e.Message}"); // before any weights are fetched
            return 1;
        }
        var files = ExpandInputs(options.Files, out var failedDirectories);
        // Nothing named can be read (a typo, a broken link, a directory without images): said below without fetching 46 MB
        // of weights first.
        bool anyInput = files.Any(f => f == StreamInput.StandardInput ? StreamInput.StandardInputRedirected : FileFailures.BeforeOpening(f) is null);
        // The x86-64-v4 build carries no HTTPS stack, which would double its size and the relocations each start
        // applies (`--version` 6.1 → 5.2 ms without it): weights to download are downloaded by the v3 build.
#if RESNET_VARIANT_AVX512
        if (anyInput && resolver.WouldDownload) IsaLauncher.DownloadInAvx2Build(args); // returns only if it cannot; loading says so
#elif RESNET_VARIANT_AVX2
        if (IsaLauncher.DownloadingForAvx512Build)
        {
            if (resolver.WouldDownload && Download(resolver) is int failed) return failed;
            IsaLauncher.HandBack(args);
        }
#endif
        // A directory without images is a failed input, reported like a file that fails; the others still run.
        foreach (var (directory, reason) in failedDirectories) Fail(directory, $"{directory}: {reason}", options.Json);
        if (files.Count == 0) return 1;
        if (!anyInput)
        {
            // Each one's reader says why, as it would after loading the weights.
            foreach (var file in files)
            {
                try
                {
                    LoadInput(file, ResNet18.Network.Input, options.MaxPixels, null);
                }
                catch (Exception e)
                {
                    FailInput(file, e, options.Json);
                }
            }
            return 1;
        }
        ResNet18 model;
        var timing = new Timing();
        // Several images go through the network a batch at a time: the batch decodes on --threads cores (so
        // that many full-size images in memory at once), then runs on them. One image per call, decoding the
        // next competed with the inference's threads: 30 copies of a 768×576 photo took 358 ms instead of 256.
        // A batch's logits are one-at-a-time's but for the last bits where a batch of 3 or more runs layer4's batched
        // Winograd variant (ParityTests, CliTests).
        int batch = Math.Min(MaxBatch, Math.Max(1, files.Count));
        // The network's worker threads start now, while the other core is still idle: once the decoding below
        // has it, a new thread waits for the scheduler's tick before Thread.Start returns (~1 ms of the loading).
        // The first worker then decodes the first batch (BatchDecoder), which so starts no thread either.
        // The pool lives as long as the process: its threads are background threads, which the exit ends (joining
        // them first would only add a wake-up and a thread's exit to the end of the run).
        var workers = options.Threads > 1 ? new WorkerPool(options.Threads) : null;
        // One image: this thread, done loading, is lent to its transform (below), and runs conv1 on the rows it makes.
        var streamed = files.Count == 1 && options.Threads > 1 ? new StreamedRows() : null;
        var decoder = new BatchDecoder(files, batch, options.Threads, file => LoadInput(file, ResNet18.Network.Input, options.MaxPixels, streamed), timing, workers);
        if (files.Count == 1) DecodingHeap.Prepare(); // before anything the decoding allocates
        // The first batch decodes while the weights load and pack.
        var first = decoder.Decode(0);
        try
        {
            var networkOptions = new NetworkOptions
            {
                InstructionSet = IsaLauncher.Effective, Exact = options.Exact, Threads = options.Threads, Workers = workers, MaxBatch = batch,
                PackedCache = options.NoCache ? null : WeightsResolver.PackedCacheDirectory,
            };
            model = resolver.Load(networkOptions);
            streamed?.Start(model);
            timing.Mark("load weights");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return WeightsFailure(e);
        }
        int failures = failedDirectories.Count;
        try
        {
            var logits = new float[batch * model.OutputLength];
            bool progress = files.Count >= 10 && !Console.IsErrorRedirected;
            for (int at = 0; at < files.Count; at += batch)
            {
                var pending = at == 0 ? first : decoder.Decode(at);
                if (at == 0 && !pending.IsCompleted) StartConsole();
                // One image: this thread is done loading and would only wait, so it takes a share of the row loops.
                if (files.Count == 1 && options.Threads > 1) ImageNetTransform.LendThreadUntil(pending);
                var decoded = pending.GetAwaiter().GetResult();
                timing.Mark("decode and preprocess (beyond the overlap)");
                var good = decoded.Where(d => d.Input != null).Select(d => d.Input!).ToArray();
                Exception? failed = null;
                try
                {
                    // Every image runs from where it was decoded.
                    if (good.Length == 1 && streamed != null && streamed.Holds(good[0]))
                    {
                        timing.Note($"first-layer bands run behind the decoding {streamed.Bands}");
                        model.RunStreamed(good[0], logits);
                    }
                    else if (good.Length > 0) model.Run(good, logits);
                    timing.Mark("inference");
                }
                catch (Exception e)
                {
                    failed = e;
                }
                for (int k = 0, image = 0; k < decoded.Length; k++)
                {
                    string file = files[at + k];
                    if (progress) Console.Error.Write($"\r[{at + k + 1}/{files.Count}] ");
                    var problem = decoded[k].Error ?? failed;
                    if (problem != null)
                    {
                        failures++;
                        FailInput(file, problem, options.Json);
                        continue;
                    }
                    var own = logits.AsSpan(image++ * model.OutputLength, model.OutputLength);
                    // A table of NaN probabilities would still rank "tench" first: say what happened instead.
                    if (!AllFinite(own))
                    {
                        failures++;
                        Fail(file, $"{file}: the network's output is not finite (NaN or infinity): the input holds NaN, infinite or extremely large values", options.Json);
                        continue;
                    }
                    var top = Classification.TopK(own, options.Top, labels);
                    float[]? raw = options.Logits ? own.ToArray() : null;
                    if (options.Json) StandardOutput.WriteLine(JsonOut.Result(file, top, raw));
                    else WriteTable(file, top, raw);
                }
            }
            if (progress) Console.Error.WriteLine();
        }
        finally
        {
            // The process exits next, releasing the network's memory and mapping faster than Dispose would.
            model.DisposeForExit();
        }
        timing.Report();
        return failures == 0 ? 0 : 1;
    }

#if RESNET_VARIANT_AVX2
    /// <summary>The v3 build's download for the v4 build (which cannot): null once done, or the exit code of a failure.</summary>
    private static int? Download(WeightsResolver resolver)
    {
        try
        {
            resolver.Download();
            return null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return WeightsFailure(e);
        }
    }
#endif

    /// <summary>A failure to get or load the weights, on one line (ours name the file and the reason already); the exit code.</summary>
    private static int WeightsFailure(Exception e)
    {
        ErrorLine(e is ResNetException ? $"resnet18: {e.Message}" : $"resnet18: cannot load the weights: {OneLine(e)}");
        return 1;
    }

    /// <summary>One input's failure: a JSON line on stdout with --json, else one line on stderr.</summary>
    private static void Fail(string input, string message, bool json)
    {
        if (json) StandardOutput.WriteLine(JsonOut.Error(input, message));
        else ErrorLine($"resnet18: {message}");
    }

    /// <summary>
    /// An input's failure: a reader's refusal names the file already; anything else is still this file's failure,
    /// reported on one line while the other files go on.
    /// </summary>
    private static void FailInput(string file, Exception problem, bool json) =>
        Fail(file, problem is ResNetException ? problem.Message : $"{file}: {OneLine(problem)}", json);

    /// <summary>
    /// Files stay in order; a directory becomes its image files (regular files, or links to them), sorted by
    /// name, or, with none or when it cannot be listed, one of <paramref name="failedDirectories"/> with the reason.
    /// <paramref name="list"/> lists a directory (tests fail it: as root, which CI is, no directory refuses a listing).
    /// </summary>
    internal static List<string> ExpandInputs(List<string> args, out List<(string Directory, string Reason)> failedDirectories,
        Func<string, IEnumerable<string>>? list = null)
    {
        list ??= Directory.EnumerateFiles;
        var files = new List<string>();
        failedDirectories = [];
        foreach (var a in args)
        {
            if (a != StreamInput.StandardInput && Directory.Exists(a))
            {
                int before = files.Count;
                try
                {
                    // A listing's named pipe, socket or device is skipped as its subdirectories are: opening a named
                    // pipe waits for a writer, forever in a directory of photos. Named on its own, it is read as a stream.
                    files.AddRange(list(a)
                        .Where(f => IsImageName(f) && !StreamInput.Is(f))
                        .Order(StringComparer.Ordinal));
                }
                catch (Exception e) when (FileFailures.Of(e) is { } reason)
                {
                    failedDirectories.Add((a, reason)); // unreadable: the other inputs still run
                    continue;
                }
                if (files.Count == before) failedDirectories.Add((a, "no image files (PNG, JPEG, BMP, GIF, TIFF, WebP, PPM, PGM, PBM) in this directory"));
            }
            else
            {
                files.Add(a); // a missing file is reported by its reader, in order with the others
            }
        }
        return files;
    }

    /// <summary>
    /// The names a directory's image files go by: torchvision's ImageFolder list, and .gif, .dib, .pbm, .pnm,
    /// .jfif (what browsers save many JPEGs as) and .jpe (an older spelling). A file is decoded by its first bytes,
    /// whatever its name.
    /// </summary>
    internal static bool IsImageName(string file) =>
        Path.GetExtension(file).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg" or ".jpe" or ".jfif" or ".bmp" or ".dib" or ".gif" or ".tif" or ".tiff" or ".ppm" or ".pgm" or ".pbm" or ".pnm" or ".webp";

    private static string OneLine(Exception e) =>
        e is OutOfMemoryException ? "out of memory" : $"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}";

    private static float[] LoadInput(string file, TensorShape shape, long maxPixels, StreamedRows? streamed)
    {
        // A stream is read whole once (its format told from those bytes); a regular file is read by its reader.
        byte[]? piped = StreamInput.Is(file) ? StreamInput.Bytes(file) : null;
        if (!(piped != null ? FileHead.IsNpy(piped) : IsNpy(file)))
            return piped != null ? ImageNetTransform.FromBytes(piped, file, maxPixels, streamed) : ImageNetTransform.FromFile(file, maxPixels, streamed);
        var (dims, data) = piped != null ? Npy.Parse(piped, file) : Npy.Read(file);
        bool ok = (dims.Length == 3 && dims[0] == shape.C && dims[1] == shape.H && dims[2] == shape.W)
            || (dims.Length == 4 && dims[0] == 1 && dims[1] == shape.C && dims[2] == shape.H && dims[3] == shape.W);
        if (!ok)
            throw new InputException($"{file}: tensor of shape [{string.Join(", ", dims)}]; expected [{shape.C}, {shape.H}, {shape.W}] or [1, {shape.C}, {shape.H}, {shape.W}]");
        return data;
    }

    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (float v in values)
            if (!float.IsFinite(v)) return false;
        return true;
    }

    private static bool IsNpy(string file)
    {
        Span<byte> head = stackalloc byte[6];
        return FileHead.IsNpy(head[..FileHead.Read(file, head)]);
    }

    /// <summary>
    /// Console's first write to stdout starts its terminal and signal handling, a thread with an 8 MB stack: ~0.15 ms
    /// between the inference and the output, measured. An empty write does only that, here while this thread would
    /// only wait for the first batch's decoding.
    /// </summary>
    private static void StartConsole()
    {
        using var stdout = Console.OpenStandardOutput();
        stdout.Write(ReadOnlySpan<byte>.Empty);
    }

    /// <summary>
    /// One file's result, written at once. Into a StringBuilder: its interpolation writes straight into the
    /// builder, where string.Create's rents a buffer from the shared ArrayPool, whose first use calibrates the
    /// processor-id cache (~0.2 ms, after the inference).
    /// </summary>
    private static void WriteTable(string file, IReadOnlyList<Prediction> top, float[]? logits)
    {
        var text = new StringBuilder(Printable.Line(file)).AppendLine(); // one line per file name, as in the errors
        for (int i = 0; i < top.Count; i++) text.AppendLine(Row(i + 1, top[i]));
        if (logits != null) text.Append("  logits: ").AppendJoin(' ', logits.Select(JsonOut.Num)).AppendLine();
        StandardOutput.Write(text.ToString());
    }

    /// <summary>One line of the table: rank, probability, and the label with the index, or the index alone when the classes have no names.</summary>
    internal static string Row(int rank, Prediction p) => string.Create(CultureInfo.InvariantCulture,
        $"  {rank,2}  {p.Probability * 100,7:0.00}%  {(p.Label is { } label ? $"{label} ({p.Index})" : $"class {p.Index}")}");

    private static void PrintVersion(WeightsResolver resolver)
    {
        string version = typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";
        StandardOutput.WriteLine($"resnet18 {version.Split('+')[0]}");
        int classes = ResNet18.Network.Output.Elements;
        StandardOutput.WriteLine($"network: ResNet-18 generated for {classes} classes{(classes == ImageNetLabels.All.Count ? " (ImageNet's names, or --labels)" : " (named by --labels, else by index)")}");
        StandardOutput.WriteLine($"instruction set: {IsaLauncher.Describe()}");
        StandardOutput.WriteLine($"weights: {resolver.Describe()}");
        StandardOutput.WriteLine($"packed weights cache: {WeightsResolver.PackedCacheDirectory ?? "none (no home directory or absolute $XDG_CACHE_HOME)"} (--no-cache to bypass)");
    }
}
