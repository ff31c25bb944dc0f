using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using ResNet.Native;
using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>The `resnet18` command end to end (run under the JIT from the test output directory).</summary>
public sealed class CliTests : IClassFixture<CliTests.RandomResNet18Weights>, IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("cli").FullName;
    private readonly RandomResNet18Weights _weights;

    public CliTests(RandomResNet18Weights weights) => _weights = weights;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    /// <summary>ResNet-18 weights written once per test class in torch.save format.</summary>
    public sealed class RandomResNet18Weights : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"resnet18-random-{Guid.NewGuid():N}.pth");

        public RandomResNet18Weights() => TorchSaveWriter.Write(Path, RandomWeights.For(ResNet18.Network, 21));

        public void Dispose() => File.Delete(Path);
    }

    private (int Exit, string Out, string Err) Run(params string[] args) => Run(new Dictionary<string, string>(), args);

    private (int Exit, string Out, string Err) Run(Dictionary<string, string> env, params string[] args) => Run((Action<Stream>?)null, env, args);

    /// <summary>Runs the command with <paramref name="stdin"/> piped in (else the test process's own standard input).</summary>
    private (int Exit, string Out, string Err) Run(byte[]? stdin, Dictionary<string, string> env, params string[] args) =>
        Run(stdin == null ? null : pipe => pipe.Write(stdin), env, args);

    /// <summary>Runs the command with what <paramref name="stdin"/> writes piped in (else the test process's own standard input).</summary>
    private (int Exit, string Out, string Err) Run(Action<Stream>? stdin, Dictionary<string, string> env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin != null };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "resnet18.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["TORCH_HOME"] = Path.Combine(_home, "torch");
        psi.Environment["XDG_CACHE_HOME"] = Path.Combine(_home, "cache");
        psi.Environment.Remove("RESNET18_WEIGHTS");
        psi.Environment.Remove("RESNET18_OFFLINE");
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin != null)
        {
            try
            {
                stdin(p.StandardInput.BaseStream);
                p.StandardInput.Close();
            }
            catch (IOException)
            {
                // The command may exit without reading it all (a usage error, or bytes it refuses from their start):
                // what it printed is the result.
            }
        }
        if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"resnet18 {string.Join(' ', args)} did not exit within 3 minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string Image(string name) => Path.Combine(Fixtures.Dir("images"), name);

    [Fact]
    public void SecondRunReadsThePackedWeightsCache()
    {
        string cache = Path.Combine(_home, "cache", "resnet18");
        var uncached = Run("--weights", _weights.Path, "--no-cache", "--logits", "--json", Image("gray8.png"));
        Assert.Equal(0, uncached.Exit);
        Assert.False(Directory.Exists(cache));
        var first = Run("--weights", _weights.Path, "--logits", "--json", Image("gray8.png"));
        Assert.Single(Directory.GetFiles(cache, "ResNet18-*.packed"));
        var second = Run("--weights", _weights.Path, "--logits", "--json", Image("gray8.png"));
        Assert.Equal(uncached.Out, first.Out);
        Assert.Equal(uncached.Out, second.Out);
        Assert.Single(Directory.GetFiles(cache));
        Assert.Contains(cache, Run("--version").Out);
    }

    [Fact]
    public void ARelativeXdgCacheHomeIsIgnored()
    {
        // The XDG spec: a relative $XDG_CACHE_HOME is invalid. Used as is, it would put the cache wherever the
        // command runs; the default under $HOME is used instead.
        var env = new Dictionary<string, string> { ["XDG_CACHE_HOME"] = "relative-cache", ["HOME"] = _home };
        var (exit, @out, _) = Run(env, "--weights", _weights.Path, "--json", Image("gray8.png"));
        Assert.Equal(0, exit);
        Assert.Contains("\"top\"", @out);
        Assert.False(Directory.Exists(Path.Combine(Environment.CurrentDirectory, "relative-cache")));
        Assert.Single(Directory.GetFiles(Path.Combine(_home, ".cache", "resnet18"), "ResNet18-*.packed"));
    }

    [Fact]
    public void AHomeThatDoesNotExistStillGivesAbsoluteCachePaths()
    {
        // As Python's expanduser: $HOME as given. A verified lookup would be "" and the paths relative to the cwd.
        string home = Path.Combine(_home, "missing-home");
        var env = new Dictionary<string, string> { ["HOME"] = home, ["TORCH_HOME"] = null!, ["XDG_CACHE_HOME"] = null! };
        var (exit, @out, _) = Run(env, "--version");
        Assert.Equal(0, exit);
        Assert.Contains($"weights: {home}/.cache/torch/hub/checkpoints/resnet18-f37072fd.pth", @out);
        Assert.Contains($"packed weights cache: {home}/.cache/resnet18", @out);
        Assert.Contains("network: ResNet-18 generated for 1000 classes (ImageNet's", @out);
    }

    [Fact]
    public void UsageErrorExitsTwo()
    {
        var (exit, _, err) = Run("--top", "0", "x.png");
        Assert.Equal(2, exit);
        Assert.Contains("--top needs an integer", err);
        Assert.Equal(2, Run().Exit);
        Assert.Equal(2, Run("--bogus", "x.png").Exit);
        Assert.Contains("resnet18 --help", err);
        // An empty name was passed on, to fail as "ArgumentException: The value cannot be an empty string".
        (exit, _, err) = Run("--weights", "", "x.png");
        Assert.Equal((2, "resnet18: --weights needs a file"), (exit, err.Split('\n')[0]));
        (exit, _, err) = Run("--weights", _weights.Path, "x.png", ""); // this one was a stack trace
        Assert.Equal((2, "resnet18: an input file name is empty"), (exit, err.Split('\n')[0]));
        // A mistyped RESNET18_ISA ran the default kernels in silence, benchmarks too.
        foreach (var args in new[] { new[] { "x.png" }, ["bench", "--iterations", "1"] })
        {
            (exit, _, err) = Run(new Dictionary<string, string> { ["RESNET18_ISA"] = "avx3" }, args);
            Assert.Equal((2, "resnet18: RESNET18_ISA must be avx512, avx2 or portable, not 'avx3'"), (exit, err.Trim()));
        }
    }

    [Fact]
    public void HelpDescribesEveryOptionAndEachIsAccepted()
    {
        var (exit, @out, _) = Run("--help");
        Assert.Equal(0, exit);
        var listed = Regex.Matches(@out, "(?m)^ {2,}(?:-h, )?(--[a-z-]+)( [A-Z])?")
            .Select(m => (Option: m.Groups[1].Value, TakesValue: m.Groups[2].Success)).ToList();
        Assert.Equal(["--weights", "--top", "--labels", "--json", "--logits", "--exact", "--threads", "--offline", "--no-cache", "--max-pixels", "--version", "--help"],
            listed.Select(l => l.Option));
        foreach (var (option, takesValue) in listed.Where(l => l.Option != "--help"))
        {
            string[] args = takesValue ? [option, "3", "x.png"] : [option, "x.png"];
            Assert.True(Options.Parse(args, out var error) != null, $"{option}: {error}");
        }
    }

    [Fact]
    public void OfflineWithoutWeightsNamesThePathsSearched()
    {
        var (exit, @out, err) = Run("--offline", Image("gray8.png"));
        Assert.Equal(1, exit);
        Assert.Equal("", @out);
        string line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(Path.Combine(_home, "torch", "hub", "checkpoints", "resnet18-f37072fd.pth"), line);
        Assert.Contains("$RESNET18_WEIGHTS", line);
        Assert.DoesNotContain("   at ", err);
    }

    /// <summary>The class names of a labels file, as lines (CRLF, a last newline) or as a JSON array, in the table and in JSON.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LabelsFromAFileNameTheClasses(bool json)
    {
        string path = Path.Combine(_home, json ? "classes.json" : "classes.txt");
        var names = Enumerable.Range(0, 1000).Select(i => $"kind \"{i}\" ünï").ToArray();
        File.WriteAllText(path, json ? JsonSerializer.Serialize(names) : string.Join("\r\n", names) + "\r\n");
        var (exit, @out, err) = Run("--weights", _weights.Path, "--labels", path, "--top", "3", Image("gray8.png"));
        Assert.True(exit == 0, err);
        var rows = Regex.Matches(@out, @"(?m)^ +\d +[\d.]+%  kind ""(\d+)"" ünï \((\d+)\)$");
        Assert.Equal(3, rows.Count);
        Assert.All(rows, m => Assert.Equal(m.Groups[1].Value, m.Groups[2].Value));
        var line = JsonDocument.Parse(Run("--weights", _weights.Path, "--labels", path, "--json", Image("gray8.png")).Out).RootElement;
        var first = line.GetProperty("top")[0];
        Assert.Equal(names[first.GetProperty("index").GetInt32()], first.GetProperty("label").GetString());
    }

    /// <summary>ImageNet's names only for a network with its 1000 outputs: one generated for other classes prints indices.</summary>
    [Fact]
    public void ClassesWithoutNamesArePrintedByIndex()
    {
        Assert.Same(ImageNetLabels.All, LabelsFile.For(null, 1000));
        Assert.Null(LabelsFile.For(null, 10));
        var top = Classification.TopK([0f, 3f, 1f], 2, LabelsFile.For(null, 3));
        Assert.Equal("   1    84.38%  class 1", Program.Row(1, top[0]));
        Assert.Equal("   2    11.42%  class 2", Program.Row(2, top[1]));
        Assert.Equal("   1    84.38%  b (1)", Program.Row(1, Classification.TopK([0f, 3f, 1f], 1, ["a", "b", "c"])[0]));
    }

    [Fact]
    public void ALabelsFilesByteOrderMarkIsNotPartOfTheFirstLabel()
    {
        string lines = Path.Combine(_home, "bom.txt"), json = Path.Combine(_home, "bom.json");
        File.WriteAllText(lines, "a\r\nb \nc", new System.Text.UTF8Encoding(true));
        File.WriteAllText(json, " [\"a\", \"b \", \"c\"]\n", new System.Text.UTF8Encoding(true));
        Assert.Equal(["a", "b ", "c"], LabelsFile.Load(lines, 3));
        Assert.Equal(["a", "b ", "c"], LabelsFile.Load(json, 3));
        // Blank lines at the end are not classes; one inside is, and the count says so.
        File.WriteAllText(lines, "a\nb\nc\n\r\n\n");
        Assert.Equal(["a", "b", "c"], LabelsFile.Load(lines, 3));
        File.WriteAllText(lines, "a\n\nb\nc\n");
        Assert.Equal($"{lines}: 4 labels (1 of them empty); the network has 3 outputs, one label each",
            Assert.ThrowsAny<ResNetException>(() => LabelsFile.Load(lines, 3)).Message);
    }

    [Fact]
    public void ABadLabelsFileIsOneLineBeforeAnyWeights()
    {
        string three = Path.Combine(_home, "three.txt"), binary = Path.Combine(_home, "binary.txt"), notArray = Path.Combine(_home, "object.json");
        File.WriteAllText(three, "a\nb\nc\n");
        File.WriteAllBytes(binary, [0x61, 0x80, 0x0a]);
        File.WriteAllText(notArray, "[\"a\", 2]");
        foreach (var (file, reason) in new[]
                 {
                     (three, "3 labels; the network has 1000 outputs, one label each"), (binary, "not UTF-8 text"),
                     (notArray, "label 1 is not a string"), (Path.Combine(_home, "missing.txt"), "no such file"), (_home, "is a directory"),
                 })
        {
            // --offline and no weights: a labels file checked only after the weights were looked for would say so instead.
            var (exit, @out, err) = Run("--offline", "--labels", file, Image("gray8.png"));
            Assert.Equal(1, exit);
            Assert.Equal("", @out);
            Assert.Equal($"resnet18: {file}: {reason}", err.TrimEnd('\n'));
        }
    }

    [Fact]
    public void JsonLinesWithLabelsAndPerFileErrors()
    {
        string bad = Path.Combine(_home, "bad.png");
        File.WriteAllText(bad, "not an image");
        var (exit, @out, err) = Run("--weights", _weights.Path, "--json", "--top", "3", Image("rgb8_61x45.png"), bad, Path.Combine(_home, "missing.jpg"), Image("baseline.jpg"));
        Assert.Equal(1, exit);
        var lines = @out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(4, lines.Length);
        Assert.Equal(3, lines[0].GetProperty("top").GetArrayLength());
        var first = lines[0].GetProperty("top")[0];
        Assert.Equal(ImageNetLabels.All[first.GetProperty("index").GetInt32()], first.GetProperty("label").GetString());
        Assert.False(lines[0].TryGetProperty("logits", out _));
        Assert.Equal($"{bad}: not a PNG, JPEG, BMP, GIF, TIFF, WebP, PPM, PGM or PBM image (the supported formats)", lines[1].GetProperty("error").GetString());
        Assert.Contains("no such file", lines[2].GetProperty("error").GetString());
        Assert.True(lines[3].TryGetProperty("top", out _));
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void DirectoryArgumentClassifiesItsImages()
    {
        var (exit, @out, _) = Run("--weights", _weights.Path, "--json", "--logits", Fixtures.Dir("images"));
        Assert.Equal(0, exit);
        var lines = @out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        int images = Directory.GetFiles(Fixtures.Dir("images")).Count(f => Path.GetExtension(f) is ".png" or ".jpg" or ".bmp" or ".gif" or ".tif" or ".tiff" or ".webp" or ".ppm" or ".pgm" or ".pbm");
        Assert.Equal(images, lines.Length);
        Assert.All(lines, l => Assert.Equal(1000, l.GetProperty("logits").GetArrayLength()));
    }

    /// <summary>
    /// Several files run a batch at a time (106 fixtures: thirteen batches of 8 and one of 2); each file's logits are those
    /// of running it alone, but for the batched Winograd variants' rounding (on AVX-512, layer4 is F(4×4) in a batch
    /// and F(2×2) alone).
    /// </summary>
    [Fact]
    public void BatchedFilesGetTheLogitsTheyGetAlone()
    {
        var (exit, @out, _) = Run("--weights", _weights.Path, "--json", "--logits", Fixtures.Dir("images"));
        Assert.Equal(0, exit);
        var all = @out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .ToDictionary(l => l.GetProperty("file").GetString()!, l => l.GetProperty("logits").EnumerateArray().Select(v => v.GetSingle()).ToArray());
        foreach (var name in new[] { "baseline.jpg", "tiny_420.jpg" }) // in the first batch and in the last of 8
        {
            var (alone, aloneOut, _) = Run("--weights", _weights.Path, "--json", "--logits", Image(name));
            Assert.Equal(0, alone);
            var logits = JsonDocument.Parse(aloneOut).RootElement.GetProperty("logits").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            float diff = Fixtures.MaxDiff(logits, all[Image(name)]);
            Assert.True(diff <= 1e-5f * (logits.Max(Math.Abs) + 1), $"{name}: max |Δlogit| {diff} of {logits.Max(Math.Abs)}");
            Assert.Equal(Fixtures.Top(logits, 5), Fixtures.Top(all[Image(name)], 5));
        }
    }

    [Fact]
    public void StandardInputIsClassifiedLikeTheFileItHolds()
    {
        string npy = Path.Combine(_home, "tensor.npy");
        var tensor = new float[3 * 224 * 224];
        var random = new Random(5);
        for (int i = 0; i < tensor.Length; i++) tensor[i] = (float)(random.NextDouble() * 4 - 2);
        ResNet.Runtime.IO.Npy.Write(npy, [3, 224, 224], tensor);
        foreach (var file in new[] { Image("baseline.jpg"), Image("rgba8.png"), npy })
        {
            var fromFile = Run("--weights", _weights.Path, "--json", "--logits", file);
            var piped = Run(File.ReadAllBytes(file), [], "--weights", _weights.Path, "--json", "--logits", "-");
            Assert.Equal(0, piped.Exit);
            Assert.Equal("", piped.Err);
            // The same tensor, so the same logits to the bit: only the name differs.
            var (expected, actual) = (JsonDocument.Parse(fromFile.Out).RootElement, JsonDocument.Parse(piped.Out).RootElement);
            Assert.Equal("-", actual.GetProperty("file").GetString());
            Assert.Equal(expected.GetProperty("top").GetRawText(), actual.GetProperty("top").GetRawText());
            Assert.Equal(expected.GetProperty("logits").GetRawText(), actual.GetProperty("logits").GetRawText());
        }
        // "-" twice is the one image twice (a pipe is read once), in order with the files around it.
        var (exit, @out, _) = Run(File.ReadAllBytes(Image("baseline.jpg")), [], "--weights", _weights.Path, "--json", "--logits", "-", Image("gray8.png"), "-");
        Assert.Equal(0, exit);
        var lines = @out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(["-", Image("gray8.png"), "-"], lines.Select(l => l.GetProperty("file").GetString()));
        var twice = new[] { lines[0], lines[2] }.Select(l => l.GetProperty("logits").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        Assert.True(Fixtures.MaxDiff(twice[0], twice[1]) <= 1e-5f * (twice[0].Max(Math.Abs) + 1));
        Assert.Equal(Fixtures.Top(twice[0], 5), Fixtures.Top(twice[1], 5));
    }

    [Fact]
    public async Task ANamedPipeIsReadOnceAndClassifiedLikeTheFileItCarries()
    {
        // Telling its format and then decoding it would open it twice: the second open waits for a writer forever.
        string fifo = Path.Combine(_home, "photo.jpg");
        using (var mkfifo = Process.Start("mkfifo", [fifo])) mkfifo.WaitForExit();
        var bytes = File.ReadAllBytes(Image("baseline.jpg"));
        var writer = Task.Run(() => File.WriteAllBytes(fifo, bytes)); // opening blocks until the command opens it
        var piped = Run("--weights", _weights.Path, "--json", "--logits", fifo, fifo);
        await writer.WaitAsync(TimeSpan.FromSeconds(10));
        var fromFile = Run("--weights", _weights.Path, "--json", "--logits", Image("baseline.jpg"));
        Assert.Equal(0, piped.Exit);
        var lines = piped.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal([fifo, fifo], lines.Select(l => l.GetProperty("file").GetString()));
        var expected = JsonDocument.Parse(fromFile.Out).RootElement.GetProperty("logits").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        foreach (var line in lines)
        {
            var logits = line.GetProperty("logits").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            Assert.True(Fixtures.MaxDiff(expected, logits) <= 1e-5f * (expected.Max(Math.Abs) + 1));
            Assert.Equal(Fixtures.Top(expected, 5), Fixtures.Top(logits, 5));
        }
    }

    [Theory]
    [InlineData("", "-: empty file")]
    [InlineData("not an image", "-: not a PNG, JPEG, BMP, GIF, TIFF, WebP, PPM, PGM or PBM image (the supported formats)")]
    public void BadStandardInputIsOneFailedInput(string input, string message)
    {
        var (exit, @out, err) = Run(System.Text.Encoding.UTF8.GetBytes(input), [], "--weights", _weights.Path, "-", Image("gray8.png"));
        Assert.Equal(1, exit);
        Assert.Equal($"resnet18: {message}", Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.StartsWith(Image("gray8.png") + "\n", @out); // the other input still runs
    }

    [Theory]
    [InlineData("", "-: not a PNG, JPEG, BMP, GIF, TIFF, WebP, PPM, PGM or PBM image (the supported formats)")]
    [InlineData("\u0089PNG\r\n\u001a\n", "-: more than 256 MiB on standard input; pass an image this large as a regular file")]
    public void AnEndlessStandardInputIsRefusedWithoutReadingItAll(string start, string message)
    {
        // 300 MiB after `start` (stopped when the command stops reading): without magic the first bytes are refused
        // at once (reading on would end at the size limit instead); with a PNG's, the limit ends the read.
        var filler = new byte[1 << 20];
        Array.Fill(filler, (byte)'y');
        var (exit, @out, err) = Run(pipe =>
        {
            pipe.Write(System.Text.Encoding.Latin1.GetBytes(start));
            for (int i = 0; i < 300; i++) pipe.Write(filler);
        }, [], "--weights", _weights.Path, "-");
        Assert.Equal(1, exit);
        Assert.Equal("", @out);
        Assert.Equal($"resnet18: {message}", Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(3e38f)]
    public void ATensorWhoseOutputIsNotFiniteIsAFailedInput(float value)
    {
        // NaN logits would still be ranked ("tench" first, at NaN%): the input fails instead, the others run as alone.
        string bad = Path.Combine(_home, "bad.npy"), good = Path.Combine(_home, "good.npy");
        var tensor = new float[3 * 224 * 224];
        ResNet.Runtime.IO.Npy.Write(good, [3, 224, 224], tensor);
        Array.Fill(tensor, value, 0, value == 3e38f ? tensor.Length : 1);
        ResNet.Runtime.IO.Npy.Write(bad, [3, 224, 224], tensor);
        var (exit, @out, err) = Run("--weights", _weights.Path, "--json", "--logits", good, bad, good);
        Assert.Equal(1, exit);
        Assert.Equal("", err);
        var lines = @out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(3, lines.Length);
        Assert.Equal($"{bad}: the network's output is not finite (NaN or infinity): the input holds NaN, infinite or extremely large values",
            lines[1].GetProperty("error").GetString());
        static float[] Logits(JsonElement line) => line.GetProperty("logits").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var alone = Logits(JsonDocument.Parse(Run("--weights", _weights.Path, "--json", "--logits", good).Out).RootElement);
        foreach (var line in new[] { lines[0], lines[2] })
        {
            // A batch of three runs layer4's batched variant: the same to the last bits (BatchedFilesGetTheLogitsTheyGetAlone).
            Assert.True(Fixtures.MaxDiff(alone, Logits(line)) <= 1e-5f * (alone.Max(Math.Abs) + 1));
            Assert.Equal(Fixtures.Top(alone, 5), Fixtures.Top(Logits(line), 5));
        }
    }

    [Theory]
    [InlineData(">/dev/full", "No space left on device", false)]
    [InlineData(">/dev/full", "No space left on device", true)]
    [InlineData(">&-", "Bad file descriptor", false)]
    public void ResultsThatCannotBeWrittenEndTheRunWithOneLine(string redirect, string reason, bool version)
    {
        // Standard output full or closed: one line on standard error and exit 1, not the runtime's abort (134)
        // with a stack trace.
        var psi = new ProcessStartInfo("sh") { RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"exec \"$0\" \"$@\" {redirect}");
        psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "resnet18.dll"));
        foreach (var a in version ? ["--version"] : new[] { "--weights", _weights.Path, "--json", Image("gray8.png") }) psi.ArgumentList.Add(a);
        psi.Environment["XDG_CACHE_HOME"] = Path.Combine(_home, "cache");
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(1, p.ExitCode);
        Assert.Equal($"resnet18: cannot write to standard output: {reason}", Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public async Task StandardInputNotOpenForReadingIsRefusedInOneLine()
    {
        // The published command opens a closed standard input write-only on /dev/null before its runtime starts
        // (StandardFds.c; .ci/run runs `<&-` against it): reading "-" then names the cause instead of "permission
        // denied", or decoding whatever file the runtime had opened as descriptor 0. Here, under the JIT, the same
        // state by `0>/dev/null`.
        var psi = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$0\" \"$@\" 0>/dev/null");
        psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "resnet18.dll"));
        foreach (var a in new[] { "--weights", _weights.Path, "-", Image("gray8.png") }) psi.ArgumentList.Add(a);
        psi.Environment["XDG_CACHE_HOME"] = Path.Combine(_home, "cache");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string err = await p.StandardError.ReadToEndAsync();
        await Fixtures.EndsWithin(p.WaitForExitAsync(), 120, "the command");
        Assert.Equal(1, p.ExitCode);
        Assert.Equal("resnet18: -: standard input is closed (or open only for writing)", Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Contains("gray8.png", await stdout); // the other input still ran
    }

    [Fact]
    public void TableShowsRankPercentLabelIndex()
    {
        var (exit, @out, _) = Run("--weights", _weights.Path, Image("gray8.png"));
        Assert.Equal(0, exit);
        var rows = @out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(6, rows.Length);
        Assert.Matches(@"^\s+1\s+\d+\.\d\d%\s+.+ \(\d+\)$", rows[1]);
    }

    [Fact]
    public void WeightsAreDownloadedIntoTheTorchHubCacheOnce()
    {
        var bytes = File.ReadAllBytes(_weights.Path);
        string prefix = Convert.ToHexStringLower(SHA256.HashData(bytes))[..8];
        int requests = 0;
        using var server = new LoopbackServer(ctx =>
        {
            Interlocked.Increment(ref requests);
            ctx.Response.ContentLength64 = bytes.Length;
            ctx.Response.OutputStream.Write(bytes);
            ctx.Response.Close();
        });
        var env = new Dictionary<string, string> { ["RESNET18_WEIGHTS_URL"] = server.Url($"resnet18-{prefix}.pth") };
        var (exit, _, err) = Run(env, Image("gray8.png"));
        Assert.True(exit == 0, err);
        string cached = Path.Combine(_home, "torch", "hub", "checkpoints", $"resnet18-{prefix}.pth");
        Assert.Equal(bytes, File.ReadAllBytes(cached));
        Assert.Contains("Downloading", err);
        Assert.Equal(0, Run(env, Image("gray8.png")).Exit);
        Assert.Equal(1, requests);
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(cached)!));
    }

    [Fact]
    public void BadDownloadLeavesTheCacheEmpty()
    {
        using var server = new LoopbackServer(ctx => { ctx.Response.StatusCode = 404; ctx.Response.Close(); });
        var (exit, _, err) = Run(new Dictionary<string, string> { ["RESNET18_WEIGHTS_URL"] = server.Url("resnet18-f37072fd.pth") }, Image("gray8.png"));
        Assert.Equal(1, exit);
        Assert.Contains("HTTP 404", err);
        string dir = Path.Combine(_home, "torch", "hub", "checkpoints");
        Assert.True(!Directory.Exists(dir) || Directory.GetFiles(dir).Length == 0);
    }

    [Fact]
    public void MaliciousWeightsAreRefusedWithoutRunningAnything()
    {
        string marker = Path.Combine(_home, "pwned");
        var pkl = new List<byte> { 0x80, 2, (byte)'c' };
        pkl.AddRange("os\nsystem\n"u8.ToArray());
        var arg = System.Text.Encoding.ASCII.GetBytes($"touch {marker}");
        pkl.Add(0x8c);
        pkl.Add((byte)arg.Length);
        pkl.AddRange(arg);
        pkl.AddRange(new byte[] { 0x85, (byte)'R', (byte)'.' });
        string evil = Path.Combine(_home, "evil.pth");
        File.WriteAllBytes(evil, WeightsTests.Zip(("archive/data.pkl", pkl.ToArray())).ToArray());
        var (exit, @out, err) = Run("--weights", evil, Image("gray8.png"));
        Assert.Equal(1, exit);
        Assert.Equal("", @out);
        Assert.Equal($"resnet18: {evil}: refuses to load global 'os.system': only torch.save's tensor and OrderedDict globals are allowed (nothing was executed)", err.Trim());
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void NothingToClassifyIsSaidWithoutFetchingTheWeights()
    {
        // No weights here, and a download that could only fail: a mistyped file and an empty directory are
        // reported as they would be after loading, and nothing is downloaded.
        var env = new Dictionary<string, string> { ["RESNET18_WEIGHTS_URL"] = "http://127.0.0.1:9/w.pth" };
        string missing = Path.Combine(_home, "dgo.jpg");
        string empty = Directory.CreateDirectory(Path.Combine(_home, "none")).FullName;
        var (exit, @out, err) = Run(env, missing, empty);
        Assert.Equal(1, exit);
        Assert.Equal("", @out);
        Assert.Equal(new[] { $"resnet18: {empty}: no image files (PNG, JPEG, BMP, GIF, TIFF, WebP, PPM, PGM, PBM) in this directory", $"resnet18: {missing}: no such file" },
            err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        (exit, @out, err) = Run(env, "--json", missing);
        Assert.Equal(1, exit);
        Assert.Equal("", err);
        Assert.Equal($"{missing}: no such file", JsonDocument.Parse(@out).RootElement.GetProperty("error").GetString());
        Assert.False(Directory.Exists(Path.Combine(_home, "torch")));
        // With one input that exists, the weights are fetched as before (and here cannot be).
        (exit, _, err) = Run(env, missing, Image("gray8.png"));
        Assert.Equal(1, exit);
        Assert.Contains("127.0.0.1:9", err);
    }

    [Fact]
    public void ADirectoryWithoutImagesIsAFailedInput()
    {
        string empty = Directory.CreateDirectory(Path.Combine(_home, "no-images")).FullName;
        File.WriteAllText(Path.Combine(empty, "notes.txt"), "not an image");
        var (exit, @out, err) = Run("--weights", _weights.Path, empty);
        Assert.Equal(1, exit);
        Assert.Equal("", @out);
        Assert.Equal($"resnet18: {empty}: no image files (PNG, JPEG, BMP, GIF, TIFF, WebP, PPM, PGM, PBM) in this directory", err.Trim());
        // Beside a good input: that one is still classified, and the JSON form reports the directory as an error line.
        (exit, @out, err) = Run("--weights", _weights.Path, "--json", empty, Image("gray8.png"));
        Assert.Equal(1, exit);
        Assert.Equal("", err);
        var lines = @out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(2, lines.Length);
        Assert.Equal(empty, lines[0].GetProperty("file").GetString());
        Assert.Contains("no image files", lines[0].GetProperty("error").GetString());
        Assert.Equal(5, lines[1].GetProperty("top").GetArrayLength());
    }

    [Fact]
    public void ADirectorysNamedPipeIsSkippedAndItsBrokenLinkNamed()
    {
        // A named pipe in a listing was opened as an image and waited for a writer forever; a link whose target is gone
        // was "no such file", of a name the listing shows.
        string dir = Directory.CreateDirectory(Path.Combine(_home, "photos")).FullName;
        File.Copy(Image("gray8.png"), Path.Combine(dir, "a.png"));
        using (var mkfifo = Process.Start("mkfifo", [Path.Combine(dir, "b.jpg")])) mkfifo.WaitForExit();
        File.CreateSymbolicLink(Path.Combine(dir, "c.jpg"), "gone.jpg");
        var (exit, @out, err) = Run("--weights", _weights.Path, "--json", dir);
        Assert.Equal(1, exit);
        Assert.Equal("", err);
        var lines = @out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal([Path.Combine(dir, "a.png"), Path.Combine(dir, "c.jpg")], lines.Select(l => l.GetProperty("file").GetString()));
        Assert.Equal(5, lines[0].GetProperty("top").GetArrayLength());
        Assert.Equal($"{dir}/c.jpg: is a broken symbolic link to 'gone.jpg'", lines[1].GetProperty("error").GetString());
        // Alone, the broken link is nothing to classify: said without fetching weights (there are none here).
        (exit, @out, err) = Run(new Dictionary<string, string> { ["RESNET18_OFFLINE"] = "1" }, Path.Combine(dir, "c.jpg"));
        Assert.Equal((1, "", $"resnet18: {dir}/c.jpg: is a broken symbolic link to 'gone.jpg'"), (exit, @out, err.Trim()));
    }

    [Theory]
    [InlineData("a.png", true)]
    [InlineData("a.JPG", true)]
    [InlineData("a.jpeg", true)]
    [InlineData("a.jpe", true)]
    [InlineData("a.jfif", true)] // browsers save JPEGs so; it was skipped
    [InlineData("a.webp", true)]
    [InlineData("a.WEBP", true)]
    [InlineData("a.npy", false)]
    [InlineData("png", false)]
    public void ADirectorysImagesAreKnownByTheirNames(string name, bool image) => Assert.Equal(image, Program.IsImageName(name));

    [Fact]
    public void ADirectoryThatCannotBeListedIsOneFailedInput()
    {
        // It ended the whole run with "resnet18: UnauthorizedAccessException: …" (seen as another user; as root, which
        // CI is, no directory refuses a listing, hence the listing passed in here).
        string locked = Directory.CreateDirectory(Path.Combine(_home, "locked")).FullName;
        string open = Fixtures.Dir("images");
        var files = Program.ExpandInputs([locked, open, "x.png"], out var failed,
            d => d == locked ? throw new UnauthorizedAccessException($"Access to the path '{d}' is denied.") : Directory.EnumerateFiles(d));
        Assert.Equal([(locked, "permission denied")], failed);
        Assert.Equal("x.png", files[^1]);
        Assert.All(files[..^1], f => Assert.StartsWith(open + "/", f));
        Assert.NotEmpty(files[..^1]);
    }

    [Fact]
    public void AFileNamedWithANewlineIsStillOneLine()
    {
        // Errors are one line, and the table has one line per file name: control characters show as '?', as `ls`
        // shows them; the JSON lines keep the name as it is.
        string named = Path.Combine(_home, "two\nlines.png");
        File.Copy(Image("gray8.png"), named);
        string missing = Path.Combine(_home, "tab\there.jpg");
        var (exit, @out, err) = Run("--weights", _weights.Path, "--top", "1", named, missing);
        Assert.Equal(1, exit);
        Assert.Equal($"resnet18: {_home}/tab?here.jpg: no such file", err.TrimEnd('\n'));
        Assert.StartsWith($"{_home}/two?lines.png\n   1 ", @out);
        Assert.Equal(2, @out.Count(c => c == '\n'));
        (_, @out, _) = Run("--weights", _weights.Path, "--json", named, missing);
        var lines = @out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal([named, missing], lines.Select(l => l.GetProperty("file").GetString()));
    }

    [Fact]
    public void BadFilesMixedWithGoodOnesEachGetOneLine()
    {
        string empty = Path.Combine(_home, "empty.png");
        File.WriteAllBytes(empty, []);
        string bomb = Path.Combine(_home, "bomb.png");
        File.WriteAllBytes(bomb, BadImageTests.Png(100_000, 100_000, 8, 2, BadImageTests.Deflate(new byte[10])));
        string npy = Path.Combine(_home, "wrong.npy");
        ResNet.Runtime.IO.Npy.Write(npy, [3, 2, 2], new float[12]);
        var (exit, @out, err) = Run("--weights", _weights.Path, empty, Image("gray8.png"), bomb, npy, Fixtures.Dir("images") + "/nope.png");
        Assert.Equal(1, exit);
        var errors = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, errors.Length);
        Assert.Equal($"resnet18: {empty}: empty file", errors[0]);
        Assert.StartsWith($"resnet18: {bomb}: 100000×100000 = 10000000000 pixels exceeds the limit", errors[1]);
        Assert.Equal($"resnet18: {npy}: tensor of shape [3, 2, 2]; expected [3, 224, 224] or [1, 3, 224, 224]", errors[2]);
        Assert.Equal($"resnet18: {Fixtures.Dir("images")}/nope.png: no such file", errors[3]);
        Assert.StartsWith(Image("gray8.png"), @out);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void VersionSaysIsaAndWeights()
    {
        var (exit, @out, _) = Run("--version");
        Assert.Equal(0, exit);
        Assert.Contains("instruction set: ", @out);
        Assert.Contains("weights: ", @out);
    }

    [Theory]
    [InlineData("generated")]
    [InlineData("generic")]
    public void BenchPrintsOneJsonObject(string kernels)
    {
        var (exit, @out, err) = Run("bench", "--threads", "1", "--iterations", "3", "--kernels", kernels, "--json");
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(@out);
        var r = json.RootElement;
        Assert.Equal(1, r.GetProperty("threads").GetInt32());
        Assert.Equal(1, r.GetProperty("batch").GetInt32());
        Assert.Equal(kernels, r.GetProperty("kernels").GetString());
        Assert.False(r.GetProperty("exact").GetBoolean());
        Assert.Equal(NetworkOptions.Best.ToString().ToLowerInvariant(), r.GetProperty("isa").GetString());
        double median = r.GetProperty("median_ms").GetDouble(), min = r.GetProperty("min_ms").GetDouble();
        Assert.InRange(min, 0.01, median);
        // Printed to a few digits: images/s and GFLOP/s follow from the median (3.63 GFLOP per image).
        Assert.InRange(r.GetProperty("images_per_s").GetDouble() * median / 1000, 0.99, 1.01);
        Assert.InRange(r.GetProperty("gflops").GetDouble() * median / (ResNet18.Network.Flops / 1e6), 0.99, 1.01);
    }

    [Fact]
    public void BenchLayersTimesEveryLayer()
    {
        var (exit, @out, err) = Run("bench", "--threads", "1", "--iterations", "1", "--kernels", "generic", "--layers");
        Assert.True(exit == 0, err);
        foreach (var layer in ResNet18.Network.Layers)
            Assert.Matches($@"(?m)^{System.Text.RegularExpressions.Regex.Escape(layer.Name)} +[0-9.]+ +[0-9.]+ +[0-9]+%$", @out);
        Assert.Contains("generic (", @out);
    }

    [Fact]
    public void TimingCountsFromTheStartTheConstructorNoted()
    {
        Assert.Equal("", Timing.SinceStart()); // under `dotnet` no constructor of ours runs
        Timing.MainEntered();
        long started = Timing.MonotonicNs() - 5_000_000;
        Environment.SetEnvironmentVariable("RESNET18_STARTED_NS", started.ToString(System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            Assert.Matches(@"^; since the process's first constructor: Main at (4\.9|5\.0) ms, this line at [5-9]\.\d ms$", Timing.SinceStart());
        }
        finally
        {
            Environment.SetEnvironmentVariable("RESNET18_STARTED_NS", null);
        }
    }

    [Fact]
    public void BenchHelpDescribesEveryOptionOfItsUsage()
    {
        var (exit, @out, _) = Run("bench", "--help");
        Assert.Equal(0, exit);
        var options = Regex.Matches(BenchCommand.Usage, @"\[(--[a-z]+)").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(9, options.Count);
        foreach (var option in options) Assert.Matches($"(?m)^ +{option} ", @out);
    }

    [Fact]
    public async Task OutOfMemoryIsOneLineNotAStackTrace()
    {
        // 4 GB of address space runs batch 1 under the JIT (2.5 GB did here) but not batch 256 (6 GB did not).
        async Task<(int Exit, string Out, string Err)> Limited(int batch)
        {
            var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add($"ulimit -v 4000000 && exec dotnet \"$0\" bench --batch {batch} --iterations 1 --threads 1");
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "resnet18.dll"));
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            string err = await p.StandardError.ReadToEndAsync();
            await Fixtures.EndsWithin(p.WaitForExitAsync(), 120, "the command");
            return (p.ExitCode, await stdout, err.ReplaceLineEndings("\n"));
        }
        var one = await Limited(1);
        Assert.True(one.Exit == 0, $"batch 1 under the limit: {one.Err}");
        var (exit, @out, err) = await Limited(256);
        Assert.Equal("", @out);
        Assert.Equal(1, exit);
        Assert.Matches(@"^resnet18: out of memory: cannot map \d+ bytes\n$", err);
    }

    [Theory]
    [InlineData("--kernels fast", "--kernels needs generated, generic or reference, not 'fast'")]
    [InlineData("--batch 0", "--batch needs an integer from 1 to 256, not '0'")]
    [InlineData("--threads 1000", "--threads needs an integer from 1 to 256, not '1000'")]
    [InlineData("--iterations", "--iterations needs an integer from 1 to 100000")]
    [InlineData("--iterations 2147483647", "--iterations needs an integer from 1 to 100000, not '2147483647'")]
    [InlineData("--isa avx9", "--isa needs avx512, avx2 or portable, not 'avx9'")]
    [InlineData("--batches 2", "unknown option '--batches'")]
    [InlineData("--weights ''", "--weights needs a file, not ''")] // an empty name: a stack trace until session 34
    public void BenchSaysWhyAnOptionIsRefused(string args, string reason)
    {
        var (exit, _, err) = Run(["bench", .. args.Split(' ').Select(a => a == "''" ? "" : a)]);
        Assert.Equal(2, exit);
        Assert.StartsWith($"resnet18 bench: {reason}\n{BenchCommand.Usage}\n", err.ReplaceLineEndings("\n"));
    }
}
