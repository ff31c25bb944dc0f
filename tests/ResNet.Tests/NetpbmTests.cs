using ResNet.Runtime;
using ResNet.Runtime.Images;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// Netpbm files that must fail, each with its one-line error before its pixels' memory is taken (PIL's bytes for
/// those that decode are <see cref="ImageTests"/>' fixtures), and PIL's header-token rules.
/// </summary>
public class NetpbmTests
{
    private static byte[] Decode(string file) => ImageDecoder.Decode(System.Text.Encoding.Latin1.GetBytes(file), "t.pnm").Pixels;

    [Fact]
    public void ACommentInsideAHeaderTokenIsSkippedAndTheTokenGoesOn()
    {
        // PIL reads "1#x\n2" as the token 12: a 12×1 image here, not 1×2 with a stray token.
        Assert.Equal(36, Decode("P5 1#x\n2 1 255\n" + new string('\x07', 12)).Length);
    }

    [Fact]
    public void PlainDataThatStopsInATokenRepeatsItToTheEnd()
    {
        // PIL 9.4 stitches the token cut at the end of the file to a space, again and again (checked against Pillow).
        byte[] gray = [.. new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }.Concat(Enumerable.Repeat((byte)17, 10)).SelectMany(v => new[] { v, v, v })];
        Assert.Equal(gray, Decode("P2\n5 4\n255\n1 2 3 4 5 6 7 8 9 10 17"));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 8, 8 }, Decode("P3\n2 2\n255\n1 2 3 4 5 6 7 8"));
    }

    [Fact]
    public void PlainSamplesAreScaledByPythonsRounding()
    {
        // round(1 / 2 · 255) = round(127.5) = 128 (half to even), round(1/3 · 255) = 85, gray above 255 clamped.
        Assert.Equal(new byte[] { 128, 128, 128 }, Decode("P2 1 1 2 1"));
        Assert.Equal(new byte[] { 85, 0, 255 }, Decode("P3 1 1 3 1 0 3"));
        Assert.Equal(new byte[] { 255, 255, 255 }, Decode("P2 1 1 1000 600"));
        Assert.Equal(new byte[] { 0, 0, 0, 255, 255, 255 }, Decode("P1 2 1\n1#c\n0"));
    }

    public static TheoryData<string, string> Bad() => new()
    {
        { "P6\n", "corrupt PPM: the header ends early" },
        { "P6 4 x 255\n", "corrupt PPM: height 'x' is not a number" },
        { "P6 12345678901 1 255\n", "corrupt PPM: header token '12345678901…' is too long" },
        { "P5 0 3 255\n", "corrupt PGM: impossible size 0×3" },
        { "P5 3 3 0\n", "corrupt PGM: maximum value 0 (1 to 65535)" },
        { "P5 3 3 65536\n", "corrupt PGM: maximum value 65536 (1 to 65535)" },
        { "P6 2 2 255\nabc", "corrupt PPM: truncated pixel data (3 of 12 bytes)" },
        { "P5 2 2 1000\nabcdef", "corrupt PGM: truncated pixel data (6 of 8 bytes)" },
        { "P4 9 2\nab", "corrupt PBM: truncated pixel data (2 of 4 bytes)" },
        { "P2 9000 9000 255\n1 2 3\n", "corrupt PGM: the pixel data ends early (6 bytes for 81000000 samples)" },
        { "P2 2 2 255\n1 2  3   ", "corrupt PGM: the pixel data ends early (3 of 4 samples)" },
        { "P2 2 1 255\n1 300 ", "corrupt PGM: sample value 300 is above the maximum value 255" },
        { "P3 1 1 255\n1 x2 3", "corrupt PPM: 'x' in the pixel data is not a sample value" },
        { "P2 1 1 255\n12345678901 ", "corrupt PGM: '12345678901' in the pixel data is not a sample value" },
        { "P1 2 2\n0 1 2 0", "corrupt PBM: '2' in the pixel data (0 and 1 are allowed)" },
        { "P1 3 1\n0 1   ", "corrupt PBM: the pixel data ends early (2 of 3 pixels)" },
        { "P6 30000 30000 255\n", "30000×30000 = 900000000 pixels exceeds the limit of 89478485 (possible decompression bomb; raise it with --max-pixels)" },
    };

    [Fact]
    public void ANetpbmImageLargerThanOneArrayIsRefusedUnderARaisedPixelLimit()
    {
        var e = Assert.Throws<InputException>(() => ImageDecoder.Decode("P6 30000 30000 255\n"u8.ToArray(), "t.ppm", 4_000_000_000));
        Assert.Equal("t.ppm: 30000×30000 PPM is too large to decode (its RGB pixels are more than one buffer holds)", e.Message);
    }

    [Theory]
    [MemberData(nameof(Bad))]
    public void BadNetpbmFilesFailWithOneLine(string file, string reason)
    {
        var e = Assert.Throws<InputException>(() => Decode(file));
        Assert.Equal($"t.pnm: {reason}", e.Message);
    }
}
