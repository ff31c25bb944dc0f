namespace ResNet.Runtime.Images;

/// <summary>
/// Pillow's <c>Image.resize(size, BILINEAR)</c> for 8-bit RGB, reproduced operation for operation
/// (libImaging/Resample.c): a triangle filter whose support widens by the scale when shrinking (the
/// antialiasing), coefficients normalized in double then rounded to 22-bit fixed point, a horizontal pass
/// into an 8-bit intermediate over only the rows the vertical pass needs, then the vertical pass; each
/// pass rounds half up and clamps to 0..255. No library reproduces this, and torchvision on PIL images uses it.
/// </summary>
public static unsafe class PilResize
{
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Resizes <paramref name="image"/> to <paramref name="width"/>×<paramref name="height"/>.</summary>
    public static RgbImage Bilinear(RgbImage image, int width, int height) => BilinearRegion(image, width, height, 0, 0, width, height);

    /// <summary>
    /// The <paramref name="regionWidth"/>×<paramref name="regionHeight"/> window at (<paramref name="left"/>,
    /// <paramref name="top"/>) of the image resized to <paramref name="width"/>×<paramref name="height"/>, computed
    /// without the rest: each output pixel depends only on its own coefficients, so this equals cropping Pillow's
    /// full result bit for bit, while a 65526×8 input (resized to 2096832×256 by Resize(256)) costs a 224×224 crop.
    /// </summary>
    public static RgbImage BilinearRegion(RgbImage image, int width, int height, int left, int top, int regionWidth, int regionHeight)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), "target size must be positive");
        if (left < 0 || top < 0 || regionWidth < 1 || regionHeight < 1 || left + (long)regionWidth > width || top + (long)regionHeight > height)
            throw new ArgumentOutOfRangeException(nameof(left), "region outside the resized image");
        bool horizontal = width != image.Width, vertical = height != image.Height;
        var (yBounds, yKernel, ySize) = vertical ? Coefficients(image.Height, height, top, regionHeight) : (Array.Empty<int>(), Array.Empty<int>(), 0);
        if (!horizontal) return vertical ? Vertical(Crop(image, left, 0, regionWidth, image.Height), regionHeight, yBounds, yKernel, ySize) : Crop(image, left, top, regionWidth, regionHeight);
        // Only the source rows the vertical pass reads are resampled horizontally.
        int first = vertical ? yBounds[0] : top;
        int last = vertical ? yBounds[2 * regionHeight - 2] + yBounds[2 * regionHeight - 1] : top + regionHeight;
        var (xBounds, xKernel, xSize) = Coefficients(image.Width, width, left, regionWidth);
        var rows = Horizontal(image, regionWidth, first, last - first, xBounds, xKernel, xSize);
        if (!vertical) return rows;
        for (int i = 0; i < regionHeight; i++) yBounds[2 * i] -= first;
        return Vertical(rows, regionHeight, yBounds, yKernel, ySize);
    }

    /// <summary>A window of an image, copied.</summary>
    public static RgbImage Crop(RgbImage image, int left, int top, int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            Array.Copy(image.Pixels, ((long)(y + top) * image.Width + left) * 3, pixels, (long)y * width * 3, width * 3);
        return new RgbImage(width, height, pixels);
    }

    /// <summary>
    /// precompute_coeffs + normalize_coeffs_8bpc for output pixels [<paramref name="start"/>, +<paramref name="count"/>):
    /// per output pixel, the first input index, count and fixed-point weights.
    /// </summary>
    private static (int[] Bounds, int[] Kernel, int KSize) Coefficients(int inSize, int outSize, int start, int count)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = 1.0 * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[count * 2];
        var kernel = new int[count * ksize];
        var k = new double[ksize];
        for (int i = 0; i < count; i++)
        {
            int xx = start + i;
            double center = (xx + 0.5) * scale;
            double ww = 0, ss = 1.0 / filterScale;
            int xmin = Math.Max(0, (int)(center - support + 0.5));
            int xmax = Math.Min(inSize, (int)(center + support + 0.5)) - xmin;
            Array.Clear(k);
            for (int x = 0; x < xmax; x++)
            {
                double w = Triangle((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++)
            {
                if (ww != 0.0) k[x] /= ww;
            }
            for (int x = 0; x < ksize; x++)
            {
                double v = k[x] * (1 << PrecisionBits);
                kernel[i * ksize + x] = k[x] < 0 ? (int)(-0.5 + v) : (int)(0.5 + v);
            }
            bounds[2 * i] = xmin;
            bounds[2 * i + 1] = xmax;
        }
        return (bounds, kernel, ksize);
    }

    private static double Triangle(double x)
    {
        if (x < 0) x = -x;
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    private static RgbImage Horizontal(RgbImage src, int width, int firstRow, int rows, int[] bounds, int[] kernel, int ksize)
    {
        var dst = new byte[(long)width * rows * 3];
        var s = src.Pixels;
        // Bounds and kernel come from Coefficients: every tap lies inside the source row (hence the pointers).
        ImageParallel.ForRows(rows, (long)width * ksize, (from, to) =>
        {
            fixed (byte* sp = s, dp = dst)
            fixed (int* kp = kernel, bp = bounds)
            {
                for (int y = from; y < to; y++)
                {
                    byte* rowIn = sp + (long)(y + firstRow) * src.Width * 3;
                    byte* rowOut = dp + (long)y * width * 3;
                    for (int xx = 0; xx < width; xx++)
                    {
                        int xmax = bp[2 * xx + 1];
                        byte* at = rowIn + bp[2 * xx] * 3;
                        int* k = kp + xx * ksize;
                        int ss0 = 1 << (PrecisionBits - 1), ss1 = ss0, ss2 = ss0;
                        for (int x = 0; x < xmax; x++, at += 3)
                        {
                            int w = k[x];
                            ss0 += at[0] * w;
                            ss1 += at[1] * w;
                            ss2 += at[2] * w;
                        }
                        rowOut[xx * 3] = Clip8(ss0);
                        rowOut[xx * 3 + 1] = Clip8(ss1);
                        rowOut[xx * 3 + 2] = Clip8(ss2);
                    }
                }
            }
        });
        return new RgbImage(width, rows, dst);
    }

    private static RgbImage Vertical(RgbImage src, int height, int[] bounds, int[] kernel, int ksize)
    {
        int width = src.Width;
        var dst = new byte[(long)width * height * 3];
        var s = src.Pixels;
        ImageParallel.ForRows(height, (long)width * ksize, (from, to) =>
        {
            for (int yy = from; yy < to; yy++)
            {
                int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1], kk = yy * ksize;
                for (int xx = 0; xx < width; xx++)
                {
                    int ss0 = 1 << (PrecisionBits - 1), ss1 = ss0, ss2 = ss0;
                    for (int y = 0; y < ymax; y++)
                    {
                        int at = ((y + ymin) * width + xx) * 3, w = kernel[kk + y];
                        ss0 += s[at] * w;
                        ss1 += s[at + 1] * w;
                        ss2 += s[at + 2] * w;
                    }
                    int o = (yy * width + xx) * 3;
                    dst[o] = Clip8(ss0);
                    dst[o + 1] = Clip8(ss1);
                    dst[o + 2] = Clip8(ss2);
                }
            }
        });
        return new RgbImage(width, height, dst);
    }

    private static byte Clip8(int v) => v >= (1 << PrecisionBits << 8) ? (byte)255 : v <= 0 ? (byte)0 : (byte)(v >> PrecisionBits);
}
