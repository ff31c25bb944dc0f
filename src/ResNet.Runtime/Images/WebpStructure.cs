using System.Buffers.Binary;

namespace ResNet.Runtime.Images;

/// <summary>
/// A WebP file's RIFF container, checked as PIL's libwebp (1.2.4) checks it before decoding a pixel: its animation
/// decoder runs the demuxer over every chunk of the file, so a file with a second image, an image chunk outside an
/// animation's frames, a frame that does not fit the canvas, an alpha chunk after its image or bytes too few for a
/// chunk at the end is refused even when its first image is sound. The simple form is one <c>VP8 </c> or <c>VP8L</c>
/// chunk; the extended one a <c>VP8X</c> chunk, then optional chunks (color profile, metadata, unknown) around one
/// image — an <c>ALPH</c> chunk and a lossy image, or a lossless one — or, for an animation, an <c>ANIM</c> chunk and
/// <c>ANMF</c> frames. What PIL opens of an animation is its first frame on a canvas cleared to transparent black.
/// </summary>
internal static class WebpStructure
{
    /// <summary>
    /// The image (<see cref="Width"/> × <see cref="Height"/>) and where its frame's image chunk payload lies; the frame
    /// is the whole image but for an animation's first frame, which lies at (<see cref="Left"/>, <see cref="Top"/>).
    /// A lossy frame's alpha plane, when libwebp decodes one, is the <see cref="AlphaLength"/> bytes at
    /// <see cref="AlphaStart"/> (-1: none).
    /// </summary>
    public sealed record Header(int Width, int Height, int FrameStart, int FrameLength, int FrameWidth, int FrameHeight, int Left = 0, int Top = 0,
        bool Lossless = false, int AlphaStart = -1, int AlphaLength = 0);

    private const int AlphaFlag = 0x10, AnimationFlag = 0x02, KnownFlags = 0x3E;

    public static bool IsWebp(ReadOnlySpan<byte> b) =>
        b.Length >= 16 && b[..4].SequenceEqual("RIFF"u8) && b[8..12].SequenceEqual("WEBP"u8)
        && (b[12..16].SequenceEqual("VP8 "u8) || b[12..16].SequenceEqual("VP8L"u8) || b[12..16].SequenceEqual("VP8X"u8));

    public static InputException Corrupt(string name, string reason) => new($"{name}: corrupt WebP: {reason}");

