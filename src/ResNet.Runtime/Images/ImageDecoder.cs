using System.Buffers.Binary;
using StbImageSharp;

namespace ResNet.Runtime.Images;

/// <summary>
/// Decodes PNG and JPEG into RGB the way torchvision's default loader does (<c>PIL.Image.open(f).convert('RGB')</c>):
/// alpha dropped without compositing, gray replicated, palette expanded, no EXIF rotation. Dimensions are
/// checked against a pixel limit before any pixel memory is allocated.
/// </summary>
public static class ImageDecoder
{
    /// <summary>PIL's Image.MAX_IMAGE_PIXELS: larger images are treated as decompression bombs.</summary>
    public const long DefaultMaxPixels = 89_478_485;

    /// <summary>Reads and decodes an image file.</summary>
    public static RgbImage Load(string path, long maxPixels = DefaultMaxPixels)
    {
        byte[] bytes;
        try
        {
            if (Directory.Exists(path)) throw new InputException($"{path}: is a directory");
            var info = new FileInfo(path);
            if (!info.Exists) throw new InputException($"{path}: no such file");
            if (info.Length > 1L << 30) throw new InputException($"{path}: {info.Length} bytes is too large for an image file");
            bytes = File.ReadAllBytes(path);
        }
        catch (UnauthorizedAccessException) { throw new InputException($"{path}: permission denied"); }
        catch (IOException e) { throw new InputException($"{path}: cannot read ({e.Message})"); }
        return Decode(bytes, path, maxPixels);
    }

    /// <summary>Whether the bytes start like a PNG or JPEG file.</summary>
    public static string? Format(ReadOnlySpan<byte> b) =>
        b.Length >= 8 && b[..8].SequenceEqual(PngMagic) ? "PNG" :
        b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF ? "JPEG" : null;

    private static ReadOnlySpan<byte> PngMagic => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Decodes PNG or JPEG bytes; <paramref name="name"/> names the file in errors.</summary>
    public static RgbImage Decode(byte[] bytes, string name, long maxPixels = DefaultMaxPixels)
    {
        if (bytes.Length == 0) throw new InputException($"{name}: empty file");
        string format = Format(bytes) ?? throw new InputException($"{name}: not a PNG or JPEG image (the supported formats)");
        var info = ImageInfo.FromStream(new MemoryStream(bytes, writable: false))
            ?? throw new InputException($"{name}: corrupt {format} header");
        if (info.Width <= 0 || info.Height <= 0) throw new InputException($"{name}: {format} declares a {info.Width}×{info.Height} image");
        long pixels = (long)info.Width * info.Height;
        if (pixels > maxPixels)
            throw new InputException($"{name}: {info.Width}×{info.Height} = {pixels} pixels exceeds the limit of {maxPixels} (possible decompression bomb; raise it with --max-pixels)");
        try
        {
            if (format == "PNG" && IsGray16(bytes)) return DecodeGray16(bytes, name, info.Width, info.Height);
            var result = ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlue);
            if (result?.Data == null || result.Width != info.Width || result.Height != info.Height)
                throw new InputException($"{name}: corrupt {format} data");
            return new RgbImage(result.Width, result.Height, result.Data);
        }
        catch (InputException) { throw; }
        catch (Exception e) when (e is InvalidOperationException or IndexOutOfRangeException or ArgumentException or NullReferenceException or OverflowException or InvalidDataException or EndOfStreamException or NotSupportedException or IOException)
        {
            throw new InputException($"{name}: corrupt {format} data ({Reason(e)})");
        }
    }

    private static string Reason(Exception e) => e.Message.Length is > 0 and < 120 ? e.Message.TrimEnd('.') : e.GetType().Name;

    /// <summary>PNG IHDR: color type 0 (gray) with 16-bit samples.</summary>
    private static bool IsGray16(ReadOnlySpan<byte> b) => b.Length >= 26 && b[12..16].SequenceEqual("IHDR"u8) && b[24] == 16 && b[25] == 0;

    /// <summary>
    /// PIL opens 16-bit gray PNGs as 32-bit integer images ("I"), and convert('RGB') clamps those to 0..255
    /// instead of scaling, so 16-bit gray becomes min(v, 255). stb would scale (v >> 8); reproduce PIL.
    /// </summary>
    private static unsafe RgbImage DecodeGray16(byte[] bytes, string name, int width, int height)
    {
        {
            int w, h, comp;
            var ctx = new StbImage.stbi__context(new MemoryStream(bytes, writable: false));
            ushort* data = StbImage.stbi__load_and_postprocess_16bit(ctx, &w, &h, &comp, 1);
            if (data == null || w != width || h != height) throw new InputException($"{name}: corrupt PNG data");
            try
            {
                var rgb = new byte[(long)w * h * 3];
                for (long i = 0; i < (long)w * h; i++)
                {
                    byte v = (byte)Math.Min(data[i], (ushort)255);
                    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = v;
                }
                return new RgbImage(w, h, rgb);
            }
            finally
            {
                // stb allocates with Marshal.AllocHGlobal (its Hebron runtime), so this is the matching free.
                System.Runtime.InteropServices.Marshal.FreeHGlobal((IntPtr)data);
            }
        }
    }
}
