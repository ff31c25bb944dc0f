namespace ResNet.Runtime.Images;

/// <summary>
/// A WebP as RGB, PIL's bytes. Lossy: the VP8 frame decoded (<see cref="Vp8Decoder"/>), then libwebp's "fancy"
/// upsampling of the half-size chroma (each output pixel weights its four nearest chroma samples 9:3:3:1, in
/// libwebp's integer steps, rows in its pairs) and its fixed-point BT.601 conversion; its alpha plane, if any, checked
/// (<see cref="WebpAlpha"/>). Lossless: its ARGB pixels (<see cref="Vp8lDecoder"/>) without the alpha.
/// </summary>
internal static unsafe class WebpDecoder
{
    public static RgbImage Decode(byte[] b, WebpStructure.Header h, string name)
    {
        Exception Corrupt(string reason) => WebpStructure.Corrupt(name, reason);
        byte[] frame;
        if (h.Lossless)
        {
            frame = Vp8lDecoder.DecodeToRgb(b, h.FrameStart, h.FrameLength, h.FrameWidth, h.FrameHeight, Corrupt);
        }
        else
        {
            // The alpha plane is only checked, beside the color's decoding on another core when it is large; the
            // color's error, when both fail, is the one reported.
            void CheckAlpha() => WebpAlpha.Check(b, h.AlphaStart, h.AlphaLength, h.FrameWidth, h.FrameHeight, Corrupt);
            var alpha = h.AlphaStart >= 0 && ImageParallel.Worthwhile((long)h.FrameWidth * h.FrameHeight) ? Task.Run(CheckAlpha) : null;
            var header = Vp8FrameHeader.Read(b, h.FrameStart, h.FrameLength, h.FrameWidth, h.FrameHeight, Corrupt);
            var planes = Vp8Decoder.Decode(header, Corrupt);
            if (alpha != null) alpha.GetAwaiter().GetResult();
            else if (h.AlphaStart >= 0) CheckAlpha();
            frame = ToRgb(planes, h.FrameWidth, h.FrameHeight);
        }
        if (h.FrameWidth == h.Width && h.FrameHeight == h.Height) return new RgbImage(h.Width, h.Height, frame);
        // An animation's first frame on its canvas, which libwebp's animation decoder clears to transparent black.
        var canvas = new byte[checked(h.Width * h.Height * 3)];
        for (int y = 0; y < h.FrameHeight; y++)
            frame.AsSpan(y * h.FrameWidth * 3, h.FrameWidth * 3).CopyTo(canvas.AsSpan(((h.Top + y) * h.Width + h.Left) * 3));
        return new RgbImage(h.Width, h.Height, canvas);
    }

    private static byte[] ToRgb(Vp8Decoder p, int width, int height)
    {
        var rgb = GC.AllocateUninitializedArray<byte>(checked(width * height * 3));
        int stride = width * 3;
        // Row 0 alone, then rows (2k-1, 2k) between chroma rows k-1 and k, then an even height's last row alone: unit
        // k of 1 + height/2 is row 0 (k = 0) or rows 2k-1 and (if there is one) 2k. Each unit is its own rows' only writer.
        ImageParallel.ForRows(1 + height / 2, 2L * width, (from, to) =>
        {
            fixed (byte* y = p.Y, u = p.U, v = p.V, output = rgb)
            {
                for (int k = from; k < to; k++)
                {
                    if (k == 0)
                        Pair(p, y, u, v, 0, -1, 0, 0, output, -1, width);
                    else if (2 * k < height)
                        Pair(p, y, u, v, 2 * k - 1, 2 * k, k - 1, k, output + (2 * k - 1) * stride, width * 3, width);
                    else
                        Pair(p, y, u, v, 2 * k - 1, -1, k - 1, k - 1, output + (2 * k - 1) * stride, -1, width);
                }
            }
        });
        return rgb;
    }

    /// <summary>
    /// Luma rows <paramref name="topY"/> and <paramref name="bottomY"/> (-1: none) converted with chroma interpolated
    /// between rows <paramref name="topUv"/> (nearer the top row) and <paramref name="curUv"/> (nearer the bottom one),
    /// into <paramref name="top"/> and <paramref name="bottomOffset"/> bytes after it.
    /// </summary>
    private static void Pair(Vp8Decoder p, byte* y, byte* u, byte* v, int topY, int bottomY, int topUv, int curUv, byte* top, int bottomOffset, int len)
    {
        byte* ty = y + topY * p.YStride, by = y + bottomY * p.YStride, bottom = top + bottomOffset;
        byte* tu = u + topUv * p.UvStride, tv = v + topUv * p.UvStride, cu = u + curUv * p.UvStride, cv = v + curUv * p.UvStride;
        bool two = bottomY >= 0;
        int tlU = tu[0], tlV = tv[0], lU = cu[0], lV = cv[0];
        Rgb(ty[0], (3 * tlU + lU + 2) >> 2, (3 * tlV + lV + 2) >> 2, top);
        if (two) Rgb(by[0], (3 * lU + tlU + 2) >> 2, (3 * lV + tlV + 2) >> 2, bottom);
        int lastPair = (len - 1) >> 1;
        for (int x = 1; x <= lastPair; x++)
        {
            int tU = tu[x], tV = tv[x], cU = cu[x], cV = cv[x];
            int avgU = tlU + tU + lU + cU + 8, avgV = tlV + tV + lV + cV + 8;
            int d12U = (avgU + 2 * (tU + lU)) >> 3, d12V = (avgV + 2 * (tV + lV)) >> 3;
            int d03U = (avgU + 2 * (tlU + cU)) >> 3, d03V = (avgV + 2 * (tlV + cV)) >> 3;
            Rgb(ty[2 * x - 1], (d12U + tlU) >> 1, (d12V + tlV) >> 1, top + (2 * x - 1) * 3);
            Rgb(ty[2 * x], (d03U + tU) >> 1, (d03V + tV) >> 1, top + 2 * x * 3);
            if (two)
            {
                Rgb(by[2 * x - 1], (d03U + lU) >> 1, (d03V + lV) >> 1, bottom + (2 * x - 1) * 3);
                Rgb(by[2 * x], (d12U + cU) >> 1, (d12V + cV) >> 1, bottom + 2 * x * 3);
            }
            (tlU, tlV, lU, lV) = (tU, tV, cU, cV);
        }
        if ((len & 1) == 0)
        {
            Rgb(ty[len - 1], (3 * tlU + lU + 2) >> 2, (3 * tlV + lV + 2) >> 2, top + (len - 1) * 3);
            if (two) Rgb(by[len - 1], (3 * lU + tlU + 2) >> 2, (3 * lV + tlV + 2) >> 2, bottom + (len - 1) * 3);
        }
    }

    // libwebp's YUV -> RGB: 14-bit fixed point with the products' low 8 bits dropped, as the SIMD versions do.
    private static int MultHi(int v, int coefficient) => (v * coefficient) >> 8;
    private static byte Clip8(int v) => (v & ~16383) == 0 ? (byte)(v >> 6) : v < 0 ? (byte)0 : (byte)255;

    private static void Rgb(int y, int u, int v, byte* rgb)
    {
        int luma = MultHi(y, 19077);
        rgb[0] = Clip8(luma + MultHi(v, 26149) - 14234);
        rgb[1] = Clip8(luma - MultHi(u, 6419) - MultHi(v, 13320) + 8708);
        rgb[2] = Clip8(luma + MultHi(u, 33050) - 17685);
    }
}
