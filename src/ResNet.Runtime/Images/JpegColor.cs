using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResNet.Runtime.Images;

/// <summary>
/// From decoded component planes to RGB, as libjpeg-turbo (jdsample.c, jdcolor.c) and then PIL's
/// <c>convert('RGB')</c> do it: "fancy" triangle-filter upsampling for 2:1 chroma (rows beyond the image repeat
/// its first or last row), box replication for other integral factors, YCbCr → RGB through libjpeg's 16-bit
/// fixed-point tables, gray replicated, and CMYK (which PIL reads with Adobe's inverted polarity) combined
/// with K the way PIL does.
/// </summary>
internal static unsafe class JpegColor
{
    public enum Space { Gray, YCbCr, Rgb, Cmyk, Ycck }

    // jdcolor.c's tables hold these expressions per value (Cr_r_tab[cr] = (FixCrR·(cr - 128) + OneHalf) >> 16, and
    // so on); computed directly they give the same integers, in the vector path and the scalar one alike.
    private const int ScaleBits = 16, OneHalf = 1 << (ScaleBits - 1);
    private static readonly int FixCrR = Fix(1.40200), FixCbB = Fix(1.77200), FixCrG = -Fix(0.71414), FixCbG = -Fix(0.34414);

    private static int Fix(double x) => (int)(x * (1 << ScaleBits) + 0.5);

    private static int Red(int l, int cr) => l + ((FixCrR * (cr - 128) + OneHalf) >> ScaleBits);

    private static int Green(int l, int cb, int cr) => l + ((FixCbG * (cb - 128) + OneHalf + FixCrG * (cr - 128)) >> ScaleBits);

    private static int Blue(int l, int cb) => l + ((FixCbB * (cb - 128) + OneHalf) >> ScaleBits);

    /// <summary>
    /// The decoded planes as an image whose RGB rows are converted when first needed; with
    /// <paramref name="progress"/>, planes still being decoded, whose rows are converted once it says they are final.
    /// With <paramref name="window"/>, only its columns are converted (the rest of each row is left unwritten).
    /// </summary>
    public static RgbImage ToRgb(JpegDecoder.Component[] components, int width, int height, int maxH, int maxV, Space space, RowProgress? progress = null,
        PixelWindow? window = null) =>
        new(width, height, new Converter(components, width, maxH, maxV, space, progress, window?.X0 ?? 0, window?.X1 ?? width));

    private sealed class Converter(JpegDecoder.Component[] components, int width, int maxH, int maxV, Space space, RowProgress? progress, int x0, int x1) : RowSource
    {
        public override long WorkPerRow => (long)(x1 - x0) * components.Length;

        public override void Rows(int from, int to, byte* output)
        {
            progress?.WaitFor(to);
            JpegColor.Rows(components, width, maxH, maxV, space, output, from, to, x0, x1);
        }

        public override void ReleaseScratch()
        {
            foreach (var c in components)
            {
                if (!c.PlaneKept) continue;
                c.PlaneKept = false;
                var plane = c.Plane;
                c.Plane = [];
                ScratchBuffers.Return(plane);
            }
        }
    }

    private static void Rows(JpegDecoder.Component[] components, int width, int maxH, int maxV, Space space, byte* output, int from, int to, int x0, int x1)
    {
        int n = components.Length;
        var rows = UpsampledRows(n, width + 2 * maxH);
        var sources = new byte[n][];
        var offsets = new int[n];
        RowsInto(components, width, maxH, maxV, space, output, from, to, x0, x1, rows, sources, offsets);
    }

    /// <summary>
    /// One upsampled row per component (2 samples of slack: fancy 2:1 writes pairs), kept per thread: the resize
    /// asks for 8 rows at a time, and a 12 MP image made ~4 MB of short-lived arrays. Not the shared ArrayPool:
    /// its first use calibrates the processor-id cache (~0.2 ms, measured here), on the decoding's critical path.
    /// </summary>
    private static byte[][] UpsampledRows(int components, int length)
    {
        var rows = t_rows;
        if (rows == null || rows.Length < components || rows[0].Length < length)
        {
            rows = new byte[Math.Max(components, rows?.Length ?? 0)][];
            for (int i = 0; i < rows.Length; i++) rows[i] = new byte[length];
            t_rows = rows;
        }
        return rows;
    }

