using System.Security.Cryptography;
using System.Text.Json;
using ResNet.Runtime;
using ResNet.Runtime.Images;
using Xunit;
using Xunit.Abstractions;

namespace ResNet.Tests;

/// <summary>
/// A collection of its own, run alone: the lent-thread tests lend this test's thread to <see cref="ImageParallel"/>,
/// which is process-wide, and an image another test class decodes meanwhile would publish its row loop in the one
/// slot a lent thread watches — hiding the loop whose help a test waits for (it failed so once in CI, on a slow host).
/// </summary>
[CollectionDefinition(nameof(ImageTests), DisableParallelization = true)]
public sealed class ImageTestsCollection;

/// <summary>Decoding and preprocessing against PIL + torchvision (fixtures from tools/make_image_fixtures.py).</summary>
[Collection(nameof(ImageTests))]
public class ImageTests(ITestOutputHelper output)
{
    private static readonly string Dir = Fixtures.Dir("images");

    public static TheoryData<string> Files(string suffix)
    {
        var data = new TheoryData<string>();
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "images.json")));
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            string f = e.GetProperty("file").GetString()!;
            if (f.EndsWith(suffix)) data.Add(f);
        }
        return data;
    }

    /// <summary>Asserts that <paramref name="bytes"/> hash to the fixture's <paramref name="key"/> (rgb_sha256, crop_sha256, ...).</summary>
    private static void AssertSha(JsonElement entry, string key, byte[] bytes) =>
        Assert.Equal(entry.GetProperty(key).GetString(), Convert.ToHexStringLower(SHA256.HashData(bytes)));

    private static byte[] Bytes(float[] tensor)
    {
        var bytes = new byte[tensor.Length * 4];
        Buffer.BlockCopy(tensor, 0, bytes, 0, bytes.Length);
        return bytes;
    }

    private static JsonElement Entry(string dir, string file)
    {
        var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "images.json")));
        return doc.RootElement.EnumerateArray().Single(e => e.GetProperty("file").GetString() == file);
    }

    [Theory]
    [MemberData(nameof(Files), ".png")]
    [MemberData(nameof(Files), ".jpg")]
    [MemberData(nameof(Files), ".bmp")]
    [MemberData(nameof(Files), ".gif")]
    [MemberData(nameof(Files), ".ppm")]
    [MemberData(nameof(Files), ".pgm")]
    [MemberData(nameof(Files), ".pbm")]
    [MemberData(nameof(Files), ".tif")]
    [MemberData(nameof(Files), ".tiff")]
    [MemberData(nameof(Files), ".webp")]
    public void DecodingAndPreprocessingAreBitExactWithPilAndTorchvision(string file)
    {
        var entry = Entry(Dir, file);
        var image = ImageDecoder.Load(Path.Combine(Dir, file));
        Assert.Equal(entry.GetProperty("size")[0].GetInt32(), image.Width);
        Assert.Equal(entry.GetProperty("size")[1].GetInt32(), image.Height);
        AssertSha(entry, "rgb_sha256", image.Pixels);
        var crop = ImageNetTransform.ResizeAndCrop(image);
        AssertSha(entry, "crop_sha256", crop.Pixels);
        AssertSha(entry, "tensor_sha256", Bytes(ImageNetTransform.ToTensor(crop)));
    }

    [Theory]
    [MemberData(nameof(Files), ".jpg")]
    public void AJpegResizedBeforeItsPixelsAreReadGivesTheSameBytes(string file)
    {
        // A decoded JPEG's rows are color-converted when first needed: by the horizontal resize, a few rows at a
        // time, unless its pixels are read first (the test above). Both must be PIL's bytes.
        var entry = Entry(Dir, file);
        var image = ImageDecoder.Load(Path.Combine(Dir, file));
        Assert.NotNull(image.PendingRows);
        var crop = ImageNetTransform.ResizeAndCrop(image);
        AssertSha(entry, "crop_sha256", crop.Pixels);
        AssertSha(entry, "tensor_sha256", Bytes(ImageNetTransform.ToTensor(crop)));
        AssertSha(entry, "rgb_sha256", image.Pixels);
        Assert.Null(image.PendingRows);
    }

    [Theory]
    [InlineData("q80_422_progressive.jpg")]
    [InlineData("mixed_2x2_1x1_2x1.jpg")]
    [InlineData("cmyk.jpg")]
    [InlineData("restart_3mcu.jpg")]
    [InlineData("separate_scans.jpg")]
    [InlineData("gray.jpg")]
    [InlineData("tiny_420.jpg")]
    [InlineData("rgb8_257x300.png")]
    [InlineData("tiff_rgb_strips.tif")]
    [InlineData("tiff_rgb_tiles_lzw_predictor.tif")]
    [InlineData("tiff_rgb_planar_lzw.tif")]
    [InlineData("tiff_bigtiff.tif")]
    [InlineData("tiff_palette4.tif")]
    [InlineData("tiff_cmyk_lzw_predictor.tif")]
    [InlineData("tiffcp_jpeg_ycbcr_strips.tif")]
    [InlineData("tiffcp_jpeg_ycbcr_tiles.tif")]
    [InlineData("webp_q75_61x45.webp")]
    [InlineData("webp_17x15.webp")]
    [InlineData("webp_1x17.webp")]
    [InlineData("webp_animated_offset_frame.webp")]
    public void RowsSplitAcrossThreadsGiveTheSameBytes(string file)
    {
        // Real photos are large enough to split rows (and to run a sequential JPEG's IDCT on another core); the
        // fixtures are not, so the threshold is lowered here. Both orders: resized first (a JPEG's rows converted
        // as the resize reads them), and pixels first.
        var entry = Entry(Dir, file);
        using var split = Fixtures.SplitEveryImage();
        var resizedFirst = ImageNetTransform.ResizeAndCrop(ImageDecoder.Load(Path.Combine(Dir, file)));
        AssertSha(entry, "crop_sha256", resizedFirst.Pixels);
        var image = ImageDecoder.Load(Path.Combine(Dir, file));
        AssertSha(entry, "rgb_sha256", image.Pixels);
        var crop = ImageNetTransform.ResizeAndCrop(image);
        AssertSha(entry, "crop_sha256", crop.Pixels);
    }

    [Theory]
    [InlineData("q80_422_progressive.jpg")]
    [InlineData("mixed_2x2_1x1_2x1.jpg")]
    [InlineData("h1v2_440.jpg")]
    [InlineData("gray.jpg")]
    [InlineData("rgb8_257x300.png")]
    public async Task RowsSharedWithALentThreadGiveTheSameBytes(string file)
    {
        // As the CLI does with one image: its main thread, done loading, takes chunks of the decoding's row loops.
        var entry = Entry(Dir, file);
        var decoding = Task.Run(() =>
        {
            SpinWait.SpinUntil(() => ImageParallel.Lending, TimeSpan.FromSeconds(10));
            var image = ImageDecoder.Load(Path.Combine(Dir, file));
            return (image, ImageNetTransform.ResizeAndCrop(image));
        });
        ImageNetTransform.LendThreadUntil(decoding);
        var (image, crop) = await decoding;
        AssertSha(entry, "rgb_sha256", image.Pixels);
        AssertSha(entry, "crop_sha256", crop.Pixels);
    }

    [Fact]
    public void AnImageIsSplitAcrossCoresOnlyWhileACoreIsNotDecodingAnImageOfItsOwn()
    {
        // This collection runs alone, so no other test's decoding counts here.
        long large = ImageParallel.MinWork * 100;
        Assert.Equal(Environment.ProcessorCount > 1, ImageParallel.Worthwhile(large));
        var scopes = Enumerable.Range(0, Environment.ProcessorCount).Select(_ => ImageParallel.Decoding()).ToList();
        Assert.False(ImageParallel.Worthwhile(large));
        scopes[^1].Dispose();
        Assert.Equal(Environment.ProcessorCount > 1, ImageParallel.Worthwhile(large));
        foreach (var scope in scopes[..^1]) scope.Dispose();
        using (Fixtures.SplitEveryImage())
        using (ImageParallel.Decoding())
        using (ImageParallel.Decoding())
            Assert.Equal(Environment.ProcessorCount > 1, ImageParallel.Worthwhile(1)); // forced, for the split paths' tests
    }

    [Fact]
    public unsafe void RgbPaethUnfilteringIsTheSpecificationsForEveryRowLength()
    {
        // The committed PNG fixtures use filter 0 (CI's photos saved by PIL use them all); this checks the vector
        // Paeth against PNG §9.4 as written, for rows short enough to take only the scalar tail and long ones.
        var rng = new Random(4);
        for (int width = 1; width <= 40; width++)
        {
            int n = 3 * width;
            var above = new byte[n];
            var line = new byte[n + 8]; // what follows a row in the buffer (the next row) must be left alone
            rng.NextBytes(above);
            rng.NextBytes(line);
            if (width % 3 == 0) Array.Fill(above, (byte)0x80, 0, n / 2); // ties between the predictors
            var expected = (byte[])line.Clone();
            for (int i = 0; i < n; i++)
            {
                int a = i >= 3 ? expected[i - 3] : 0, b = above[i], c = i >= 3 ? above[i - 3] : 0;
                int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                expected[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
            }
            for (int i = 0; i < 3; i++) line[i] += above[i]; // the caller's first pixel
            fixed (byte* l = line)
            fixed (byte* u = above)
                PngDecoder.Paeth3(l, u, n);
            Assert.Equal(expected, line);
        }
    }

    [Fact]
    public async Task ALentThreadTakesChunksOfARowLoopAndItsErrorsReachTheOwner()
    {
        // The owner's first chunk waits until another thread has run one, so the test passes only if the lent
        // thread takes part; a chunk that throws does so on the owner's thread once all chunks are done.
        var ran = new int[64];
        int owner = 0, others = 0;
        var loop = Task.Run(() =>
        {
            owner = Environment.CurrentManagedThreadId;
            SpinWait.SpinUntil(() => ImageParallel.Lending, TimeSpan.FromSeconds(10));
            ImageParallel.ForRows(64, 1, (from, to) =>
            {
                if (Environment.CurrentManagedThreadId != owner) Interlocked.Increment(ref others);
                else SpinWait.SpinUntil(() => Volatile.Read(ref others) > 0, TimeSpan.FromSeconds(10));
                for (int r = from; r < to; r++) Interlocked.Increment(ref ran[r]);
            });
            ImageParallel.ForRows(64, 1, (from, to) => throw new InvalidDataException($"rows {from}..{to}"));
        });
        ImageNetTransform.LendThreadUntil(loop);
        await Assert.ThrowsAsync<InvalidDataException>(() => loop);
        Assert.True(others > 0);
        Assert.All(ran, count => Assert.Equal(1, count));
    }

    /// <summary>FromFile with this test's thread lent from before the decoding starts, as the CLI's main thread is.</summary>
    private static async Task<(float[] Tensor, bool Behind)> FromFileWithALentThread(string path, bool waitForTheLender = true, ITensorRows? rows = null)
    {
        int before = ImageParallel.WholeRuns;
        ImageParallel.OffersWaitForALender = waitForTheLender;
        try
        {
            var decoding = Task.Run(() =>
            {
                SpinWait.SpinUntil(() => ImageParallel.Lending, TimeSpan.FromSeconds(10));
                return ImageNetTransform.FromFile(path, rows: rows);
            });
            ImageNetTransform.LendThreadUntil(decoding);
            var tensor = await decoding;
            return (tensor, ImageParallel.WholeRuns > before);
        }
        finally
        {
            ImageParallel.OffersWaitForALender = false;
        }
    }

    [Theory]
    [InlineData("baseline.jpg", true)]
    [InlineData("gray.jpg", true)]
    [InlineData("cmyk.jpg", true)]
    [InlineData("tiny_420.jpg", true)]
    [InlineData("h1v2_440.jpg", true)]
    [InlineData("h4v1_411.jpg", true)]
    [InlineData("mixed_2x2_1x1_2x1.jpg", true)]
    [InlineData("restart_3mcu.jpg", true)]
    [InlineData("separate_scans.jpg", false)]
    [InlineData("progressive.jpg", false)]
    [InlineData("rgb8_61x45.png", false)]
    public async Task AJpegResizedBehindItsScanGivesTorchvisionsTensor(string file, bool behind)
    {
        // The lent thread takes the resize when the scan starts and converts each row once the scan says it is
        // final: a row read too early would change the bytes. Only a JPEG of one sequential scan is read so.
        var entry = Entry(Dir, file);
        var (tensor, taken) = await FromFileWithALentThread(Path.Combine(Dir, file));
        AssertSha(entry, "tensor_sha256", Bytes(tensor));
        Assert.Equal(behind, taken);
    }

    [Theory]
    [InlineData("baseline.jpg")]
    [InlineData("progressive.jpg")]
    [InlineData("rgb8_interlaced.png")]
    public async Task BytesInMemoryGiveTheTensorTheirFileGives(string file)
    {
        // What the command does with a pipe: the bytes, not the file, with the thread lent or not.
        var entry = Entry(Dir, file);
        var bytes = File.ReadAllBytes(Path.Combine(Dir, file));
        AssertSha(entry, "tensor_sha256", Bytes(ImageNetTransform.FromBytes(bytes, file)));
        var decoding = Task.Run(() =>
        {
            SpinWait.SpinUntil(() => ImageParallel.Lending, TimeSpan.FromSeconds(10));
            return ImageNetTransform.FromBytes(bytes, file);
        });
        ImageNetTransform.LendThreadUntil(decoding);
        AssertSha(entry, "tensor_sha256", Bytes(await decoding));
        var e = Assert.Throws<InputException>(() => ImageNetTransform.FromBytes(bytes[..(bytes.Length / 2)], "pipe"));
        Assert.StartsWith("pipe: ", e.Message);
    }

    [Fact]
    public async Task PhotosResizedBehindTheirScanGiveTheSameTensor()
    {
        // Real photos (Debian's darknet package, which CI installs): hundreds of rows behind a scan of many MCU rows.
        // Large ones decode their rows through the IDCT pipeline instead and are resized after the scan. FromFile
        // decodes only the crop's source window: the blocks it skips are poisoned, in a different color each round.
        var photos = Directory.Exists("/usr/share/darknet/data") ? Directory.GetFiles("/usr/share/darknet/data", "*.jpg") : [];
        int behind = 0;
        long skipped = 0;
        foreach (var photo in photos)
        {
            var expected = ImageNetTransform.ToTensor(ImageNetTransform.ResizeAndCrop(ImageDecoder.Load(photo)));
            for (int round = 0; round < 3; round++)
            {
                var (tensor, taken) = await Poisoned(round * 127, () => FromFileWithALentThread(photo, waitForTheLender: round > 0), out long blocks);
                Assert.Equal(expected, tensor);
                if (taken) behind++;
                skipped += blocks;
            }
        }
        Assert.True(photos.Length == 0 || behind > 0);
        Assert.True(photos.Length == 0 || skipped > 0);
    }

    [Fact]
    public void TensorsMadeOneAfterAnotherReuseTheirBuffersAndStayExact()
    {
        // FromFile keeps a JPEG's planes and a PNG's pixels for the next image (ScratchBuffers): each tensor must still
        // be exactly the one made from the image decoded on its own, whatever sizes, samplings, color types and
        // interlacing came before (both orders).
        var jpegs = Directory.GetFiles(Dir, "*.jpg").Concat(Directory.GetFiles(Dir, "*.png")).Order(StringComparer.Ordinal).ToArray();
        var expected = jpegs.ToDictionary(f => f, f => ImageNetTransform.ToTensor(ImageNetTransform.ResizeAndCrop(ImageDecoder.Load(f))));
        long before = Interlocked.Read(ref ScratchBuffers.Reused);
        foreach (var file in jpegs.Concat(jpegs.Reverse()))
            Assert.True(expected[file].AsSpan().SequenceEqual(ImageNetTransform.FromFile(file)), file);
        Assert.True(Interlocked.Read(ref ScratchBuffers.Reused) - before >= jpegs.Length, "planes were not reused");
    }

    [Fact]
    public void StreamedPngsReuseTheirScanlinesAndStayExact()
    {
        // A streamed PNG's scanline buffer is kept for the next one of its size (ScratchBuffers), unfiltered in place
        // again: every tensor must still be the one the image gives decoded on its own.
        var pngs = new[] { LargePng(16, 2, 3, seed: 4), LargePng(8, 2, 3, seed: 1), LargePng(8, 6, 4, seed: 2), LargePng(8, 2, 3, seed: 3) };
        var expected = pngs.Select(b => ImageNetTransform.ToTensor(ImageNetTransform.ResizeAndCrop(ImageDecoder.Decode(b, "x.png")))).ToArray();
        long before = Interlocked.Read(ref ScratchBuffers.Reused);
        for (int round = 0; round < 2; round++)
            for (int i = 0; i < pngs.Length; i++)
                Assert.True(expected[i].AsSpan().SequenceEqual(ImageNetTransform.FromBytes(pngs[i], "x.png")), $"png {i}, round {round}");
        Assert.True(Interlocked.Read(ref ScratchBuffers.Reused) - before >= 4, "scanlines were not reused");

        // With the one offer slot taken (as in a batch, whose images decode two at a time) they are not streamed:
        // inflated beside the unfiltering, into kept scanlines and pixels.
        var other = ImageParallel.Offer(() => 0)!;
        try
        {
            before = Interlocked.Read(ref ScratchBuffers.Reused);
            for (int round = 0; round < 2; round++)
                for (int i = 0; i < pngs.Length; i++)
                    Assert.True(expected[i].AsSpan().SequenceEqual(ImageNetTransform.FromBytes(pngs[i], "x.png")), $"png {i}, round {round}, not streamed");
            Assert.True(Interlocked.Read(ref ScratchBuffers.Reused) - before >= 8, "scanlines and pixels were not reused");
        }
        finally
        {
            Assert.True(ImageParallel.Withdraw(other));
        }
    }

    [Fact]
    public void AnImageDecodedForItsPixelsKeepsPlanesOfItsOwn()
    {
        // ImageDecoder.Load's image converts its planes to RGB only when read: tensors made meanwhile must not use them.
        var jpegs = Directory.GetFiles(Dir, "*.jpg").Order(StringComparer.Ordinal).ToArray();
        var images = jpegs.Select(f => ImageDecoder.Load(f)).ToArray();
        foreach (var file in jpegs) ImageNetTransform.FromFile(file);
        for (int i = 0; i < jpegs.Length; i++)
            Assert.True(ImageDecoder.Load(jpegs[i]).Pixels.AsSpan().SequenceEqual(images[i].Pixels), jpegs[i]);
    }

    /// <summary>Runs <paramref name="decode"/> with the JPEG blocks a pixel window leaves out filled with <paramref name="poison"/>.</summary>
    private static T Poisoned<T>(int poison, Func<T> decode, out long skipped)
    {
        long before = Interlocked.Read(ref JpegDecoder.SkippedBlocks);
        JpegDecoder.PoisonSkipped = poison;
        try
        {
            var result = decode();
            if (result is Task task) task.GetAwaiter().GetResult(); // the decoding runs inside the task
            return result;
        }
        finally
        {
            JpegDecoder.PoisonSkipped = -1;
            skipped = Interlocked.Read(ref JpegDecoder.SkippedBlocks) - before;
        }
    }

    [Theory]
    [MemberData(nameof(Files), ".jpg")]
    public void AJpegDecodedForTheTransformSkipsOnlyWhatTheCropDoesNotRead(string file)
    {
        // FromFile has the decoder transform and convert only the blocks and columns the crop's resize reads. The
        // blocks it skips are filled with black, then with white: a window one sample too narrow changes the tensor.
        var entry = Entry(Dir, file);
        long skipped = 0;
        foreach (int poison in new[] { 0, 255 })
        {
            AssertSha(entry, "tensor_sha256", Bytes(Poisoned(poison, () => ImageNetTransform.FromFile(Path.Combine(Dir, file)), out long blocks)));
            skipped += blocks;
        }
        // The window cuts a 120×90 photo's 4:2:0 blocks on every side (its crop reads columns 20–99, rows 5–84).
        if (file == "baseline.jpg") Assert.True(skipped > 0);
    }

    [Theory]
    [MemberData(nameof(Files), ".tif")]
    [MemberData(nameof(Files), ".tiff")]
    public void ATiffDecodedForTheTransformConvertsOnlyWhatTheCropReads(string file)
    {
        // Every chunk is still decompressed (damage anywhere is refused, as PIL refuses it); only the conversion to
        // RGB keeps to the crop's source window. The rest is black, then white: a window too narrow changes the tensor.
        var entry = Entry(Dir, file);
        foreach (int poison in new[] { 0, 255 })
            AssertSha(entry, "tensor_sha256", Bytes(Poisoned(poison, () => ImageNetTransform.FromFile(Path.Combine(Dir, file)), out _)));
    }

    [Theory]
    [InlineData(120, 90, 20, 100, 5, 85)]
    [InlineData(768, 576, 130, 636, 35, 541)]
    [InlineData(4000, 3000, 674, 3314, 182, 2818)]
    [InlineData(256, 300, 16, 240, 38, 262)] // no horizontal resize: the crop's columns themselves
    [InlineData(3000, 17, 1492, 1508, 0, 17)]
    public void TheCropsSourceWindowIsThePixelsPilsResizeReadsForIt(int width, int height, int x0, int x1, int y0, int y1)
    {
        // Expected values from Pillow's precompute_coeffs bounds, recomputed in Python: the first output pixel's
        // first tap and the last one's end, for the crop's 224 columns and rows of the resized image.
        Assert.Equal(new PixelWindow(x0, x1, y0, y1), ImageNetTransform.SourceWindow(width, height));
    }

    /// <summary>A large PNG of random filtered scanlines (every filter type), big enough to be streamed.</summary>
    private static byte[] LargePng(byte depth, byte color, int channels, int seed, Action<byte[], int>? spoil = null)
    {
        const int Width = 700, Height = 500;
        int stride = Width * channels * depth / 8;
        var raw = new byte[Height * (stride + 1)];
        new Random(seed).NextBytes(raw);
        for (int y = 0; y < Height; y++) raw[y * (stride + 1)] = (byte)(y % 5);
        spoil?.Invoke(raw, stride);
        return BadImageTests.Png(Width, Height, depth, color, BadImageTests.Deflate(raw));
    }

    /// <summary>
    /// Whether a large PNG is inflated on one thread while another unfilters it: not on a one-processor machine,
    /// where the two would only take turns (a JPEG's scan is read behind it either way).
    /// </summary>
    private static bool PngsStream => Environment.ProcessorCount > 1;

    [Theory]
    [InlineData((byte)8, (byte)2, 3)]
    [InlineData((byte)8, (byte)6, 4)]
    [InlineData((byte)16, (byte)2, 3)]
    public async Task APngUnfilteredBehindItsInflatingGivesTheSameTensor(byte depth, byte color, int channels)
    {
        // Read by the lent thread while this one inflates, or (no lender) by a thread of its own from half-way: the
        // rows are unfiltered in order by whoever reads them first, so a row read too early would change the bytes.
        var bytes = LargePng(depth, color, channels, seed: depth + color);
        var expected = ImageNetTransform.ToTensor(ImageNetTransform.ResizeAndCrop(ImageDecoder.Decode(bytes, "x.png")));
        string path = Path.Combine(Path.GetTempPath(), $"resnet18-streamed-{Guid.NewGuid():N}.png");
        File.WriteAllBytes(path, bytes);
        try
        {
            var (tensor, taken) = await FromFileWithALentThread(path);
            Assert.Equal(PngsStream, taken);
            Assert.Equal(expected, tensor);
            Assert.Equal(expected, ImageNetTransform.FromFile(path));
            // The one offer slot taken by another image's work: decoded as before, inflating beside unfiltering.
            var other = ImageParallel.Offer(() => 0)!;
            Assert.Equal(expected, ImageNetTransform.FromFile(path));
            Assert.True(ImageParallel.Withdraw(other));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Records what a tensor made top to bottom reports: each row as it is said to be final, and the waits.</summary>
    private sealed class RecordedRows : ITensorRows
    {
        public readonly List<(int Rows, float[] NewRows)> Reports = [];
        public readonly HashSet<int> Threads = [];
        public int Waits;

        /// <summary>Rows [from, to) of every channel of a 3×224×224 tensor.</summary>
        private static float[] Rows(float[] tensor, int from, int to) =>
            Enumerable.Range(0, 3).SelectMany(c => tensor.AsSpan((c * 224 + from) * 224, (to - from) * 224).ToArray()).ToArray();

        public void Ready(float[] tensor, int rows)
        {
            Threads.Add(Environment.CurrentManagedThreadId);
            Reports.Add((rows, Rows(tensor, Reports.Count > 0 ? Reports[^1].Rows : 0, rows)));
        }

        public bool WhileWaiting()
        {
            Threads.Add(Environment.CurrentManagedThreadId);
            Waits++;
            return false;
        }

        /// <summary>Rows reported in order up to the last, each then as it is in the finished tensor, all on one thread.</summary>
        public void AssertFinal(float[] tensor)
        {
            Assert.Single(Threads);
            Assert.Equal(224, Reports[^1].Rows);
            int from = 0;
            foreach (var (rows, newRows) in Reports)
            {
                Assert.True(rows > from);
                Assert.Equal(Rows(tensor, from, rows), newRows);
                from = rows;
            }
        }
    }

    [Fact]
    public async Task ATensorMadeBehindItsDecodingReportsItsRowsAsTheyAreFinal()
    {
        // What the CLI's one-image run packs into the network as it goes, and when it runs conv1 on them: a row
        // reported early, or changed after its report, would reach the logits.
        var bytes = LargePng(8, 2, 3, seed: 21);
        string png = Path.Combine(Path.GetTempPath(), $"resnet18-rows-{Guid.NewGuid():N}.png");
        File.WriteAllBytes(png, bytes);
        try
        {
            int waits = 0;
            async Task Round(string path)
            {
                var rows = new RecordedRows();
                var (tensor, taken) = await FromFileWithALentThread(path, rows: rows);
                Assert.Equal(PngsStream || path != png, taken);
                Assert.Equal(ImageNetTransform.FromFile(path), tensor);
                if (!taken)
                {
                    Assert.Empty(rows.Reports); // made after the decoding, whole: nothing to report early
                    return;
                }
                rows.AssertFinal(tensor);
                waits += rows.Waits;
            }
            foreach (var path in new[] { png, Path.Combine(Dir, "baseline.jpg") })
                for (int round = 0; round < 3; round++) await Round(path);
            // The transform waits for the decoder only when it catches up with it, which depends on the two
            // threads' speeds (a busy machine, a fallback instruction set): more rounds until it has.
            for (int round = 0; waits == 0 && round < 40; round++) await Round(PngsStream ? png : Path.Combine(Dir, "baseline.jpg"));
            Assert.True(waits > 0);
            // Not made top to bottom (a progressive JPEG is resized once whole): nothing is reported.
            var whole = new RecordedRows();
            await FromFileWithALentThread(Path.Combine(Dir, "progressive.jpg"), rows: whole);
            Assert.Empty(whole.Reports);
        }
        finally
        {
            File.Delete(png);
        }
    }

    [Fact]
    public async Task AStreamedPngsBadDataIsReportedOnceNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), $"resnet18-streamed-{Guid.NewGuid():N}.png");
        try
        {
            // A scanline's filter byte out of range: found by the thread that unfilters behind the inflating.
            foreach (int row in new[] { 300, 495 })
            {
                File.WriteAllBytes(path, LargePng(8, 2, 3, seed: 7, (raw, stride) => raw[row * (stride + 1)] = 9));
                foreach (bool lent in new[] { true, false })
                {
                    var e = lent
                        ? await Assert.ThrowsAsync<InputException>(() => FromFileWithALentThread(path))
                        : Assert.Throws<InputException>(() => ImageNetTransform.FromFile(path));
                    Assert.Equal($"{path}: corrupt PNG: unknown scanline filter 9", e.Message);
                }
            }
            // Image data cut short: the inflater's error, while a reader waits for rows that never come.
            var whole = LargePng(8, 2, 3, seed: 8);
            int cut = whole.Length / 2;
            File.WriteAllBytes(path, BadImageTests.Png(700, 500, 8, 2, whole.AsSpan(41, cut).ToArray()));
            foreach (bool lent in new[] { true, false })
            {
                var e = lent
                    ? await Assert.ThrowsAsync<InputException>(() => FromFileWithALentThread(path))
                    : Assert.Throws<InputException>(() => ImageNetTransform.FromFile(path));
                Assert.StartsWith($"{path}: corrupt PNG: ", e.Message);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task AReaderWaitsForItsRowsAndStopsWhenTheDecodingFails()
    {
        var progress = new RowProgress();
        var reader = Task.Run(() => progress.WaitFor(32));
        progress.Publish(16);
        await Task.Delay(50);
        Assert.False(reader.IsCompleted);
        progress.Publish(32);
        await reader.WaitAsync(TimeSpan.FromSeconds(10));
        var failed = Task.Run(() => progress.WaitFor(48));
        progress.Fail();
        await Assert.ThrowsAsync<InputException>(() => failed.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task AScanThatFailsStopsTheRowsReadBehindIt()
    {
        // A file of one scan without its end-of-image marker fails once the scan is decoded (libjpeg's read-ahead
        // would have waited for more data), after its rows were offered: the lent thread must stop, and the caller
        // gets the decoder's error (naming the file once), not the reader's.
        string path = Path.Combine(Path.GetTempPath(), $"resnet18-cut-{Guid.NewGuid():N}.jpg");
        File.WriteAllBytes(path, File.ReadAllBytes(Path.Combine(Dir, "baseline.jpg"))[..^2]);
        try
        {
            // The lent thread takes the rows before the scan fails, or (as a race allows) not: the same error.
            foreach (bool wait in new[] { true, false, true, false })
            {
                var e = await Assert.ThrowsAsync<InputException>(() => FromFileWithALentThread(path, wait));
                Assert.Equal($"{path}: corrupt JPEG: truncated file (no end-of-image marker)", e.Message);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("damaged_cut_short.jpg")]
    [InlineData("damaged_restart_early.jpg")]
    public async Task AScanWhoseDataRunsOutGivesTheSameTensorBehindIt(string file)
    {
        // Its MCUs past the data's end are left zero (mid-gray) as the rows are read behind the scan; the lent thread
        // takes the rows or (as a race allows) not: the same tensor.
        var entry = Entry(Dir, file);
        foreach (bool wait in new[] { true, false })
        {
            var (tensor, _) = await FromFileWithALentThread(Path.Combine(Dir, file), wait);
            AssertSha(entry, "tensor_sha256", Bytes(tensor));
        }
    }

    [Theory]
    [InlineData(224, 224)]
    [InlineData(5, 7)]
    [InlineData(17, 3)]
    [InlineData(37, 41)]
    public void ToTensorIsTorchvisionsArithmeticForEverySize(int width, int height)
    {
        // The vector path takes 16 pixels at a time and the rest one by one; both must be ToTensor + Normalize in
        // float32, whole and split into row chunks (whose ends fall inside a vector's 16 pixels).
        var pixels = new byte[width * height * 3];
        new Random(width * 1000 + height).NextBytes(pixels);
        var whole = ImageNetTransform.ToTensor(new RgbImage(width, height, pixels));
        float[] split;
        using (Fixtures.SplitEveryImage()) split = ImageNetTransform.ToTensor(new RgbImage(width, height, pixels));
        float[] mean = [0.485f, 0.456f, 0.406f], std = [0.229f, 0.224f, 0.225f];
        foreach (var tensor in new[] { whole, split })
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < width * height; i++)
                    Assert.Equal(((float)pixels[i * 3 + c] / 255f - mean[c]) / std[c], tensor[c * width * height + i]);
    }

    [Fact]
    public void ResizeKeepsTorchvisionSizes()
    {
        Assert.Equal((256, 341), ImageNetTransform.ResizedSize(300, 400));
        Assert.Equal((455, 256), ImageNetTransform.ResizedSize(1000, 562));
        Assert.Equal((256, 256), ImageNetTransform.ResizedSize(5, 5));
        Assert.Equal((256, 358), ImageNetTransform.ResizedSize(5, 7));
    }

    [Theory]
    [InlineData(499, "58e6deb5ef11aefda79d684651125459595bf293bbf187f38e5c664771eaf735")] // 5 taps
    [InlineData(333, "6eb802167c53737cb6846cb43732e5e85fe0bf069ba165b0546b888913f34bd3")]
    [InlineData(97, "c94c3c0e43434a647f1fe5c9d19cd1a72a511ddb2b9e6addb8fbe53d56e56a49")]
    [InlineData(40, "ccff700620c7c502d89cb97ecbe6a754b4227b2f0010c6fae5d7d66df4a68388")]
    [InlineData(13, "6023b704c3d043499a4473008cb3fae6b8b821a1506aaacb89a64ff97c306ffb")] // ~155 taps
    public void AWideShrinkIsPillowsForEveryTapCount(int width, string sha256)
    {
        // The horizontal pass sums five taps per vector where AVX-512 allows (and one at a time otherwise: CI runs
        // this class with AVX-512 off too). Hashes from Pillow 9.4: Image.frombytes of the same pattern, resized to
        // (width, 30) with BILINEAR.
        const int W = 1000, H = 30;
        var pixels = new byte[W * H * 3];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++)
                    pixels[(y * W + x) * 3 + c] = (byte)((x * 7 + y * 13 + c * 101 + x * y % 31) & 255);
        var resized = PilResize.Bilinear(new RgbImage(W, H, pixels), width, H);
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(resized.Pixels)));
    }

    [SkippableFact]
    public void LargeImagesAndPhotosMatchTorchvision()
    {
        var dir = Environment.GetEnvironmentVariable("RESNET18_IMAGE_FIXTURES");
        if (string.IsNullOrEmpty(dir) && Fixtures.FullSizeRequired) Assert.Fail("RESNET18_REQUIRE_FULL=1 but RESNET18_IMAGE_FIXTURES is not set");
        Skip.If(string.IsNullOrEmpty(dir), "large image fixtures absent (CI generates them)");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir!, "images.json")));
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            string file = e.GetProperty("file").GetString()!;
            var pixels = ImageDecoder.Load(Path.Combine(dir!, file)).Pixels;
            Assert.True(e.GetProperty("rgb_sha256").GetString() == Convert.ToHexStringLower(SHA256.HashData(pixels)), $"{file}: decoded pixels differ from PIL's");
            var expected = Fixtures.Npy(Path.Combine(dir!, file + ".tensor.npy"));
            // A JPEG decoded for the transform skips what its crop does not read: those blocks poisoned, black and white.
            foreach (int poison in new[] { 0, 255 })
            {
                var tensor = Poisoned(poison, () => ImageNetTransform.FromFile(Path.Combine(dir!, file)), out _);
                float diff = Fixtures.MaxDiff(tensor, expected);
                output.WriteLine($"{file}: max |Δ| {diff}");
                Assert.True(diff <= 1e-6f, $"{file}: max |Δ| {diff} (blocks outside the crop's window {poison})");
            }
        }
    }

    [Fact]
    public void LabelsAreTorchvisionsOrder()
    {
        Assert.Equal(1000, ImageNetLabels.All.Count);
        Assert.Equal("tench", ImageNetLabels.All[0]);
        Assert.Equal("toilet tissue", ImageNetLabels.All[999]);
    }
}
