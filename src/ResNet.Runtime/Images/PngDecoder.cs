using System.Runtime.Intrinsics;

namespace ResNet.Runtime.Images;

/// <summary>
/// Turns a checked PNG's inflated scanlines into RGB the way PIL's <c>convert('RGB')</c> does: alpha dropped
/// without compositing, gray replicated, palette expanded, 1/2/4-bit gray scaled to 0..255, 16-bit samples
/// cut to their high byte, except 16-bit gray, which PIL opens as 32-bit integers and clamps (min(v, 255)).
/// The inflating is zlib's (native, vectorized), so a photo decodes several times faster than through
/// a managed inflater, and the structure check's inflate is the only one.
/// </summary>
internal static class PngDecoder
{
    /// <summary>
    /// Decodes a checked PNG. With <paramref name="rowsStarting"/>, a large non-interlaced one is handed out before
    /// its data inflates, if it says a reader will come (<see cref="Streamed"/>); otherwise it is not called. With
    /// <paramref name="window"/>, a non-interlaced one is unfiltered only up to the window's right edge and down to
    /// its last row (no filter reads the pixel above-right), and converted only there: the other pixels' bytes are
    /// unspecified. Every row's filter type is still checked and all data still inflates.
    /// </summary>
    public static RgbImage Decode(byte[] bytes, PngStructure.File file, string name, Func<RgbImage, bool>? rowsStarting = null, PixelWindow? window = null)
    {
        var h = file.Header;
        // Interlaced images are not windowed: their passes skip nothing (Pass), and they are never streamed.
        var needed = window ?? new PixelWindow(0, h.Width, 0, h.Height);
        bool pipelined = !h.Interlaced && ImageParallel.Worthwhile(h.RawBytes() * InflateStepsPerByte);
        if (pipelined && rowsStarting != null && Streamed(bytes, file, name, rowsStarting, needed) is RgbImage streamed) return streamed;
        // Only the transform asks for rows (rowsStarting): then nobody else sees these pixels or scanlines, which
        // come from and go back to ScratchBuffers (a batch's PNGs are decoded here, not streamed).
        long size = (long)h.Width * h.Height * 3;
        bool kept = rowsStarting != null && size <= ScratchBuffers.MaxKeptBytes;
        var rgb = kept ? ScratchBuffers.Rent((int)size, out _, exact: true) : new byte[size];
        if (pipelined)
        {
            using var inflating = new InflatePipeline(bytes, file, name, kept);
            Pass(inflating.Raw, 0, h, file.Palette, h.Passes().Single(), rgb, name, inflating.WaitFor, needed);
            inflating.Finish();
            return new RgbImage(h.Width, h.Height, rgb, kept);
        }
        byte[] raw = PngStructure.Inflate(bytes, file, name);
        long at = 0;
        foreach (var pass in h.Passes()) at = Pass(raw, at, h, file.Palette, pass, rgb, name, null, needed);
        return new RgbImage(h.Width, h.Height, rgb, kept);
    }

    /// <summary>
    /// The image, handed to <paramref name="rowsStarting"/> before its data inflates, while this thread inflates it
    /// (null, having done nothing, if rowsStarting says no reader will come: its offer found the one slot taken):
    /// whoever reads its rows (the transform a lent thread runs behind the decoding) unfilters them as they arrive, in
    /// order, and converts them. So the lent thread does the unfiltering the inflater's own thread used to, and the
    /// resize behind it, and no thread need start. If nothing has started reading once half is inflated (the CLI's main
    /// thread, loading the weights meanwhile, is lent by then), the reading gets a thread of its own
    /// (<see cref="ImageParallel.StartOfferedWork"/>), as the inflating had before.
    /// </summary>
    private static RgbImage? Streamed(byte[] bytes, PngStructure.File file, string name, Func<RgbImage, bool> rowsStarting, PixelWindow window)
    {
        var h = file.Header;
        // Only the transform asks for a streamed image (rowsStarting), and nobody else sees its scanlines: kept buffers.
        var raw = PngStructure.RawBuffer(file, name, kept: true);
        var rows = new StreamedRows(raw, h, file.Palette, name, window);
        var image = new RgbImage(h.Width, h.Height, rows);
        if (!rowsStarting(image))
        {
            ScratchBuffers.Return(raw);
            return null;
        }
        bool started = false;
        try
        {
            PngStructure.Inflate(bytes, file, name, raw, filled =>
            {
                rows.Inflated.Publish((int)(filled / (h.Stride(h.Width) + 1)));
                if (!started && filled >= raw.Length / 2 && !rows.Reading)
                {
                    started = true;
                    ImageParallel.StartOfferedWork();
                }
            });
            rows.CheckFilters();
        }
        catch
        {
            rows.Inflated.Fail();
            throw;
        }
        return image;
    }