    public static Header Check(byte[] b, string name, Action<Header> admit)
    {
        long riffSize = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(4));
        if (riffSize < 12) throw Corrupt(name, "RIFF size too small");
        if (riffSize > b.Length - 8) throw Corrupt(name, $"truncated file (the RIFF header says {riffSize + 8} bytes, the file has {b.Length})");
        // Bytes past the RIFF chunk are not read.
        var header = new Demuxer(b, (int)riffSize + 8, name).Run();
        admit(header);
        return header;
    }

    private static int U24(byte[] b, int at) => b[at] | b[at + 1] << 8 | b[at + 2] << 16;

    /// <summary>
    /// The chunks of one frame, as the demuxer's StoreFrame collects them: an ALPH chunk (its offset, -1: none) and an
    /// image chunk (<see cref="Decoded"/>: its header), and where the frame lies. An animation frame's size is its
    /// image's, whatever its ANMF chunk says.
    /// </summary>
    private struct Frame
    {
        public int Left, Top;
        public int Alpha;
        public Header? Decoded;

        /// <summary>The image chunk's offset (-1: none).</summary>
        public readonly int Image => Decoded == null ? -1 : Decoded.FrameStart - 8;
    }

    /// <summary>libwebp's demuxer over the chunks in [12, <paramref name="end"/>) with its errors, one line each.</summary>
    private sealed class Demuxer(byte[] b, int end, string name)
    {
        private int _pos = 12;
        private int _frames;
        private Header? _first;

        private Exception Corrupt(string reason) => WebpStructure.Corrupt(name, reason);

        private ReadOnlySpan<byte> Tag(int at) => b.AsSpan(at, 4);

        /// <summary>The payload size of the chunk at <paramref name="at"/>, whose payload, padded to an even length, must end by the RIFF's end.</summary>
        private int ChunkSize(int at, string where = "")
        {
            long size = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at + 4));
            if (size + (size & 1) > end - at - 8) throw Corrupt($"truncated {TagName(Tag(at))} chunk{where}");
            return (int)size;
        }

        private static int Next(int at, int size) => at + 8 + size + (size & 1);

        /// <summary>After a chunk, the RIFF ends or another chunk's 8-byte header starts.</summary>
        private bool AtEnd()
        {
            if (_pos == end) return true;
            if (end - _pos < 8) throw Corrupt($"{end - _pos} byte{(end - _pos == 1 ? "" : "s")} after the last chunk, too few for a chunk");
            return false;
        }

        public Header Run()
        {
            if (!Tag(12).SequenceEqual("VP8X"u8))
            {
                // The simple form: its image; chunks after it are not read (but for the one StoreFrame peeks at).
                var still = StoreFrame(alphaUsed: false);
                Admit(still, exact: true, 0, 0);
                return _first!;
            }
            int vp8xSize = ChunkSize(12);
            if (vp8xSize != 10) throw Corrupt("VP8X chunk of the wrong size");
            int flags = b[20];
            int canvasWidth = 1 + U24(b, 24), canvasHeight = 1 + U24(b, 27);
            if ((flags & ~KnownFlags) != 0) throw Corrupt($"unknown VP8X flags (0x{flags:X2})");
            if ((long)canvasWidth * canvasHeight >= 1L << 32) throw Corrupt($"a {canvasWidth}×{canvasHeight} canvas, too large");
            bool animation = (flags & AnimationFlag) != 0;
            bool anim = false;
            _pos = Next(12, vp8xSize);
            while (!AtEnd())
            {
                int at = _pos, size = ChunkSize(at);
                var tag = Tag(at);
                if (tag.SequenceEqual("VP8X"u8)) throw Corrupt("VP8X chunk after the first");
                if (tag.SequenceEqual("ALPH"u8) || tag.SequenceEqual("VP8 "u8) || tag.SequenceEqual("VP8L"u8))
                {
                    if (animation || anim) throw Corrupt($"{TagName(tag)} chunk outside the animation's frames");
                    // A still image's frame is admitted or refused at once: any frame before is a still image.
                    if (_frames > 0) throw Corrupt("more than one image");
                    var still = StoreFrame(alphaUsed: (flags & AlphaFlag) != 0);
                    Admit(still, exact: true, canvasWidth, canvasHeight);
                    continue;
                }
                if (tag.SequenceEqual("ANIM"u8))
                {
                    if (size < 6) throw Corrupt("ANIM chunk too short");
                    anim = true;
                }
                else if (tag.SequenceEqual("ANMF"u8))
                {
                    if (!anim) throw Corrupt("ANMF chunk before the ANIM chunk");
                    AnimationFrame(at, size + (size & 1), animation, canvasWidth, canvasHeight);
                    continue;
                }
                _pos = Next(at, size);
            }
            return _first ?? throw Corrupt("no image data");
        }

        /// <summary>
        /// An ANMF chunk: its 16-byte header, then the frame's chunks. The frame is the animation's only when the
        /// VP8X flags say animation; what follows its image chunk inside the ANMF chunk is read as chunks of the file.
        /// </summary>
        private void AnimationFrame(int at, int size, bool animation, int canvasWidth, int canvasHeight)
        {
            if (size < 16) throw Corrupt("truncated ANMF chunk");
            int start = at + 8;
            int width = 1 + U24(b, start + 6), height = 1 + U24(b, start + 9);
            if ((long)width * height >= 1L << 32) throw Corrupt($"a {width}×{height} frame, too large");
            var frame = StoreFrame(alphaUsed: true, from: start + 16, within: size - 16);
            frame.Left = 2 * U24(b, start);
            frame.Top = 2 * U24(b, start + 3);
            if (animation && (frame.Alpha >= 0 || frame.Image >= 0)) Admit(frame, exact: false, canvasWidth, canvasHeight);
        }

        /// <summary>
        /// StoreFrame: from <paramref name="from"/> (else the current chunk), an ALPH chunk and an image chunk, each at
        /// most once, stopping at any other chunk; an ANMF frame's (<paramref name="within"/> ≥ 0) must lie inside it.
        /// </summary>
        private Frame StoreFrame(bool alphaUsed, int from = -1, int within = -1)
        {
            if (from >= 0) _pos = from;
            int start = _pos;
            if (end - _pos < 8) throw Corrupt("an ANMF chunk without a frame's chunks at the end of the file");
            var frame = new Frame { Alpha = -1 };
            int alpha = -1;
            while (true)
            {
                int at = _pos, size = ChunkSize(at, within >= 0 ? " in an animation frame" : "");
                var tag = Tag(at);
                bool lossless = tag.SequenceEqual("VP8L"u8);
                if (tag.SequenceEqual("ALPH"u8) && alpha < 0)
                {
                    alpha = at;
                }
                else if (lossless && alpha >= 0)
                {
                    throw Corrupt("ALPH chunk before a lossless image, which has its own alpha");
                }
                else if ((lossless || tag.SequenceEqual("VP8 "u8)) && frame.Decoded == null)
                {
                    // The decoder gets the chunk with its pad byte (the demuxer's frame payload), a byte more data.
                    frame.Decoded = lossless ? LosslessFrame(b, at + 8, size + (size & 1), name) : LossyFrame(b, at + 8, size, name);
                }
                else
                {
                    break;
                }
                _pos = Next(at, size);
                if (AtEnd()) break;
            }
            if (within >= 0 && _pos - start > within) throw Corrupt("an animation frame's image runs past its ANMF chunk");
            if (alphaUsed) frame.Alpha = alpha;
            return frame;
        }

        /// <summary>
        /// A frame the demuxer keeps, checked as its IsValidExtendedFormat checks it: an image, after its alpha, within
        /// the canvas (a still image: the canvas exactly). The first is the one decoded.
        /// </summary>
        private void Admit(Frame f, bool exact, int canvasWidth, int canvasHeight)
        {
            _frames++;
            if (f.Image < 0) throw Corrupt("ALPH chunk without an image");
            if (f.Alpha > f.Image) throw Corrupt("ALPH chunk after its image");
            var image = f.Decoded!;
            if (exact && canvasWidth > 0 && (image.FrameWidth != canvasWidth || image.FrameHeight != canvasHeight))
                throw Corrupt($"the image is {image.FrameWidth}×{image.FrameHeight} on a {canvasWidth}×{canvasHeight} canvas");
            if (!exact && ((long)f.Left + image.FrameWidth > canvasWidth || (long)f.Top + image.FrameHeight > canvasHeight))
                throw Corrupt($"frame {_frames} ({image.FrameWidth}×{image.FrameHeight} at {f.Left}, {f.Top}) does not fit its {canvasWidth}×{canvasHeight} canvas");
            if (_first != null) return;
            int alphaLength = f.Alpha < 0 ? 0 : (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(f.Alpha + 4));
            _first = image with
            {
                Width = exact ? image.FrameWidth : canvasWidth,
                Height = exact ? image.FrameHeight : canvasHeight,
                Left = f.Left,
                Top = f.Top,
                AlphaStart = f.Alpha < 0 ? -1 : f.Alpha + 8,
                AlphaLength = alphaLength,
            };
        }
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

    /// <summary>
    /// The key frame's uncompressed header (RFC 6386 §9.1), checked as libwebp's VP8GetInfo checks it: the first
    /// partition against the chunk's size, the rest against its data with the pad byte, which is what is decoded.
    /// </summary>
    private static Header LossyFrame(byte[] b, int start, int size, string name)
    {
        int length = size + (size & 1);
        if (length < 10) throw Corrupt(name, "truncated VP8 frame header");
        int bits = b[start] | b[start + 1] << 8 | b[start + 2] << 16;
        if ((bits & 1) != 0) throw Corrupt(name, "not a key frame");
        if (((bits >> 1) & 7) > 3) throw Corrupt(name, "unknown VP8 profile");
        if (((bits >> 4) & 1) == 0) throw Corrupt(name, "the frame is not shown");
        if ((bits >> 5) >= size) throw Corrupt(name, "bad partition length");
        if (b[start + 3] != 0x9D || b[start + 4] != 0x01 || b[start + 5] != 0x2A) throw Corrupt(name, "bad VP8 start code");
        int width = (b[start + 6] | b[start + 7] << 8) & 0x3FFF, height = (b[start + 8] | b[start + 9] << 8) & 0x3FFF;
        if (width == 0 || height == 0) throw Corrupt(name, $"an empty image ({width}×{height})");
        return new Header(width, height, start, length, width, height);
    }
}
