using System.Buffers.Binary;
using ResNet.Runtime;
using ResNet.Runtime.Images;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// TIFFs that must fail, each with its one-line error before its pixels' memory is taken (PIL's bytes for those that
/// decode are <see cref="ImageTests"/>' fixtures), and the big-endian BigTIFF PIL 9.4 cannot open.
/// </summary>
public class TiffTests
{
    private const int Width = 256, Length = 257, Bits = 258, Compression = 259, Photometric = 262, FillOrder = 266,
        StripOffsets = 273, Samples = 277, RowsPerStrip = 278, StripByteCounts = 279, Planar = 284, Predictor = 317,
        ColorMap = 320, TileWidth = 322, TileLength = 323, TileOffsets = 324, TileByteCounts = 325, ExtraSamples = 338,
        SampleFormat = 339;

    /// <summary>A little-endian classic TIFF: the pixel data at offset 8, then one directory of SHORT or LONG tags.</summary>
    private static byte[] Tiff(byte[] data, params (int Tag, uint[] Values)[] tags)
    {
        var file = new List<byte>("II*\0"u8.ToArray());
        int ifd = 8 + data.Length + (data.Length & 1);
        file.AddRange(BitConverter.GetBytes(ifd));
        file.AddRange(data);
        if ((data.Length & 1) != 0) file.Add(0);
        var extra = new List<byte>();
        int extraAt = ifd + 2 + 12 * tags.Length + 4;
        file.AddRange(BitConverter.GetBytes((ushort)tags.Length));
        foreach (var (tag, values) in tags.OrderBy(t => t.Tag))
        {
            bool wide = values.Any(v => v > ushort.MaxValue) || tag is StripOffsets or StripByteCounts;
            var bytes = values.SelectMany(v => wide ? BitConverter.GetBytes(v) : BitConverter.GetBytes((ushort)v)).ToArray();
            file.AddRange(BitConverter.GetBytes((ushort)tag));
            file.AddRange(BitConverter.GetBytes((ushort)(wide ? 4 : 3)));
            file.AddRange(BitConverter.GetBytes(values.Length));
            if (bytes.Length <= 4) file.AddRange(bytes.Concat(new byte[4 - bytes.Length]));
            else
            {
                file.AddRange(BitConverter.GetBytes(extraAt + extra.Count));
                extra.AddRange(bytes);
            }
        }
        file.AddRange(new byte[4]);
        file.AddRange(extra);
        return file.ToArray();
    }

    /// <summary>A 4×2 RGB image's tags around <paramref name="data"/> (one strip at offset 8), changed by <paramref name="with"/>.</summary>
    private static byte[] Rgb(byte[] data, params (int Tag, uint[] Values)[] with)
    {
        var tags = new Dictionary<int, uint[]>
        {
            [Width] = [4], [Length] = [2], [Bits] = [8, 8, 8], [Compression] = [1], [Photometric] = [2], [Samples] = [3],
            [StripOffsets] = [8], [RowsPerStrip] = [2], [StripByteCounts] = [(uint)data.Length],
        };
        foreach (var (tag, values) in with)
            if (values.Length == 0) tags.Remove(tag);
            else tags[tag] = values;
        return Tiff(data, tags.Select(t => (t.Key, t.Value)).ToArray());
    }

    private static readonly byte[] Pixels = Enumerable.Range(0, 24).Select(i => (byte)(i * 10)).ToArray();

    [Fact]
    public void TheBuilderMakesATiffThatDecodes()
    {
        var image = ImageDecoder.Decode(Rgb(Pixels), "t.tif");
        Assert.Equal((4, 2), (image.Width, image.Height));
        Assert.Equal(Pixels, image.Pixels);
    }