    /// <summary>
    /// A streamed PNG's rows (<see cref="Streamed"/>): rows are unfiltered in place, in order and under a lock, up to
    /// the last one asked for, each once the inflater has filled it; any row unfiltered so far converts again.
    /// </summary>
    private sealed unsafe class StreamedRows(byte[] raw, PngStructure.Header h, byte[] palette, string name, PixelWindow window) : RowSource
    {
        private readonly object _lock = new();
        private readonly int _stride = (int)h.Stride(h.Width);
        private readonly byte[] _zeros = new byte[h.Stride(window.X1)]; // the row above the first, as far as it is unfiltered
        private int _unfiltered;
        private bool _reading;

        public override long WorkPerRow => (long)(_stride + 1) * InflateStepsPerByte;

        /// <summary>Whether a reader has asked for rows yet.</summary>
        public bool Reading => Volatile.Read(ref _reading);

        /// <summary>Whole scanlines inflated so far (the inflater publishes them, or its failure).</summary>
        public RowProgress Inflated { get; } = new();

        public override void ReleaseScratch() => ScratchBuffers.Return(raw);

        public override void Rows(int from, int to, byte* output)
        {
            Volatile.Write(ref _reading, true);
            Unfilter(to);
            int rowBytes = h.Width * 3;
            for (int y = from; y < to; y++)
                ConvertColumns(raw.AsSpan((int)((long)y * (_stride + 1)) + 1, _stride), h, palette, window, new Span<byte>(output + (long)(y - from) * rowBytes, rowBytes));
        }

        /// <summary>
        /// Refuses an unknown filter type on any row, once all are inflated: a reader unfilters only the rows it asks
        /// for (the transform, none below its crop), and an image whose other rows are corrupt must fail as PIL and
        /// the whole decoding fail on it. (Unfiltering leaves the filter bytes as they are.)
        /// </summary>
        public void CheckFilters()
        {
            for (long at = 0; at < raw.Length; at += _stride + 1) CheckFilter(raw[at], name);
        }

        /// <summary>Unfilters rows up to <paramref name="to"/> (exclusive), each once inflated.</summary>
        private void Unfilter(int to)
        {
            if (Volatile.Read(ref _unfiltered) >= to) return;
            lock (_lock)
            {
                int bpp = Math.Max(1, h.Channels * h.BitDepth / 8), limit = (int)h.Stride(window.X1);
                for (int y = _unfiltered; y < to; y++)
                {
                    long at = (long)y * (_stride + 1);
                    Inflated.WaitFor(y + 1);
                    PngDecoder.Unfilter(raw[at], raw.AsSpan((int)at + 1, limit), y == 0 ? _zeros : raw.AsSpan((int)at - _stride, limit), bpp, name);
                    Volatile.Write(ref _unfiltered, y + 1);
                }
            }
        }
    }

    /// <summary>
    /// A raw byte's inflating and unfiltering, in the row loops' inner-loop steps (<see cref="ImageParallel.Worthwhile"/>):
    /// ~4 ns against ~1. Counted as one step, a 768×576 photo (1.3 MB raw: zlib 2.9 ms, unfiltering 2.5) fell short
    /// of the threshold and decoded in 6.2 ms on one thread; pipelined, 3.5–4.1.
    /// </summary>
    private const long InflateStepsPerByte = 4;

    /// <summary>
    /// Inflating (zlib's) and unfiltering (each row needs the one above) are serial each, but not with each other:
    /// for a large image, zlib fills the buffer on its own thread and the decoder unfilters the rows behind it.
    /// </summary>
    private sealed class InflatePipeline : IDisposable
    {
        private readonly Task _inflater;
        private readonly bool _kept;
        private int _filled;

