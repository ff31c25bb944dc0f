using System.Buffers.Binary;
using System.IO.Compression;
using ResNet.Runtime;
using ResNet.Runtime.Images;
using Xunit;

namespace ResNet.Tests;

/// <summary>Every kind of bad image gives its exact one-line error, before any large allocation.</summary>
public class BadImageTests
{
    private static readonly byte[] GoodPng = File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), "rgb8_61x45.png"));
    private static readonly byte[] GoodJpeg = File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), "baseline.jpg"));

    public static TheoryData<string, byte[], string> Cases() => new()
    {
        { "empty", [], "empty file" },
        { "webp-truncated", "RIFF\x1a\x00\x00\x00WEBPVP8 "u8.ToArray(), "corrupt WebP: truncated file (the RIFF header says 34 bytes, the file has 16)" },
        { "riff-not-webp", "RIFF\x1a\x00\x00\x00WAVEfmt "u8.ToArray(), "not a PNG, JPEG, BMP, GIF, TIFF, WebP, PPM, PGM or PBM image (the supported formats)" },
        { "text", "hello"u8.ToArray(), "not a PNG, JPEG, BMP, GIF, TIFF, WebP, PPM, PGM or PBM image (the supported formats)" },
        { "png-signature-only", GoodPng[..8], "corrupt PNG: no IHDR chunk" },
        { "png-truncated", GoodPng[..(GoodPng.Length / 2)], "corrupt PNG: truncated image data" },
        { "png-bad-ihdr-crc", FlipByte(GoodPng, 20), "corrupt PNG: CRC check failed in IHDR chunk" },
        { "png-bad-text-crc", WithChunkBeforeImageData(GoodPng, Chunk("tEXt", "a\0b"u8.ToArray(), crc: 0)), "corrupt PNG: CRC check failed in tEXt chunk" },
        { "png-short-phys", WithChunkBeforeImageData(GoodPng, Chunk("pHYs", new byte[8])), "corrupt PNG: pHYs chunk too short" },
        { "png-text-compression", WithChunkBeforeImageData(GoodPng, Chunk("zTXt", "k\0\u0001"u8.ToArray())), "corrupt PNG: unknown compression method 1 in zTXt chunk" },
        // After the image data PIL reads chunks without their CRCs, but whole, and each through its handler.
        { "png-cut-chunk-after", [.. GoodPng[..^12], .. Chunk("tEXt", "abc\0def"u8.ToArray())[..12]], "corrupt PNG: truncated tEXt chunk after the image data" },
        { "png-short-gamma-after", [.. GoodPng[..^12], .. Chunk("gAMA", new byte[3]), .. GoodPng[^12..]], "corrupt PNG: gAMA chunk too short" },
        { "png-color-type", Png(61, 45, depth: 8, color: 5, Deflate(new byte[10])), "corrupt PNG: unsupported color type 5 with bit depth 8" },
        { "png-zero-size", Png(0, 45, depth: 8, color: 2, Deflate(new byte[10])), "corrupt PNG: impossible size 0×45" },
        { "png-bomb-dimensions", Png(100_000, 100_000, depth: 8, color: 2, Deflate(new byte[10])), "100000×100000 = 10000000000 pixels exceeds the limit of 89478485 (possible decompression bomb; raise it with --max-pixels)" },
        { "png-memory", Png(9500, 9000, depth: 16, color: 6, Deflate(new byte[10])), "decoding this 9500×9000 PNG needs about 896 MiB, more than the 860 MiB allowed (raise --max-pixels to allow more)" },
        { "png-short-data", Png(16, 16, depth: 8, color: 2, Deflate(new byte[100])), "corrupt PNG: truncated image data" },
        { "png-bad-filter", Png(16, 16, depth: 8, color: 2, Deflate(Enumerable.Repeat((byte)7, 16 * 49).ToArray())), "corrupt PNG: unknown scanline filter 7" },
        { "png-no-palette", Png(16, 16, depth: 8, color: 3, Deflate(new byte[16 * 17])), "corrupt PNG: no palette (PLTE) for a palette image" },
        { "png-bad-zlib", Png(16, 16, depth: 8, color: 2, [0x78, 0x9c, 0xff, 0xff, 0xff, 0xff]), "corrupt PNG: corrupt compressed image data" },
        { "jpeg-soi-only", [0xFF, 0xD8, 0xFF], "corrupt JPEG: truncated file (no end-of-image marker)" },
        { "jpeg-cut-segment", [0xFF, 0xD8, 0xFF, 0xE0, 0x00], "corrupt JPEG: truncated segment" },
        { "jpeg-truncated", GoodJpeg[..(GoodJpeg.Length / 2)], "corrupt JPEG: truncated file (no end-of-image marker)" },
        { "jpeg-no-eoi", GoodJpeg[..^2], "corrupt JPEG: truncated file (no end-of-image marker)" },
        { "jpeg-segment-length", Jpeg([0xFF, 0xE0, 0x7F, 0xFF, 0x00]), "corrupt JPEG: segment 0xE0 runs past the end of the file" },
        { "jpeg-lossless", Jpeg([0xFF, 0xC3, 0x00, 0x0B, 8, 0, 16, 0, 16, 1, 1, 0x11, 0]), "unsupported JPEG coding (SOF3: lossless, hierarchical or arithmetic); baseline and progressive are supported" },
        { "jpeg-bomb", Jpeg([0xFF, 0xC0, 0x00, 0x11, 8, 0xEA, 0x60, 0xEA, 0x60, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]), "60000×60000 = 3600000000 pixels exceeds the limit of 89478485 (possible decompression bomb; raise it with --max-pixels)" },
        { "jpeg-no-frame", Jpeg([0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]), "corrupt JPEG: scan before the frame header" },
        { "jpeg-garbage-scan", Jpeg([0xFF, 0xC0, 0x00, 0x0B, 8, 0, 16, 0, 16, 1, 1, 0x11, 0, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0xFF, 0xD9]), "corrupt JPEG data: scan header with 0 components in 0 bytes" },
        { "jpeg-12-bit", Jpeg([0xFF, 0xC1, 0x00, 0x0B, 12, 0, 16, 0, 16, 1, 1, 0x11, 0, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]), "unsupported JPEG: 12-bit samples (8-bit JPEG is supported)" },
        { "jpeg-unknown-marker", Jpeg([0xFF, 0x05, 0x00, 0x02, 0xFF, 0xD9]), "corrupt JPEG: unknown marker 0x05" },
        { "jpeg-second-scan", [.. GoodJpeg[..^2], 0xFF, 0xDA, 0x00, 0x0C, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0, 0xFF, 0xD9],
            "corrupt JPEG: a second scan after one of every component (an end-of-image marker expected)" },
        { "jpeg-cut-bad-table-after-scan", [.. GoodJpeg[..^2], 0xFF, 0xC4, 0x00, 0x20, 0x00, .. Enumerable.Repeat((byte)0x20, 16)],
            "corrupt JPEG: segment 0xC4 is damaged (and cut off by the end of the file)" },
        { "jpeg-dac-in-data", Insert(File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), "h3v1.jpg")), 1136, [0xFF, 0xCC]),
            "corrupt JPEG: segment 0xCC is damaged (and cut off by the end of the file)" },
        { "jpeg-unknown-marker-unread", Insert(File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), "damaged_restart_missing.jpg")), 3033, [0xFF, 0xBB]),
            "corrupt JPEG: unknown marker 0xBB" },
        { "jpeg-table-length-0", Jpeg([0xFF, 0xDB, 0x00, 0x00, 0xFF, 0xD9]), "corrupt JPEG: segment 0xDB with a length of 0" },
        { "jpeg-bad-table-used", WithUsedDcTable(GoodJpeg, [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "corrupt JPEG data: Huffman table with more codes than its lengths allow" },
        { "jpeg-fractional-sampling", Jpeg([0xFF, 0xC0, 0x00, 0x11, 8, 0, 16, 0, 16, 3, 1, 0x31, 0, 2, 0x21, 0, 3, 0x11, 0, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]), "unsupported JPEG: fractional sampling factors" },
        { "jpeg-scan-bomb", RepeatLastScan(File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), "progressive.jpg")), 500), "JPEG with more than 500 scans refused (possible decoding-time bomb)" },
    };

    /// <summary>Keeps the headers and the end-of-image marker but only the first quarter of the scan's data.</summary>
    private static byte[] CutEntropyData(byte[] jpeg)
    {
        int sos = LastIndexOfMarker(jpeg, 0xDA);
        int dataStart = sos + 2 + BinaryPrimitives.ReadUInt16BigEndian(jpeg.AsSpan(sos + 2));
        int keep = (jpeg.Length - 2 - dataStart) / 4;
        return [.. jpeg[..(dataStart + keep)], 0xFF, 0xD9];
    }

    private static byte[] Insert(byte[] bytes, int at, byte[] inserted) => [.. bytes[..at], .. inserted, .. bytes[at..]];

    /// <summary>A DC table in slot 3 with <paramref name="counts"/> (three codes of length 1: too many), defined and, with the scan naming it for its first component, used.</summary>
    private static byte[] WithUsedDcTable(byte[] jpeg, byte[] counts, bool used = true)
    {
        var copy = (byte[])jpeg.Clone();
        int sos = LastIndexOfMarker(copy, 0xDA);
        if (used) copy[sos + 6] = (byte)(0x30 | (copy[sos + 6] & 15));
        return [.. copy[..sos], 0xFF, 0xC4, 0x00, 0x16, 0x03, .. counts, 0, 1, 2, .. copy[sos..]];
    }

    [Theory]
    [InlineData("baseline.jpg", 1, true)]
    [InlineData("baseline.jpg", 0, false)]
    [InlineData("gray.jpg", 0, true)]
    [InlineData("rgb_components.jpg", 0, true)]
    [InlineData("q95_444.jpg", 6, true)]
    [InlineData("q95_444.jpg", 5, false)]
    [InlineData("h3v1.jpg", 4, true)]
    [InlineData("h3v1.jpg", 3, false)]
    [InlineData("restart_3mcu.jpg", 5, true)]
    [InlineData("restart_3mcu.jpg", 4, false)]
    public void AOneScanFileWithoutItsEndOfImageMarkerIsTakenIfLibjpegsReadAheadStopsShortOfTheEnd(string file, int extra, bool taken)
    {
        // The end-of-image marker replaced by `extra` bytes of junk: PIL's verdict on each (session 40), which depends
        // on when libjpeg last filled its bit buffer before the scan's last MCU (JpegReadAhead).
        var jpeg = File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), file));
        var cut = jpeg[..^2].Concat(Enumerable.Repeat((byte)0x5A, extra)).ToArray();
        if (taken)
            Assert.Equal(ImageDecoder.Decode(jpeg, "x.jpg").Pixels, ImageDecoder.Decode(cut, "x.jpg").Pixels);
        else
            Assert.Equal("x.jpg: corrupt JPEG: truncated file (no end-of-image marker)", Assert.Throws<InputException>(() => ImageDecoder.Decode(cut, "x.jpg")).Message);
    }

    [Fact]
    public void SegmentsThatAreSkippedMayHaveALengthBelowTwo()
    {
        // PIL's parser and libjpeg's skip_variable then skip no payload; a second frame header cut off after the one
        // scan is never read far enough to be found a second (libjpeg reads 8 of its bytes first).
        var pixels = ImageDecoder.Decode(GoodJpeg, "x.jpg").Pixels;
        Assert.Equal(pixels, ImageDecoder.Decode([.. GoodJpeg[..2], 0xFF, 0xE1, 0x00, 0x00, 0xFF, 0xFE, 0x00, 0x01, .. GoodJpeg[2..]], "x.jpg").Pixels);
        Assert.Equal(pixels, ImageDecoder.Decode([.. GoodJpeg[..^2], 0xFF, 0xC0, 0x00, 0x11, 8], "x.jpg").Pixels);
    }

    [Fact]
    public void AHuffmanTableIsCheckedWhenAScanUsesIt()
    {
        // As libjpeg: a table that breaks the code-length rules is refused by the scan that uses it (Cases), and
        // one no scan uses is never looked at.
        var unused = WithUsedDcTable(GoodJpeg, [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], used: false);
        Assert.Equal(ImageDecoder.Decode(GoodJpeg, "x.jpg").Pixels, ImageDecoder.Decode(unused, "x.jpg").Pixels);
    }

    /// <summary>The last scan (a refinement) sent again and again: each pass walks every block.</summary>
    private static byte[] RepeatLastScan(byte[] jpeg, int times)
    {
        int sos = LastIndexOfMarker(jpeg, 0xDA);
        var scan = jpeg[sos..^2];
        var output = new List<byte>(jpeg[..^2]);
        for (int i = 0; i < times; i++) output.AddRange(scan);
        output.AddRange(jpeg[^2..]);
        return [.. output];
    }

    private static int LastIndexOfMarker(byte[] jpeg, byte marker) =>
        Enumerable.Range(0, jpeg.Length - 1).Last(i => jpeg[i] == 0xFF && jpeg[i + 1] == marker);

    [Theory]
    // Not enumerated at discovery: xunit would serialize the rows' bytes element by element (the scan bomb is 1.5 MB).
    [MemberData(nameof(Cases), DisableDiscoveryEnumeration = true)]
    public void BadImageGivesExactError(string name, byte[] bytes, string reason)
    {
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(bytes, $"{name}.img"));
        Assert.StartsWith($"{name}.img: {reason}", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void IndexPastAShortPaletteIsGrayAsInPil()
    {
        // Checked against Pillow: a 2-entry palette pads with the gray ramp, so index 5 is (5, 5, 5).
        var raw = Enumerable.Range(0, 2).SelectMany(_ => new byte[] { 0, 0, 1, 5, 200 }).ToArray();
        var png = Png(4, 2, depth: 8, color: 3, Deflate(raw), palette: [10, 20, 30, 40, 50, 60]);
        var image = ImageDecoder.Decode(png, "short-palette.png");
        Assert.Equal(new byte[] { 10, 20, 30, 40, 50, 60, 5, 5, 5, 200, 200, 200 }, image.Pixels[..12]);
    }

    [Fact]
    public void WhatPilDoesNotReadAfterTheImageDataIsNotChecked()
    {
        // PIL reads a PNG's image data without the IDAT chunks' CRCs, inflates no further than the last row, and after
        // the data stops at IEND, at the end of the file or at a chunk header it cannot read: all of these give the
        // good file's pixels (each checked against Pillow 9.4).
        var pixels = ImageDecoder.Decode(GoodPng, "good.png").Pixels;
        int idatEnd = GoodPng.Length - 12; // the fixture: IHDR, one IDAT, IEND
        byte[][] files =
        [
            GoodPng[..^12], // no IEND
            GoodPng[..^6], // IEND cut short
            [.. GoodPng[..^12], 1, 2, 3], // three stray bytes
            FlipByte(GoodPng, idatEnd - 1), // the IDAT's CRC
            [.. GoodPng[..^12], .. Chunk("abCd", [1, 2], crc: 0), .. GoodPng[^12..]], // a bad CRC after the data
            [.. GoodPng[..^12], .. Chunk("a-Cd", [1, 2]), .. Chunk("pHYs", [1])], // a malformed type ends the reading
            WithChunkBeforeImageData(GoodPng, Chunk("ab1_", [7])), // digits and underscores make a chunk type
        ];
        foreach (var file in files) Assert.Equal(pixels, ImageDecoder.Decode(file, "x.png").Pixels);
        // zlib data past the last row is never inflated: 50 MB of zeros after a 16×16 image's rows.
        var bomb = ImageDecoder.Decode(Png(16, 16, depth: 8, color: 2, Deflate(new byte[50_000_000])), "bomb.png");
        Assert.Equal(new byte[16 * 16 * 3], bomb.Pixels);
    }

    [Fact]
    public void ImageDataIsTheIdatChunksInARow()
    {
        // PIL's image data ends at the first chunk that is not IDAT: an IDAT after a tEXt chunk is not read.
        var rows = Enumerable.Range(0, 4).SelectMany(_ => new byte[] { 0, 1, 2, 3, 4, 5, 6 }).ToArray();
        var z = Deflate(rows);
        var png = Png(2, 4, depth: 8, color: 2, z[..10]);
        int iend = png.Length - 12;
        byte[] split = [.. png[..iend], .. Chunk("tEXt", "a\0b"u8.ToArray()), .. Chunk("IDAT", z[10..]), .. png[iend..]];
        Assert.Equal("x.png: corrupt PNG: truncated image data", Assert.Throws<InputException>(() => ImageDecoder.Decode(split, "x.png")).Message);
        byte[] together = [.. png[..iend], .. Chunk("IDAT", z[10..]), .. png[iend..]];
        Assert.Equal(Enumerable.Range(0, 4).SelectMany(_ => new byte[] { 1, 2, 3, 4, 5, 6 }).ToArray(), ImageDecoder.Decode(together, "y.png").Pixels);
    }

    /// <summary><paramref name="png"/> with <paramref name="chunk"/> right after its IHDR.</summary>
    private static byte[] WithChunkBeforeImageData(byte[] png, byte[] chunk) => [.. png[..33], .. chunk, .. png[33..]];

    /// <summary>A PNG chunk; its CRC-32 computed unless given.</summary>
    private static byte[] Chunk(string type, byte[] data, uint? crc = null)
    {
        var c = new byte[12 + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(c, data.Length);
        System.Text.Encoding.Latin1.GetBytes(type).CopyTo(c, 4);
        data.CopyTo(c, 8);
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(8 + data.Length), crc ?? Crc32(c[4..(8 + data.Length)]));
        return c;
    }

    [Fact]
    public void DirectoryAndMissingFileAreNamed()
    {
        Assert.Equal($"{Path.GetTempPath()}: is a directory", Assert.Throws<InputException>(() => ImageDecoder.Load(Path.GetTempPath())).Message);
        Assert.Equal("/nonexistent/x.png: no such file", Assert.Throws<InputException>(() => ImageDecoder.Load("/nonexistent/x.png")).Message);
    }

    /// <summary>With the inflating on another thread (large PNGs), zlib's errors reach the caller with the same words.</summary>
    [Theory]
    [InlineData("png-short-data")]
    [InlineData("png-bad-zlib")]
    public void InflatingOnAnotherThreadReportsTheSameErrors(string name)
    {
        var (bytes, reason) = Cases().Select(c => ((string)c[0], (byte[])c[1], (string)c[2])).Where(c => c.Item1 == name).Select(c => (c.Item2, c.Item3)).Single();
        using var split = Fixtures.SplitEveryImage();
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(bytes, $"{name}.img"));
        Assert.Equal($"{name}.img: {reason}", e.Message);
    }

    [Fact]
    public void DataEndingEarlyIsMidGrayWithTheIdctHereOrOnAnotherCore()
    {
        // libjpeg leaves the MCUs after the data's end zero, mid-gray (the fixture damaged_cut_short.jpg holds PIL's
        // pixels); the pipeline (large sequential images) must give the same bytes.
        var cut = CutEntropyData(GoodJpeg);
        var here = ImageDecoder.Decode(cut, "x.jpg");
        int stride = here.Width * 3;
        Assert.All(here.Pixels[^(8 * stride)..], b => Assert.Equal(128, b));
        Assert.Equal(ImageDecoder.Decode(GoodJpeg, "x.jpg").Pixels[..(8 * stride)], here.Pixels[..(8 * stride)]);
        using var split = Fixtures.SplitEveryImage();
        Assert.Equal(here.Pixels, ImageDecoder.Decode(cut, "x.jpg").Pixels);
    }

    [Fact]
    public void AJpegTooLargeForOneBufferIsRefusedWhateverTheLimit()
    {
        // 65535×65535: each plane would need 2^32 samples, past what one array holds (and an int would wrap).
        var bytes = Jpeg([0xFF, 0xC0, 0x00, 0x11, 8, 0xFF, 0xFF, 0xFF, 0xFF, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9]);
        Assert.Equal("x.jpg: 65535×65535 JPEG is too large to decode", Assert.Throws<InputException>(() => ImageDecoder.Decode(bytes, "x.jpg", maxPixels: long.MaxValue)).Message);
    }

    [Fact]
    public void PixelLimitCanBeRaised()
    {
        var bytes = File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), "rgb8_257x300.png"));
        Assert.Contains("exceeds the limit of 1000", Assert.Throws<InputException>(() => ImageDecoder.Decode(bytes, "x.png", maxPixels: 1000)).Message);
        Assert.Equal(257, ImageDecoder.Decode(bytes, "x.png", maxPixels: 100_000).Width);
    }

    internal static byte[] FlipByte(byte[] b, int at)
    {
        var c = (byte[])b.Clone();
        c[at] ^= 0x5A;
        return c;
    }

    internal static byte[] Deflate(byte[] raw)
    {
        var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Fastest, leaveOpen: true)) z.Write(raw);
        return ms.ToArray();
    }

    /// <summary>A structurally valid PNG (correct CRCs) with the given header and IDAT payload.</summary>
    internal static byte[] Png(uint width, uint height, byte depth, byte color, byte[] idat, byte[]? palette = null, byte interlace = 0)
    {
        var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = depth;
        ihdr[9] = color;
        ihdr[12] = interlace;
        Chunk(ms, "IHDR", ihdr);
        if (palette != null) Chunk(ms, "PLTE", palette);
        Chunk(ms, "IDAT", idat);
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data) => s.Write(Chunk(type, data));

    private static uint Crc32(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return c ^ 0xFFFFFFFF;
    }

    private static byte[] Jpeg(byte[] body) => [0xFF, 0xD8, .. body];
}
