namespace ResNet.Runtime.Images;

/// <summary>
/// Pillow's <c>Image.resize(size, BILINEAR)</c> for 8-bit RGB, reproduced operation for operation
/// (libImaging/Resample.c): a triangle filter whose support widens by the scale when shrinking (the
/// antialiasing), coefficients normalized in double then rounded to 22-bit fixed point, a horizontal pass
/// into an 8-bit intermediate over only the rows the vertical pass needs, then the vertical pass; each
/// pass rounds half up and clamps to 0..255. No library reproduces this, and torchvision on PIL images uses it.
/// </summary>
public static class PilResize
{
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Resizes <paramref name="image"/> to <paramref name="width"/>×<paramref name="height"/>.</summary>
    public static RgbImage Bilinear(RgbImage image, int width, int height)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), "target size must be positive");
        bool horizontal = width != image.Width, vertical = height != image.Height;
        if (!horizontal && !vertical) return image;
        var (xBounds, xKernel, xSize) = Coefficients(image.Width, width);
        var (yBounds, yKernel, ySize) = Coefficients(image.Height, height);
        var current = image;
        if (horizontal)
        {
            // Only the source rows the vertical pass reads are resampled horizontally.
            int first = yBounds[0], last = yBounds[2 * height - 2] + yBounds[2 * height - 1];
            if (vertical)
            {
                for (int i = 0; i < height; i++) yBounds[2 * i] -= first;
            }
            else
            {
                first = 0;
                last = image.Height;
            }
            current = Horizontal(current, width, first, last - first, xBounds, xKernel, xSize);
        }
        if (vertical) current = Vertical(current, height, yBounds, yKernel, ySize);
        return current;
    }

    /// <summary>precompute_coeffs + normalize_coeffs_8bpc: per output pixel, the first input index, count and fixed-point weights.</summary>
    private static (int[] Bounds, int[] Kernel, int KSize) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = 1.0 * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var kernel = new int[outSize * ksize];
        var k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
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
                kernel[xx * ksize + x] = k[x] < 0 ? (int)(-0.5 + v) : (int)(0.5 + v);
            }
            bounds[2 * xx] = xmin;
            bounds[2 * xx + 1] = xmax;
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
        for (int y = 0; y < rows; y++)
        {
            int rowIn = (y + firstRow) * src.Width * 3, rowOut = y * width * 3;
            for (int xx = 0; xx < width; xx++)
            {
                int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1], kk = xx * ksize;
                int ss0 = 1 << (PrecisionBits - 1), ss1 = ss0, ss2 = ss0;
                for (int x = 0; x < xmax; x++)
                {
                    int at = rowIn + (x + xmin) * 3, w = kernel[kk + x];
                    ss0 += s[at] * w;
                    ss1 += s[at + 1] * w;
                    ss2 += s[at + 2] * w;
                }
                dst[rowOut + xx * 3] = Clip8(ss0);
                dst[rowOut + xx * 3 + 1] = Clip8(ss1);
                dst[rowOut + xx * 3 + 2] = Clip8(ss2);
            }
        }
        return new RgbImage(width, rows, dst);
    }

    private static RgbImage Vertical(RgbImage src, int height, int[] bounds, int[] kernel, int ksize)
    {
        int width = src.Width;
        var dst = new byte[(long)width * height * 3];
        var s = src.Pixels;
        for (int yy = 0; yy < height; yy++)
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
        return new RgbImage(width, height, dst);
    }

    private static byte Clip8(int v) => v >= (1 << PrecisionBits << 8) ? (byte)255 : v <= 0 ? (byte)0 : (byte)(v >> PrecisionBits);
}