    [ThreadStatic] private static byte[][]? t_rows;

    /// <summary>Rows [from, to) into <paramref name="output"/> (full rows), converting columns [x0, x1) of each.</summary>
    private static void RowsInto(JpegDecoder.Component[] components, int width, int maxH, int maxV, Space space, byte* output, int from, int to,
        int x0, int x1, byte[][] rows, byte[][] sources, int[] offsets)
    {
        int n = components.Length;
        for (int y = from; y < to; y++)
        {
            for (int i = 0; i < n; i++)
                (sources[i], offsets[i]) = Upsample(components[i], y, maxH, maxV, width, rows[i], x0, x1);
            byte* o = output + (long)(y - from) * width * 3 + 3 * x0;
            fixed (byte* c0 = &sources[0][offsets[0] + x0])
            {
                if (n == 1)
                {
                    for (int x = 0; x < x1 - x0; x++) o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = c0[x];
                    continue;
                }
                fixed (byte* c1 = &sources[1][offsets[1] + x0])
                fixed (byte* c2 = &sources[2][offsets[2] + x0])
                {
                    if (n == 3) Convert3(space, c0, c1, c2, o, x1 - x0);
                    else fixed (byte* c3 = &sources[3][offsets[3] + x0]) Convert4(space, c0, c1, c2, c3, o, x1 - x0);
                }
            }
        }
    }

    private static void Convert3(Space space, byte* y, byte* cb, byte* cr, byte* o, int width)
    {
        if (space == Space.Rgb)
        {
            for (int x = 0; x < width; x++) (o[3 * x], o[3 * x + 1], o[3 * x + 2]) = (y[x], cb[x], cr[x]);
            return;
        }
        int x0 = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // 16 pixels at a time, one 32-bit lane each: the same integer expressions, so the same bytes.
            var interleave = new Interleaver();
            for (; x0 + 16 <= width; x0 += 16)
            {
                var l = Avx512F.ConvertToVector512Int32(Vector128.Load(y + x0));
                var b = Avx512F.ConvertToVector512Int32(Vector128.Load(cb + x0)) - Vector512.Create(128);
                var r = Avx512F.ConvertToVector512Int32(Vector128.Load(cr + x0)) - Vector512.Create(128);
                var half = Vector512.Create(OneHalf);
                interleave.Store(
                    ToBytes(l + ((r * FixCrR + half) >> ScaleBits)),
                    ToBytes(l + ((b * FixCbG + half + r * FixCrG) >> ScaleBits)),
                    ToBytes(l + ((b * FixCbB + half) >> ScaleBits)),
                    o + 3 * x0);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var interleave = new Interleaver();
            for (; x0 + 16 <= width; x0 += 16)
            {
                var (r, g, b) = YccToRgb16(Vector128.Load(y + x0), Vector128.Load(cb + x0), Vector128.Load(cr + x0));
                interleave.Store(r, g, b, o + 3 * x0);
            }
        }
        for (int x = x0; x < width; x++)
        {
            o[3 * x] = Clamp(Red(y[x], cr[x]));
            o[3 * x + 1] = Clamp(Green(y[x], cb[x], cr[x]));
            o[3 * x + 2] = Clamp(Blue(y[x], cb[x]));
        }
    }

