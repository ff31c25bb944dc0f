namespace ResNet.Runtime.Images;

/// <summary>
/// Decodes a VP8 key frame (RFC 6386) into Y, U and V planes the way libwebp does, bit for bit: each macroblock's
/// modes from the first partition, its coefficients from its row's token partition, intra prediction from the
/// unfiltered pixels around it (libwebp's borders: 127 above the frame, 129 left of it), the inverse transforms,
/// then the loop filter over the whole frame in macroblock order (<see cref="Vp8LoopFilter"/>).
/// </summary>
internal sealed class Vp8Decoder
{
    // 4×4 prediction modes in libwebp's order (the probability tables are indexed by it); 0-3 double as the 16×16
    // and chroma modes DC, TM, V and H.
    internal const int DcPred = 0, TmPred = 1, VPred = 2, HPred = 3, RdPred = 4, VrPred = 5, LdPred = 6, VlPred = 7, HdPred = 8, HuPred = 9;

    private static ReadOnlySpan<byte> Bands => [0, 1, 2, 3, 6, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 0];
    private static ReadOnlySpan<byte> Zigzag => [0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15];
    private static ReadOnlySpan<byte> Cat3 => [173, 148, 140];
    private static ReadOnlySpan<byte> Cat4 => [176, 155, 140, 135];
    private static ReadOnlySpan<byte> Cat5 => [180, 157, 141, 134, 130];
    private static ReadOnlySpan<byte> Cat6 => [254, 254, 243, 230, 196, 177, 153, 140, 133, 130, 129];

    private readonly Vp8FrameHeader _h;
    private readonly Func<string, Exception> _corrupt;

    /// <summary>The decoded planes: Y is MbWidth·16 wide and MbHeight·16 high, U and V half that.</summary>
    public readonly byte[] Y, U, V;
    public readonly int YStride, UvStride;

    // Per macroblock column: the modes of the 4×4 blocks above, and which blocks above had coefficients.
    private readonly byte[] _topModes;
    private readonly byte[] _topNz;   // 4 Y, 2 U, 2 V flags per column
    private readonly byte[] _topNzDc;
    private readonly byte[] _leftModes = new byte[4];
    private readonly byte[] _leftNz = new byte[8];
    private byte _leftNzDc;

    // The current macroblock.
    private int _segment;
    private bool _skip, _i4x4;
    private readonly byte[] _modes = new byte[16];
    private int _uvMode;
    private readonly short[] _coeffs = new short[384];
    private readonly Vp8Reconstruction _rec;

    /// <summary>Per macroblock, for the loop filter: its edge limit (0 for none), interior limit, HEV threshold and whether its inner edges are filtered.</summary>
    private readonly (int Limit, int Interior, int Hev, bool Inner)[] _filter;

    private Vp8Decoder(Vp8FrameHeader h, Func<string, Exception> corrupt)
    {
        (_h, _corrupt) = (h, corrupt);
        YStride = h.MbWidth * 16;
        UvStride = h.MbWidth * 8;
        Y = GC.AllocateUninitializedArray<byte>(YStride * h.MbHeight * 16);
        U = GC.AllocateUninitializedArray<byte>(UvStride * h.MbHeight * 8);
        V = GC.AllocateUninitializedArray<byte>(UvStride * h.MbHeight * 8);
        _topModes = new byte[4 * h.MbWidth];
        _topNz = new byte[8 * h.MbWidth];
        _topNzDc = new byte[h.MbWidth];
        _filter = new (int, int, int, bool)[h.MbWidth * h.MbHeight];
        _rec = new Vp8Reconstruction(h.MbWidth);
    }

    /// <summary>Decodes the frame whose header is <paramref name="h"/>.</summary>
    public static Vp8Decoder Decode(Vp8FrameHeader h, Func<string, Exception> corrupt)
    {
        var d = new Vp8Decoder(h, corrupt);
        d.DecodeFrame();
        return d;
    }