    public static TheoryData<string, byte[], string> Bad() => new()
    {
        { "header", [(byte)'I', (byte)'I', 42, 0, 8, 0], "corrupt TIFF: truncated header" },
        { "directory offset", [(byte)'I', (byte)'I', 42, 0, 255, 0, 0, 0], "corrupt TIFF: the first directory's offset 255 is past the end of the file" },
        { "entries", [(byte)'I', (byte)'I', 42, 0, 8, 0, 0, 0, 9, 0], "corrupt TIFF: the first directory's 9 entries run past the end of the file" },
        { "no width", Rgb(Pixels, (Width, [])), "corrupt TIFF: no image width or height" },
        { "zero height", Rgb(Pixels, (Length, [0])), "corrupt TIFF: impossible size 4×0" },
        { "old JPEG", Rgb(Pixels, (Compression, [6])), "unsupported TIFF: old-style JPEG data (uncompressed, LZW, JPEG, Deflate and PackBits are read)" },
        { "CCITT", Rgb(Pixels, (Compression, [4])), "unsupported TIFF: CCITT Group 4 data (uncompressed, LZW, JPEG, Deflate and PackBits are read)" },
        { "JPEG of 16 bits", Rgb(Pixels, (Compression, [7]), (Bits, [16])), "unsupported TIFF: JPEG data of 3 samples of 16 bits, photometric interpretation 2, extra samples () (8-bit gray, RGB and YCbCr are read)" },
        { "JPEG planes", Rgb(Pixels, (Compression, [7]), (Planar, [2])), "unsupported TIFF: separate planes of 3 samples of 8 bits, photometric interpretation 2, extra samples () (8-bit planes without premultiplied alpha are read)" },
        { "YCbCr uncompressed", Rgb(Pixels, (Photometric, [6])), "unsupported TIFF: 3 samples of 8 bits, photometric interpretation 6, extra samples () (not a layout PIL reads as gray, palette, RGB or CMYK)" },
        { "float", Rgb(Pixels, (SampleFormat, [3, 3, 3])), "unsupported TIFF: signed or floating-point samples (unsigned integers are read)" },
        { "mixed bits", Rgb(Pixels, (Bits, [8, 8, 16])), "unsupported TIFF: samples of 8, 8, 16 bits (all of one size are read)" },
        { "bits count", Rgb(Pixels, (Bits, [8, 8])), "corrupt TIFF: 2 bits-per-sample values for 3 samples per pixel" },
        { "samples", Rgb(Pixels, (Samples, [7])), "corrupt TIFF: 7 samples per pixel (1 to 6)" },
        { "no samples", Rgb(Pixels, (Samples, [0])), "corrupt TIFF: 0 samples per pixel (1 to 6)" },
        { "no color map", Rgb(Pixels, (Photometric, [3]), (Samples, [1]), (Bits, [8])), "corrupt TIFF: a palette image without a color map" },
        { "color map", Rgb(Pixels, (Photometric, [3]), (Samples, [1]), (Bits, [2]), (ColorMap, [1, 2, 3])), "corrupt TIFF: a color map of 3 values for 2-bit indices (12 expected)" },
        { "predictor 3", Rgb(Pixels, (Compression, [5]), (Predictor, [3])), "unsupported TIFF: predictor 3 (horizontal differencing is read)" },
        { "predictor of 4 bits", Rgb(Pixels, (Compression, [5]), (Predictor, [2]), (Photometric, [1]), (Samples, [1]), (Bits, [4])), "unsupported TIFF: horizontal differencing of 4-bit samples" },
        { "16-bit planes", Rgb(Pixels, (Planar, [2]), (Bits, [16])), "unsupported TIFF: separate planes of 3 samples of 16 bits, photometric interpretation 2, extra samples () (8-bit planes without premultiplied alpha are read)" },
        { "reversed palette", Rgb(Pixels, (Photometric, [3]), (Samples, [1]), (Bits, [4]), (FillOrder, [2]), (ColorMap, Enumerable.Repeat(0u, 48).ToArray())), "unsupported TIFF: uncompressed bit-reversed bytes (fill order 2) with 1 sample of 4 bits, photometric interpretation 3, extra samples ()" },
        { "no offsets", Rgb(Pixels, (StripOffsets, [])), "corrupt TIFF: no strip or tile offsets" },
        { "short strip", Rgb(Pixels, (StripOffsets, [1000])), "corrupt TIFF: strip 0's pixel data (24 bytes at 1000) runs past the end of the file" },
        { "strips", Rgb(Pixels, (RowsPerStrip, [1])), "corrupt TIFF: 1 strip offsets for 2 strips" },
        { "no counts", Rgb(Pixels, (Compression, [32773]), (StripByteCounts, [])), "corrupt TIFF: 0 strip byte counts for 1 strips" },
        { "count past the end", Rgb(Pixels, (Compression, [32773]), (StripByteCounts, [4000])), "corrupt TIFF: strip 0 (4000 bytes at 8) runs past the end of the file" },
        { "PackBits short", Rgb([0x05, 1, 2, 3, 4, 5, 6], (Compression, [32773])), "corrupt TIFF: strip 0's PackBits data ends early (6 of 24 bytes)" },
        { "Deflate damaged", Rgb([0x78, 0x9c, 0xff, 0xff, 0xff, 0xff], (Compression, [8])), "corrupt TIFF: strip 0's Deflate data is damaged" },
        { "LZW short", Rgb([0x80, 0x00, 0x40, 0x20], (Compression, [5])), "corrupt TIFF: strip 0's LZW data ends early (2 of 24 bytes)" },
        { "LZW code", Rgb([0x80, 0x4b, 0x00], (Compression, [5])), "corrupt TIFF: strip 0's LZW data starts with code 300" },
        { "old LZW", Rgb([0x00, 0x01, 0x00, 0x00], (Compression, [5])), "unsupported TIFF: old-style LZW data in strip 0" },
        { "bomb", Rgb(Pixels, (Width, [30000]), (Length, [30000])), "30000×30000 = 900000000 pixels exceeds the limit of 89478485 (possible decompression bomb; raise it with --max-pixels)" },
    };

