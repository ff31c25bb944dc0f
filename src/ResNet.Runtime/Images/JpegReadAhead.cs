namespace ResNet.Runtime.Images;

/// <summary>
/// libjpeg-turbo's sequential Huffman decoding as PIL drives it, bit buffer and all (jdhuff.c: decode_mcu,
/// decode_mcu_fast, decode_mcu_slow, jpeg_fill_bit_buffer, jpeg_huff_decode). Its bit reader loads bytes ahead of what
/// it decodes: on its slow path until it holds 57 bits, on its fast path (taken while 512 bytes per block of the
/// MCU are buffered and there are no restart intervals) six bytes whenever it holds 16 bits or fewer; and PIL hands
/// it the file 64 KiB at a time. Two things depend on that, which the fast decoder (<see cref="JpegDecoder"/>)
/// cannot tell: whether a file of one scan whose data runs to the end of the file (no end-of-image marker) runs out
/// before its last MCU — "image file is truncated" — or gives PIL every row (<see cref="RunsOut"/>); and the
/// coefficients of an MCU whose data holds fill bytes (0xFF 0xFF 0x00): the fast path takes them for a marker, reads
/// zeros, gives up and leaves the slow path to decode the MCU again over what it wrote (<see cref="Decode"/>).
/// Only such files need it, so it favours being a plain copy of libjpeg over speed.
/// </summary>
internal sealed unsafe class JpegReadAhead
{
    private const int Chunk = 65536, MinGetBits = 57, LookBits = 8;

    /// <summary>libjpeg's derived table (d_derived_tbl) of one Huffman table.</summary>
    private sealed class Derived
    {
        public readonly int[] Lookup = new int[1 << LookBits], MaxCode = new int[18], ValOffset = new int[18];
        public readonly byte[] Symbols;

        public Derived(JpegHuffmanSpec spec)
        {
            Symbols = new byte[256]; // libjpeg's huffval, zero past the table's symbols
            spec.Symbols.CopyTo(Symbols, 0);
            int p = 0, code = 0;
            for (int l = 1; l <= 16; l++)
            {
                int n = spec.Counts[l - 1];
                if (n > 0)
                {
                    ValOffset[l] = p - code;
                    p += n;
                    code += n;
                    MaxCode[l] = code - 1;
                }
                else
                {
                    MaxCode[l] = -1;
                }
                code <<= 1;
            }
            MaxCode[17] = 0xFFFFF;
            Array.Fill(Lookup, (LookBits + 1) << LookBits);
            p = 0;
            code = 0;
            for (int l = 1; l <= LookBits; l++, code <<= 1)
                for (int i = 0; i < spec.Counts[l - 1]; i++, p++, code++)
                {
                    int look = code << (LookBits - l);
                    for (int ctr = 1 << (LookBits - l); ctr > 0; ctr--) Lookup[look++] = (l << LookBits) | Symbols[p];
                }
        }
    }

    private struct State
    {
        public ulong Buffer;
        public int BitsLeft, Pos, Marker, RestartsToGo, NextRestart;
        public bool Insufficient;
    }

    /// <summary>Thrown where libjpeg would suspend for more data: PIL reads the next 64 KiB, or has none.</summary>
    private sealed class Suspend : Exception;

    private readonly byte[] _data;
    private readonly int _restartInterval;
    private readonly (Derived Dc, Derived Ac, int Component)[] _blocks;
    private readonly int[] _lastDc; // per component, libjpeg's saved.last_dc_val
    private int _fed;
    private State _s;

