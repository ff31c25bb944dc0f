namespace ResNet.Runtime.Images;

/// <summary>
/// A lossy WebP's alpha plane (its ALPH chunk), checked as libwebp decodes it. PIL's animation decoder asks libwebp for
/// RGBA, so a file whose alpha plane cannot be decoded is refused even though <c>convert('RGB')</c> would drop the
/// plane. Only the check is needed: undoing the plane's filter and its lossless transforms cannot fail, so neither is done.
/// </summary>
internal static class WebpAlpha
{
    public static void Check(byte[] b, int start, int length, int width, int height, Func<string, Exception> corrupt)
    {
        Exception Corrupt(string reason) => corrupt("alpha plane: " + reason);
        // One header byte: 2 reserved bits, preprocessing (2 bits), filter (2), compression (2).
        if (length <= 1) throw Corrupt("ALPH chunk too short");
        int header = b[start], compression = header & 3, preprocessing = (header >> 4) & 3;
        if (header >> 6 != 0) throw Corrupt("reserved header bits set");
        if (compression > 1) throw Corrupt($"unknown compression {compression}");
        if (preprocessing > 1) throw Corrupt($"unknown preprocessing {preprocessing}");
        if (compression == 0)
        {
            if (length - 1 < (long)width * height) throw Corrupt($"{length - 1} bytes for {width}×{height} pixels");
            return;
        }
        Vp8lDecoder.CheckAlpha(b, start + 1, length - 1, width, height, Corrupt);
    }
}
