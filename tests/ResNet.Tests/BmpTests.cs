using System.Buffers.Binary;
using ResNet.Runtime;
using ResNet.Runtime.Images;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// BMPs where this decoder follows the format rather than PIL 9.4 (PIL's bytes for everything else are
/// <see cref="ImageTests"/>' fixtures), and the one-line errors of bad headers.
/// </summary>
public class BmpTests
{
    /// <summary>A BMP with a 40-byte header, <paramref name="colors"/> palette entries (i·10, 255 − i·10, i) and <paramref name="data"/>.</summary>
    internal static byte[] Bmp(int width, int height, int bits, byte[] data, int compression = 0, int colors = 16, int headerSize = 40, uint? dataOffset = null)
    {
        var palette = new byte[4 * colors];
        for (int i = 0; i < colors; i++) (palette[4 * i + 2], palette[4 * i + 1], palette[4 * i]) = ((byte)(i * 10), (byte)(255 - i * 10), (byte)i);
        var file = new byte[14 + headerSize + palette.Length + data.Length];
        var s = file.AsSpan();
        "BM"u8.CopyTo(s);
        BinaryPrimitives.WriteUInt32LittleEndian(s[2..], (uint)file.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(s[10..], dataOffset ?? (uint)(14 + headerSize + palette.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(s[14..], (uint)headerSize);
        BinaryPrimitives.WriteInt32LittleEndian(s[18..], width);
        BinaryPrimitives.WriteInt32LittleEndian(s[22..], height);
        BinaryPrimitives.WriteUInt16LittleEndian(s[26..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(s[28..], (ushort)bits);
        BinaryPrimitives.WriteUInt32LittleEndian(s[30..], (uint)compression);
        BinaryPrimitives.WriteUInt32LittleEndian(s[46..], (uint)colors);
        palette.CopyTo(s[(14 + headerSize)..]);
        data.CopyTo(s[(14 + headerSize + palette.Length)..]);
        return file;
    }

    private static byte[] Rgb(params int[] indices) => indices.SelectMany(i => new[] { (byte)(i * 10), (byte)(255 - i * 10), (byte)i }).ToArray();

    private static byte[] Decode(byte[] file) => ImageDecoder.Decode(file, "t.bmp").Pixels;

    [Fact]
    public void AnRle8DeltaMovesByTheTwoBytesAfterIt()
    {
        // Bottom row first: two pixels of 5, a delta one right and one up, one pixel of 6, end of bitmap.
        // (PIL 9.4 reads two more bytes after a delta's and takes its offsets from those.)
        var file = Bmp(4, 2, 8, [2, 5, 0, 2, 1, 1, 1, 6, 0, 1], compression: 1);
        Assert.Equal(Rgb(0, 0, 0, 6, 5, 5, 0, 0), Decode(file));
    }

    [Fact]
    public void AnOddRle4LiteralRunReadsItsLastNibble()
    {
        // Three literal pixels in two bytes (PIL 9.4 reads one byte, two pixels).
        var file = Bmp(3, 1, 4, [0, 3, 0x12, 0x30, 0, 1], compression: 2);
        Assert.Equal(Rgb(1, 2, 3), Decode(file));
    }

    [Fact]
    public void AnRleBitmapThatEndsEarlyLeavesIndexZero()
    {
        // PIL 9.4 refuses it ("not enough image data"); the format leaves the rest undefined, here index 0.
        var file = Bmp(2, 2, 8, [2, 7, 0, 1], compression: 1);
        Assert.Equal(Rgb(0, 0, 7, 7), Decode(file));
    }

    [Fact]
    public void TheLastRowsPaddingMayBeMissing()
    {
        // PIL's raw decoder has the image once the last stored row's pixels are in (3 × 24-bit: 9 bytes, padded to 12).
        var file = Bmp(3, 2, 24, [.. Enumerable.Range(1, 24).Select(i => (byte)i)], colors: 0);
        Assert.Equal(Decode(file), Decode(file[..^3]));
    }

    [Fact]
    public void AFourBitBmpWithTheSixteenDarkestGraysIsReadByItsIndices()
    {
        // PIL 9.4 takes this palette for a grayscale image and reads the 4-bit rows as 8-bit gray.
        var file = Bmp(4, 1, 4, [0x01, 0x2F, 0, 0], colors: 16);
        for (int i = 0; i < 16; i++) (file[54 + 4 * i], file[55 + 4 * i], file[56 + 4 * i]) = ((byte)i, (byte)i, (byte)i);
        Assert.Equal(new byte[] { 0, 0, 0, 1, 1, 1, 2, 2, 2, 15, 15, 15 }, Decode(file));
    }

    private static byte[] With(byte[] file, int at, uint value, int size = 4)
    {
        var copy = (byte[])file.Clone();
        if (size == 4) BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(at), value);
        else BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(at), (ushort)value);
        return copy;
    }

    private static readonly byte[] Good = Bmp(3, 2, 24, new byte[24], colors: 0);

    public static TheoryData<string, byte[], string> Bad() => new()
    {
        { "signature-only", "BM\0\0\0\0"u8.ToArray(), "corrupt BMP: truncated file header" },
        { "cut-info-header", Good[..30], "corrupt BMP: truncated info header" },
        { "header-size", With(Good, 14, 52), "unsupported BMP: a 52-byte info header (those of 12, 40, 64, 108 and 124 bytes are read)" },
        { "zero-width", With(Good, 18, 0), "corrupt BMP: impossible size 0×2" },
        { "negative-width", With(Good, 18, 0xFFFFFFFD), "corrupt BMP: impossible size 4294967293×2" },
        { "bits", With(Good, 28, 2, 2), "unsupported BMP: 2 bits per pixel (1, 4, 8, 16, 24 and 32 are read)" },
        { "jpeg-inside", With(Good, 30, 4), "unsupported BMP: compression 4 (a JPEG inside); uncompressed, RLE8, RLE4 and bit fields are read" },
        { "rle8-of-24-bits", With(Good, 30, 1), "unsupported BMP: RLE8 compression with 24 bits per pixel" },
        { "bit-fields", Bmp(1, 1, 32, [0, 0, 0xF0, 0xFF, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], compression: 3, colors: 0),
            "unsupported BMP: 32-bit bit fields R 0xFFF00000 G 0xFF00 B 0x0 A 0x0 (the byte-aligned 24/32-bit layouts and 16-bit 5-5-5 and 5-6-5 are read)" },
        { "bomb", With(With(Good, 18, 100_000), 22, 100_000), "100000×100000 = 10000000000 pixels exceeds the limit of 89478485 (possible decompression bomb; raise it with --max-pixels)" },
        { "palette-size", With(Bmp(2, 2, 8, new byte[8]), 46, 70_000), "corrupt BMP: a palette of 70000 colors" },
        { "cut-palette", Bmp(2, 2, 8, new byte[8])[..80], "corrupt BMP: truncated palette" },
        { "offset-past-end", With(Good, 10, 1000), "corrupt BMP: pixel data offset 1000 is past the end of the file" },
        { "cut-pixels", Good[..^5], "corrupt BMP: truncated pixel data (19 of 21 bytes)" },
        // Without an end-of-bitmap marker, data that ends before the last pixel is a truncated file, as in PIL.
        { "rle-cut", Bmp(2, 2, 8, [2, 7], compression: 1), "corrupt BMP: RLE data ends before the last pixel (no end-of-bitmap marker)" },
        { "rle-delta-cut", Bmp(4, 2, 8, [0, 2, 1], compression: 1), "corrupt BMP: RLE delta runs past the end of the file" },
        { "rle-literal-cut", Bmp(4, 2, 8, [0, 4, 1, 2], compression: 1), "corrupt BMP: RLE literal run runs past the end of the file" },
    };

    [Fact]
    public void ABmpLargerThanOneArrayIsRefusedUnderARaisedPixelLimit()
    {
        // 30000×30000 run-length coded in a few bytes: allowed by --max-pixels 4e9, too large for one RGB array.
        var file = With(With(Bmp(4, 2, 8, [0, 1], compression: 1), 18, 30000), 22, 30000);
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(file, "t.bmp", 4_000_000_000));
        Assert.Equal("t.bmp: 30000×30000 BMP is too large to decode (its RGB pixels are more than one buffer holds)", e.Message);
    }

    [Theory]
    [MemberData(nameof(Bad))]
    public void BadBmpsFailWithOneLine(string _, byte[] file, string reason)
    {
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(file, "t.bmp"));
        Assert.Equal($"t.bmp: {reason}", e.Message);
    }
}