        /// <summary><paramref name="kept"/>: the scanlines come from ScratchBuffers and go back there once inflating is over.</summary>
        public InflatePipeline(byte[] bytes, PngStructure.File file, string name, bool kept)
        {
            _kept = kept;
            Raw = PngStructure.RawBuffer(file, name, kept);
            // Its own thread, as the JPEG decoder's IDCT: a pool thread could be long in coming when the pool is busy.
            _inflater = Task.Factory.StartNew(() => PngStructure.Inflate(bytes, file, name, Raw, filled => Volatile.Write(ref _filled, filled)),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        public byte[] Raw { get; }

        /// <summary>Returns once raw[0, <paramref name="end"/>) is inflated; rethrows the inflater's error if it stopped short.</summary>
        public void WaitFor(long end)
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _filled) < end)
            {
                if (_inflater.IsCompleted && Volatile.Read(ref _filled) < end) _inflater.GetAwaiter().GetResult();
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }

        /// <summary>The inflater's verdict on what follows the image data (too much of it is refused).</summary>
        public void Finish() => _inflater.GetAwaiter().GetResult();

        public void Dispose()
        {
            try { _inflater.Wait(); } catch (AggregateException) { /* reported through WaitFor or Finish, or the unfiltering failed first */ }
            if (_kept) ScratchBuffers.Return(Raw); // the inflater is done with it, and so is the unfiltering
        }
    }

    /// <summary>
    /// Unfilters one (sub-)image starting at raw[at] in place and writes its pixels to the pass's grid; returns
    /// where the next pass starts. Each row's filter reads the row above, already unfiltered in place.
    /// </summary>
    private static long Pass(byte[] raw, long at, PngStructure.Header h, byte[] palette,
        (int X0, int Y0, int Dx, int Dy, int Width, int Height) pass, byte[] rgb, string name, Action<long>? waitFor, PixelWindow window)
    {
        int stride = (int)h.Stride(pass.Width);
        int bpp = Math.Max(1, h.Channels * h.BitDepth / 8); // the filters' "corresponding byte to the left"
        var zeros = new byte[stride]; // the row above the first
        // A window (whole image passes only) bounds the bytes unfiltered on the right and the rows at the bottom.
        bool whole = pass.Dx == 1 && pass.Dy == 1;
        int limit = whole ? (int)h.Stride(window.X1) : stride;
        for (int y = 0; y < pass.Height; y++, at += stride + 1)
        {
            waitFor?.Invoke(at + 1 + stride);
            var line = raw.AsSpan((int)at + 1, stride);
            if (whole && y >= window.Y1)
            {
                CheckFilter(raw[at], name); // nothing else of the rows below the window
                continue;
            }
            Unfilter(raw[at], line[..limit], y == 0 ? zeros.AsSpan(0, limit) : raw.AsSpan((int)at - stride, limit), bpp, name);
            long rowStart = ((long)(pass.Y0 + y * pass.Dy) * h.Width + pass.X0) * 3;
            if (whole) ConvertColumns(line, h, palette, window, rgb.AsSpan((int)rowStart));
            else ConvertRow(line, h, palette, pass.Width, pass.Dx, rgb.AsSpan((int)rowStart));
        }
        return at;
    }

    /// <summary>Pixels [X0, X1) of a whole unfiltered line (at least its first Stride(X1) bytes) into their places in the RGB row <paramref name="dst"/>.</summary>
    private static void ConvertColumns(ReadOnlySpan<byte> line, PngStructure.Header h, byte[] palette, PixelWindow window, Span<byte> dst)
    {
        int x0 = window.X0, x1 = window.X1;
        if (h.BitDepth == 8)
        {
            Convert8(line.Slice(x0 * h.Channels, (x1 - x0) * h.Channels), h.ColorType, palette, dst.Slice(3 * x0, 3 * (x1 - x0)));
            return;
        }
        for (int x = x0; x < x1; x++)
            Sample(line, x, h, palette, dst.Slice(x * 3, 3));
    }

    /// <summary>An unfiltered line of <paramref name="width"/> pixels as RGB, pixel x at <paramref name="dst"/>[3·x·<paramref name="dx"/>].</summary>
    private static void ConvertRow(ReadOnlySpan<byte> line, PngStructure.Header h, byte[] palette, int width, int dx, Span<byte> dst)
    {
        if (dx == 1)
        {
            ConvertColumns(line, h, palette, new PixelWindow(0, width, 0, 1), dst);
            return;
        }
        for (int x = 0; x < width; x++)
            Sample(line, x, h, palette, dst.Slice(x * dx * 3, 3));
    }

