using System.Buffers.Binary;
using System.Diagnostics;
using ResNet.Runtime;
using ResNet.Runtime.Images;
using ResNet.Runtime.IO;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// A cheap, deterministic fuzz pass in every test run (the SharpFuzz harness in fuzz/ goes deeper): thousands
/// of mutated copies of each seed — bit flips, byte runs, truncations, duplicated slices — through each
/// reader. The only acceptable outcomes are a result or the reader's own one-line exception, quickly.
/// </summary>
public class MutationTests
{
    public static TheoryData<string> Seeds() => new()
    {
        "images/rgb8_61x45.png", "images/palette4_interlaced.png", "images/gray16.png", "images/baseline.jpg",
        "images/progressive.jpg", "images/restart_progressive.jpg", "images/mixed_2x2_1x1_2x1.jpg", "images/cmyk.jpg",
        "images/bgr24_5x3_topdown.bmp", "images/palette4.bmp", "images/bgr565_v4.bmp", "images/rle8.bmp", "images/rle4.bmp",
        "images/gif_interlaced_9.gif", "images/gif_table_full_deferred.gif", "images/gif_extensions_and_junk.gif", "images/pil_animated.gif",
        "images/p3_max7.ppm", "images/p1.pbm", "images/p5_max300.pgm",
        "images/tiff_rgb_lzw_predictor.tif", "images/tiff_rgb_planar_tiles_deflate.tif", "images/tiff_palette4.tif",
        "images/tiff_bilevel_white_is_zero_packbits.tif", "images/tiff_rgba16_associated.tif", "images/tiff_bigtiff.tif",
        "images/tiffcp_jpeg_ycbcr_strips.tif", "images/pil_jpeg_gray.tif",
        "images/webp_q75_61x45.webp", "images/cwebp_alpha.webp", "images/webp_4_partitions.webp", "images/cwebp_simple_filter.webp",
        "images/webp_lossless.webp", "images/webp_lossless_palette4.webp", "images/webp_lossless_alpha.webp", "images/webp_animated_offset_frame.webp",
        "images/cwebp_alpha_smooth.webp",
        "tiny/input0.npy", "tiny/weights.pth", "formats/float16-pth/weights.pth", "formats/bfloat16-safetensors/weights.safetensors",
        "formats/float32-safetensors/weights.safetensors", "formats/float32-legacy-pth/weights.pth", "views/views-legacy-v1.pth",
    };

