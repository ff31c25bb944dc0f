using System.Buffers.Binary;

namespace ResNet.Runtime.Images;

/// <summary>
/// A WebP file's RIFF container, checked as libwebp checks it before decoding: the simple form (one <c>VP8 </c> chunk)
/// or the extended one (<c>VP8X</c>, then optional chunks — alpha, color profile, metadata — before the image's, or
/// an animation's frames), holding a lossy (<c>VP8 </c>) or lossless (<c>VP8L</c>) image. A lossy image's alpha plane is
/// not read, because <c>convert('RGB')</c> drops it (libwebp decodes the color without it). Of an animation, what PIL
/// opens is its first frame as libwebp's animation decoder composes it: on a canvas of transparent black.
/// </summary>
internal static class WebpStructure
{
    /// <summary>
    /// The image (<see cref="Width"/> × <see cref="Height"/>) and where its VP8 frame lies in the file; the frame is
    /// the whole image but for an animation's first frame, which lies at (<see cref="Left"/>, <see cref="Top"/>).
    /// </summary>
    public sealed record Header(int Width, int Height, int FrameStart, int FrameLength, int FrameWidth, int FrameHeight, int Left = 0, int Top = 0,
        bool Lossless = false);

    public static bool IsWebp(ReadOnlySpan<byte> b) =>
        b.Length >= 16 && b[..4].SequenceEqual("RIFF"u8) && b[8..12].SequenceEqual("WEBP"u8)
        && (b[12..16].SequenceEqual("VP8 "u8) || b[12..16].SequenceEqual("VP8L"u8) || b[12..16].SequenceEqual("VP8X"u8));

    public static InputException Corrupt(string name, string reason) => new($"{name}: corrupt WebP: {reason}");