    [Theory]
    [MemberData(nameof(Bad))]
    public void BadTiffsFailWithOneLine(string what, byte[] file, string reason)
    {
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(file, "t.tif"));
        Assert.True($"t.tif: {reason}" == e.Message, $"{what}: {e.Message}");
    }

    [Fact]
    public void ATiffLargerThanOneArrayIsRefusedUnderARaisedPixelLimit()
    {
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(Rgb(Pixels, (Width, [30000]), (Length, [30000])), "t.tif", 4_000_000_000));
        Assert.Equal("t.tif: 30000×30000 TIFF is too large to decode (its RGB pixels are more than one buffer holds)", e.Message);
    }

    [Fact]
    public void ATiffWhoseSamplesOrStripOutgrowOneArrayIsRefusedUnderARaisedPixelLimit()
    {
        // Six samples a pixel: the RGB fits one array, the samples do not.
        var six = Rgb(Pixels, (Width, [20000]), (Length, [20000]), (Samples, [6]), (Bits, [8]), (ExtraSamples, [0, 0, 0]));
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(six, "t.tif", 4_000_000_000));
        Assert.Equal("t.tif: 20000×20000 TIFF is too large to decode (its samples, or one strip's, are more than one buffer holds)", e.Message);
    }

    [Fact]
    public void AnUncompressedTileIsReadOnlyToTheImagesLastRowAsPilReadsIt()
    {
        // A 16×16 tile over a 16×4 image, its bytes bit-reversed, the file ending before the tile's fifth row.
        var data = Enumerable.Range(0, 64).Select(i => (byte)(i * 37)).ToArray();
        var tiff = Tiff(data, (Width, [16]), (Length, [4]), (Bits, [8]), (Compression, [1]), (Photometric, [1]), (Samples, [1]),
            (FillOrder, [2]), (TileWidth, [16]), (TileLength, [16]), (TileOffsets, [8]), (TileByteCounts, [64]));
        Assert.True(tiff.Length < 8 + 256);
        var gray = data.Select(v => (byte)(((v * 0x80200802UL) & 0x0884422110UL) * 0x0101010101UL >> 32));
        Assert.Equal(gray.SelectMany(v => new[] { v, v, v }).ToArray(), ImageDecoder.Decode(tiff, "t.tif").Pixels);
    }

    /// <summary>A fixture with one inline SHORT or LONG tag's value changed (a little-endian classic TIFF).</summary>
    private static byte[] Patched(string fixture, int tag, uint value)
    {
        var b = File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), fixture));
        int ifd = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(4));
        for (int i = 0, n = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(ifd)); i < n; i++)
        {
            int at = ifd + 2 + 12 * i;
            if (BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at)) != tag) continue;
            if (BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at + 2)) == 3) BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at + 8), (ushort)value);
            else BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 8), value);
            return b;
        }
        throw new InvalidOperationException($"{fixture} has no tag {tag}");
    }

    [Fact]
    public void AJpegStripOfAnotherSizeThanItsStripIsRefused()
    {
        // libtiff refuses a larger codestream; PIL's 43×31 strip is one row taller than a 30-row image's.
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(Patched("pil_jpeg.tif", Length, 30), "t.tif"));
        Assert.Equal("t.tif: corrupt TIFF: strip 0's JPEG data is a 43×31 image of 3 components, not its 43×30 of 3", e.Message);
    }

    [Fact]
    public void SubsampledJpegDataThatIsNotYCbCrIsRefused()
    {
        // libtiff hands such data to PIL still subsampled (its "downsampled output"); PIL has no unpacker for that.
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(Patched("tiffcp_jpeg_ycbcr.tif", Photometric, 2), "t.tif"));
        Assert.Equal("t.tif: unsupported TIFF: subsampled JPEG data without YCbCr in strip 0", e.Message);
    }

    [Fact]
    public void LzwCodesWidenOneCodeEarlyAsLibtiffWritesThem()
    {
        // 600 distinct pairs fill the table past 511 entries: a code width change read one code late would misplace
        // every later code. The encoder is the fixture tool's, whose files PIL (libtiff) decodes to the same bytes.
        var data = new byte[24 * 40];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 7 + i / 256 * 13);
        var tiff = Rgb(TiffLzw(data), (Compression, [5]), (Width, [16]), (Length, [20]), (RowsPerStrip, [20]));
        Assert.Equal(data[..(16 * 20 * 3)], ImageDecoder.Decode(tiff, "t.tif").Pixels);
    }

    [Fact]
    public void ABigEndianBigTiffReadsAsTheLittleEndianOne()
    {
        // PIL 9.4 looks for BigTIFF's 43 in the third byte only, so it cannot open "MM\0+"; the format allows it.
        string dir = Fixtures.Dir("images");
        var little = ImageDecoder.Load(Path.Combine(dir, "tiff_bigtiff_tiles.tif"));
        var big = ImageDecoder.Decode(File.ReadAllBytes(Path.Combine(dir, "tiff_bigtiff_tiles_mm.bin")), "mm.tif");
        Assert.Equal(little.Pixels, big.Pixels);
    }

    [Fact]
    public void StripsDecodedInParallelReportTheFirstDamagedOneAsOneThreadDoes()
    {
        // 256 one-row PackBits strips, from strip 127 on cut short. Split across threads, each thread takes shares of
        // consecutive strips (Parallel.For's partitions), and one of them meets strip 127 with later ones in another
        // thread's partition. That thread is held until another has started a later strip and failed there: the
        // error must still name strip 127, as on one thread.
        const int W = 1000, Strips = 256, First = 127;
        byte[] Strip(int i, int pixels) => Enumerable.Range(0, 3 * pixels / 2).SelectMany(k => new byte[] { 0xFF, (byte)(i + k) }).ToArray();
        byte[] Image(byte[][] strips) => Rgb(strips.SelectMany(d => d).ToArray(), (Width, [W]), (Length, [Strips]), (RowsPerStrip, [1]),
            (Compression, [32773]), (StripOffsets, strips.Select((_, i) => (uint)(8 + strips.Take(i).Sum(d => d.Length))).ToArray()),
            (StripByteCounts, strips.Select(d => (uint)d.Length).ToArray()));
        var good = Image(Enumerable.Range(0, Strips).Select(i => Strip(i, W)).ToArray());
        var bad = Image(Enumerable.Range(0, Strips).Select(i => Strip(i, i >= First ? W / 2 : W)).ToArray());
        var alone = ImageDecoder.Decode(good, "x.tif").Pixels;
        string expected = $"x.tif: corrupt TIFF: strip {First}'s PackBits data ends early ({3 * W / 2} of {3 * W} bytes)";
        Assert.Equal(expected, Assert.Throws<InputException>(() => ImageDecoder.Decode(bad, "x.tif")).Message);
        if (Environment.ProcessorCount == 1) return; // not split: nothing to order
        int laterStarted = 0, held = 0, heldBack = 0;
        try
        {
            using (Fixtures.SplitEveryImage())
            {
                Assert.Equal(alone, ImageDecoder.Decode(good, "x.tif").Pixels);
                // Other tests' TIFFs may be decoding meanwhile: only this image's strips are held.
                TiffDecoder.ChunkStarting = (h, i) =>
                {
                    if (h.Width != W || h.Height != Strips) return;
                    if (i > First) Volatile.Write(ref laterStarted, 1);
                    if (i != First) return;
                    Interlocked.Increment(ref held);
                    if (SpinWait.SpinUntil(() => Volatile.Read(ref laterStarted) == 1, TimeSpan.FromSeconds(10)))
                    {
                        Thread.Sleep(20); // the later strip's few microseconds of decoding, and its failure, come first
                        Interlocked.Increment(ref heldBack);
                    }
                };
                for (int round = 0; round < 3; round++)
                {
                    Volatile.Write(ref laterStarted, 0);
                    Assert.Equal(expected, Assert.Throws<InputException>(() => ImageDecoder.Decode(bad, "x.tif")).Message);
                }
            }
        }
        finally
        {
            TiffDecoder.ChunkStarting = null;
        }
        // Where the decoding was split (up to 16 processors: its buffers' bound), a later strip did fail first.
        if (held > 0) Assert.True(heldBack > 0, $"no later strip started while strip {First} waited");
    }

    /// <summary>TIFF LZW as libtiff writes it (Clear first, codes widening one code early, End last).</summary>
    private static byte[] TiffLzw(byte[] data)
    {
        var output = new List<byte>();
        long acc = 0;
        int held = 0, width = 9, next = 258;
        void Emit(int code)
        {
            acc = (acc << width) | (uint)code;
            held += width;
            while (held >= 8)
            {
                output.Add((byte)(acc >> (held - 8)));
                held -= 8;
            }
        }
        var table = new Dictionary<string, int>();
        void Reset()
        {
            table.Clear();
            for (int c = 0; c < 256; c++) table[((char)c).ToString()] = c;
            (width, next) = (9, 258);
        }
        Reset();
        Emit(256);
        string w = "";
        foreach (byte c in data)
        {
            string wc = w + (char)c;
            if (table.ContainsKey(wc)) { w = wc; continue; }
            Emit(table[w]);
            table[wc] = next++;
            if (next > (1 << width) - 1 && width < 12) width++;
            if (next == 4094) { Emit(256); Reset(); }
            w = ((char)c).ToString();
        }
        Emit(table[w]);
        if (++next > (1 << width) - 1 && width < 12) width++;
        Emit(257);
        if (held > 0) output.Add((byte)(acc << (8 - held)));
        return output.ToArray();
    }
}