    [Theory]
    [MemberData(nameof(Seeds))]
    public void MutatedInputsFailCleanly(string seed)
    {
        var original = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fixtures", seed));
        // A stable seed (string.GetHashCode differs per process): a failure here reproduces everywhere.
        var rng = new Random(seed.Aggregate(17, (h, c) => unchecked(h * 31 + c)));
        // RESNET18_MUTATIONS raises the count for a longer local run.
        int scale = int.TryParse(Environment.GetEnvironmentVariable("RESNET18_MUTATIONS"), out int m) && m > 0 ? m : 1;
        int iterations = (IsWeights(seed) ? 300 : 1500) * scale;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
        {
            var bytes = Mutate(original, rng);
            try
            {
                Read(seed, bytes, windowed: i % 2 == 1);
            }
            catch (ResNetException e)
            {
                Assert.DoesNotContain('\n', e.Message);
            }
            catch (Exception e)
            {
                File.WriteAllBytes(Path.Combine(Path.GetTempPath(), $"crash-{Path.GetFileName(seed)}-{i}"), bytes);
                Assert.Fail($"{seed} mutation {i}: {e.GetType().Name}: {e.Message} (input saved to {Path.GetTempPath()})");
            }
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60 * scale), $"{seed}: {iterations} mutations took {clock.Elapsed}");
    }

    [Theory]
    [InlineData("tiff_rgb_strips.tif", false)]
    [InlineData("tiff_rgb_lzw_predictor.tif", true)]
    [InlineData("tiff_rgb_planar_tiles_deflate.tif", true)]
    [InlineData("tiff_bigtiff.tif", true)]
    [InlineData("tiffcp_jpeg_ycbcr_strips.tif", true)]
    public void MutatedTiffsDecodeTheSameSplitAcrossThreads(string file, bool compressed)
    {
        // A TIFF's chunks decompress on several cores when the image repays it (forced here): every mutated copy must
        // give the same pixels, or the same one-line error (the first damaged chunk's), as on one thread.
        var original = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fixtures", "images", file));
        var rng = new Random(file.Aggregate(29, (h, c) => unchecked(h * 31 + c)));
        var copies = Enumerable.Range(0, 300).Select(_ => Mutate(original, rng)).ToArray();
        static string Outcome(byte[] bytes)
        {
            try
            {
                return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(ImageDecoder.Decode(bytes, "m.tif").Pixels));
            }
            catch (ResNetException e)
            {
                return e.Message;
            }
        }
        var alone = copies.Select(Outcome).ToArray();
        using (Fixtures.SplitEveryImage())
            for (int i = 0; i < copies.Length; i++) Assert.Equal(alone[i], Outcome(copies[i]));
        // Both outcomes were met: copies decoded to other pixels, and (compressed) copies refused in a chunk's data.
        string unchanged = Outcome(original);
        Assert.Contains(alone, o => !o.StartsWith("m.tif") && o != unchanged);
        if (compressed) Assert.Contains(alone, o => o.Contains("strip ") || o.Contains("tile "));
    }

    private static bool IsWeights(string seed) => seed.EndsWith(".pth") || seed.EndsWith(".safetensors");

    /// <summary>An image whole, or (<paramref name="windowed"/>) as FromFile decodes it: only the crop's source window.</summary>
    private static void Read(string seed, byte[] bytes, bool windowed)
    {
        if (seed.EndsWith(".npy")) Npy.Parse(bytes, "m.npy");
        else if (IsWeights(seed)) StateDict.Load(new MemoryStream(bytes), "m.pth").CheckAgainst(TinyResNet.Network.Parameters);
        else ImageNetTransform.ToTensor(ImageNetTransform.ResizeAndCrop(ImageDecoder.Decode(bytes, "m.img", ImageDecoder.DefaultMaxPixels, null,
            windowed ? ImageNetTransform.SourceWindow : null)));
    }

    /// <summary>
    /// PNGs whose checksums are right but whose contents are hostile, so they get past the structure check into
    /// the decoder: mutated scanline bytes (filter types included), header fields changed to other legal or
    /// illegal depths, color types and interlacing, data cut short or padded, palettes cut — each one rebuilt
    /// with valid CRCs and zlib streams. Every outcome must be an image or the reader's own one-line error.
    /// </summary>
    [Theory]
    [InlineData("rgb8_61x45.png")]
    [InlineData("palette4_interlaced.png")]
    [InlineData("gray16_interlaced.png")]
    [InlineData("rgba16.png")]
    [InlineData("palette1.png")]
    public void PngsWithValidChecksumsFailCleanly(string file)
    {
        var png = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fixtures", "images", file));
        var (ihdr, palette, raw) = Unpack(png);
        var rng = new Random(file.Aggregate(23, (h, c) => unchecked(h * 31 + c)));
        int scale = int.TryParse(Environment.GetEnvironmentVariable("RESNET18_MUTATIONS"), out int m) && m > 0 ? m : 1;
        for (int i = 0; i < 400 * scale; i++)
        {
            var header = (byte[])ihdr.Clone();
            var data = (byte[])raw.Clone();
            var pal = palette;
            switch (rng.Next(5))
            {
                case 0:
                    for (int k = rng.Next(1, 16); k > 0; k--) data[rng.Next(data.Length)] = (byte)rng.Next(256);
                    break;
                case 1:
                    header[8] = (byte)new[] { 1, 2, 4, 8, 16, 3 }[rng.Next(6)]; // bit depth
                    header[9] = (byte)new[] { 0, 2, 3, 4, 6, 1 }[rng.Next(6)]; // color type
                    header[12] = (byte)rng.Next(3); // interlace
                    break;
                case 2:
                    data = data[..rng.Next(data.Length)];
                    break;
                case 3:
                    data = [.. data, .. new byte[rng.Next(1, 5000)]];
                    break;
                default:
                    pal = palette.Length > 3 ? palette[..(3 * rng.Next(1, palette.Length / 3))] : [1, 2, 3];
                    header[9] = 3;
                    header[8] = (byte)new[] { 1, 2, 4, 8 }[rng.Next(4)];
                    break;
            }
            var bytes = BadImageTests.Png(BinaryPrimitives.ReadUInt32BigEndian(header), BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4)),
                header[8], header[9], BadImageTests.Deflate(data), pal.Length > 0 ? pal : null, interlace: header[12]);
            try
            {
                var image = ImageDecoder.Decode(bytes, "m.png");
                Assert.Equal((long)image.Width * image.Height * 3, image.Pixels.Length);
                // As FromFile decodes it: only the crop's window unfiltered and converted, every filter type checked.
                var windowed = ImageDecoder.Decode(bytes, "m.png", ImageDecoder.DefaultMaxPixels, null, ImageNetTransform.SourceWindow);
                Assert.Equal(ImageNetTransform.ResizeAndCrop(image).Pixels, ImageNetTransform.ResizeAndCrop(windowed).Pixels);
            }
            catch (ResNetException e)
            {
                Assert.DoesNotContain('\n', e.Message);
            }
            catch (Exception e)
            {
                File.WriteAllBytes(Path.Combine(Path.GetTempPath(), $"crash-{file}-{i}"), bytes);
                Assert.Fail($"{file} mutation {i}: {e.GetType().Name}: {e.Message} (input saved to {Path.GetTempPath()})");
            }
        }
    }

    /// <summary>A PNG's IHDR payload, PLTE payload (empty if none) and inflated IDAT stream.</summary>
    private static (byte[] Ihdr, byte[] Palette, byte[] Raw) Unpack(byte[] png)
    {
        byte[] ihdr = [], palette = [];
        var idat = new MemoryStream();
        for (int pos = 8; pos + 12 <= png.Length;)
        {
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(png, pos + 4, 4);
            var data = png.AsSpan(pos + 8, length).ToArray();
            if (type == "IHDR") ihdr = data;
            else if (type == "PLTE") palette = data;
            else if (type == "IDAT") idat.Write(data);
            pos += 12 + length;
        }
        idat.Position = 0;
        using var z = new System.IO.Compression.ZLibStream(idat, System.IO.Compression.CompressionMode.Decompress);
        var raw = new MemoryStream();
        z.CopyTo(raw);
        return (ihdr, palette, raw.ToArray());
    }

    internal static byte[] Mutate(byte[] src, Random rng)
    {
        var b = (byte[])src.Clone();
        switch (rng.Next(6))
        {
            case 0:
                for (int k = rng.Next(1, 8); k > 0; k--) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return b;
            case 1:
                for (int k = rng.Next(1, 4); k > 0; k--) b[rng.Next(b.Length)] = (byte)rng.Next(256);
                return b;
            case 2:
                return b[..rng.Next(b.Length)];
            case 3:
                {
                    int at = rng.Next(b.Length), len = Math.Min(rng.Next(1, 64), b.Length - at);
                    var fill = (byte)(rng.Next(2) == 0 ? 0xFF : 0x00);
                    Array.Fill(b, fill, at, len);
                    return b;
                }
            case 4:
                {
                    int at = rng.Next(b.Length), len = Math.Min(rng.Next(1, 256), b.Length - at);
                    return [.. b[..(at + len)], .. b[at..]];
                }
            default:
                {
                    // Interesting integers where lengths and sizes live.
                    int at = rng.Next(Math.Max(1, b.Length - 4));
                    uint[] values = [0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0xFFFF, 65536];
                    BitConverter.TryWriteBytes(b.AsSpan(at), values[rng.Next(values.Length)]);
                    return b;
                }
        }
    }
}
