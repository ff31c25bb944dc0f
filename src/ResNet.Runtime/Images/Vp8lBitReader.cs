namespace ResNet.Runtime.Images;

/// <summary>
/// The lossless format's bit reader: least significant bit first. Past the data it reads zeros and sets
/// <see cref="Eos"/> as libwebp does: once more bits are consumed than the data holds (or than its 64-bit window,
/// for data shorter than 8 bytes), which libwebp refuses.
/// </summary>
internal struct Vp8lBitReader
{
    private readonly byte[] _data;
    private readonly int _end;
    private readonly long _limit;
    private int _pos;
    private ulong _value;
    private int _bits;
    private long _consumed;

    public bool Eos;

    public Vp8lBitReader(byte[] data, int start, int length)
    {
        (_data, _pos, _end) = (data, start, start + length);
        _limit = 8L * Math.Max(length, 8);
    }

    private void Fill()
    {
        while (_bits <= 56)
        {
            ulong b = _pos < _end ? _data[_pos++] : 0UL;
            _value |= b << _bits;
            _bits += 8;
        }
    }

    /// <summary>The next <paramref name="count"/> (at most 32) bits, not consumed.</summary>
    public uint Peek(int count)
    {
        if (_bits < count) Fill();
        return (uint)(_value & ((1UL << count) - 1));
    }

    public void Skip(int count)
    {
        _value >>= count;
        _bits -= count;
        _consumed += count;
        if (_consumed > _limit) Eos = true;
    }

    public int Read(int count)
    {
        if (count == 0) return 0;
        int v = (int)Peek(count);
        Skip(count);
        return v;
    }
}