    private void DecodeFrame()
    {
        for (int mbY = 0; mbY < _h.MbHeight; mbY++)
        {
            ref var tokens = ref _h.Partitions[mbY & (_h.Partitions.Length - 1)];
            Array.Fill(_leftModes, (byte)DcPred);
            Array.Clear(_leftNz);
            _leftNzDc = 0;
            _rec.StartRow(mbY);
            for (int mbX = 0; mbX < _h.MbWidth; mbX++)
            {
                ReadModes(mbX);
                if (_h.Modes.Eof) throw _corrupt("premature end of partition 0");
                // Without a residual the coefficients are not read: reconstruction is the prediction alone.
                bool residual = !_skip && ReadResiduals(ref tokens, mbX);
                if (_skip) SkipResiduals(mbX);
                if (tokens.Eof) throw _corrupt("premature end of the data");
                var (limit, interior, hev) = _h.FilterStrengths[_segment, _i4x4 ? 1 : 0];
                _filter[mbY * _h.MbWidth + mbX] = (limit, interior, hev, _i4x4 || residual);
                _rec.Macroblock(mbX, mbY, _i4x4, _modes, _uvMode, _coeffs, residual, this);
            }
        }
        if (_h.FilterType > 0) Vp8LoopFilter.Apply(this, _h.FilterType == 1, _h.MbWidth, _h.MbHeight, _filter);
    }

    private void ReadModes(int mbX)
    {
        ref var br = ref _h.Modes;
        var sp = _h.SegmentProbabilities;
        _segment = !_h.UpdateSegmentMap ? 0 : br.Bit(sp[0]) == 0 ? br.Bit(sp[1]) : br.Bit(sp[2]) + 2;
        _skip = _h.UseSkipProbability && br.Bit(_h.SkipProbability) != 0;
        _i4x4 = br.Bit(145) == 0;
        var top = _topModes.AsSpan(4 * mbX, 4);
        if (!_i4x4)
        {
            int mode = br.Bit(156) != 0 ? (br.Bit(128) != 0 ? TmPred : HPred) : (br.Bit(163) != 0 ? VPred : DcPred);
            _modes[0] = (byte)mode;
            top.Fill((byte)mode);
            _leftModes.AsSpan().Fill((byte)mode);
        }
        else
        {
            var probabilities = Vp8Tables.IntraModeProbabilities;
            for (int y = 0; y < 4; y++)
            {
                int mode = _leftModes[y];
                for (int x = 0; x < 4; x++)
                {
                    var p = probabilities.Slice((top[x] * 10 + mode) * 9, 9);
                    mode = br.Bit(p[0]) == 0 ? DcPred
                        : br.Bit(p[1]) == 0 ? TmPred
                        : br.Bit(p[2]) == 0 ? VPred
                        : br.Bit(p[3]) == 0
                            ? (br.Bit(p[4]) == 0 ? HPred : br.Bit(p[5]) == 0 ? RdPred : VrPred)
                            : (br.Bit(p[6]) == 0 ? LdPred : br.Bit(p[7]) == 0 ? VlPred : br.Bit(p[8]) == 0 ? HdPred : HuPred);
                    top[x] = (byte)mode;
                    _modes[4 * y + x] = (byte)mode;
                }
                _leftModes[y] = (byte)mode;
            }
        }
        _uvMode = br.Bit(142) == 0 ? DcPred : br.Bit(114) == 0 ? VPred : br.Bit(183) != 0 ? TmPred : HPred;
    }

    private void SkipResiduals(int mbX)
    {
        _topNz.AsSpan(8 * mbX, 8).Clear();
        Array.Clear(_leftNz);
        if (!_i4x4) _topNzDc[mbX] = _leftNzDc = 0;
    }

