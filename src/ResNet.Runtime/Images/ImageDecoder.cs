namespace ResNet.Runtime.Images;

/// <summary>
/// Decodes PNG, JPEG, BMP, GIF (its first image), TIFF (its first image), WebP and Netpbm (PBM, PGM, PPM) into RGB the way torchvision's default loader does (<c>PIL.Image.open(f).convert('RGB')</c>):
/// alpha dropped without compositing, gray replicated, palette expanded, no EXIF rotation. Dimensions are
/// checked against a pixel limit before any pixel memory is allocated.
/// </summary>
public static class ImageDecoder
{
    /// <summary>PIL's Image.MAX_IMAGE_PIXELS: larger images are treated as decompression bombs.</summary>
    public const long DefaultMaxPixels = 89_478_485;

    /// <summary>Reads and decodes an image file.</summary>
    public static RgbImage Load(string path, long maxPixels = DefaultMaxPixels) => Load(path, maxPixels, null);

    /// <summary>
    /// <see cref="Load(string, long)"/>, telling <paramref name="rowsStarting"/> the image if its rows can be read behind
    /// the decoding (<see cref="JpegDecoder.Decode"/>, <see cref="PngDecoder.Decode"/>); it says whether a reader will
    /// come (a PNG's rows are then unfiltered by that reader). With <paramref name="window"/> (the image's size → the
    /// pixels that will be read), the other pixels may be left undecoded: only that window's bytes are defined.
    /// </summary>
    internal static RgbImage Load(string path, long maxPixels, Func<RgbImage, bool>? rowsStarting, Func<int, int, PixelWindow>? window = null)
    {
        byte[] bytes;
        try
        {
            if (FileFailures.BeforeOpening(path, 1L << 30, "an image file") is { } reason) throw new InputException($"{path}: {reason}");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (FileFailures.Of(e) is { } reason) { throw new InputException($"{path}: {reason}"); }
        return Decode(bytes, path, maxPixels, rowsStarting, window);
    }

    /// <summary>Whether the bytes start like a PNG, JPEG, BMP, GIF, Netpbm, TIFF or WebP file (its name, else null).</summary>
    public static string? Format(ReadOnlySpan<byte> b) =>
        b.Length >= 8 && b[..8].SequenceEqual(PngMagic) ? "PNG" :
        b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF ? "JPEG" :
        BmpStructure.IsBmp(b) ? "BMP" :
        GifStructure.IsGif(b) ? "GIF" :
        NetpbmDecoder.IsNetpbm(b) ? "Netpbm" :
        TiffStructure.IsTiff(b) ? "TIFF" :
        WebpStructure.IsWebp(b) ? "WebP" : null;

    /// <summary>What <see cref="Decode(byte[], string, long)"/> says of bytes in none of the formats.</summary>
    public const string NotAnImage = "not a PNG, JPEG, BMP, GIF, TIFF, WebP, PPM, PGM or PBM image (the supported formats)";

    private static ReadOnlySpan<byte> PngMagic => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// What decoding may allocate with the default pixel limit: with the model, the runtime and the activation
    /// buffers, the process stays under 1 GiB. Raising the pixel limit raises this in proportion.
    /// </summary>
    public const long DefaultMemoryBudget = 860L << 20;

    /// <summary>Decodes PNG, JPEG, BMP, GIF, Netpbm, TIFF or WebP bytes; <paramref name="name"/> names the file in errors.</summary>
    public static RgbImage Decode(byte[] bytes, string name, long maxPixels = DefaultMaxPixels) => Decode(bytes, name, maxPixels, null, null);

    /// <summary><see cref="Decode(byte[], string, long)"/> with <see cref="Load(string, long, Func{RgbImage, bool}?, Func{int, int, PixelWindow}?)"/>'s options.</summary>
    internal static RgbImage Decode(byte[] bytes, string name, long maxPixels, Func<RgbImage, bool>? rowsStarting, Func<int, int, PixelWindow>? window)
    {
        if (bytes.Length == 0) throw new InputException($"{name}: empty file");
        using var decoding = ImageParallel.Decoding();
        string format = Format(bytes) ?? throw new InputException($"{name}: {NotAnImage}");
        // Structure, sizes and (for PNG) CRCs are checked before a decoder allocates anything; PNG image data then
        // inflates into a buffer its header sizes.
        int width = 0, height = 0;
        long decodeBytes = 0;
        long budget = Math.Max(DefaultMemoryBudget, (long)(DefaultMemoryBudget * ((double)maxPixels / DefaultMaxPixels)));
        void Admit()
        {
            long pixels = (long)width * height;
            if (pixels > maxPixels)
                throw new InputException($"{name}: {width}×{height} = {pixels} pixels exceeds the limit of {maxPixels} (possible decompression bomb; raise it with --max-pixels)");
            if (decodeBytes + bytes.Length > budget)
                throw new InputException($"{name}: decoding this {width}×{height} {format} needs about {(decodeBytes + bytes.Length) >> 20} MiB, more than the {budget >> 20} MiB allowed (raise --max-pixels to allow more)");
        }
        // The formats decoded straight into one RGB array: it must be one array (a raised --max-pixels allows more).
        void AdmitOneArray()
        {
            Admit();
            if ((long)width * height * 3 > Array.MaxLength)
                throw new InputException($"{name}: {width}×{height} {format} is too large to decode (its RGB pixels are more than one buffer holds)");
        }
        if (format == "PNG")
        {
            var png = PngStructure.Check(bytes, name, h =>
            {
                (width, height) = (h.Width, h.Height);
                decodeBytes = h.RawBytes() + (long)h.Width * h.Height * 3;
                Admit();
            });
            return PngDecoder.Decode(bytes, png, name, rowsStarting, window?.Invoke(png.Header.Width, png.Header.Height));
        }
        if (format == "BMP")
        {
            var bmp = BmpStructure.Check(bytes, name, h =>
            {
                (width, height) = (h.Width, h.Height);
                decodeBytes = (long)h.Width * h.Height * (h.Rle ? 4 : 3);
                AdmitOneArray();
            });
            return BmpDecoder.Decode(bytes, bmp, name);
        }
        if (format == "GIF")
        {
            var gif = GifStructure.Check(bytes, name, h =>
            {
                (width, height) = (h.Width, h.Height);
                decodeBytes = (long)h.Width * h.Height * 3 + (long)h.FrameWidth * h.FrameHeight;
                AdmitOneArray();
            });
            return GifDecoder.Decode(bytes, gif, name);
        }
        if (format == "Netpbm")
        {
            var pnm = NetpbmDecoder.Check(bytes, name, h =>
            {
                (width, height, format) = (h.Width, h.Height, h.Format);
                decodeBytes = (long)h.Width * h.Height * (3 + (h.Plain ? 4 * h.Channels : 0)) + (h.Plain ? bytes.Length : 0);
                AdmitOneArray();
            });
            return NetpbmDecoder.Decode(bytes, pnm, name);
        }
        if (format == "TIFF")
        {
            var tiff = TiffStructure.Check(bytes, name, h =>
            {
                (width, height) = (h.Width, h.Height);
                // The RGB pixels, an 8-bit sample array unless the file holds exactly that, one decompressed chunk.
                decodeBytes = (long)h.Width * h.Height * (3 + h.Samples) + h.ChunkRowBytes * h.ChunkHeight;
                AdmitOneArray();
                if ((long)h.Width * h.Height * h.Samples > Array.MaxLength || h.ChunkRowBytes * h.ChunkHeight > Array.MaxLength)
                    throw new InputException($"{name}: {width}×{height} TIFF is too large to decode (its samples, or one {(h.Tiled ? "tile" : "strip")}'s, are more than one buffer holds)");
            });
            return TiffDecoder.Decode(bytes, tiff, name, window?.Invoke(tiff.Width, tiff.Height));
        }
        if (format == "WebP")
        {
            var webp = WebpStructure.Check(bytes, name, h =>
            {
                (width, height) = (h.Width, h.Height);
                // The frame's Y, U and V planes (whole macroblocks) and its alpha plane's ARGB pixels (decoded to be
                // checked), or its ARGB pixels twice (coded, then the palette's colors), and its RGB pixels; then (an
                // animation's) the canvas.
                long planes = h.Lossless ? (long)h.FrameWidth * h.FrameHeight * 8
                    : (long)((h.FrameWidth + 15) & ~15) * ((h.FrameHeight + 15) & ~15) * 3 / 2 + (h.AlphaStart >= 0 ? (long)h.FrameWidth * h.FrameHeight * 4 : 0);
                decodeBytes = planes + (long)h.FrameWidth * h.FrameHeight * 3
                    + (h.FrameWidth != h.Width || h.FrameHeight != h.Height ? (long)h.Width * h.Height * 3 : 0);
                AdmitOneArray();
            });
            return WebpDecoder.Decode(bytes, webp, name);
        }
        var jpeg = JpegStructure.Check(bytes, name);
        var f = jpeg.Frame;
        (width, height) = (f.Width, f.Height);
        decodeBytes = (long)f.Width * f.Height * (f.Components * (f.Progressive ? 3 : 1) + 3);
        Admit();
        return JpegDecoder.Decode(bytes, jpeg, name, rowsStarting, window?.Invoke(f.Width, f.Height));
    }
}
