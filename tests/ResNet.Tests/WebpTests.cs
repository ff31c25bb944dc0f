using System.Buffers.Binary;
using ResNet.Runtime;
using ResNet.Runtime.Images;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// WebPs that must fail, each with its one-line error (PIL's bytes for those that decode are <see cref="ImageTests"/>'
/// fixtures), and the container's optional chunks being skipped.
/// </summary>
public class WebpTests
{
    private static readonly byte[] Simple = File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), "webp_q75_61x45.webp"));

    /// <summary>The fixture's VP8 frame (its simple form holds one chunk, at byte 12).</summary>
    private static byte[] Frame => Simple[20..(20 + BinaryPrimitives.ReadInt32LittleEndian(Simple.AsSpan(16)))];

    /// <summary>A lossless fixture's VP8L data.</summary>
    private static byte[] Lossless
    {
        get
        {
            var file = File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), "webp_lossless.webp"));
            return file[20..(20 + BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(16)))];
        }
    }

    private static byte[] Chunk(string tag, byte[] data)
    {
        var c = new byte[8 + data.Length + (data.Length & 1)];
        System.Text.Encoding.Latin1.GetBytes(tag).CopyTo(c, 0);
        BinaryPrimitives.WriteInt32LittleEndian(c.AsSpan(4), data.Length);
        data.CopyTo(c, 8);
        return c;
    }

    private static byte[] Riff(params byte[][] chunks)
    {
        byte[] body = [.. "WEBP"u8, .. chunks.SelectMany(c => c)];
        var file = new byte[8 + body.Length];
        "RIFF"u8.CopyTo(file);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(4), body.Length);
        body.CopyTo(file, 8);
        return file;
    }

    /// <summary>A VP8X chunk: <paramref name="flags"/> and a canvas of <paramref name="width"/> × <paramref name="height"/>.</summary>
    private static byte[] Vp8x(byte flags, int width, int height, int size = 10)
    {
        var d = new byte[size];
        d[0] = flags;
        if (size >= 10)
        {
            d[4] = (byte)(width - 1); d[5] = (byte)((width - 1) >> 8);
            d[7] = (byte)(height - 1); d[8] = (byte)((height - 1) >> 8);
        }
        return Chunk("VP8X", d);
    }

    /// <summary>An animation frame at (2·<paramref name="halfLeft"/>, 2·<paramref name="halfTop"/>) holding <paramref name="chunks"/>.</summary>
    private static byte[] Anmf(int halfLeft, int halfTop, int width, int height, params byte[][] chunks)
    {
        byte[] header = [(byte)halfLeft, 0, 0, (byte)halfTop, 0, 0, (byte)(width - 1), 0, 0, (byte)(height - 1), 0, 0, 100, 0, 0, 0];
        return Chunk("ANMF", [.. header, .. chunks.SelectMany(c => c)]);
    }

    private static byte[] WithFrameByte(int index, Func<byte, byte> change)
    {
        var f = Frame;
        f[index] = change(f[index]);
        return Riff(Chunk("VP8 ", f));
    }

    public static TheoryData<string, byte[], string> Bad() => new()
    {
        { "riff-too-small", [.. "RIFF"u8, 4, 0, 0, 0, .. "WEBPVP8 "u8, 0, 0, 0, 0], "corrupt WebP: RIFF size too small" },
        { "cut-file", Simple[..^10], $"corrupt WebP: truncated file (the RIFF header says {Simple.Length} bytes, the file has {Simple.Length - 10})" },
        { "cut-chunk", Riff(Chunk("VP8 ", Frame)[..^10]), "corrupt WebP: truncated VP8 chunk" },
        { "cut-unknown-chunk", Riff(Vp8x(0, 61, 45), Chunk("\n\0\u00ff?", new byte[10])[..^2]), "corrupt WebP: truncated 0x0A00FF3F chunk" },
        { "lossless-short", Riff(Chunk("VP8L", [0x2F, 0, 0, 0])), "corrupt WebP: truncated VP8L header" },
        { "lossless-signature", Riff(Chunk("VP8L", [0x2E, 0, 0, 0, 0])), "corrupt WebP: bad VP8L signature" },
        { "lossless-version", Riff(Chunk("VP8L", [0x2F, 0, 0, 0, 0x20])), "corrupt WebP: unknown VP8L version 1" },
        { "lossless-no-codes", Riff(Chunk("VP8L", [0x2F, 0, 0, 0, 0])), "corrupt WebP: invalid code length code" },
        { "lossless-cut", Riff(Chunk("VP8L", Lossless[..(Lossless.Length / 2)])), "corrupt WebP: premature end of the lossless data" },
        // Subtract green (type 2), then subtract green again.
        { "lossless-twice", Riff(Chunk("VP8L", [0x2F, 0, 0, 0, 0, 0b101101])), "corrupt WebP: a transform given twice" },
        { "animation-without-frames", Riff(Vp8x(0x02, 61, 45), Chunk("ANIM", new byte[6])), "corrupt WebP: no image data" },
        { "frame-off-canvas", Riff(Vp8x(0x02, 61, 45), Chunk("ANIM", new byte[6]), Anmf(1, 0, 61, 45, Chunk("VP8 ", Frame))),
            "corrupt WebP: the first frame (61×45 at 2, 0) does not fit its 61×45 canvas" },
        { "frame-size", Riff(Vp8x(0x02, 70, 50), Chunk("ANIM", new byte[6]), Anmf(0, 0, 62, 45, Chunk("VP8 ", Frame))),
            "corrupt WebP: the first frame's image is 61×45, its ANMF chunk says 62×45" },
        { "frame-without-image", Riff(Vp8x(0x02, 61, 45), Chunk("ANIM", new byte[6]), Anmf(0, 0, 61, 45, Chunk("ALPH", [0]))),
            "corrupt WebP: no image data in the first frame" },
        { "lossless-frame-size", Riff(Vp8x(0x02, 61, 45), Chunk("ANIM", new byte[6]), Anmf(0, 0, 61, 45, Chunk("VP8L", [0x2F, 0, 0, 0, 0]))),
            "corrupt WebP: the first frame's image is 1×1, its ANMF chunk says 61×45" },
        { "vp8x-size", Riff(Vp8x(0, 61, 45, size: 12), Chunk("VP8 ", Frame)), "corrupt WebP: VP8X chunk of the wrong size" },
        { "vp8x-second", Riff(Chunk("ICCP", new byte[4]), Vp8x(0, 61, 45), Chunk("VP8 ", Frame)), ImageDecoder.NotAnImage },
        { "no-image", Riff(Vp8x(0, 61, 45), Chunk("ICCP", new byte[4])), "corrupt WebP: no image data" },
        { "canvas", Riff(Vp8x(0, 60, 45), Chunk("VP8 ", Frame)), "corrupt WebP: the image is 61×45 on a 60×45 canvas" },
        { "short-frame", Riff(Chunk("VP8 ", Frame[..9])), "corrupt WebP: truncated VP8 frame header" },
        { "inter-frame", WithFrameByte(0, b => (byte)(b | 1)), "corrupt WebP: not a key frame" },
        { "profile", WithFrameByte(0, b => (byte)(b | 0x08)), "corrupt WebP: unknown VP8 profile" },
        { "hidden", WithFrameByte(0, b => (byte)(b & ~0x10)), "corrupt WebP: the frame is not shown" },
        { "start-code", WithFrameByte(4, _ => 0x02), "corrupt WebP: bad VP8 start code" },
        { "no-width", WithFrameByte(6, _ => 0), "corrupt WebP: an empty image (0×45)" },
        { "partition-0-too-long", WithFrameByte(2, b => (byte)(b + 1)), "corrupt WebP: bad partition length" },
        { "no-tokens", Riff(Chunk("VP8 ", Frame[..(10 + FirstPartition)])), "corrupt WebP: cannot parse partitions" },
        { "cut-tokens", Riff(Chunk("VP8 ", Frame[..(10 + FirstPartition + 20)])), "corrupt WebP: premature end of the data" },
    };

    private static int FirstPartition => (Frame[0] | Frame[1] << 8 | Frame[2] << 16) >> 5;

    [Theory]
    [MemberData(nameof(Bad))]
    public void BadWebpsGiveOneLineErrors(string _, byte[] file, string message)
    {
        var e = Assert.ThrowsAny<ResNetException>(() => ImageDecoder.Decode(file, "t.webp"));
        Assert.Equal($"t.webp: {message}", e.Message);
    }

    [Fact]
    public void TheScalarLoopFilterGivesPilsBytesToo()
    {
        // The filter runs eight pixels at a time where SSE2 is (every x64); its scalar form is the fallback. Another
        // test decoding a WebP meanwhile gets the same bytes either way.
        var dir = Fixtures.Dir("images");
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "images.json")));
        var files = doc.RootElement.EnumerateArray().Where(e => e.GetProperty("file").GetString()!.EndsWith(".webp")).ToArray();
        Assert.NotEmpty(files);
        bool vectorized = Vp8LoopFilter.Vectorized;
        try
        {
            Vp8LoopFilter.Vectorized = false;
            foreach (var e in files)
            {
                var pixels = ImageDecoder.Load(Path.Combine(dir, e.GetProperty("file").GetString()!)).Pixels;
                Assert.Equal(e.GetProperty("rgb_sha256").GetString(), Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(pixels)));
            }
        }
        finally
        {
            Vp8LoopFilter.Vectorized = vectorized;
        }
    }

    [Fact]
    public void OptionalChunksBeforeAndAfterTheImageAreSkipped()
    {
        // An extended file with a color profile, an (unread) alpha plane before the image and metadata after it: the
        // same pixels as the simple file.
        var file = Riff(Vp8x(0x10 | 0x20 | 0x08, 61, 45), Chunk("ICCP", new byte[7]), Chunk("ALPH", [0, 1, 2]), Chunk("VP8 ", Frame), Chunk("EXIF", new byte[5]));
        Assert.Equal(ImageDecoder.Decode(Simple, "a.webp").Pixels, ImageDecoder.Decode(file, "b.webp").Pixels);
    }

    [Fact]
    public void AnAnimationsFirstFrameIsPlacedOnABlackCanvas()
    {
        var file = Riff(Vp8x(0x02, 70, 50), Chunk("ANIM", new byte[6]), Anmf(2, 1, 61, 45, Chunk("VP8 ", Frame)), Anmf(0, 0, 1, 1, [1, 2, 3]));
        var frame = ImageDecoder.Decode(Simple, "a.webp").Pixels;
        var canvas = ImageDecoder.Decode(file, "b.webp");
        Assert.Equal((70, 50), (canvas.Width, canvas.Height));
        for (int y = 0; y < 50; y++)
            for (int x = 0; x < 70; x++)
            {
                bool inside = x >= 4 && x < 65 && y >= 2 && y < 47;
                var expected = inside ? frame.AsSpan(((y - 2) * 61 + x - 4) * 3, 3).ToArray() : new byte[3];
                Assert.Equal(expected, canvas.Pixels.AsSpan((y * 70 + x) * 3, 3).ToArray());
            }
    }

    [Fact]
    public void AnOddSizedChunkIsPaddedToAnEvenLength()
    {
        var file = Riff(Vp8x(0, 61, 45), Chunk("XYZW", new byte[3]), Chunk("VP8 ", Frame));
        Assert.Equal(ImageDecoder.Decode(Simple, "a.webp").Pixels, ImageDecoder.Decode(file, "b.webp").Pixels);
    }
}