    public static Header Check(byte[] b, string name, Action<Header> admit)
    {
        long riffSize = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(4));
        if (riffSize < 12) throw Corrupt(name, "RIFF size too small");
        if (riffSize > b.Length - 8) throw Corrupt(name, $"truncated file (the RIFF header says {riffSize + 8} bytes, the file has {b.Length})");
        int end = (int)riffSize + 8, pos = 12;
        int canvasWidth = 0, canvasHeight = 0;
        bool extended = false, animated = false;
        while (true)
        {
            if (pos + 8 > end) throw Corrupt(name, "no image data");
            int size = ChunkSize(b, pos, end, name, "");
            var tag = b.AsSpan(pos, 4);
            int data = pos + 8;
            if (tag.SequenceEqual("VP8X"u8))
            {
                if (pos != 12) throw Corrupt(name, "VP8X chunk after the first");
                if (size != 10) throw Corrupt(name, "VP8X chunk of the wrong size");
                animated = (b[data] & 0x02) != 0;
                canvasWidth = 1 + U24(b, data + 4);
                canvasHeight = 1 + U24(b, data + 7);
                extended = true;
            }
            else if (animated && tag.SequenceEqual("ANMF"u8))
            {
                var header = FirstFrame(b, data, size, canvasWidth, canvasHeight, name);
                admit(header);
                return header;
            }
            else if (!animated && ImageChunk(b, pos, size, name) is { } header)
            {
                if (extended && (header.Width != canvasWidth || header.Height != canvasHeight))
                    throw Corrupt(name, $"the image is {header.Width}×{header.Height} on a {canvasWidth}×{canvasHeight} canvas");
                admit(header);
                return header;
            }
            else if (!extended)
            {
                throw Corrupt(name, "no image data");
            }
            pos = Next(pos, size);
        }
    }

    private static int U24(byte[] b, int at) => b[at] | b[at + 1] << 8 | b[at + 2] << 16;

    /// <summary>The payload size of the chunk at <paramref name="pos"/>, which must end by <paramref name="end"/>.</summary>
    private static int ChunkSize(byte[] b, int pos, int end, string name, string where)
    {
        long size = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(pos + 4));
        if (size > end - pos - 8) throw Corrupt(name, $"truncated {TagName(b.AsSpan(pos, 4))} chunk{where}");
        return (int)size;
    }

    /// <summary>Where the chunk after the one at <paramref name="pos"/> starts (payloads are padded to an even length).</summary>
    private static int Next(int pos, int size) => pos + 8 + size + (size & 1);

    /// <summary>The image a <c>VP8 </c> or <c>VP8L</c> chunk holds; null for any other chunk.</summary>
    private static Header? ImageChunk(byte[] b, int pos, int size, string name)
    {
        var tag = b.AsSpan(pos, 4);
        return tag.SequenceEqual("VP8 "u8) ? Frame(b, pos + 8, size, name)
            : tag.SequenceEqual("VP8L"u8) ? LosslessFrame(b, pos + 8, size, name)
            : null;
    }

    /// <summary>An animation's first frame (an ANMF chunk): its place on the canvas, then its own alpha and image chunks.</summary>
    private static Header FirstFrame(byte[] b, int start, int length, int canvasWidth, int canvasHeight, string name)
    {
        if (length < 16) throw Corrupt(name, "truncated ANMF chunk");
        int left = 2 * U24(b, start), top = 2 * U24(b, start + 3), width = 1 + U24(b, start + 6), height = 1 + U24(b, start + 9);
        if ((long)left + width > canvasWidth || (long)top + height > canvasHeight)
            throw Corrupt(name, $"the first frame ({width}×{height} at {left}, {top}) does not fit its {canvasWidth}×{canvasHeight} canvas");
        int pos = start + 16, end = start + length;
        while (pos + 8 <= end)
        {
            int size = ChunkSize(b, pos, end, name, " in the first frame");
            if (ImageChunk(b, pos, size, name) is { } frame)
            {
                if (frame.Width != width || frame.Height != height)
                    throw Corrupt(name, $"the first frame's image is {frame.Width}×{frame.Height}, its ANMF chunk says {width}×{height}");
                return frame with { Width = canvasWidth, Height = canvasHeight, Left = left, Top = top };
            }
            if (!b.AsSpan(pos, 4).SequenceEqual("ALPH"u8)) break;
            pos = Next(pos, size);
        }
        throw Corrupt(name, "no image data in the first frame");
    }

    /// <summary>A lossless image's 5-byte header: its signature, size, and a version libwebp knows (0).</summary>
    private static Header LosslessFrame(byte[] b, int start, int length, string name)
    {
        if (length < 5) throw Corrupt(name, "truncated VP8L header");
        if (b[start] != 0x2F) throw Corrupt(name, "bad VP8L signature");
        if (b[start + 4] >> 5 != 0) throw Corrupt(name, $"unknown VP8L version {b[start + 4] >> 5}");
        uint bits = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(start + 1));
        int width = 1 + (int)(bits & 0x3FFF), height = 1 + (int)((bits >> 14) & 0x3FFF);
        return new Header(width, height, start, length, width, height, Lossless: true);
    }

    /// <summary>A chunk's four-character code as text, or in hexadecimal when it is not printable.</summary>
    private static string TagName(ReadOnlySpan<byte> tag)
    {
        foreach (byte c in tag)
            if (c < 0x20 || c > 0x7E) return "0x" + Convert.ToHexString(tag);
        return System.Text.Encoding.ASCII.GetString(tag).TrimEnd();
    }

    /// <summary>The key frame's uncompressed header (RFC 6386 §9.1), checked as libwebp's VP8GetInfo checks it.</summary>
    private static Header Frame(byte[] b, int start, int length, string name)
    {
        if (length < 10) throw Corrupt(name, "truncated VP8 frame header");
        int bits = b[start] | b[start + 1] << 8 | b[start + 2] << 16;
        if ((bits & 1) != 0) throw Corrupt(name, "not a key frame");
        if (((bits >> 1) & 7) > 3) throw Corrupt(name, "unknown VP8 profile");
        if (((bits >> 4) & 1) == 0) throw Corrupt(name, "the frame is not shown");
        if ((bits >> 5) >= length) throw Corrupt(name, "bad partition length");
        if (b[start + 3] != 0x9D || b[start + 4] != 0x01 || b[start + 5] != 0x2A) throw Corrupt(name, "bad VP8 start code");
        int width = (b[start + 6] | b[start + 7] << 8) & 0x3FFF, height = (b[start + 8] | b[start + 9] << 8) & 0x3FFF;
        if (width == 0 || height == 0) throw Corrupt(name, $"an empty image ({width}×{height})");
        return new Header(width, height, start, length, width, height);
    }
}
