namespace ResNet.Runtime.Images;

/// <summary>
/// Whether PIL, feeding libjpeg-turbo a file of one sequential scan whose data runs to the end of the file (no
/// end-of-image marker), runs out of data before the scan's last MCU is decoded — "image file is truncated" — or has
/// every row. libjpeg's bit reader loads bytes ahead of what it decodes: on its slow path until it holds 57 bits,
/// on its fast path (taken while 512 bytes per block of the MCU are buffered) six bytes whenever it holds 16 bits or
/// fewer; and PIL hands it the file 64 KiB at a time. This reads the scan's Huffman codes again with libjpeg's
/// buffer (jdhuff.c: decode_mcu, decode_mcu_fast, decode_mcu_slow, jpeg_fill_bit_buffer, jpeg_huff_decode) to find
/// out. Only such files need it, so it favours being a plain copy of libjpeg over speed.
/// </summary>
internal sealed class JpegReadAhead
{
    private const int Chunk = 65536, MinGetBits = 57, LookBits = 8;

    /// <summary>libjpeg's derived table (d_derived_tbl) of one Huffman table.</summary>
    private sealed class Derived
    {
        public readonly int[] Lookup = new int[1 << LookBits], MaxCode = new int[18], ValOffset = new int[18];
        public readonly byte[] Symbols;

        public Derived(JpegHuffmanSpec spec)
        {
            Symbols = spec.Symbols;
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
    private int _fed;
    private State _s;

    private JpegReadAhead(byte[] data, int dataStart, int restartInterval)
    {
        (_data, _restartInterval) = (data, restartInterval);
        // The header up to the scan's data was read already, PIL's 64 KiB at a time.
        _fed = (int)Math.Min(data.Length, Math.Max(Chunk, (dataStart + (long)Chunk - 1) / Chunk * Chunk));
        _s = new State { Pos = dataStart, RestartsToGo = restartInterval };
    }

    /// <summary>
    /// Whether the reading runs out. <paramref name="blocks"/>: the DC and AC table of each block of an MCU, in order;
    /// <paramref name="mcus"/>: how many MCUs the scan codes.
    /// </summary>
    public static bool RunsOut(byte[] data, int dataStart, int restartInterval, (JpegHuffmanSpec Dc, JpegHuffmanSpec Ac)[] blocks, long mcus)
    {
        var derived = blocks.Select(b => (Dc: new Derived(b.Dc), Ac: new Derived(b.Ac))).ToArray();
        var reader = new JpegReadAhead(data, dataStart, restartInterval);
        for (long i = 0; i < mcus; i++)
        {
            while (true)
            {
                var saved = reader._s;
                try
                {
                    reader.DecodeMcu(derived);
                    break;
                }
                catch (Suspend)
                {
                    reader._s = saved;
                    if (reader._fed >= data.Length) return true;
                    reader._fed = (int)Math.Min(data.Length, (long)reader._fed + Chunk);
                }
            }
        }
        return false;
    }

    private void DecodeMcu((Derived Dc, Derived Ac)[] blocks)
    {
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
            if (!fast || !DecodeFast(blocks))
            {
                _s = saved;
                foreach (var (dc, ac) in blocks) DecodeSlow(dc, ac);
            }
        }
        if (_restartInterval > 0) _s.RestartsToGo--;
    }

    // The slow path (decode_mcu_slow).

    private void DecodeSlow(Derived dc, Derived ac)
    {
        int s = HuffDecode(dc);
        if (s != 0) GetBits(s);
        for (int k = 1; k < 64; k++)
        {
            s = HuffDecode(ac);
            int r = s >> 4;
            s &= 15;
            if (s != 0)
            {
                k += r;
                GetBits(s);
            }
            else
            {
                if (r != 15) break;
                k += 15;
            }
        }
    }

    private void GetBits(int n)
    {
        if (_s.BitsLeft < n) Fill(n);
        _s.BitsLeft -= n;
    }

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

    private bool DecodeFast((Derived Dc, Derived Ac)[] blocks)
    {
        foreach (var (dc, ac) in blocks)
        {
            int s = HuffDecodeFast(dc);
            if (s != 0)
            {
                FillFast();
                _s.BitsLeft -= s;
            }
            for (int k = 1; k < 64; k++)
            {
                s = HuffDecodeFast(ac);
                int r = s >> 4;
                s &= 15;
                if (s != 0)
                {
                    k += r;
                    FillFast();
                    _s.BitsLeft -= s;
                }
                else
                {
                    if (r != 15) break;
                    k += 15;
                }
            }
        }
        return _s.Marker == 0;
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
            int c0 = _data[_s.Pos++], c1 = _s.Pos < _data.Length ? _data[_s.Pos] : 0;
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
        if (_s.Marker == 0) _s.Insufficient = false;
    }

    private void NextMarker()
    {
        while (true)
        {
            int c = NextByte();
            while (c != 0xFF) c = NextByte();
            do c = NextByte(); while (c == 0xFF);
            if (c == 0) continue;
            _s.Marker = c;
            return;
        }
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
}