    /// <summary>PNG's five filter types (0–4); any other is refused, as PIL refuses it.</summary>
    private static void CheckFilter(byte filter, string name)
    {
        if (filter > 4) throw PngStructure.Corrupt(name, $"unknown scanline filter {filter}");
    }

    /// <summary>Undoes one scanline's filter (PNG spec §9) given the unfiltered line above.</summary>
    private static unsafe void Unfilter(byte filter, Span<byte> span, ReadOnlySpan<byte> aboveSpan, int bpp, string name)
    {
        CheckFilter(filter, name);
        int n = span.Length, first = Math.Min(bpp, n);
        // Pointers, because these loops run once per byte of the image and bounds checks were half their time.
        fixed (byte* line = span)
        fixed (byte* above = aboveSpan)
        {
            switch (filter)
            {
                case 1:
                    for (int i = bpp; i < n; i++) line[i] += line[i - bpp];
                    break;
                case 2:
                    for (int i = 0; i < n; i++) line[i] += above[i];
                    break;
                case 3:
                    for (int i = 0; i < first; i++) line[i] += (byte)(above[i] >> 1);
                    for (int i = bpp; i < n; i++) line[i] += (byte)((line[i - bpp] + above[i]) >> 1);
                    break;
                case 4:
                    for (int i = 0; i < first; i++) line[i] += above[i]; // Paeth with a = c = 0 picks b
                    if (bpp == 3) Paeth3(line, above, n);
                    else for (int i = bpp; i < n; i++) line[i] += (byte)Paeth(line[i - bpp], above[i], above[i - bpp]);
                    break;
            }
        }
    }

    /// <summary>
    /// Paeth for 8-bit RGB, the usual photo. Each pixel depends on the one to its left, so the row is a chain of
    /// predictions whose latency sets the speed: a pixel's three channels are predicted together in one vector
    /// (16-bit lanes), which shortens the chain to about ten single-cycle operations. A 768×576 photo: 1.6 ms,
    /// against 2.5 as three scalar chains of ~15 each (zlib inflates it in 2.9).
    /// </summary>
    internal static unsafe void Paeth3(byte* line, byte* above, int n)
    {
        int i = 3;
        if (Vector128.IsHardwareAccelerated && n >= 10)
        {
            // Pixels are read and written 4 bytes at a time. The fourth byte stored is the next pixel's first, wrong
            // until that pixel's own store: so the next pixel's bytes are loaded before the store (which also spares
            // a load that half overlaps a store), and after the last the byte is put back for the scalar tail.
            var low = Vector128.Create((short)0xFF);
            var a = Widen(*(uint*)line);
            var c = Widen(*(uint*)above);
            var x = Widen(*(uint*)(line + 3));
            for (; i + 7 <= n; i += 3)
            {
                var b = Widen(*(uint*)(above + i));
                var next = Widen(*(uint*)(line + i + 3));
                var bc = b - c;
                var ac = a - c;
                var pa = Vector128.Abs(bc);
                var pb = Vector128.Abs(ac);
                var pc = Vector128.Abs(ac + bc);
                var bOrC = Vector128.ConditionalSelect(Vector128.GreaterThan(pb, pc), c, b);
                var notA = Vector128.GreaterThan(pa, pb) | Vector128.GreaterThan(pa, pc);
                a = (x + Vector128.ConditionalSelect(notA, bOrC, a)) & low;
                *(uint*)(line + i) = Vector128.Narrow(a.AsUInt16(), a.AsUInt16()).AsUInt32().ToScalar();
                c = b;
                x = next;
            }
            line[i] = (byte)x.ToScalar();
        }
        int a0 = line[i - 3], a1 = line[i - 2], a2 = line[i - 1], c0 = above[i - 3], c1 = above[i - 2], c2 = above[i - 1];
        for (; i + 2 < n; i += 3)
        {
            int b0 = above[i], b1 = above[i + 1], b2 = above[i + 2];
            a0 = (byte)(line[i] + Paeth(a0, b0, c0));
            a1 = (byte)(line[i + 1] + Paeth(a1, b1, c1));
            a2 = (byte)(line[i + 2] + Paeth(a2, b2, c2));
            line[i] = (byte)a0;
            line[i + 1] = (byte)a1;
            line[i + 2] = (byte)a2;
            (c0, c1, c2) = (b0, b1, b2);
        }
    }

