using System.Buffers.Binary;

namespace ResNet.Runtime.Images;

/// <summary>
/// The lossless format's bit reader (least significant bit first), modelling libwebp's to the bit past the end of the
/// data too, because there libwebp does not read zeros: its 64-bit window then holds the last 8 bytes (all of shorter
/// data) and a read past the window's end wraps around it; at its fill points (<see cref="Read"/>, <see cref="Fill"/>)
/// a read past the end sets its end-of-stream flag and moves back to the window's start. Where any read past the end
/// is refused this changes nothing; where libwebp accepts data that runs out with the last pixel (an alpha plane of
/// palette indices) the values read decide whether the file is accepted.
/// </summary>
internal struct Vp8lBitReader
{
    private readonly byte[] _data;
    private readonly int _start, _length;
    private readonly long _limit; // bits libwebp reads before the end of the stream: the data, at least 64
    private readonly ulong _window; // the last 8 bytes, as libwebp's window holds them at the end
    private long _position; // bits consumed, as libwebp counts them
    private bool _flag; // libwebp's eos_

    public Vp8lBitReader(byte[] data, int start, int length)
    {
        (_data, _start, _length) = (data, start, length);
        _limit = 8L * Math.Max(length, 8);
        int from = Math.Max(0, length - 8);
        for (int i = length - 1; i >= from; i--) _window = _window << 8 | data[start + i];
    }

    /// <summary>libwebp's VP8LIsEndOfStream: a bit past the end has been consumed.</summary>
    public readonly bool Eos => _flag || _position > _limit;

    /// <summary>libwebp's eos_ alone, which it checks after reading a prefix code.</summary>
    public readonly bool EosFlag => _flag;

    private readonly long WindowStart => _limit - 64;

    /// <summary>The next <paramref name="count"/> (at most 32) bits, not consumed (libwebp's VP8LPrefetchBits).</summary>
    public readonly uint Peek(int count) => PeekAt(0, count);

    /// <summary>As <see cref="Peek"/>, <paramref name="skip"/> bits on.</summary>
    public readonly uint PeekAt(int skip, int count)
    {
        long p = _position + skip;
        long at = p >> 3;
        ulong mask = (1UL << count) - 1;
        if (at + 8 <= _length) return (uint)((BinaryPrimitives.ReadUInt64LittleEndian(_data.AsSpan(_start + (int)at)) >> (int)(p & 7)) & mask);
        // Within the last 8 bytes or past them: the window's bits from the offset, which past the end wraps (mod 64).
        return (uint)((_window >> (int)((p - WindowStart) & 63)) & mask);
    }

    /// <summary>Consumes bits without any check (libwebp's VP8LSetBitPos).</summary>
    public void Skip(int count) => _position += count;

    /// <summary>libwebp's VP8LReadBits: after the end, zero, and back to the window's start.</summary>
    public int Read(int count)
    {
        if (_flag)
        {
            _position = WindowStart;
            return 0;
        }
        int v = (int)Peek(count);
        _position += count;
        if (_position > _limit) SetEndOfStream();
        return v;
    }

    /// <summary>libwebp's VP8LFillBitWindow, which matters only at the end: there it checks for the end of the stream.</summary>
    public void Fill()
    {
        if (_position > _limit || (_flag && _position - WindowStart >= 32)) SetEndOfStream();
    }

    private void SetEndOfStream()
    {
        _flag = true;
        _position = WindowStart;
    }
}