    /// <summary>
    /// A decoder of the scan whose data starts at <paramref name="dataStart"/>. <paramref name="blocks"/>: the DC and
    /// AC table and the component (0 to 3) of each block of an MCU, in order.
    /// </summary>
    public JpegReadAhead(byte[] data, int dataStart, int restartInterval, (JpegHuffmanSpec Dc, JpegHuffmanSpec Ac, int Component)[] blocks)
    {
        (_data, _restartInterval) = (data, restartInterval);
        _blocks = blocks.Select(b => (new Derived(b.Dc), new Derived(b.Ac), b.Component)).ToArray();
        _lastDc = new int[4];
        // The header up to the scan's data was read already, PIL's 64 KiB at a time.
        _fed = (int)Math.Min(data.Length, Math.Max(Chunk, (dataStart + (long)Chunk - 1) / Chunk * Chunk));
        _s = new State { Pos = dataStart, RestartsToGo = restartInterval };
    }

    /// <summary>Whether the reading runs out of data before <paramref name="mcus"/> MCUs are decoded.</summary>
    public static bool RunsOut(byte[] data, int dataStart, int restartInterval, (JpegHuffmanSpec Dc, JpegHuffmanSpec Ac, int Component)[] blocks, long mcus)
    {
        var reader = new JpegReadAhead(data, dataStart, restartInterval, blocks);
        for (long i = 0; i < mcus; i++)
            if (!reader.Decode(null)) return true;
        return false;
    }

    /// <summary>
    /// Decodes the next MCU into <paramref name="mcu"/> (64 coefficients per block, natural order; null: codes
    /// read, coefficients dropped), zeroed first as libjpeg zeroes its MCU buffer. False if PIL runs out of data.
    /// </summary>
    public bool Decode(short* mcu)
    {
        while (true)
        {
            var saved = _s;
            var savedDc = (_lastDc[0], _lastDc[1], _lastDc[2], _lastDc[3]);
            if (mcu != null) new Span<short>(mcu, 64 * _blocks.Length).Clear();
            try
            {
                DecodeMcu(mcu);
                return true;
            }
            catch (Suspend)
            {
                // libjpeg takes the MCU again from its start once PIL has read more.
                _s = saved;
                (_lastDc[0], _lastDc[1], _lastDc[2], _lastDc[3]) = savedDc;
                if (_fed >= _data.Length) return false;
                _fed = (int)Math.Min(_data.Length, (long)_fed + Chunk);
            }
        }
    }

    private void DecodeMcu(short* mcu)
    {
        var blocks = _blocks;
        bool fast = true;
        if (_restartInterval > 0)
        {
            if (_s.RestartsToGo == 0) ProcessRestart();
            fast = false;
        }
        if (_fed - _s.Pos < 512 * blocks.Length || _s.Marker != 0) fast = false;
        if (!_s.Insufficient)
        {
            var saved = _s;
            if (!fast || !DecodeFast(mcu))
            {
                // What the fast path wrote stays where the slow path writes nothing (libjpeg does not zero again).
                _s = saved;
                for (int b = 0; b < blocks.Length; b++)
                    DecodeSlow(blocks[b].Dc, blocks[b].Ac, ref _lastDc[blocks[b].Component], mcu == null ? null : mcu + 64 * b);
            }
        }
        if (_restartInterval > 0) _s.RestartsToGo--;
    }

    // The slow path (decode_mcu_slow).

    private void DecodeSlow(Derived dc, Derived ac, ref int lastDc, short* block)
    {
        int s = HuffDecode(dc);
        if (s != 0) s = Extend(GetBits(s), s);
        lastDc += s;
        if (block != null) block[0] = (short)lastDc;
        for (int k = 1; k < 64; k++)
        {
            s = HuffDecode(ac);
            int r = s >> 4;
            s &= 15;
            if (s != 0)
            {
                k += r;
                int v = Extend(GetBits(s), s);
                if (block != null) block[JpegDecoder.NaturalOrder[k]] = (short)v;
            }
            else
            {
                if (r != 15) break;
                k += 15;
            }
        }
    }

    private int GetBits(int n)
    {
        if (_s.BitsLeft < n) Fill(n);
        return (int)(_s.Buffer >> (_s.BitsLeft -= n)) & ((1 << n) - 1);
    }