    /// <summary>16 values clamped to 0..255, as bytes in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> ToBytes(Vector512<int> v) =>
        Avx512F.ConvertToVector128ByteWithSaturation(Vector512.Max(v, Vector512<int>.Zero).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector128<byte> R, Vector128<byte> G, Vector128<byte> B) YccToRgb16(Vector128<byte> y, Vector128<byte> cb, Vector128<byte> cr)
    {
        var (yLo, yHi) = Widen(y);
        var (bLo, bHi) = Widen(cb);
        var (rLo, rHi) = Widen(cr);
        return (Pack(R(yLo, rLo), R(yHi, rHi)), Pack(G(yLo, bLo, rLo), G(yHi, bHi, rHi)), Pack(B(yLo, bLo), B(yHi, bHi)));

        static Vector256<int> R(Vector256<int> l, Vector256<int> r) =>
            l + ((r - Vector256.Create(128)) * FixCrR + Vector256.Create(OneHalf) >> ScaleBits);
        static Vector256<int> G(Vector256<int> l, Vector256<int> b, Vector256<int> r) =>
            l + ((b - Vector256.Create(128)) * FixCbG + Vector256.Create(OneHalf) + (r - Vector256.Create(128)) * FixCrG >> ScaleBits);
        static Vector256<int> B(Vector256<int> l, Vector256<int> b) =>
            l + ((b - Vector256.Create(128)) * FixCbB + Vector256.Create(OneHalf) >> ScaleBits);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int> Low, Vector256<int> High) Widen(Vector128<byte> v)
    {
        var shorts = Vector256.WidenLower(v.ToVector256Unsafe());
        return (Vector256.WidenLower(shorts).AsInt32(), Vector256.WidenUpper(shorts).AsInt32());
    }

    /// <summary>16 values clamped to 0..255, as bytes in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Pack(Vector256<int> low, Vector256<int> high)
    {
        var lo = Vector256.Min(Vector256.Max(low, Vector256<int>.Zero), Vector256.Create(255));
        var hi = Vector256.Min(Vector256.Max(high, Vector256<int>.Zero), Vector256.Create(255));
        var shorts = Vector256.Narrow(lo, hi).AsUInt16();
        return Vector256.Narrow(shorts, shorts).GetLower();
    }