    /// <summary>Four bytes as the low four 16-bit lanes.</summary>
    private static Vector128<short> Widen(uint bytes) => Vector128.WidenLower(Vector128.CreateScalar(bytes).AsByte()).AsInt16();

    /// <summary>The Paeth predictor with masks instead of branches: its choice is data-dependent and mispredicts constantly.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static int Paeth(int a, int b, int c)
    {
        int pa = b - c, pb = a - c, pc = pa + pb;
        pa = (pa ^ (pa >> 31)) - (pa >> 31);
        pb = (pb ^ (pb >> 31)) - (pb >> 31);
        pc = (pc ^ (pc >> 31)) - (pc >> 31);
        int pickB = ~((pc - pb) >> 31);              // pb <= pc
        int pickA = ~(((pb - pa) | (pc - pa)) >> 31); // pa <= pb && pa <= pc
        int bc = c ^ ((b ^ c) & pickB);
        return bc ^ ((a ^ bc) & pickA);
    }

    /// <summary>The common case, a whole row of 8-bit samples, without per-pixel dispatch.</summary>
    private static void Convert8(ReadOnlySpan<byte> line, int colorType, byte[] palette, Span<byte> dst)
    {
        int w = dst.Length / 3;
        switch (colorType)
        {
            case 2:
                line.CopyTo(dst);
                break;
            case 6:
                for (int x = 0; x < w; x++)
                {
                    dst[3 * x] = line[4 * x];
                    dst[3 * x + 1] = line[4 * x + 1];
                    dst[3 * x + 2] = line[4 * x + 2];
                }
                break;
            default:
                int channels = colorType == 4 ? 2 : 1;
                for (int x = 0; x < w; x++)
                {
                    byte v = line[channels * x];
                    if (colorType == 3) PaletteEntry(palette, v, dst.Slice(3 * x, 3));
                    else dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = v;
                }
                break;
        }
    }

    /// <summary>Pixel <paramref name="x"/> of an unfiltered line as RGB, for any depth and color type.</summary>
    private static void Sample(ReadOnlySpan<byte> line, int x, PngStructure.Header h, byte[] palette, Span<byte> rgb)
    {
        int depth = h.BitDepth;
        if (depth < 8)
        {
            // Packed samples, leftmost in the high bits; only gray and palette images have them.
            int perByte = 8 / depth, shift = 8 - depth * (x % perByte + 1);
            int v = (line[x / perByte] >> shift) & ((1 << depth) - 1);
            if (h.ColorType == 3) PaletteEntry(palette, v, rgb);
            else rgb[0] = rgb[1] = rgb[2] = (byte)(v * 255 / ((1 << depth) - 1));
            return;
        }
        int channels = h.Channels, bytes = depth / 8;
        int at = x * channels * bytes;
        if (depth == 16 && h.ColorType == 0)
        {
            int v = (line[at] << 8) | line[at + 1];
            rgb[0] = rgb[1] = rgb[2] = (byte)Math.Min(v, 255);
            return;
        }
        if (h.ColorType == 3)
        {
            PaletteEntry(palette, line[at], rgb);
            return;
        }
        if (h.ColorType is 0 or 4)
        {
            rgb[0] = rgb[1] = rgb[2] = line[at];
            return;
        }
        rgb[0] = line[at];
        rgb[1] = line[at + bytes];
        rgb[2] = line[at + 2 * bytes];
    }

    /// <summary>An index past the palette's end is the gray (i, i, i), as in PIL (which pads a short palette with a gray ramp).</summary>
    private static void PaletteEntry(byte[] palette, int index, Span<byte> rgb)
    {
        if (3 * index + 2 < palette.Length)
        {
            rgb[0] = palette[3 * index];
            rgb[1] = palette[3 * index + 1];
            rgb[2] = palette[3 * index + 2];
        }
        else rgb[0] = rgb[1] = rgb[2] = (byte)index;
    }
}