    /// <summary>Reads the macroblock's coefficients, dequantized; whether any block has a transform to add (libwebp's non-zero codes).</summary>
    private bool ReadResiduals(ref Vp8BoolReader br, int mbX)
    {
        var c = _coeffs.AsSpan();
        c.Clear();
        int s = _segment;
        int first, acType;
        bool any = false;
        if (!_i4x4)
        {
            Span<short> dc = stackalloc short[16];
            dc.Clear();
            int ctx = _topNzDc[mbX] + _leftNzDc;
            int nz = Coefficients(ref br, 1, ctx, _h.Steps[s, 2], _h.Steps[s, 3], 0, dc);
            _topNzDc[mbX] = _leftNzDc = (byte)(nz > 0 ? 1 : 0);
            Vp8Reconstruction.InverseWalshHadamard(dc, c);
            (first, acType) = (1, 0);
        }
        else
        {
            (first, acType) = (0, 3);
        }
        var top = _topNz.AsSpan(8 * mbX, 8);
        for (int y = 0; y < 4; y++)
        {
            for (int x = 0; x < 4; x++)
            {
                var block = c.Slice((4 * y + x) * 16, 16);
                int ctx = top[x] + _leftNz[y];
                int nz = Coefficients(ref br, acType, ctx, _h.Steps[s, 0], _h.Steps[s, 1], first, block);
                byte flag = (byte)(nz > first ? 1 : 0);
                top[x] = _leftNz[y] = flag;
                any |= nz > 1 || block[0] != 0;
            }
        }
        for (int plane = 0; plane < 2; plane++)
        {
            for (int y = 0; y < 2; y++)
            {
                for (int x = 0; x < 2; x++)
                {
                    var block = c.Slice((16 + 4 * plane + 2 * y + x) * 16, 16);
                    int ctx = top[4 + 2 * plane + x] + _leftNz[4 + 2 * plane + y];
                    int nz = Coefficients(ref br, 2, ctx, _h.Steps[s, 4], _h.Steps[s, 5], 0, block);
                    byte flag = (byte)(nz > 0 ? 1 : 0);
                    top[4 + 2 * plane + x] = _leftNz[4 + 2 * plane + y] = flag;
                    any |= nz > 1 || block[0] != 0;
                }
            }
        }
        return any;
    }

    /// <summary>
    /// One block's tokens (§13), dequantized into <paramref name="block"/> in raster order; returns the position after the
    /// last token read that was not the end of block (libwebp's count, which sets the neighbours' contexts).
    /// </summary>
    private int Coefficients(ref Vp8BoolReader br, int type, int ctx, int dcStep, int acStep, int n, Span<short> block)
    {
        var probs = _h.TokenProbabilities.AsSpan();
        var bands = Bands;
        int p = ((type * 8 + bands[n]) * 3 + ctx) * 11;
        for (; n < 16; n++)
        {
            if (br.Bit(probs[p]) == 0) return n; // end of block
            while (br.Bit(probs[p + 1]) == 0) // a zero
            {
                if (++n == 16) return 16;
                p = (type * 8 + bands[n]) * 3 * 11;
            }
            int v, next = (type * 8 + bands[n + 1]) * 3 * 11;
            if (br.Bit(probs[p + 2]) == 0)
            {
                v = 1;
                p = next + 11;
            }
            else
            {
                v = LargeValue(ref br, probs.Slice(p, 11));
                p = next + 22;
            }
            // libwebp stores the product in 16 bits, wrapping as C's conversion does.
            block[Zigzag[n]] = unchecked((short)(br.Signed(v) * (n > 0 ? acStep : dcStep)));
        }
        return 16;
    }

    private static int LargeValue(ref Vp8BoolReader br, ReadOnlySpan<byte> p)
    {
        if (br.Bit(p[3]) == 0)
            return br.Bit(p[4]) == 0 ? 2 : 3 + br.Bit(p[5]);
        if (br.Bit(p[6]) == 0)
        {
            if (br.Bit(p[7]) == 0) return 5 + br.Bit(159);
            int v = 7 + 2 * br.Bit(165);
            return v + br.Bit(145);
        }
        int bit1 = br.Bit(p[8]);
        int bit0 = br.Bit(p[9 + bit1]);
        int cat = 2 * bit1 + bit0;
        var extra = cat switch { 0 => Cat3, 1 => Cat4, 2 => Cat5, _ => Cat6 };
        int value = 0;
        foreach (byte prob in extra) value += value + br.Bit(prob);
        return value + 3 + (8 << cat);
    }
}
