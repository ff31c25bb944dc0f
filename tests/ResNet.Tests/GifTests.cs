using ResNet.Runtime;
using ResNet.Runtime.Images;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// GIFs that must fail, each with its one-line error (PIL's bytes for those that decode are <see cref="ImageTests"/>'
/// fixtures), and the first image of a file being all that is read.
/// </summary>
public class GifTests
{
    /// <summary>A 4×2 screen with a 2-entry global table, then <paramref name="blocks"/> and the trailer.</summary>
    private static byte[] Gif(byte[] blocks, int width = 4, int height = 2) =>
        [.. "GIF89a"u8, (byte)width, (byte)(width >> 8), (byte)height, (byte)(height >> 8), 0x80, 0, 0, 10, 20, 30, 40, 50, 60, .. blocks, (byte)';'];

    /// <summary>An image descriptor at (0, 0) and its data: code size 8, <paramref name="codes"/> of 9 bits in one sub-block.</summary>
    private static byte[] Image(int width, int height, params int[] codes)
    {
        var data = new List<byte>();
        int acc = 0, bits = 0;
        foreach (int code in codes)
        {
            acc |= code << bits;
            for (bits += 9; bits >= 8; bits -= 8, acc >>= 8) data.Add((byte)acc);
        }
        if (bits > 0) data.Add((byte)acc);
        return [(byte)',', 0, 0, 0, 0, (byte)width, 0, (byte)height, 0, 0, 8, (byte)data.Count, .. data, 0];
    }

    private const int Clear = 256, End = 257;

    [Fact]
    public void OnlyTheFirstImageIsRead()
    {
        // 2×1 of indices 1, 0; then a second image whose data is garbage, as PIL never reads it.
        var file = Gif([.. Image(2, 1, Clear, 1, 0, End), (byte)',', 0, 0, 0, 0, 2, 0, 1, 0, 0, 8, 3, 0xFF, 0xFF, 0xFF, 0], width: 2, height: 1);
        Assert.Equal(new byte[] { 40, 50, 60, 10, 20, 30 }, ImageDecoder.Decode(file, "t.gif").Pixels);
    }

    [Fact]
    public void TheLastPixelEndsTheDataWhateverFollows()
    {
        // No end code and no block terminator: PIL stops at the last pixel, and so does this decoder.
        var file = Gif([(byte)',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 8, 3, 0x00, 0x03, 0x00], width: 1, height: 1); // clear, then 1
        Assert.Equal(new byte[] { 40, 50, 60 }, ImageDecoder.Decode(file, "t.gif").Pixels);
    }

    public static TheoryData<string, byte[], string> Bad() => new()
    {
        { "cut-header", "GIF89a\x04\x00"u8.ToArray(), "corrupt GIF: truncated header" },
        { "no-image", Gif([]), "corrupt GIF: no image in the file" },
        { "no-trailer", Gif([])[..^1], "corrupt GIF: no image in the file" },
        { "cut-global-table", [.. "GIF89a"u8, 4, 0, 2, 0, 0x87, 0, 0, 1, 2, 3], "corrupt GIF: truncated global color table" },
        { "short-graphic-control", Gif([(byte)'!', 0xF9, 2, 1, 0, 0]), "corrupt GIF: graphic control extension too short" },
        { "empty-application-extension", Gif([(byte)'!', 0xFF, 0]), "corrupt GIF: empty application extension" },
        { "cut-extension", [.. Gif([])[..^1], (byte)'!'], "corrupt GIF: truncated extension" },
        { "cut-descriptor", Gif([(byte)',', 0, 0, 0, 0]), "corrupt GIF: truncated image descriptor" },
        { "empty-image", Gif([(byte)',', 0, 0, 0, 0, 0, 0, 2, 0, 0, 8]), "corrupt GIF: an empty image (0×2)" },
        { "no-code-size", [.. "GIF89a"u8, 4, 0, 2, 0, 0, 0, 0, (byte)',', 0, 0, 0, 0, 4, 0, 2, 0, 0], "corrupt GIF: truncated image (no LZW code size)" },
        { "code-size", Gif([(byte)',', 0, 0, 0, 0, 4, 0, 2, 0, 0, 13, 0]), "corrupt GIF: LZW minimum code size 13 (at most 12)" },
        { "end-code-early", Gif(Image(4, 2, Clear, 1, 0, End)), "corrupt GIF: the image data ends before its last pixel" },
        { "cut-data", Gif(Image(4, 2, Clear, 1, 0, 1, 0, 1))[..^4], "corrupt GIF: the image data ends before its last pixel" },
        { "bad-first-code", Gif(Image(4, 2, Clear, 300)), "corrupt GIF: bad LZW code 300 after a clear code" },
        { "code-past-table", Gif(Image(4, 2, Clear, 1, 400)), "corrupt GIF: bad LZW code 400 (the table has 258)" },
        { "bomb", Gif(Image(4, 2, Clear, 1), width: 60000, height: 60000), "60000×60000 = 3600000000 pixels exceeds the limit of 89478485 (possible decompression bomb; raise it with --max-pixels)" },
        { "bomb-past-screen", Gif([(byte)',', 0x60, 0xEA, 0x60, 0xEA, 1, 0, 1, 0, 0, 8, 0]), "60001×60001 = 3600120001 pixels exceeds the limit of 89478485 (possible decompression bomb; raise it with --max-pixels)" },
    };

    [Fact]
    public void AGifLargerThanOneArrayIsRefusedUnderARaisedPixelLimit()
    {
        var file = Gif(Image(4, 2, Clear, 1), width: 60000, height: 60000);
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(file, "t.gif", 4_000_000_000));
        Assert.Equal("t.gif: 60000×60000 GIF is too large to decode (its RGB pixels are more than one buffer holds)", e.Message);
    }

    [Theory]
    [MemberData(nameof(Bad))]
    public void BadGifsFailWithOneLine(string _, byte[] file, string reason)
    {
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode(file, "t.gif"));
        Assert.Equal($"t.gif: {reason}", e.Message);
    }
}
