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

    private static byte[] WithFrameByte(int index, Func<byte, byte> change) => Riff(Chunk("VP8 ", FrameWithByte(index, change)));

    private static byte[] FrameWithByte(int index, Func<byte, byte> change)
    {
        var f = Frame;
        f[index] = change(f[index]);
        return f;
    }

    private static readonly byte[] Anim = Chunk("ANIM", new byte[6]);

    /// <summary>An uncompressed, unfiltered alpha plane for the 61×45 frame: its header byte, then a byte per pixel.</summary>
    private static byte[] RawAlpha(int header = 0, int pixels = 61 * 45) => [(byte)header, .. new byte[pixels]];

    /// <summary>The 61×45 frame with an alpha chunk holding <paramref name="alpha"/>.</summary>
    private static byte[] WithAlpha(byte[] alpha) => Riff(Vp8x(0x10, 61, 45), Chunk("ALPH", alpha), Chunk("VP8 ", Frame));

    /// <summary>An image fixture's chunks (tag, payload) after the RIFF header.</summary>
    private static List<(string Tag, byte[] Data)> Chunks(string fixture)
    {
        var b = File.ReadAllBytes(Path.Combine(Fixtures.Dir("images"), fixture));
        var chunks = new List<(string, byte[])>();
        for (int pos = 12; pos + 8 <= b.Length;)
        {
            int size = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(pos + 4));
            chunks.Add((System.Text.Encoding.Latin1.GetString(b, pos, 4), b[(pos + 8)..(pos + 8 + size)]));
            pos += 8 + size + (size & 1);
        }
        return chunks;
    }

    /// <summary>A fixture with its ALPH chunk's payload changed.</summary>
    private static byte[] WithFixtureAlpha(string fixture, Func<byte[], byte[]> change) =>
        Riff([.. Chunks(fixture).Select(c => Chunk(c.Tag, c.Tag == "ALPH" ? change(c.Data) : c.Data))]);

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
        { "frame-off-canvas", Riff(Vp8x(0x02, 61, 45), Anim, Anmf(1, 0, 61, 45, Chunk("VP8 ", Frame))),
            "corrupt WebP: frame 1 (61×45 at 2, 0) does not fit its 61×45 canvas" },
        { "frame-without-image", Riff(Vp8x(0x02, 61, 45), Anim, Anmf(0, 0, 61, 45, Chunk("ALPH", [0]))),
            "corrupt WebP: ALPH chunk without an image" },
        // libwebp's demuxer reads the whole file: what is wrong after the first frame is refused too.
        { "second-frame-off-canvas", Riff(Vp8x(0x02, 61, 45), Anim, Anmf(0, 0, 61, 45, Chunk("VP8 ", Frame)), Anmf(0, 1, 61, 45, Chunk("VP8 ", Frame))),
            "corrupt WebP: frame 2 (61×45 at 0, 2) does not fit its 61×45 canvas" },
        { "second-frame-header", Riff(Vp8x(0x02, 61, 45), Anim, Anmf(0, 0, 61, 45, Chunk("VP8 ", Frame)), Anmf(0, 0, 61, 45, Chunk("VP8 ", FrameWithByte(4, _ => 2)))),
            "corrupt WebP: bad VP8 start code" },
        { "frame-past-its-chunk", Riff(Vp8x(0x02, 61, 45), Anim, Anmf(0, 0, 61, 45), Chunk("VP8 ", Frame)),
            "corrupt WebP: an animation frame's image runs past its ANMF chunk" },
        { "empty-last-frame", Riff(Vp8x(0x02, 61, 45), Anim, Anmf(0, 0, 61, 45, Chunk("VP8 ", Frame)), Anmf(0, 0, 61, 45)),
            "corrupt WebP: an ANMF chunk without a frame's chunks at the end of the file" },
        { "frame-before-anim", Riff(Vp8x(0x02, 61, 45), Anmf(0, 0, 61, 45, Chunk("VP8 ", Frame)), Anim), "corrupt WebP: ANMF chunk before the ANIM chunk" },
        { "short-anim", Riff(Vp8x(0x02, 61, 45), Chunk("ANIM", new byte[4]), Anmf(0, 0, 61, 45, Chunk("VP8 ", Frame))), "corrupt WebP: ANIM chunk too short" },
        { "image-in-animation", Riff(Vp8x(0x02, 61, 45), Anim, Anmf(0, 0, 61, 45, Chunk("VP8 ", Frame)), Chunk("VP8 ", Frame)),
            "corrupt WebP: VP8 chunk outside the animation's frames" },
        { "image-after-anim", Riff(Vp8x(0, 61, 45), Anim, Chunk("VP8 ", Frame)), "corrupt WebP: VP8 chunk outside the animation's frames" },
        { "two-images", Riff(Vp8x(0, 61, 45), Chunk("VP8 ", Frame), Chunk("XYZW", []), Chunk("VP8 ", Frame)), "corrupt WebP: more than one image" },
        { "flags", Riff(Vp8x(0x01, 61, 45), Chunk("VP8 ", Frame)), "corrupt WebP: unknown VP8X flags (0x01)" },
        { "stray-bytes", Riff(Vp8x(0, 61, 45), Chunk("VP8 ", Frame), [1, 2, 3]), "corrupt WebP: 3 bytes after the last chunk, too few for a chunk" },
        { "stray-byte-simple", Riff(Chunk("VP8 ", Frame), [1]), "corrupt WebP: 1 byte after the last chunk, too few for a chunk" },
        { "unpadded-chunk", Riff(Vp8x(0, 61, 45), Chunk("VP8 ", Frame), Chunk("XYZW", [1, 2, 3])[..^1]), "corrupt WebP: truncated XYZW chunk" },
        { "alpha-after-image", Riff(Vp8x(0x10, 61, 45), Chunk("VP8 ", Frame), Chunk("ALPH", RawAlpha())), "corrupt WebP: ALPH chunk after its image" },
        { "alpha-without-image", Riff(Vp8x(0x10, 61, 45), Chunk("ALPH", RawAlpha()), Chunk("XYZW", []), Chunk("VP8 ", Frame)),
            "corrupt WebP: ALPH chunk without an image" },
        { "alpha-before-lossless", Riff(Vp8x(0x10, 61, 45), Chunk("ALPH", RawAlpha()), Chunk("VP8L", Lossless)),
            "corrupt WebP: ALPH chunk before a lossless image, which has its own alpha" },
        // The alpha plane is decoded (PIL asks libwebp for RGBA) though convert('RGB') drops it.
        { "alpha-empty", WithAlpha([]), "corrupt WebP: alpha plane: ALPH chunk too short" },
        { "alpha-reserved-bits", WithAlpha(RawAlpha(0x40)), "corrupt WebP: alpha plane: reserved header bits set" },
        { "alpha-compression", WithAlpha(RawAlpha(0x02)), "corrupt WebP: alpha plane: unknown compression 2" },
        { "alpha-preprocessing", WithAlpha(RawAlpha(0x20)), "corrupt WebP: alpha plane: unknown preprocessing 2" },
        { "alpha-raw-short", WithAlpha(RawAlpha(0, 61 * 45 - 1)), "corrupt WebP: alpha plane: 2744 bytes for 61×45 pixels" },
        { "alpha-animation-frame", Riff(Vp8x(0x02, 61, 45), Anim, Anmf(0, 0, 61, 45, Chunk("ALPH", RawAlpha(0, 10)), Chunk("VP8 ", Frame))),
            "corrupt WebP: alpha plane: 10 bytes for 61×45 pixels" },
        { "alpha-lossless-cut", WithFixtureAlpha("cwebp_alpha.webp", a => a[..^4]), "corrupt WebP: alpha plane: premature end of the lossless data" },
        // One byte short is what libwebp's byte-per-pixel alpha decoding still takes (that fixture decodes); two is not.
        { "alpha-lossless-ends-early", WithFixtureAlpha("webp_alpha_ends_early.webp", a => a[..^1]), "corrupt WebP: alpha plane: a copy from outside the image" },
        { "vp8x-size", Riff(Vp8x(0, 61, 45, size: 12), Chunk("VP8 ", Frame)), "corrupt WebP: VP8X chunk of the wrong size" },
        { "vp8x-second", Riff(Chunk("ICCP", new byte[4]), Vp8x(0, 61, 45), Chunk("VP8 ", Frame)), ImageDecoder.NotAnImage },
        { "no-image", Riff(Vp8x(0, 61, 45), Chunk("ICCP", new byte[4])), "corrupt WebP: no image data" },
        { "canvas", Riff(Vp8x(0, 60, 45), Chunk("VP8 ", Frame)), "corrupt WebP: the image is 61×45 on a 60×45 canvas" },
        { "short-frame", Riff(Chunk("VP8 ", Frame[..8])), "corrupt WebP: truncated VP8 frame header" },
        // Nine bytes and the pad byte make the ten of a frame header, but the first partition cannot fit in nine.
        { "short-frame-padded", Riff(Chunk("VP8 ", Frame[..9])), "corrupt WebP: bad partition length" },
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
        // An extended file with a color profile, an alpha plane before the image and metadata after it: the same pixels
        // as the simple file.
        var file = Riff(Vp8x(0x10 | 0x20 | 0x08, 61, 45), Chunk("ICCP", new byte[7]), Chunk("ALPH", RawAlpha(0x0C)), Chunk("VP8 ", Frame), Chunk("EXIF", new byte[5]));
        Assert.Equal(ImageDecoder.Decode(Simple, "a.webp").Pixels, ImageDecoder.Decode(file, "b.webp").Pixels);
    }

    [Fact]
    public void AnAlphaChunkIsNotReadWithoutTheVp8xFlag()
    {
        // libwebp's demuxer drops a still image's alpha when the VP8X flags do not announce it, damaged or not.
        var file = Riff(Vp8x(0, 61, 45), Chunk("ALPH", [0xFF, 1, 2]), Chunk("VP8 ", Frame));
        Assert.Equal(ImageDecoder.Decode(Simple, "a.webp").Pixels, ImageDecoder.Decode(file, "b.webp").Pixels);
    }

    [Fact]
    public void AnAnimationFramesSizeIsItsImagesAndAnEmptyFrameIsNone()
    {
        // The ANMF chunk's own size is not read once the frame has an image (libwebp takes the image's); a frame
        // without chunks is not a frame, so the next one is the first.
        var declared = Riff(Vp8x(0x02, 70, 50), Anim, Anmf(2, 1, 61, 45, Chunk("VP8 ", Frame)));
        var other = Riff(Vp8x(0x02, 70, 50), Anim, Anmf(2, 1, 7, 3, Chunk("VP8 ", Frame)));
        var afterEmpty = Riff(Vp8x(0x02, 70, 50), Anim, Anmf(0, 0, 70, 50), Anmf(2, 1, 61, 45, Chunk("VP8 ", Frame)));
        var pixels = ImageDecoder.Decode(declared, "a.webp").Pixels;
        Assert.Equal(pixels, ImageDecoder.Decode(other, "b.webp").Pixels);
        Assert.Equal(pixels, ImageDecoder.Decode(afterEmpty, "c.webp").Pixels);
    }

    [Fact]
    public void AnAnimationsFirstFrameIsPlacedOnABlackCanvas()
    {
        var file = Riff(Vp8x(0x02, 70, 50), Anim, Anmf(2, 1, 61, 45, Chunk("VP8 ", Frame)), Anmf(0, 0, 1, 1, Chunk("VP8L", [0x2F, 0, 0, 0, 0])));
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
