using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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

    /// <summary>
    /// The source pixels [first, end) that output pixels [<paramref name="start"/>, +<paramref name="count"/>) of a
    /// resize from <paramref name="inSize"/> to <paramref name="outSize"/> read along one axis (<see cref="BilinearRegion"/>
    /// copies them when the size does not change). Each output's taps start and end no earlier than its left neighbour's.
    /// </summary>
    internal static (int First, int End) SourceRange(int inSize, int outSize, int start, int count)
    {
        if (inSize == outSize) return (start, start + count);
        var (bounds, _, _) = Coefficients(inSize, outSize, start, count);
        return (bounds[0], bounds[2 * count - 2] + bounds[2 * count - 1]);
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
        long rowBytes = (long)src.Width * 3;
        // A JPEG not yet color-converted: its rows are converted a few at a time into a small buffer (which stays
        // in cache) right before they are resampled, instead of the whole RGB image first.
        var pending = src.PendingRows;
        var whole = pending == null ? src.Pixels : null;
        long work = (long)width * ksize + (pending?.WorkPerRow ?? 0);
        var grouped = GroupedKernel(kernel, ksize, width);
        ImageParallel.ForRows(rows, work, (from, to) =>
        {
            fixed (byte* dp = dst)
            fixed (int* kp = kernel, bp = bounds, kg = grouped)
            {
                if (whole != null)
                {
                    fixed (byte* sp = whole)
                        for (int y = from; y < to; y++)
                            Resample(sp + (y + firstRow) * rowBytes, sp + whole.Length, dp + (long)y * width * 3, width, kp, bp, ksize, kg);
                    return;
                }
                const int ChunkRows = 8;
                var chunk = GC.AllocateUninitializedArray<byte>((int)(Math.Min(ChunkRows, to - from) * rowBytes));
                fixed (byte* cp = chunk)
                    for (int y0 = from; y0 < to; y0 += ChunkRows)
                    {
                        int y1 = Math.Min(y0 + ChunkRows, to);
                        pending!.Rows(y0 + firstRow, y1 + firstRow, cp);
                        for (int y = y0; y < y1; y++)
                            Resample(cp + (y - y0) * rowBytes, cp + (y1 - y0) * rowBytes, dp + (long)y * width * 3, width, kp, bp, ksize, kg);
                    }
            }
        });
        return new RgbImage(width, rows, dst);
    }

    /// <summary>Taps a <see cref="GroupedKernel"/> vector covers: five RGB pixels, 15 of its 16 lanes.</summary>
    private const int GroupTaps = 5;

    /// <summary>
    /// For AVX-512, each output pixel's weights in groups of five taps, each repeated for the three channels of
    /// its pixel (lane 15 zero): one 16-byte load of the source then covers five taps, where the per-tap vector
    /// covered one. Null without AVX-512, for fewer than five taps (upscaling, shrinking by less than 2×: one tap
    /// at a time is as fast), or where the groups would outgrow 16 MB (a very wide whole-image resize).
    /// </summary>
    private static int[]? GroupedKernel(int[] kernel, int ksize, int count)
    {
        int groups = (ksize + GroupTaps - 1) / GroupTaps;
        if (!Avx512F.IsSupported || ksize < GroupTaps || (long)count * groups * 16 > 1 << 22) return null;
        var grouped = new int[count * groups * 16];
        for (int i = 0; i < count; i++)
            for (int x = 0; x < ksize; x++)
                for (int c = 0; c < 3; c++)
                    grouped[(i * groups + x / GroupTaps) * 16 + x % GroupTaps * 3 + c] = kernel[i * ksize + x];
        return grouped;
    }

    /// <summary>
    /// One row of the horizontal pass: output pixel xx sums its taps from <paramref name="rowIn"/>; bounds and
    /// kernel come from <see cref="Coefficients"/>, so every tap lies inside the row (hence the pointers). The sums
    /// are of integers, so any order of adding gives Pillow's.
    /// </summary>
    private static void Resample(byte* rowIn, byte* end, byte* rowOut, int width, int* kp, int* bp, int ksize, int* grouped)
    {
        int groups = (ksize + GroupTaps - 1) / GroupTaps;
        for (int xx = 0; xx < width; xx++)
        {
            int xmax = bp[2 * xx + 1];
            byte* at = rowIn + bp[2 * xx] * 3;
            int* k = kp + xx * ksize;
            // Five taps per vector: the last group's 16-byte load must stay inside the source (the weights of taps
            // past xmax are zero).
            int used = (xmax + GroupTaps - 1) / GroupTaps;
            if (grouped != null && at + (used - 1) * 3 * GroupTaps + 16 <= end)
            {
                int* kg = grouped + xx * groups * 16;
                var sum = Vector512<int>.Zero;
                for (int g = 0; g < used; g++)
                    sum += Avx512F.ConvertToVector512Int32(Vector128.Load(at + g * 3 * GroupTaps)) * Vector512.Load(kg + g * 16);
                // Lane c of the result: channel c's five taps (lanes c, c + 3, …, c + 12) added up.
                var pairs = sum + Avx512F.AlignRight32(Vector512<int>.Zero, sum, 3);
                var total = pairs + Avx512F.AlignRight32(Vector512<int>.Zero, pairs, 6) + Avx512F.AlignRight32(Vector512<int>.Zero, sum, 12);
                var v = Clip8(total.GetLower().GetLower() + Vector128.Create(1 << (PrecisionBits - 1)));
                rowOut[xx * 3] = (byte)v.GetElement(0);
                rowOut[xx * 3 + 1] = (byte)v.GetElement(1);
                rowOut[xx * 3 + 2] = (byte)v.GetElement(2);
                continue;
            }
            // A pixel's three channels in one vector: each tap loads four bytes, so not at the very end of the
            // source, where the fourth would lie past it.
            if (Sse41.IsSupported && at + xmax * 3 < end)
            {
                var acc = Vector128.Create(1 << (PrecisionBits - 1));
                for (int x = 0; x < xmax; x++, at += 3)
                    acc += Sse41.ConvertToVector128Int32(at) * Vector128.Create(k[x]);
                var v = Clip8(acc);
                rowOut[xx * 3] = (byte)v.GetElement(0);
                rowOut[xx * 3 + 1] = (byte)v.GetElement(1);
                rowOut[xx * 3 + 2] = (byte)v.GetElement(2);
                continue;
            }
            ScalarPixel(at, 3, k, xmax, rowOut + xx * 3);
        }
    }

    /// <summary>
    /// One RGB pixel, either pass, without vectors: <paramref name="taps"/> source pixels <paramref name="stride"/>
    /// bytes apart from <paramref name="at"/>, weighted by <paramref name="k"/>, into <paramref name="output"/>.
    /// </summary>
    private static void ScalarPixel(byte* at, long stride, int* k, int taps, byte* output)
    {
        int ss0 = 1 << (PrecisionBits - 1), ss1 = ss0, ss2 = ss0;
        for (int t = 0; t < taps; t++, at += stride)
        {
            int w = k[t];
            ss0 += at[0] * w;
            ss1 += at[1] * w;
            ss2 += at[2] * w;
        }
        output[0] = Clip8(ss0);
        output[1] = Clip8(ss1);
        output[2] = Clip8(ss2);
    }

    private static RgbImage Vertical(RgbImage src, int height, int[] bounds, int[] kernel, int ksize)
    {
        int width = src.Width;
        var dst = new byte[(long)width * height * 3];
        var s = src.Pixels;
        ImageParallel.ForRows(height, (long)width * ksize, (from, to) =>
        {
            fixed (byte* sp = s, dp = dst)
            fixed (int* k = kernel)
                for (int yy = from; yy < to; yy++)
                    VerticalRow(sp + (long)bounds[2 * yy] * width * 3, bounds[2 * yy + 1], k + yy * ksize, dp + (long)yy * width * 3, width);
        });
        return new RgbImage(width, height, dst);
    }

    /// <summary>
    /// One row of the vertical pass: the <paramref name="taps"/> rows from <paramref name="rows"/> on (consecutive,
    /// <paramref name="width"/> pixels each), weighted by <paramref name="k"/>, into <paramref name="output"/>.
    /// </summary>
    private static void VerticalRow(byte* rows, int taps, int* k, byte* output, int width)
    {
        int rowBytes = width * 3;
        // 32 bytes of the row at a time (the channels need no telling apart here), then pixel by pixel.
        int done = 0;
        if (Avx2.IsSupported)
        {
            for (; done + 32 <= rowBytes; done += 32)
            {
                var a0 = Vector256.Create(1 << (PrecisionBits - 1));
                Vector256<int> a1 = a0, a2 = a0, a3 = a0;
                for (int y = 0; y < taps; y++)
                {
                    byte* at = rows + (long)y * rowBytes + done;
                    var w = Vector256.Create(k[y]);
                    a0 += Avx2.ConvertToVector256Int32(at) * w;
                    a1 += Avx2.ConvertToVector256Int32(at + 8) * w;
                    a2 += Avx2.ConvertToVector256Int32(at + 16) * w;
                    a3 += Avx2.ConvertToVector256Int32(at + 24) * w;
                }
                var low = Vector256.Narrow(Clip8(a0), Clip8(a1)).AsUInt16();
                var high = Vector256.Narrow(Clip8(a2), Clip8(a3)).AsUInt16();
                Vector256.Narrow(low, high).Store(output + done);
            }
        }
        for (int xx = done / 3; xx < width; xx++) ScalarPixel(rows + xx * 3, rowBytes, k, taps, output + xx * 3);
    }

    /// <summary>What <see cref="BilinearRegionInOrder"/> hands each output row to: its index and its width × 3 bytes.</summary>
    internal delegate void RowDone(int row, byte* pixels);

    /// <summary>
    /// <see cref="BilinearRegion"/> for an image whose rows are still being decoded (<see cref="RgbImage.PendingRows"/>),
    /// on this thread and top to bottom: each source row is converted and resampled horizontally once, into a
    /// window of the few rows the next output rows read, and each output row goes to <paramref name="rowDone"/> as
    /// soon as its source rows are there. So when the decoder publishes its last rows, only the output rows
    /// that read them remain, where the two passes would still have the whole vertical pass (and what
    /// <paramref name="rowDone"/> does) ahead. The same bytes as <see cref="BilinearRegion"/>. False, having done
    /// nothing, where one of the passes is not needed or the rows are not pending.
    /// </summary>
    internal static bool BilinearRegionInOrder(RgbImage image, int width, int height, int left, int top, int regionWidth, int regionHeight, RowDone rowDone)
    {
        var pending = image.PendingRows;
        if (pending == null || width == image.Width || height == image.Height) return false;
        if (width < 1 || height < 1 || left < 0 || top < 0 || regionWidth < 1 || regionHeight < 1 || left + (long)regionWidth > width || top + (long)regionHeight > height)
            throw new ArgumentOutOfRangeException(nameof(left), "region outside the resized image");
        var (yBounds, yKernel, ySize) = Coefficients(image.Height, height, top, regionHeight);
        var (xBounds, xKernel, xSize) = Coefficients(image.Width, width, left, regionWidth);
        var xGrouped = GroupedKernel(xKernel, xSize, regionWidth);
        const int ChunkRows = 8;
        int last = yBounds[2 * regionHeight - 2] + yBounds[2 * regionHeight - 1];
        long sourceRow = (long)image.Width * 3;
        int rowBytes = regionWidth * 3;
        // The window holds resampled source rows [windowStart, resampled): at most a row's taps plus a chunk.
        var window = GC.AllocateUninitializedArray<byte>((ySize + ChunkRows) * rowBytes);
        var chunk = GC.AllocateUninitializedArray<byte>((int)(ChunkRows * sourceRow));
        var output = GC.AllocateUninitializedArray<byte>(rowBytes);
        int windowStart = yBounds[0], resampled = yBounds[0];
        fixed (byte* wp = window, cp = chunk, op = output)
        fixed (int* xk = xKernel, xb = xBounds, yk = yKernel, xg = xGrouped)
        {
            for (int yy = 0; yy < regionHeight; yy++)
            {
                int ymin = yBounds[2 * yy], taps = yBounds[2 * yy + 1];
                if (ymin > resampled) resampled = ymin; // rows no output row reads (none at these scales, but cheap to skip)
                if (ymin > windowStart)
                {
                    int keep = Math.Max(0, resampled - ymin);
                    Buffer.MemoryCopy(wp + (long)(resampled - keep - windowStart) * rowBytes, wp, window.Length, (long)keep * rowBytes);
                    windowStart = resampled - keep;
                }
                while (resampled < ymin + taps)
                {
                    int rows = Math.Min(ChunkRows, last - resampled);
                    pending.Rows(resampled, resampled + rows, cp);
                    for (int r = 0; r < rows; r++)
                        Resample(cp + r * sourceRow, cp + rows * sourceRow, wp + (long)(resampled + r - windowStart) * rowBytes, regionWidth, xk, xb, xSize, xg);
                    resampled += rows;
                }
                VerticalRow(wp + (long)(ymin - windowStart) * rowBytes, taps, yk + yy * ySize, op, regionWidth);
                rowDone(yy, op);
            }
        }
        return true;
    }

    /// <summary>Clip8 of every lane: the value's integer part, clamped to 0..255.</summary>
    private static Vector128<int> Clip8(Vector128<int> v) =>
        Vector128.Min(Vector128.Max(Vector128.ShiftRightArithmetic(v, PrecisionBits), Vector128<int>.Zero), Vector128.Create(255));

    private static Vector256<int> Clip8(Vector256<int> v) =>
        Vector256.Min(Vector256.Max(Vector256.ShiftRightArithmetic(v, PrecisionBits), Vector256<int>.Zero), Vector256.Create(255));

    private static byte Clip8(int v) => v >= (1 << PrecisionBits << 8) ? (byte)255 : v <= 0 ? (byte)0 : (byte)(v >> PrecisionBits);
}
