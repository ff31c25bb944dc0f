using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ResNet.Runtime.Images;

/// <summary>
/// A JPEG Huffman table (DHT), checked the way libjpeg checks it (no code may overflow its length; DC symbols
/// are sizes up to 15), with a 10-bit lookahead table that decodes almost every code in one probe.
/// </summary>
internal sealed class JpegHuffmanTable
{
    /// <summary>
    /// Bits of lookahead: 10 decoded `dog.jpg` 6% faster than stb_image's 9 (more coefficients fit whole in the fast
    /// table), 11 no faster, 12 slower (a table per AC class of 4 KiB of ints, 16 KiB at 12).
    /// </summary>
    private const int LookBits = 10;
    private readonly ushort[] _look = new ushort[1 << LookBits]; // (length << 8) | symbol; length 0: longer code
    private readonly int[] _maxCode = new int[18];               // largest code of each length, -1 if none
    private readonly int[] _valOffset = new int[17];             // symbol index = code + _valOffset[length]
    private readonly byte[] _symbols;

    public JpegHuffmanTable(ReadOnlySpan<byte> counts, ReadOnlySpan<byte> symbols, bool dc, Func<string, Exception> corrupt)
    {
        _symbols = symbols.ToArray();
        int code = 0, k = 0;
        for (int length = 1; length <= 16; length++)
        {
            _valOffset[length] = k - code;
            _maxCode[length] = -1;
            for (int i = 0; i < counts[length - 1]; i++, k++, code++)
            {
                if (code >= 1 << length) throw corrupt("Huffman table with more codes than its lengths allow");
                if (dc && symbols[k] > 15) throw corrupt($"DC Huffman symbol {symbols[k]} (sizes go up to 15)");
                if (length <= LookBits)
                {
                    int shift = LookBits - length;
                    for (int fill = 0; fill < 1 << shift; fill++) _look[(code << shift) | fill] = (ushort)((length << 8) | symbols[k]);
                }
                _maxCode[length] = code;
            }
            // As libjpeg: a length's codes may not reach the all-ones code, which JPEG reserves.
            if (code >= 1 << length) throw corrupt("Huffman table with more codes than its lengths allow");
            code <<= 1;
        }
        _maxCode[17] = int.MaxValue; // a 16-bit prefix matching no code: the data is corrupt
        if (!dc) FastAc = FastAcTable(_look);
    }

    /// <summary>
    /// For an AC table: per 10-bit lookahead, the whole coefficient when its code and its extra bits both fit in
    /// those 10 bits (most coefficients of a photo): (value &lt;&lt; 16) | (run &lt;&lt; 8) | bits used; 0 otherwise.
    /// One probe instead of decoding the symbol and then reading the value (as stb_image's fast_ac does). A code
    /// without extra bits stores a zero: ZRL as a run of 15, and the end of block (or any other run, which a
    /// sequential scan treats as the end too) as a run of 63, which carries the position past the block's last.
    /// </summary>
    public int[]? FastAc { get; }

    public const int FastBits = LookBits;

    private static int[] FastAcTable(ushort[] look)
    {
        var fast = new int[1 << LookBits];
        for (int i = 0; i < fast.Length; i++)
        {
            int length = look[i] >> 8, run = (look[i] >> 4) & 15, size = look[i] & 15;
            if (length == 0 || length + size > LookBits) continue;
            if (size == 0)
            {
                fast[i] = ((run == 15 ? 15 : 63) << 8) | length;
                continue;
            }
            int v = (i >> (LookBits - length - size)) & ((1 << size) - 1);
            if (v < 1 << (size - 1)) v -= (1 << size) - 1; // JPEG's EXTEND, as JpegBitReader.Receive
            fast[i] = (v << 16) | (run << 8) | (length + size);
        }
        return fast;
    }

    /// <summary>
    /// Decodes a symbol from a held bit buffer (<see cref="JpegBitReader.Hold"/>; at least <see cref="FastBits"/>
    /// bits in it); a code longer than the lookahead goes through the reader.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Decode(ref JpegBitReader bits, ref ulong buffer, ref int count)
    {
        int entry = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_look), (int)(buffer >> (64 - LookBits)));
        if (entry != 0)
        {
            buffer <<= entry >> 8;
            count -= entry >> 8;
            return entry & 0xFF;
        }
        bits.Release(buffer, count);
        int symbol = DecodeLong(ref bits);
        (buffer, count) = bits.Hold();
        return symbol;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Decode(ref JpegBitReader bits)
    {
        int entry = _look[bits.Peek(LookBits)];
        if (entry != 0)
        {
            bits.Skip(entry >> 8);
            return entry & 0xFF;
        }
        return DecodeLong(ref bits);
    }

    private int DecodeLong(ref JpegBitReader bits)
    {
        int length = LookBits + 1;
        int code = bits.Peek(length);
        while (code > _maxCode[length])
        {
            if (++length > 16)
            {
                // libjpeg reads a 17th bit before giving up, warns, and fakes a zero symbol (a DC difference of 0, an
                // AC end of block); PIL ignores the warning, so the decoding goes on from there.
                bits.Peek(17);
                bits.Skip(17);
                return 0;
            }
            code = bits.Peek(length);
        }
        bits.Skip(length);
        return _symbols[code + _valOffset[length]];
    }
}

