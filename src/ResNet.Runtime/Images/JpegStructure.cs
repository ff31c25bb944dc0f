using System.Buffers.Binary;

namespace ResNet.Runtime.Images;

/// <summary>
/// Walks a JPEG's marker segments before decoding: every segment inside the file, a frame header (SOF) before
/// the first scan, a scan, and an end-of-image marker (a truncated file is refused, as PIL refuses it with
/// "image file is truncated"). Returns the frame, whose size the pixel limit and the memory budget are checked
/// against, and the segments in order, which are all the decoder reads: it never walks the file itself, so it
/// cannot find a segment (a larger frame, say) that this check did not see.
/// </summary>
internal static class JpegStructure
{
    public readonly record struct Frame(int Width, int Height, int Components, bool Progressive);

    /// <summary>A marker segment's payload: bytes [Start, Start + Length). A scan's entropy-coded data follows its header.</summary>
    public readonly record struct Segment(byte Marker, int Start, int Length);

    public sealed record File(Frame Frame, Segment[] Segments);

    public static File Check(byte[] b, string name)
    {
        int pos = 2;
        Frame? frame = null;
        bool scan = false;
        var segments = new List<Segment>();
        while (true)
        {
            if (pos >= b.Length - 1) throw Corrupt(name, "truncated file (no end-of-image marker)");
            if (b[pos] != 0xFF) throw Corrupt(name, $"expected a marker at byte {pos}");
            byte marker = b[pos + 1];
            if (marker == 0xFF) { pos++; continue; } // fill bytes
            if (marker == 0xD9) break; // EOI
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) { pos += 2; continue; }
            if (marker == 0xD8) throw Corrupt(name, "a second start-of-image marker");
            if (pos + 4 > b.Length) throw Corrupt(name, "truncated segment");
            int length = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(pos + 2));
            if (length < 2 || pos + 2 + length > b.Length) throw Corrupt(name, $"segment 0x{marker:X2} runs past the end of the file");
            var seg = b.AsSpan(pos + 4, length - 2);
            segments.Add(new Segment(marker, pos + 4, length - 2));
            if (marker is >= 0xC0 and <= 0xCF && marker is not (0xC4 or 0xC8 or 0xCC))
            {
                if (frame != null) throw Corrupt(name, "two frame headers");
                if (marker is not (0xC0 or 0xC1 or 0xC2))
                    throw new InputException($"{name}: unsupported JPEG coding (SOF{marker - 0xC0}: lossless, hierarchical or arithmetic); baseline and progressive are supported");
                if (seg.Length < 6) throw Corrupt(name, "short frame header");
                int h = BinaryPrimitives.ReadUInt16BigEndian(seg[1..]), w = BinaryPrimitives.ReadUInt16BigEndian(seg[3..]), n = seg[5];
                if (w == 0 || h == 0) throw Corrupt(name, $"impossible size {w}×{h}");
                if (n is not (1 or 3 or 4) || seg.Length < 6 + 3 * n) throw Corrupt(name, $"frame header with {n} components");
                frame = new Frame(w, h, n, marker == 0xC2);
            }
            pos += 2 + length;
            if (marker == 0xDA)
            {
                if (frame == null) throw Corrupt(name, "scan before the frame header");
                scan = true;
                // Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a restart marker.
                while (pos < b.Length - 1 && !(b[pos] == 0xFF && b[pos + 1] != 0x00 && b[pos + 1] is not (>= 0xD0 and <= 0xD7))) pos++;
            }
        }
        if (frame == null) throw Corrupt(name, "no frame header");
        if (!scan) throw Corrupt(name, "no image data (no scan)");
        return new File(frame.Value, [.. segments]);
    }

    private static InputException Corrupt(string name, string reason) => new($"{name}: corrupt JPEG: {reason}");
}
