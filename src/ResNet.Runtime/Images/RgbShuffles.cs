using System.Runtime.Intrinsics;

namespace ResNet.Runtime.Images;

/// <summary>
/// Byte-shuffle masks (pshufb: a mask byte of 0xFF gives zero) between 16 interleaved RGB pixels — 48 bytes in
/// three 16-byte parts — and their three 16-byte channels. Mask [3·a + b] is for part a and channel b
/// (<see cref="Interleave"/>) or channel a and part b (<see cref="Deinterleave"/>); OR-ing a channel's (or a
/// part's) three shuffles gives the result.
/// </summary>
internal static class RgbShuffles
{
    /// <summary>Channel → part: byte i of part p is pixel (16p + i) / 3's value of channel (16p + i) % 3.</summary>
    public static readonly Vector128<byte>[] Interleave = Build((part, channel, i) =>
        (16 * part + i) % 3 == channel ? (16 * part + i) / 3 : -1);

    /// <summary>Part → channel: byte i of channel c is byte 3i + c of the 48, if it lies in part p.</summary>
    public static readonly Vector128<byte>[] Deinterleave = Build((channel, part, i) =>
        3 * i + channel - 16 * part is var at && at is >= 0 and < 16 ? at : -1);

    private static Vector128<byte>[] Build(Func<int, int, int, int> source)
    {
        var masks = new Vector128<byte>[9];
        var m = new byte[16];
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
            {
                for (int i = 0; i < 16; i++) m[i] = source(a, b, i) is var s && s >= 0 ? (byte)s : (byte)0xFF;
                masks[3 * a + b] = Vector128.Create<byte>(m);
            }
        return masks;
    }
}