/// <summary>
/// A Huffman table as a DHT segment defines it (code counts per length 1–16, symbols), built into a
/// <see cref="JpegHuffmanTable"/> — and so checked — when a scan first uses it, as libjpeg builds its derived tables.
/// </summary>
internal sealed class JpegHuffmanSpec(byte[] counts, byte[] symbols)
{
    private JpegHuffmanTable? _table;

    public byte[] Counts => counts;
    public byte[] Symbols => symbols;

    public JpegHuffmanTable Table(bool dc, Func<string, Exception> corrupt) => _table ??= new JpegHuffmanTable(counts, symbols, dc, corrupt);

    /// <summary>The tables of the JPEG standard's Annex K.3 (luminance: slot 0, chrominance: slot 1), as libjpeg's jstdhuff.c has them.</summary>
    public static JpegHuffmanSpec Standard(bool dc, int index) => (dc, index) switch
    {
        (true, 0) => new([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
        (true, _) => new([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
        (false, 0) => new([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d], Convert.FromHexString(
            "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa")),
        (false, _) => new([0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77], Convert.FromHexString(
            "000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9fa")),
    };
}

/// <summary>
/// Reads entropy-coded bits as libjpeg-turbo's bit reader does: 0xFF 0x00 is a data 0xFF (fill 0xFFs before it
/// included), any other marker stops the reading and is kept unread. Past a marker the reader supplies zero bits;
/// a decode that consumes them sets <see cref="Insufficient"/>, which libjpeg answers with a warning and by leaving
/// the following MCUs zero (mid-gray) until a restart marker resynchronizes — PIL ignores the warning, so do we.
/// </summary>
internal ref struct JpegBitReader(ReadOnlySpan<byte> data, int position)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos = position;
    private ulong _bits;   // next bits, most significant first
    private int _count;    // bits held in _bits
    private int _padding;  // how many of the held bits are the zeros supplied past a marker
    private int _marker;   // the marker that stopped the reading (its code; its bytes are consumed), or 0
    private bool _insufficient;

    /// <summary>Whether a decode has consumed bits past the data (libjpeg's insufficient_data): the MCUs that follow are not decoded.</summary>
    public readonly bool Insufficient => _insufficient;

    /// <summary>The marker the reading stopped at and left unread (libjpeg's unread_marker), or 0 (-1: the end of the data).</summary>
    public readonly int UnreadMarker => _marker;

    private void Fill()
    {
        // Fast path: the next 8 bytes hold no 0xFF (no stuffing, no marker), so whole bytes go in at once.
        if (_marker == 0 && _pos + 8 <= _data.Length)
        {
            ulong next = BinaryPrimitives.ReadUInt64BigEndian(_data[_pos..]);
            if (!HasFF(next))
            {
                int take = (64 - _count) >> 3;
                _bits |= (next >> (64 - 8 * take)) << (64 - 8 * take - _count);
                _count += 8 * take;
                _pos += take;
                return;
            }
        }
        while (_count <= 56)
        {
            ulong b = 0;
            if (_marker == 0) b = (ulong)NextDataByte();
            if (_marker != 0) _padding += 8;
            _bits |= b << (56 - _count);
            _count += 8;
        }
    }

    /// <summary>The next data byte, or 0 with <see cref="_marker"/> set when a marker (or the end of the data) comes first.</summary>
    private int NextDataByte()
    {
        if (_pos >= _data.Length) return EndOfData();
        int c = _data[_pos++];
        if (c != 0xFF) return c;
        do
        {
            if (_pos >= _data.Length) return EndOfData();
            c = _data[_pos++];
        } while (c == 0xFF);
        if (c == 0) return 0xFF;
        _marker = c;
        return 0;
    }

    /// <summary>
    /// The data ran out without a marker (a file of one scan without its end-of-image marker, which the structure
    /// check admits for <see cref="JpegReadAhead"/> to judge): stop there as at a marker, reading zeros.
    /// </summary>
    private int EndOfData()
    {
        _marker = -1;
        return 0;
    }

    /// <summary>Whether any byte of <paramref name="v"/> is 0xFF (a zero byte in its complement).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool HasFF(ulong v)
    {
        ulong x = ~v;
        return ((x - 0x0101010101010101UL) & ~x & 0x8080808080808080UL) != 0;
    }

    /// <summary>
    /// The bit buffer and its count, for a decoder that keeps them in registers over a block; hand them back
    /// with <see cref="Release"/> before any other call. (Through the reader, which is passed by reference, each
    /// shift and count update was a store and a reload on the decoding's dependency chain.)
    /// </summary>
    public readonly (ulong Buffer, int Count) Hold() => (_bits, _count);

    /// <summary>Takes back what <see cref="Hold"/> gave out, noting whether the block ran into the zero padding.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Release(ulong buffer, int count)
    {
        _bits = buffer;
        _count = count;
        // The padding only grows once a marker is reached, so a check per block finds what one per code did.
        if (count < _padding) _insufficient = true;
    }

    /// <summary>The held buffer topped up to at least 57 bits (whole bytes, as <see cref="Fill"/> does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public (ulong Buffer, int Count) Refill(ulong buffer, int count)
    {
        if (_pos + 8 <= _data.Length && _marker == 0)
        {
            ulong next = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref MemoryMarshal.GetReference(_data), _pos)));
            if (!HasFF(next))
            {
                int take = (64 - count) >> 3;
                buffer |= (next >> (64 - 8 * take)) << (64 - 8 * take - count);
                _pos += take;
                return (buffer, count + 8 * take);
            }
        }
        return RefillSlow(buffer, count);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private (ulong, int) RefillSlow(ulong buffer, int count)
    {
        _bits = buffer;
        _count = count;
        Fill();
        return (_bits, _count);
    }

    /// <summary>The next <paramref name="n"/> bits (1 to 15, as Huffman symbols allow) of a held buffer as a signed coefficient (JPEG's "EXTEND").</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Extend(ulong buffer, int n)
    {
        int v = (int)(buffer >> (64 - n));
        // v - 2^n + 1 when the top bit is clear, branch-free (the sign of a coefficient is a coin toss).
        return v + (((v >> (n - 1)) - 1) & ((-1 << n) + 1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Peek(int n)
    {
        if (_count < n) Fill();
        return (int)(_bits >> (64 - n));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Skip(int n)
    {
        _bits <<= n;
        _count -= n;
        if (_count < _padding) _insufficient = true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Bits(int n)
    {
        if (n == 0) return 0;
        int v = Peek(n);
        Skip(n);
        return v;
    }

    /// <summary>n bits as a signed coefficient (JPEG's "EXTEND").</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Receive(int n)
    {
        if (n == 0) return 0;
        int v = Bits(n);
        return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
    }

    /// <summary>
    /// At the end of a restart interval, libjpeg's process_restart: the held bits are dropped, the next marker is
    /// found (bytes before it skipped), and if it is not RSTn for <paramref name="expected"/>, libjpeg's default
    /// resynchronization decides (jpeg_resync_to_restart). Decoding resumes normally unless a marker is left
    /// unread, in which case the data stays insufficient until a later restart finds its marker.
    /// </summary>
    public void Restart(int expected)
    {
        _bits = 0;
        _count = 0;
        _padding = 0;
        if (_marker == 0) NextMarker();
        if (_marker == 0xD0 + expected) _marker = 0;
        else Resync(expected);
        if (_marker == 0) _insufficient = false;
    }

    /// <summary>libjpeg's next_marker; at the end of the data -1, and an interval that runs past it reads zeros.</summary>
    private void NextMarker() => _marker = JpegStructure.NextMarker(_data, ref _pos);

    /// <summary>libjpeg's jpeg_resync_to_restart (<see cref="JpegResync"/>), up to the end of the data.</summary>
    private void Resync(int desired)
    {
        while (_marker > 0)
        {
            switch (JpegResync.For(_marker, desired))
            {
                case JpegResync.Action.Take: _marker = 0; return;
                case JpegResync.Action.Leave: return;
                default: NextMarker(); break;
            }
        }
    }
}

/// <summary>
/// libjpeg's jpeg_resync_to_restart, the decision for the marker found where RSTn for a desired n should be: one of
/// the next two restarts, or any other marker from SOF0 up, is left for later (the interval is treated as empty);
/// markers below SOF0 and the two previous restarts are skipped to the next marker, which is judged again; the
/// desired one, or a restart too far off, is taken as this interval's.
/// </summary>
internal static class JpegResync
{
    public enum Action { Take, SkipToNext, Leave }

    public static Action For(int marker, int desired)
    {
        bool restart = marker is >= 0xD0 and <= 0xD7;
        if (marker >= 0xC0 && !restart) return Action.Leave;
        if (restart && (marker == 0xD0 + ((desired + 1) & 7) || marker == 0xD0 + ((desired + 2) & 7))) return Action.Leave;
        if (marker < 0xC0 || marker == 0xD0 + ((desired - 1) & 7) || marker == 0xD0 + ((desired - 2) & 7)) return Action.SkipToNext;
        return Action.Take;
    }
}
