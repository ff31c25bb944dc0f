using System.Numerics;

namespace ResNet.Runtime.Images;

/// <summary>
/// VP8's boolean (arithmetic) decoder, RFC 6386 §7, in libwebp's form: the range kept minus one and the value read a
/// byte at a time as the window needs it. That form decides what counts as running out of data: <see cref="Eof"/> is
/// set when a bit needs a byte past the partition's end, which is where libwebp (and so PIL) refuses the image.
/// </summary>
internal struct Vp8BoolReader
{
    private readonly byte[] _data;
    private readonly int _end;
    private int _pos;
    private ulong _value;
    private int _bits;   // bits of _value below the 8-bit window; negative when the window needs a byte
    private uint _range; // the range minus one, 127..254

    /// <summary>Whether a bit has needed data past the end.</summary>
    public bool Eof;

    public Vp8BoolReader(byte[] data, int start, int length)
    {
        (_data, _pos, _end, _range, _bits) = (data, start, start + length, 254, -8);
        Load();
    }

    private void Load()
    {
        if (_pos <= _end - 8)
        {
            // Seven bytes at once while eight remain, as libwebp loads them (the same bits; only the tail goes a byte at a time).
            ulong bytes = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(_data.AsSpan(_pos)) >> 8;
            _value = (_value << 56) | bytes;
            _bits += 56;
            _pos += 7;
        }
        else if (_pos < _end)
        {
            _bits += 8;
            _value = (_value << 8) | _data[_pos++];
        }
        else if (!Eof)
        {
            // One zero byte stands in for the missing data (its bits are not trusted: the caller refuses the image).
            _value <<= 8;
            _bits += 8;
            Eof = true;
        }
        else
        {
            _bits = 0;
        }
    }

    /// <summary>One bit whose probability of being 0 is <paramref name="probability"/>/256.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public int Bit(int probability)
    {
        if (_bits < 0) Load();
        uint range = _range;
        int pos = _bits;
        uint split = (range * (uint)probability) >> 8;
        uint value = (uint)(_value >> pos);
        int bit;
        if (value > split)
        {
            range -= split;
            _value -= (ulong)(split + 1) << pos;
            bit = 1;
        }
        else
        {
            range = split + 1;
            bit = 0;
        }
        int shift = 7 ^ BitOperations.Log2(range);
        _bits -= shift;
        _range = (range << shift) - 1;
        return bit;
    }

    /// <summary>An unsigned <paramref name="count"/>-bit literal, most significant bit first.</summary>
    public int Literal(int count)
    {
        int v = 0;
        while (count-- > 0) v |= Bit(0x80) << count;
        return v;
    }

    public bool Flag() => Bit(0x80) != 0;

    /// <summary>A <paramref name="count"/>-bit magnitude, then its sign.</summary>
    public int SignedLiteral(int count)
    {
        int v = Literal(count);
        return Flag() ? -v : v;
    }

    /// <summary><paramref name="magnitude"/> with a sign read at even odds.</summary>
    public int Signed(int magnitude) => Bit(0x80) != 0 ? -magnitude : magnitude;
}