    /// <summary>Interleaves 16 R, G and B values into 48 bytes, with byte shuffles whose masks stay in registers.</summary>
    private readonly struct Interleaver
    {
        private readonly Vector128<byte> _r0, _g0, _b0, _r1, _g1, _b1, _r2, _g2, _b2;

        public Interleaver()
        {
            var m = RgbShuffles.Interleave;
            (_r0, _g0, _b0, _r1, _g1, _b1, _r2, _g2, _b2) = (m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(Vector128<byte> r, Vector128<byte> g, Vector128<byte> b, byte* o)
        {
            (Shuffle(r, _r0) | Shuffle(g, _g0) | Shuffle(b, _b0)).Store(o);
            (Shuffle(r, _r1) | Shuffle(g, _g1) | Shuffle(b, _b1)).Store(o + 16);
            (Shuffle(r, _r2) | Shuffle(g, _g2) | Shuffle(b, _b2)).Store(o + 32);
        }

        /// <summary>pshufb where there is one: its zero for a mask byte of 0xFF is what the masks rely on.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<byte> Shuffle(Vector128<byte> v, Vector128<byte> mask) =>
            Ssse3.IsSupported ? Ssse3.Shuffle(v, mask) : Vector128.Shuffle(v, mask);
    }

    private static void Convert4(Space space, byte* c0, byte* c1, byte* c2, byte* k, byte* o, int width)
    {
        for (int x = 0; x < width; x++)
        {
            int c = c0[x], m = c1[x], ye = c2[x];
            if (space == Space.Ycck)
            {
                // libjpeg's YCCK → CMYK: the YCbCr → RGB conversion, inverted.
                c = 255 - Clamp(Red(c0[x], c2[x]));
                m = 255 - Clamp(Green(c0[x], c1[x], c2[x]));
                ye = 255 - Clamp(Blue(c0[x], c1[x]));
            }
            // PIL reads JPEG CMYK inverted ("CMYK;I"), then converts to RGB as nk - c·nk/255 with nk = 255 - k.
            int nk = k[x]; // 255 - (255 - k)
            o[3 * x] = (byte)(nk - MulDiv255(255 - c, nk));
            o[3 * x + 1] = (byte)(nk - MulDiv255(255 - m, nk));
            o[3 * x + 2] = (byte)(nk - MulDiv255(255 - ye, nk));
        }
    }

    /// <summary>PIL's MULDIV255: a·b/255 rounded, as its CMYK → RGB conversion computes it (TIFF's CMYK uses it too).</summary>
    internal static int MulDiv255(int a, int b)
    {
        int t = a * b + 128;
        return ((t >> 8) + t) >> 8;
    }

    private static byte Clamp(int v) => (byte)Math.Clamp(v, 0, 255);

    /// <summary>
    /// Component row for output row y: a plane row itself, or the row computed into <paramref name="row"/> (at least
    /// its columns [<paramref name="x0"/>, <paramref name="x1"/>)).
    /// </summary>
    private static (byte[] Source, int Offset) Upsample(JpegDecoder.Component c, int y, int maxH, int maxV, int width, byte[] row, int x0, int x1)
    {
        int hx = maxH / c.H, vx = maxV / c.V, stride = c.Stride;
        var plane = c.Plane;
        if (hx == 1 && vx == 1) return (plane, y * stride);
        int cy = y / vx;
        bool fancyH = hx == 2 && c.Width > 2;
        if ((hx == 2 && vx == 1 && fancyH) || (hx == 1 && vx == 2) || (hx == 2 && vx == 2 && fancyH))
        {
            fixed (byte* p = plane, o = row)
            {
                byte* near = p + cy * stride;
                // Fancy 2:1 makes output columns 2s and 2s + 1 from sample s.
                int s0 = hx == 2 ? x0 / 2 : x0, s1 = hx == 2 ? (x1 - 1) / 2 + 1 : x1;
                if (vx == 1)
                {
                    H2V1(near, o, c.Width, s0, s1);
                    return (row, 0);
                }
                // The other row of the pair's filter: above for the upper output row, below for the lower one,
                // the image's own first or last row past its edge (libjpeg's context rows).
                int farY = y % 2 == 0 ? Math.Max(cy - 1, 0) : Math.Min(cy + 1, c.Height - 1);
                byte* far = p + farY * stride;
                if (hx == 1) H1V2(near + s0, far + s0, o + s0, s1 - s0, y % 2 == 0 ? 1 : 2);
                else H2V2(near, far, o, c.Width, s0, s1);
            }
            return (row, 0);
        }
        // Box: replicate each sample hx times (libjpeg's h2v1/h2v2 and generic integral upsampling).
        int from = cy * stride;
        for (int x = x0; x < x1; x++) row[x] = plane[from + x / hx];
        return (row, 0);
    }

    /// <summary>
    /// Fancy 2:1 horizontal upsampling of 16 columns, given as 16-bit lanes (samples, or 3·near + far column
    /// sums) with their left and right neighbours: output 2x is (3·here + last + evenBias) &gt;&gt; shift and output
    /// 2x + 1 is (3·here + next + oddBias) &gt;&gt; shift — libjpeg's formulas, so the same bytes — stored as 32
    /// bytes in order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fancy2(Vector256<short> last, Vector256<short> here, Vector256<short> next, short evenBias, short oddBias, int shift, byte* o)
    {
        var even = (here * 3 + last + Vector256.Create(evenBias)) >> shift;
        var odd = (here * 3 + next + Vector256.Create(oddBias)) >> shift;
        // Interleaving and packing both work within 128-bit halves, which leaves the 32 bytes in order.
        Avx2.PackUnsignedSaturate(Avx2.UnpackLow(even, odd), Avx2.UnpackHigh(even, odd)).Store(o);
    }

    /// <summary>16 samples from <paramref name="p"/> as 16-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Samples(byte* p) => Avx2.ConvertToVector256Int16(Vector128.Load(p));

    /// <summary>3·near + far for 16 columns, as 16-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> ColumnSums(byte* near, byte* far) => Samples(near) * 3 + Samples(far);

    /// <summary>Output columns 2s and 2s + 1 for samples s in [<paramref name="s0"/>, <paramref name="s1"/>) of a row of <paramref name="w"/> samples.</summary>
    private static void H2V1(byte* i, byte* o, int w, int s0, int s1)
    {
        int v, x = s0, end = Math.Min(s1, w - 1); // the samples with both neighbours: [1, w − 1)
        if (x == 0)
        {
            v = i[0];
            o[0] = (byte)v;
            o[1] = (byte)((v * 3 + i[1] + 2) >> 2);
            x = 1;
        }
        if (Avx2.IsSupported)
            for (; x + 16 <= end; x += 16)
                Fancy2(Samples(i + x - 1), Samples(i + x), Samples(i + x + 1), 1, 2, 2, o + 2 * x);
        for (; x < end; x++)
        {
            v = i[x] * 3;
            o[2 * x] = (byte)((v + i[x - 1] + 1) >> 2);
            o[2 * x + 1] = (byte)((v + i[x + 1] + 2) >> 2);
        }
        if (s1 < w) return;
        v = i[w - 1];
        o[2 * w - 2] = (byte)((v * 3 + i[w - 2] + 1) >> 2);
        o[2 * w - 1] = (byte)v;
    }

    private static void H1V2(byte* near, byte* far, byte* o, int w, int bias)
    {
        int x = 0;
        if (Avx2.IsSupported)
        {
            var b = Vector256.Create((short)bias);
            for (; x + 32 <= w; x += 32)
            {
                var low = (ColumnSums(near + x, far + x) + b) >> 2;
                var high = (ColumnSums(near + x + 16, far + x + 16) + b) >> 2;
                Vector256.Narrow(low.AsUInt16(), high.AsUInt16()).Store(o + x);
            }
        }
        for (; x < w; x++) o[x] = (byte)((near[x] * 3 + far[x] + bias) >> 2);
    }

    /// <summary><see cref="H2V1"/> over 3·near + far column sums (libjpeg's h2v2 fancy upsampling).</summary>
    private static void H2V2(byte* near, byte* far, byte* o, int w, int s0, int s1)
    {
        int x0 = s0, end = Math.Min(s1, w - 1);
        if (x0 == 0)
        {
            int firstSum = near[0] * 3 + far[0], secondSum = near[1] * 3 + far[1];
            o[0] = (byte)((firstSum * 4 + 8) >> 4);
            o[1] = (byte)((firstSum * 3 + secondSum + 7) >> 4);
            x0 = 1;
        }
        if (Avx2.IsSupported)
            for (; x0 + 16 <= end; x0 += 16)
                Fancy2(ColumnSums(near + x0 - 1, far + x0 - 1), ColumnSums(near + x0, far + x0), ColumnSums(near + x0 + 1, far + x0 + 1), 8, 7, 4, o + 2 * x0);
        int thisSum = near[x0] * 3 + far[x0];
        int lastSum = near[x0 - 1] * 3 + far[x0 - 1];
        for (int x = x0; x < end; x++)
        {
            int nextSum = near[x + 1] * 3 + far[x + 1];
            o[2 * x] = (byte)((thisSum * 3 + lastSum + 8) >> 4);
            o[2 * x + 1] = (byte)((thisSum * 3 + nextSum + 7) >> 4);
            lastSum = thisSum;
            thisSum = nextSum;
        }
        if (s1 < w) return;
        thisSum = near[w - 1] * 3 + far[w - 1];
        lastSum = near[w - 2] * 3 + far[w - 2];
        o[2 * w - 2] = (byte)((thisSum * 3 + lastSum + 8) >> 4);
        o[2 * w - 1] = (byte)((thisSum * 4 + 7) >> 4);
    }
}