    /// <summary>HUFF_EXTEND: <paramref name="n"/> bits as a signed value.</summary>
    private static int Extend(int v, int n) => v < 1 << (n - 1) ? v - (1 << n) + 1 : v;

    /// <summary>HUFF_DECODE: an 8-bit lookahead, else jpeg_huff_decode from the bits known to be in the code.</summary>
    private int HuffDecode(Derived t)
    {
        int nb = 1;
        if (_s.BitsLeft < LookBits)
        {
            Fill(0);
            if (_s.BitsLeft < LookBits) return HuffDecodeLong(t, nb);
        }
        int look = (int)(_s.Buffer >> (_s.BitsLeft - LookBits)) & ((1 << LookBits) - 1);
        nb = t.Lookup[look] >> LookBits;
        if (nb <= LookBits)
        {
            _s.BitsLeft -= nb;
            return t.Lookup[look] & 0xFF;
        }
        return HuffDecodeLong(t, nb);
    }

    private int HuffDecodeLong(Derived t, int l)
    {
        if (_s.BitsLeft < l) Fill(l);
        long code = (long)(_s.Buffer >> (_s.BitsLeft -= l)) & ((1L << l) - 1);
        while (code > t.MaxCode[l])
        {
            if (_s.BitsLeft < 1) Fill(1);
            code = (code << 1) | (long)((_s.Buffer >> --_s.BitsLeft) & 1);
            l++;
        }
        return l > 16 ? 0 : t.Symbols[(int)(code + t.ValOffset[l])];
    }

    /// <summary>jpeg_fill_bit_buffer: bytes until 57 bits are held, or a marker (then zeros if <paramref name="nbits"/> are not held).</summary>
    private void Fill(int nbits)
    {
        if (_s.Marker == 0)
        {
            while (_s.BitsLeft < MinGetBits)
            {
                int c = NextByte();
                if (c == 0xFF)
                {
                    do c = NextByte(); while (c == 0xFF);
                    if (c != 0)
                    {
                        _s.Marker = c;
                        break;
                    }
                    c = 0xFF;
                }
                _s.Buffer = (_s.Buffer << 8) | (uint)c;
                _s.BitsLeft += 8;
            }
            if (_s.Marker == 0) return;
        }
        if (nbits > _s.BitsLeft)
        {
            _s.Insufficient = true;
            _s.Buffer <<= MinGetBits - _s.BitsLeft;
            _s.BitsLeft = MinGetBits;
        }
    }

    private int NextByte()
    {
        if (_s.Pos >= _fed) throw new Suspend();
        return _data[_s.Pos++];
    }

    // The fast path (decode_mcu_fast): false where it meets a marker, and the slow path decodes the MCU instead.

    private bool DecodeFast(short* mcu)
    {
        Span<int> lastDc = [_lastDc[0], _lastDc[1], _lastDc[2], _lastDc[3]]; // committed only if the fast path succeeds
        for (int b = 0; b < _blocks.Length; b++)
        {
            var (dc, ac, component) = _blocks[b];
            short* block = mcu == null ? null : mcu + 64 * b;
            int s = HuffDecodeFast(dc);
            if (s != 0)
            {
                FillFast();
                s = Extend((int)(_s.Buffer >> (_s.BitsLeft -= s)) & ((1 << s) - 1), s);
            }
            lastDc[component] += s;
            if (block != null) block[0] = (short)lastDc[component];
            for (int k = 1; k < 64; k++)
            {
                s = HuffDecodeFast(ac);
                int r = s >> 4;
                s &= 15;
                if (s != 0)
                {
                    k += r;
                    FillFast();
                    int v = Extend((int)(_s.Buffer >> (_s.BitsLeft -= s)) & ((1 << s) - 1), s);
                    if (block != null) block[JpegDecoder.NaturalOrder[k]] = (short)v;
                }
                else
                {
                    if (r != 15) break;
                    k += 15;
                }
            }
        }
        if (_s.Marker != 0) return false;
        lastDc.CopyTo(_lastDc);
        return true;
    }

