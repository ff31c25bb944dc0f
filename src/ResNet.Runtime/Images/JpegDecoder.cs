using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ResNet.Runtime.Images;

/// <summary>
/// Baseline and progressive Huffman JPEG (8-bit, 1, 3 or 4 components, any integral sampling factors, restart
/// intervals), decoded the way PIL's libjpeg-turbo decodes it for torchvision: islow IDCT (<see cref="JpegIdct"/>),
/// fancy upsampling and libjpeg's color conversion tables (<see cref="JpegColor"/>), so the RGB pixels are the
/// same bytes, and its block smoothing of progressive images whose scans leave the low AC bits unrefined
/// (<see cref="JpegSmoothing"/>). Damaged entropy-coded data is decoded as libjpeg decodes it, warnings and all,
/// since PIL ignores them: a bad Huffman code is a zero symbol, data that runs into a marker leaves the rest of its
/// restart interval gray (<see cref="JpegBitReader"/>), restart markers out of order are resynchronized as libjpeg
/// does; where its bit buffer decides (fill bytes in the data, a file without its end), <see cref="JpegReadAhead"/>
/// stands in. It reads the segments <see cref="JpegStructure"/> found, in their order.
/// </summary>
internal sealed unsafe class JpegDecoder
{
    /// <summary>
    /// Zigzag position → natural position, then 64 entries of 63: libjpeg's 16 extra ones absorb corrupt runs, the
    /// rest the fast table's end-of-block run of 63 (<see cref="JpegHuffmanTable.FastAc"/>), whose zero lands on
    /// position 63 while it is still unwritten.
    /// </summary>
    internal static readonly byte[] NaturalOrder =
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
        .. Enumerable.Repeat((byte)63, 64),
    ];

    internal sealed class Component(int id, int h, int v, int quantIndex)
    {
        public readonly int Id = id, H = h, V = v, QuantIndex = quantIndex;
        public int[]? Quant;            // latched at the component's first scan, natural order
        public int Width, Height;       // samples: ceil(image size × factor / max factor)
        public int BlocksW, BlocksH;    // blocks covering the whole MCU grid (the plane's size / 8)
        public int OwnBlocksW, OwnBlocksH; // blocks a non-interleaved scan codes: ceil(Width / 8) × ceil(Height / 8)
        public byte[] Plane = [];       // BlocksW·8 × BlocksH·8 samples
        public bool PlaneKept;          // Plane came from ScratchBuffers and goes back there once the tensor is made
        public int NeedBx0, NeedBx1, NeedBy0, NeedBy1; // the blocks transformed: all, or those a pixel window uses
        public short[]? Coefficients;   // progressive only: 64 per block
        // Progressive only, libjpeg's coef_bits for zigzag terms 0–9: the Al of the last scan that coded each (-1:
        // none), and the same before the latest scan (for JpegSmoothing).
        public readonly int[] CoefBits = [-1, -1, -1, -1, -1, -1, -1, -1, -1, -1], PrevCoefBits = new int[10];
        public int DcPrediction;
        public int DcIndex, AcIndex;   // the Huffman table slots the current scan names
        public JpegHuffmanTable? Dc, Ac;
        public int Stride => BlocksW * 8;

        /// <summary>
        /// Transforms only the blocks holding samples the pixels of <paramref name="window"/> read: each pixel's own
        /// sample and, for fancy upsampling, its neighbour on either side (box upsampling reads fewer).
        /// </summary>
        public void Limit(PixelWindow window, int maxH, int maxV)
        {
            (NeedBx0, NeedBx1) = Blocks(window.X0, window.X1, H, maxH, BlocksW);
            (NeedBy0, NeedBy1) = Blocks(window.Y0, window.Y1, V, maxV, BlocksH);

            static (int From, int To) Blocks(int from, int to, int factor, int max, int blocks) =>
                ((int)Math.Max(0, ((long)from * factor / max - 1) / 8), (int)Math.Min(blocks, ((long)(to - 1) * factor / max + 1) / 8 + 1));
        }

        public bool Needs(int bx, int by) => bx >= NeedBx0 && bx < NeedBx1 && by >= NeedBy0 && by < NeedBy1;

        /// <summary>A block left untransformed: filled with <see cref="PoisonSkipped"/> when a test asks, so that a read of it shows.</summary>
        public void Skip(int bx, int by)
        {
            if (PoisonSkipped < 0) return;
            Interlocked.Increment(ref SkippedBlocks);
            for (int r = 0; r < 8; r++) Plane.AsSpan((by * 8 + r) * Stride + bx * 8, 8).Fill((byte)PoisonSkipped);
        }

        /// <summary>Dequantizes and inverse-transforms one block's coefficients into the plane at block (bx, by).</summary>
        public void Transform(short* coefficients, int bx, int by)
        {
            fixed (byte* plane = Plane)
            fixed (int* quant = Quant)
                JpegIdct.Transform(coefficients, quant, plane + by * 8 * Stride + bx * 8, Stride);
        }

        /// <summary><see cref="Transform"/> of two of this component's blocks at once.</summary>
        public void Transform2(short* first, int bx, int by, short* second, int bx2, int by2)
        {
            fixed (byte* plane = Plane)
            fixed (int* quant = Quant)
                JpegIdct.Transform2(first, second, quant, plane + by * 8 * Stride + bx * 8, plane + by2 * 8 * Stride + bx2 * 8, Stride);
        }
    }

    /// <summary>Tests: the byte blocks outside a pixel window are filled with (−1: left as they are), and how many were.</summary>
    internal static int PoisonSkipped = -1;
    internal static long SkippedBlocks;

    private readonly byte[] _data;
    private readonly string _name;
    private readonly int[]?[] _quant = new int[4][];
    /// <summary>Huffman tables as DHT defined them (class 0 DC, 1 AC; four slots each), built when a scan first uses them.</summary>
    private readonly JpegHuffmanSpec?[,] _huffman = new JpegHuffmanSpec?[2, 4];
    private Component[] _components = [];
    private int _width, _height, _maxH, _maxV, _mcusX, _mcusY, _restartInterval, _scans;

    /// <summary>libjpeg's last_good_iMCU_row: the MCU row of the last MCU decoded with data (progressive: JpegSmoothing).</summary>
    private int _lastGoodRow;

    /// <summary>
    /// Every scan walks all of its blocks, so a small file of many tiny scans is a decoding-time bomb. Encoders'
    /// progressive scripts use about ten; TurboJPEG's own scan limit is this one.
    /// </summary>
    private const int MaxScans = 500;
    private bool _progressive, _sawJfif, _sawAdobe;
    private int _adobeTransform;

    private readonly JpegStructure.File _file;

    /// <summary>Told the image when its rows start to become final during the decoding (<see cref="Decode"/>).</summary>
    private readonly Func<RgbImage, bool>? _rowsStarting;
    private RgbImage? _streamed;
    private RowProgress? _progress;

    /// <summary>The pixels that will be read (<see cref="Decode"/>), or null for all.</summary>
    private readonly PixelWindow? _window;

    /// <summary>The encoded color space a container states (TIFF's photometric interpretation), which the markers do not override; or null.</summary>
    private readonly JpegColor.Space? _space;

    private JpegDecoder(byte[] data, JpegStructure.File file, string name, Func<RgbImage, bool>? rowsStarting, PixelWindow? window, JpegColor.Space? space) =>
        (_data, _file, _name, _rowsStarting, _window, _space) = (data, file, name, rowsStarting, window, space);

    /// <summary>
    /// Decodes the segments <see cref="JpegStructure.Check"/> found (and whose frame it admitted). For a JPEG of one
    /// sequential scan of every component, decoded on this thread, <paramref name="rowsStarting"/> (if given) gets
    /// the image before the scan: its rows can be read while the scan goes on, each once it is final (a reader
    /// waits), and reads fail if the decoding does. Otherwise it is not called. With <paramref name="window"/>, only the
    /// blocks and color conversions its pixels need are done: the other pixels' bytes are unspecified. Every scan is
    /// still decoded whole, so a corrupt file fails as it would without. With <paramref name="space"/>, the samples are
    /// taken as that color space whatever the JFIF or Adobe markers say (libjpeg's jpeg_color_space set by its caller).
    /// </summary>
    public static RgbImage Decode(byte[] data, JpegStructure.File file, string name, Func<RgbImage, bool>? rowsStarting = null, PixelWindow? window = null,
        JpegColor.Space? space = null) =>
        new JpegDecoder(data, file, name, rowsStarting, window, space).Run();

    private InputException Corrupt(string reason) => new($"{_name}: corrupt JPEG data: {reason}");

    private RgbImage Run()
    {
        try
        {
            return Segments();
        }
        catch
        {
            _progress?.Fail();
            throw;
        }
    }

    private RgbImage Segments()
    {
        foreach (var (marker, start, length) in _file.Segments)
        {
            var segment = _data.AsSpan(start, length);
            switch (marker)
            {
                case 0xC0 or 0xC1 or 0xC2: Frame(segment, marker == 0xC2); break;
                case 0xC4: HuffmanTables(segment); break;
                case 0xDB: QuantTables(segment); break;
                case 0xCC:
                    // Arithmetic conditioning, unused here (arithmetic coding is refused), but libjpeg checks it.
                    if (segment.Length % 2 != 0) throw Corrupt("DAC segment of the wrong length");
                    for (int i = 0; i < segment.Length; i += 2)
                        if (JpegStructure.DacFails(segment[i], segment[i + 1])) throw Corrupt("bad arithmetic conditioning table (DAC)");
                    break;
                case 0xDD:
                    if (segment.Length != 2) throw Corrupt("DRI segment of the wrong length");
                    _restartInterval = BinaryPrimitives.ReadUInt16BigEndian(segment);
                    break;
                // libjpeg settles the color space at the first scan: these markers count only before it.
                case 0xE0 when _scans == 0: _sawJfif |= segment.Length >= 14 && segment[..5].SequenceEqual("JFIF\0"u8); break;
                case 0xEE when _scans == 0:
                    if (segment.Length >= 12 && segment[..5].SequenceEqual("Adobe"u8)) (_sawAdobe, _adobeTransform) = (true, segment[11]);
                    break;
                case 0xDA: Scan(segment, start + length, last: start == _file.Segments[^1].Start); break;
            }
        }
        if (_progressive)
        {
            bool smooth = JpegSmoothing.Applies(_components);
            // libjpeg's smoothing_ok latches "nothing known" as the earlier bits when only one scan was read.
            if (_scans == 1)
                foreach (var c in _components) c.PrevCoefBits.AsSpan(1).Fill(-1);
            foreach (var c in _components) TransformAll(c, smooth ? _mcusY : 0, _lastGoodRow);
        }
        else
            foreach (var c in _components.Where(c => c.Quant == null))
                c.Plane.AsSpan().Fill(128); // no scan reached it (an end-of-image marker came first): libjpeg's zero coefficients
        return _streamed ?? JpegColor.ToRgb(_components, _width, _height, _maxH, _maxV, ColorSpace(), window: _window);
    }

    /// <summary>The encoded color space as the caller states it, else as libjpeg infers it (JFIF and Adobe markers, then component ids).</summary>
    private JpegColor.Space ColorSpace()
    {
        if (_space is { } stated) return stated;
        var c = _components;
        if (c.Length == 1) return JpegColor.Space.Gray;
        if (c.Length == 4) return _sawAdobe && _adobeTransform != 0 ? JpegColor.Space.Ycck : JpegColor.Space.Cmyk; // 2, or unknown
        if (_sawJfif) return JpegColor.Space.YCbCr;
        if (_sawAdobe) return _adobeTransform == 0 ? JpegColor.Space.Rgb : JpegColor.Space.YCbCr;
        return c[0].Id == 'R' && c[1].Id == 'G' && c[2].Id == 'B' ? JpegColor.Space.Rgb : JpegColor.Space.YCbCr;
    }

    private void Frame(ReadOnlySpan<byte> s, bool progressive)
    {
        // The structure check allowed one frame header, with a size, 1, 3 or 4 components and room for them.
        if (s[0] != 8) throw new InputException($"{_name}: unsupported JPEG: {s[0]}-bit samples (8-bit JPEG is supported)");
        _height = BinaryPrimitives.ReadUInt16BigEndian(s[1..]);
        _width = BinaryPrimitives.ReadUInt16BigEndian(s[3..]);
        _progressive = progressive;
        int n = s[5];
        _components = new Component[n];
        for (int i = 0; i < n; i++)
        {
            var p = s.Slice(6 + 3 * i, 3);
            int h = p[1] >> 4, v = p[1] & 15;
            if (h is < 1 or > 4 || v is < 1 or > 4) throw Corrupt($"sampling factors {h}×{v} (1 to 4 allowed)");
            if (p[2] > 3) throw Corrupt($"quantization table {p[2]} (0 to 3 allowed)");
            _components[i] = new Component(p[0], h, v, p[2]);
        }
        _maxH = _components.Max(c => c.H);
        _maxV = _components.Max(c => c.V);
        if (_components.Any(c => _maxH % c.H != 0 || _maxV % c.V != 0))
            throw new InputException($"{_name}: unsupported JPEG: fractional sampling factors (libjpeg does not decode them either)");
        _mcusX = (_width + 8 * _maxH - 1) / (8 * _maxH);
        _mcusY = (_height + 8 * _maxV - 1) / (8 * _maxV);
        foreach (var c in _components)
        {
            c.Width = (int)(((long)_width * c.H + _maxH - 1) / _maxH);
            c.Height = (int)(((long)_height * c.V + _maxV - 1) / _maxV);
            c.OwnBlocksW = (c.Width + 7) / 8;
            c.OwnBlocksH = (c.Height + 7) / 8;
            c.BlocksW = _mcusX * c.H;
            c.BlocksH = _mcusY * c.V;
            // The kernels write through pointers, so the plane's size must never wrap (possible with --max-pixels raised).
            long samples = (long)c.BlocksW * 8 * c.BlocksH * 8;
            if (samples > Array.MaxLength) throw new InputException($"{_name}: {_width}×{_height} JPEG is too large to decode");
            // Only the transform asks for rows (rowsStarting), as the PNG decoder tells too: then nothing else sees the
            // planes, which come from and go back to ScratchBuffers. Their old bytes are overwritten where read.
            bool fresh = true;
            c.PlaneKept = _rowsStarting != null;
            c.Plane = c.PlaneKept ? ScratchBuffers.Rent((int)samples, out fresh) : GC.AllocateUninitializedArray<byte>((int)samples);
            (c.NeedBx0, c.NeedBx1, c.NeedBy0, c.NeedBy1) = (0, c.BlocksW, 0, c.BlocksH);
            if (_window is PixelWindow window) c.Limit(window, _maxH, _maxV);
            if (fresh) FreshPages.Populate(c.Plane, (long)c.NeedBy0 * 64 * c.BlocksW, (long)c.NeedBy1 * 64 * c.BlocksW);
            if (progressive) c.Coefficients = new short[(long)c.BlocksW * c.BlocksH * 64];
        }
    }

    private void QuantTables(ReadOnlySpan<byte> s)
    {
        while (s.Length > 0)
        {
            // As libjpeg: any precision nibble but 0 means 16-bit values.
            int precision = s[0] >> 4, index = s[0] & 15;
            int size = precision == 0 ? 64 : 128;
            if (index > 3 || s.Length < 1 + size) throw Corrupt("bad quantization table");
            var table = new int[64];
            for (int k = 0; k < 64; k++)
                table[NaturalOrder[k]] = precision == 0 ? s[1 + k] : BinaryPrimitives.ReadUInt16BigEndian(s[(1 + 2 * k)..]);
            _quant[index] = table;
            s = s[(1 + size)..];
        }
    }

    private JpegHuffmanTable Huffman(int cls, int index)
    {
        var spec = index < 4 ? _huffman[cls, index] : null;
        return spec == null ? throw Corrupt("scan uses an undefined Huffman table") : spec.Table(cls == 0, Corrupt);
    }

    private void HuffmanTables(ReadOnlySpan<byte> s)
    {
        while (s.Length > 0)
        {
            if (s.Length < 17) throw Corrupt("short Huffman table");
            int cls = s[0] >> 4, index = s[0] & 15;
            if (cls > 1 || index > 3) throw Corrupt("bad Huffman table class or index");
            var counts = s.Slice(1, 16);
            int total = 0;
            foreach (var n in counts) total += n;
            if (total > 256 || s.Length < 17 + total) throw Corrupt("bad Huffman table size");
            _huffman[cls, index] = new JpegHuffmanSpec(counts.ToArray(), s.Slice(17, total).ToArray());
            s = s[(17 + total)..];
        }
    }

    /// <summary>Decodes one scan, whose entropy-coded data starts at <paramref name="dataStart"/>; <paramref name="last"/>: no segment follows.</summary>
    private void Scan(ReadOnlySpan<byte> s, int dataStart, bool last)
    {
        if (_components.Length == 0) throw Corrupt("scan before the frame header");
        if (++_scans > MaxScans) throw new InputException($"{_name}: JPEG with more than {MaxScans} scans refused (possible decoding-time bomb)");
        // libjpeg's sequential decoder fills the first two slots of each class that no DHT has defined when decoding
        // starts with the standard tables, which Motion JPEG frames leave out.
        if (_scans == 1 && !_progressive)
            for (int cls = 0; cls < 2; cls++)
                for (int index = 0; index < 2; index++)
                    _huffman[cls, index] ??= JpegHuffmanSpec.Standard(cls == 0, index);
        int n = s.Length > 0 ? s[0] : 0;
        if (n is < 1 or > 4 || s.Length < 4 + 2 * n) throw Corrupt($"scan header with {n} components in {s.Length} bytes");
        var comps = new Component[n];
        for (int i = 0; i < n; i++)
        {
            int id = s[1 + 2 * i], tables = s[2 + 2 * i];
            var c = comps[i] = Array.Find(_components, x => x.Id == id) ?? throw Corrupt($"scan names component {id}, which the frame does not have");
            // An index past the four slots is an undefined table, refused below only where the scan needs it.
            (c.DcIndex, c.AcIndex) = (tables >> 4, tables & 15);
            // libjpeg latches a component's quantization table when its first scan starts.
            c.Quant ??= (int[]?)_quant[c.QuantIndex]?.Clone() ?? throw Corrupt($"no quantization table {c.QuantIndex}");
        }
        int ss = s[1 + 2 * n], se = s[2 + 2 * n], ah = s[3 + 2 * n] >> 4, al = s[3 + 2 * n] & 15;
        if (n > 1 && comps.Sum(c => c.H * c.V) > 10) throw Corrupt("more than 10 blocks in an MCU");
        var mode = ScanMode.Baseline;
        if (_progressive)
        {
            bool dc = ss == 0;
            bool bad = dc ? se != 0 : ss > se || se > 63 || n != 1;
            if ((ah != 0 && al != ah - 1) || al > 13 || bad) throw Corrupt($"bad progression parameters Ss={ss} Se={se} Ah={ah} Al={al}");
            mode = dc ? (ah == 0 ? ScanMode.DcFirst : ScanMode.DcRefine) : (ah == 0 ? ScanMode.AcFirst : ScanMode.AcRefine);
            foreach (var c in comps)
            {
                // libjpeg's progression status (start_pass_phuff_decoder), as far as block smoothing reads it.
                for (int k = Math.Min(ss, 1); k < 10; k++) c.PrevCoefBits[k] = _scans > 1 ? c.CoefBits[k] : 0;
                for (int k = ss; k <= Math.Min(se, 9); k++) c.CoefBits[k] = al;
            }
        }
        foreach (var c in comps)
        {
            bool needDc = mode is ScanMode.Baseline or ScanMode.DcFirst, needAc = mode is ScanMode.Baseline or ScanMode.AcFirst or ScanMode.AcRefine;
            // As libjpeg: the tables a scan uses are checked when it starts, not when defined.
            c.Dc = needDc ? Huffman(0, c.DcIndex) : null;
            c.Ac = needAc ? Huffman(1, c.AcIndex) : null;
        }
        var bits = new JpegBitReader(_data, dataStart);
        var state = new ScanState { Mode = mode, Ss = ss, Se = se, Al = al };
        foreach (var c in comps) c.DcPrediction = 0;
        int mcusX = n == 1 ? comps[0].OwnBlocksW : _mcusX, mcusY = n == 1 ? comps[0].OwnBlocksH : _mcusY;
        var row = new McuRow(comps, mcusX);
        var order = row.Order;
        int perMcu = order.Length / mcusX;
        // A sequential scan decodes an MCU row's coefficients, then transforms the row: here, or for a large
        // image on another core while the next rows decode.
        bool sequential = mode == ScanMode.Baseline;
        using var pipeline = sequential && ImageParallel.Worthwhile((long)order.Length * mcusY * 64) ? new IdctPipeline(row, mcusY) : null;
        using var own = sequential && pipeline == null ? new RowBuffer(order.Length) : null;
        // The file's one scan, of every component, decoded here: its rows can be read behind it. Only when no
        // segment follows, so that the color space known now is the one at the end.
        if (own != null && _rowsStarting != null && last && _scans == 1 && n == _components.Length)
        {
            _progress = new RowProgress();
            _streamed = JpegColor.ToRgb(_components, _width, _height, _maxH, _maxV, ColorSpace(), _progress, _window);
            _rowsStarting(_streamed); // whether a reader comes or not, the rows are read the same way
        }
        // Image rows an MCU row completes; the last maxV of them may still need the next MCU row's chroma (fancy
        // upsampling's context row).
        int rowsPerMcuRow = 8 * (n == 1 ? _maxV / comps[0].V : _maxV);
        int toRestart = _restartInterval, nextRestart = 0;
        // Fill bytes in a sequential scan's data, where libjpeg-turbo's fast path leaves coefficients behind: that scan
        // is decoded as libjpeg decodes it, bit buffer and all.
        var exact = sequential && _restartInterval == 0 && JpegReadAhead.HasFillBytes(_data, dataStart)
            ? new JpegReadAhead(_data, dataStart, 0, BlockTables(order, perMcu)) : null;
        for (int my = 0; my < mcusY; my++)
        {
            short* slot = pipeline != null ? pipeline.Acquire(my) : own != null ? own.Coefficients : null;
            bool skip = false;
            for (int k = 0; exact != null && k < order.Length; k += perMcu)
                if (!exact.Decode(slot + 64 * k)) throw Truncated();
            for (int k = 0; exact == null && k < order.Length; k++)
            {
                if (k % perMcu == 0)
                {
                    if (_restartInterval > 0)
                    {
                        if (toRestart == 0)
                        {
                            bits.Restart(nextRestart);
                            nextRestart = (nextRestart + 1) & 7;
                            toRestart = _restartInterval;
                            foreach (var c in comps) c.DcPrediction = 0;
                            state.EobRun = 0;
                        }
                        toRestart--;
                    }
                    // Once the data has run out (into a marker), libjpeg leaves MCUs as they are until a restart:
                    // zero coefficients (mid-gray) in a sequential scan, what earlier scans gave in a progressive one.
                    skip = bits.Insufficient;
                    if (!skip) _lastGoodRow = n == 1 ? my / comps[0].V : my;
                }
                if (skip) continue;
                var (component, bx, dy, step) = order[k];
                if (slot != null)
                    Sequential(component, ref bits, slot + 64 * k); // the slot comes cleared
                else
                    Progressive(component, bx, my * step + dy, ref bits, ref state);
            }
            if (pipeline != null) pipeline.Publish(my);
            else if (own != null)
            {
                row.Transform(own.Coefficients, my);
                _progress?.Publish(my + 1 == mcusY ? _height : Math.Min(_height, (my + 1) * rowsPerMcuRow - _maxV));
            }
        }
        pipeline?.Finish();
        // The marker the data ran into is the one libjpeg reads next: one it does not know fails the file (the structure
        // check may have taken it for data, expecting a restart marker the decoder did not get to).
        if (JpegStructure.Unknown(bits.UnreadMarker)) throw new InputException($"{_name}: corrupt JPEG: unknown marker 0x{bits.UnreadMarker:X2}");
        if (exact == null && last && _file.DataRunsToEnd && JpegReadAhead.RunsOut(_data, dataStart, _restartInterval, BlockTables(order, perMcu), (long)mcusX * mcusY))
            throw Truncated();
    }

    /// <summary>A sequential scan's Huffman tables and component for each block of an MCU (<see cref="JpegReadAhead"/>).</summary>
    private (JpegHuffmanSpec, JpegHuffmanSpec, int)[] BlockTables((Component C, int Bx, int Dy, int Step)[] order, int perMcu) =>
        order[..perMcu].Select(b => (_huffman[0, b.C.DcIndex]!, _huffman[1, b.C.AcIndex]!, Array.IndexOf(_components, b.C))).ToArray();

    private InputException Truncated() => new($"{_name}: corrupt JPEG: truncated file (no end-of-image marker)");

    /// <summary>
    /// The blocks of one MCU row in decoding order (<see cref="RowOrder"/>), and their inverse transform once
    /// decoded: each component's blocks two at a time (<see cref="JpegIdct.Transform2"/>), then the row's
    /// coefficients cleared for the next.
    /// </summary>
    private sealed class McuRow
    {
        public readonly (Component C, int Bx, int Dy, int Step)[] Order;
        private readonly int[][] _byComponent; // indices into Order

        public McuRow(Component[] comps, int mcusX)
        {
            Order = RowOrder(comps, mcusX);
            var order = Order;
            _byComponent = comps.Select(c => Enumerable.Range(0, order.Length).Where(k => order[k].C == c).ToArray()).ToArray();
        }

        public void Transform(short* coefficients, int row)
        {
            foreach (var blocks in _byComponent)
            {
                // The blocks a pixel window needs, two at a time.
                int held = -1;
                foreach (int k in blocks)
                {
                    var (c, bx, dy, step) = Order[k];
                    int by = row * step + dy;
                    if (!c.Needs(bx, by))
                    {
                        c.Skip(bx, by);
                        continue;
                    }
                    if (held < 0)
                    {
                        held = k;
                        continue;
                    }
                    var (_, heldX, heldDy, _) = Order[held];
                    c.Transform2(coefficients + 64 * held, heldX, row * step + heldDy, coefficients + 64 * k, bx, by);
                    held = -1;
                }
                if (held >= 0)
                {
                    var (c, bx, dy, step) = Order[held];
                    c.Transform(coefficients + 64 * held, bx, row * step + dy);
                }
            }
            new Span<short>(coefficients, Order.Length * 64).Clear();
        }
    }

    /// <summary>One MCU row of coefficients in native memory, zeroed.</summary>
    private sealed class RowBuffer(int blocks) : IDisposable
    {
        public readonly short* Coefficients = (short*)NativeMemory.AllocZeroed((nuint)blocks * 64, sizeof(short));

        public void Dispose() => NativeMemory.Free(Coefficients);
    }

    /// <summary>
    /// The blocks of one MCU row in decoding order: component, block column, block row within the MCU row, and how
    /// many block rows an MCU row spans in that component (its vertical factor when interleaved, else one).
    /// </summary>
    private static (Component C, int Bx, int Dy, int Step)[] RowOrder(Component[] comps, int mcusX)
    {
        var order = new List<(Component, int, int, int)>();
        for (int mx = 0; mx < mcusX; mx++)
        {
            if (comps.Length == 1)
            {
                order.Add((comps[0], mx, 0, 1));
                continue;
            }
            foreach (var c in comps)
                for (int v = 0; v < c.V; v++)
                    for (int h = 0; h < c.H; h++)
                        order.Add((c, mx * c.H + h, v, c.V));
        }
        return [.. order];
    }

    /// <summary>
    /// Inverse DCTs of a sequential scan on a second thread, one MCU row behind the Huffman decoding: the decoder
    /// fills a ring of MCU rows of coefficients, the other thread transforms each row once it is published and
    /// hands the slot back cleared. The transforms are the same, so the planes are the same bytes.
    /// </summary>
    private sealed class IdctPipeline : IDisposable
    {
        private const int Slots = 8;
        private readonly McuRow _row;
        private readonly short* _ring;
        private readonly int _rows;
        private readonly Task _consumer;
        private int _produced, _consumed;
        private volatile bool _stop;

        public IdctPipeline(McuRow row, int rows)
        {
            (_row, _rows) = (row, rows);
            _ring = (short*)NativeMemory.AllocZeroed((nuint)(Slots * row.Order.Length * 64), sizeof(short));
            // Its own thread: a pool thread could be long in coming when the pool is busy, and the decoder would wait.
            _consumer = Task.Factory.StartNew(Consume, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        private short* Slot(int row) => _ring + (long)(row % Slots) * _row.Order.Length * 64;

        /// <summary>The slot for MCU row <paramref name="row"/>, once the transform thread has emptied it.</summary>
        public short* Acquire(int row)
        {
            var spin = new SpinWait();
            while (row - Volatile.Read(ref _consumed) >= Slots)
            {
                if (_consumer.IsCompleted) _consumer.GetAwaiter().GetResult(); // it failed: rethrow here
                spin.SpinOnce(sleep1Threshold: -1);
            }
            return Slot(row);
        }

        public void Publish(int row) => Volatile.Write(ref _produced, row + 1);

        public void Finish() => _consumer.GetAwaiter().GetResult();

        private void Consume()
        {
            for (int row = 0; row < _rows; row++)
            {
                var spin = new SpinWait();
                while (Volatile.Read(ref _produced) <= row)
                {
                    if (_stop) return;
                    spin.SpinOnce(sleep1Threshold: -1);
                }
                _row.Transform(Slot(row), row);
                Volatile.Write(ref _consumed, row + 1);
            }
        }

        public void Dispose()
        {
            _stop = true;
            try { _consumer.Wait(); } catch (AggregateException) { /* the decoder's own error is the one reported */ }
            NativeMemory.Free(_ring);
        }
    }

    private enum ScanMode { Baseline, DcFirst, DcRefine, AcFirst, AcRefine }

    private struct ScanState
    {
        public ScanMode Mode;
        public int Ss, Se, Al, EobRun;
    }

    private static void Progressive(Component c, int bx, int by, ref JpegBitReader bits, ref ScanState state)
    {
        fixed (short* coefficients = &c.Coefficients![((long)by * c.BlocksW + bx) * 64])
        {
            switch (state.Mode)
            {
                case ScanMode.DcFirst:
                    c.DcPrediction += bits.Receive(c.Dc!.Decode(ref bits));
                    coefficients[0] = (short)(c.DcPrediction << state.Al);
                    break;
                case ScanMode.DcRefine:
                    if (bits.Bits(1) != 0) coefficients[0] |= (short)(1 << state.Al);
                    break;
                case ScanMode.AcFirst:
                    AcFirst(c.Ac!, ref bits, ref state, coefficients);
                    break;
                default:
                    AcRefine(c.Ac!, ref bits, ref state, coefficients);
                    break;
            }
        }
    }

    private static void Sequential(Component c, ref JpegBitReader bits, short* block)
    {
        // The bit buffer is held in locals for the block (see JpegBitReader.Hold); codes longer than the
        // lookahead, rare, go through the reader.
        var (buffer, count) = bits.Hold();
        if (count < 16) (buffer, count) = bits.Refill(buffer, count);
        var dc = c.Dc!;
        int size = dc.Decode(ref bits, ref buffer, ref count);
        if (size != 0)
        {
            if (count < size) (buffer, count) = bits.Refill(buffer, count);
            c.DcPrediction += JpegBitReader.Extend(buffer, size);
            buffer <<= size;
            count -= size;
        }
        block[0] = (short)c.DcPrediction;
        var ac = c.Ac!;
        ref int fast = ref MemoryMarshal.GetArrayDataReference(ac.FastAc!);
        // k stays below 64 + 63, inside the order table's 128 entries, so no bounds checks.
        ref byte natural = ref MemoryMarshal.GetArrayDataReference(NaturalOrder);
        for (int k = 1; k < 64; k++)
        {
            if (count < 16) (buffer, count) = bits.Refill(buffer, count);
            int entry = Unsafe.Add(ref fast, (int)(buffer >> (64 - JpegHuffmanTable.FastBits)));
            if (entry != 0)
            {
                buffer <<= entry & 0xFF;
                count -= entry & 0xFF;
                k += (entry >> 8) & 63;
                block[Unsafe.Add(ref natural, k)] = (short)(entry >> 16);
                continue;
            }
            int rs = ac.Decode(ref bits, ref buffer, ref count), r = rs >> 4, s = rs & 15;
            if (s != 0)
            {
                k += r;
                if (count < s) (buffer, count) = bits.Refill(buffer, count);
                block[Unsafe.Add(ref natural, k)] = (short)JpegBitReader.Extend(buffer, s);
                buffer <<= s;
                count -= s;
            }
            else
            {
                if (r != 15) break;
                k += 15;
            }
        }
        bits.Release(buffer, count);
    }

    private static void AcFirst(JpegHuffmanTable ac, ref JpegBitReader bits, ref ScanState state, short* block)
    {
        if (state.EobRun > 0)
        {
            state.EobRun--;
            return;
        }
        for (int k = state.Ss; k <= state.Se; k++)
        {
            int rs = ac.Decode(ref bits), r = rs >> 4, s = rs & 15;
            if (s != 0)
            {
                k += r;
                block[NaturalOrder[k]] = (short)(bits.Receive(s) << state.Al);
            }
            else if (r == 15)
            {
                k += 15;
            }
            else
            {
                state.EobRun = (1 << r) + bits.Bits(r) - 1;
                break;
            }
        }
    }

    private static void AcRefine(JpegHuffmanTable ac, ref JpegBitReader bits, ref ScanState state, short* block)
    {
        int p1 = 1 << state.Al, m1 = -1 << state.Al;
        int k = state.Ss, se = state.Se;
        if (state.EobRun == 0)
        {
            for (; k <= se; k++)
            {
                int rs = ac.Decode(ref bits), r = rs >> 4, s = rs & 15;
                if (s != 0)
                {
                    // A newly nonzero coefficient has magnitude 1 (libjpeg only warns otherwise).
                    s = bits.Bits(1) != 0 ? p1 : m1;
                }
                else if (r != 15)
                {
                    state.EobRun = (1 << r) + bits.Bits(r);
                    break;
                }
                // Skip r zero coefficients, refining the nonzero ones passed on the way.
                do
                {
                    short* coef = block + NaturalOrder[k];
                    if (*coef != 0)
                        Refine(coef, ref bits, p1, m1);
                    else if (--r < 0)
                        break;
                    k++;
                } while (k <= se);
                if (s != 0) block[NaturalOrder[k]] = (short)s;
            }
        }
        if (state.EobRun > 0)
        {
            for (; k <= se; k++)
            {
                short* coef = block + NaturalOrder[k];
                if (*coef != 0) Refine(coef, ref bits, p1, m1);
            }
            state.EobRun--;
        }
    }

    private static void Refine(short* coef, ref JpegBitReader bits, int p1, int m1)
    {
        if (bits.Bits(1) != 0 && (*coef & p1) == 0) *coef = (short)(*coef + (*coef >= 0 ? p1 : m1));
    }

    /// <summary>
    /// A progressive image's blocks through the IDCT, with libjpeg's block smoothing (<see cref="JpegSmoothing"/>)
    /// when <paramref name="smoothRows"/> (the frame's MCU rows) is not 0.
    /// </summary>
    private static void TransformAll(Component c, int smoothRows, int lastGoodRow)
    {
        // A component no scan named keeps libjpeg's zeroed table: a flat mid-gray plane.
        c.Quant ??= new int[64];
        ImageParallel.ForRows(c.BlocksH, c.BlocksW * 64L, (from, to) =>
        {
            var smoothed = smoothRows > 0 ? new short[c.BlocksW * 64] : null;
            fixed (short* coefficients = c.Coefficients)
            fixed (short* workspace = smoothed)
            {
                for (int by = from; by < to; by++)
                {
                    short* row = coefficients + (long)by * c.BlocksW * 64;
                    if (workspace != null)
                    {
                        JpegSmoothing.SmoothRow(c, by, smoothRows, lastGoodRow, workspace);
                        row = workspace;
                    }
                    for (int bx = 0; bx < c.BlocksW; bx++)
                    {
                        if (c.Needs(bx, by)) c.Transform(row + bx * 64, bx, by);
                        else c.Skip(bx, by);
                    }
                }
            }
        });
    }
}