    private int HuffDecodeFast(Derived t)
    {
        FillFast();
        int look = (int)(_s.Buffer >> (_s.BitsLeft - LookBits)) & ((1 << LookBits) - 1);
        int nb = t.Lookup[look] >> LookBits, s = t.Lookup[look] & 0xFF;
        _s.BitsLeft -= nb;
        if (nb <= LookBits) return s;
        long code = (long)(_s.Buffer >> _s.BitsLeft) & ((1L << nb) - 1);
        while (code > t.MaxCode[nb])
        {
            code = (code << 1) | (long)((_s.Buffer >> --_s.BitsLeft) & 1);
            nb++;
        }
        return nb > 16 ? 0 : t.Symbols[(int)(code + t.ValOffset[nb]) & 0xFF];
    }

    /// <summary>FILL_BIT_BUFFER_FAST: six GET_BYTEs when 16 bits or fewer are held; a marker is noted and read as zeros.</summary>
    private void FillFast()
    {
        if (_s.BitsLeft > 16) return;
        for (int i = 0; i < 6; i++)
        {
            // The fast path runs only with 512 bytes per block buffered, more than a block's codes can take.
            int c0 = _s.Pos < _data.Length ? _data[_s.Pos] : 0, c1 = _s.Pos + 1 < _data.Length ? _data[_s.Pos + 1] : 0;
            _s.Pos++;
            _s.Buffer = (_s.Buffer << 8) | (uint)c0;
            _s.BitsLeft += 8;
            if (c0 != 0xFF) continue;
            _s.Pos++;
            if (c1 == 0) continue;
            _s.Marker = c1;
            _s.Pos -= 2;
            _s.Buffer &= ~0xFFUL;
        }
    }

    // Restarts (process_restart, read_restart_marker, next_marker, jpeg_resync_to_restart).

    private void ProcessRestart()
    {
        _s.BitsLeft = 0;
        if (_s.Marker == 0) NextMarker();
        int desired = _s.NextRestart;
        if (_s.Marker == 0xD0 + desired) _s.Marker = 0;
        else Resync(desired);
        _s.NextRestart = (desired + 1) & 7;
        _s.RestartsToGo = _restartInterval;
        Array.Clear(_lastDc);
        if (_s.Marker == 0) _s.Insufficient = false;
    }

    /// <summary>libjpeg's next_marker over what PIL has fed: past that, libjpeg waits for more.</summary>
    private void NextMarker()
    {
        int marker = JpegStructure.NextMarker(_data.AsSpan(0, _fed), ref _s.Pos);
        _s.Marker = marker >= 0 ? marker : throw new Suspend();
    }

    private void Resync(int desired)
    {
        while (true)
        {
            switch (JpegResync.For(_s.Marker, desired))
            {
                case JpegResync.Action.Take: _s.Marker = 0; return;
                case JpegResync.Action.Leave: return;
                default: NextMarker(); break;
            }
        }
    }

    /// <summary>
    /// Whether the entropy-coded data from <paramref name="pos"/> holds fill bytes before a data 0xFF (0xFF 0xFF 0x00),
    /// up to the first marker: only there do libjpeg's fast and slow paths read different bits.
    /// </summary>
    public static bool HasFillBytes(byte[] data, int pos)
    {
        for (; pos + 1 < data.Length; pos++)
        {
            // Photos' data holds an 0xFF every few hundred bytes: the vectorized search does the walking.
            int ff = data.AsSpan(pos).IndexOf((byte)0xFF);
            if (ff < 0) return false;
            pos += ff;
            int next = pos + 1;
            while (next < data.Length && data[next] == 0xFF) next++;
            if (next >= data.Length || data[next] != 0) return false;
            if (next > pos + 1) return true;
            pos = next;
        }
        return false;
    }
}
