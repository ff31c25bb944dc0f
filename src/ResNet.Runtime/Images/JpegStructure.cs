using System.Buffers.Binary;

namespace ResNet.Runtime.Images;

/// <summary>
/// Walks a JPEG's markers before decoding, as PIL's header parser and then libjpeg's marker reader walk them:
/// bytes between segments that are not a marker are skipped (both warn at most), a frame header (SOF) comes before
/// the first scan, and the file ends with an end-of-image marker — a truncated file is refused, as PIL refuses it
/// with "image file is truncated". One exception, libjpeg's: a file of one scan of every component is complete once
/// that scan's data has ended at a marker (PIL has all its rows), so what follows may run out without an end-of-image
/// marker, though a marker libjpeg refuses still fails it; and its data may run to the end of the file if libjpeg's
/// reading ahead does not get there before the last MCU (<see cref="JpegReadAhead"/>, which the decoder asks). Returns the frame, whose size the pixel limit and the
/// memory budget are checked against, and the segments in order, which are all the decoder reads: it never walks
/// the file itself, so it cannot find a segment (a larger frame, say) that this check did not see.
/// </summary>
internal static class JpegStructure
{
    public readonly record struct Frame(int Width, int Height, int Components, bool Progressive);

    /// <summary>A marker segment's payload: bytes [Start, Start + Length). A scan's entropy-coded data follows its header.</summary>
    public readonly record struct Segment(byte Marker, int Start, int Length);

    /// <summary><paramref name="DataRunsToEnd"/>: the one scan's data runs to the end of the file, with no marker after it (see <see cref="JpegReadAhead"/>).</summary>
    public sealed record File(Frame Frame, Segment[] Segments, bool DataRunsToEnd = false);

    public static File Check(byte[] b, string name)
    {
        int pos = 2;
        Frame? frame = null;
        int scans = 0;
        bool oneScan = false; // libjpeg's !has_multiple_scans, known at the first scan
        int restartInterval = 0;
        Segment frameSegment = default;
        bool dataRunsToEnd = false;
        var segments = new List<Segment>();
        while (true)
        {
            int next = NextMarker(b, ref pos);
            if (next < 0)
            {
                if (oneScan) break;
                throw Corrupt(name, "truncated file (no end-of-image marker)");
            }
            byte marker = (byte)next;
            if (marker == 0xD9) break; // EOI
            if (marker is >= 0xD0 and <= 0xD7) continue; // RSTn: no parameters
            // PIL's header parser knows no marker below 0xC0; libjpeg, reading after the first scan, only TEM.
            if (marker == 0x01 && scans > 0) continue;
            if (marker == 0xD8) throw Corrupt(name, "a second start-of-image marker");
            if (marker < 0xC0 || Unknown(marker)) throw Corrupt(name, $"unknown marker 0x{marker:X2}");
            if (marker is >= 0xC0 and <= 0xCF && marker is not (0xC4 or 0xCC))
            {
                // libjpeg reads a sequential or progressive frame header (Huffman or arithmetic) and refuses the others
                // at once; it finds a second one only after reading its first 8 bytes.
                if (frame != null && marker is 0xC0 or 0xC1 or 0xC2 or 0xC9 or 0xCA)
                {
                    if (oneScan && pos + 8 > b.Length) break;
                    throw Corrupt(name, "two frame headers");
                }
                if (marker is not (0xC0 or 0xC1 or 0xC2))
                    throw new InputException($"{name}: unsupported JPEG coding (SOF{marker - 0xC0}: lossless, hierarchical or arithmetic); baseline and progressive are supported");
            }
            if (pos + 2 > b.Length)
            {
                if (oneScan) break;
                throw Corrupt(name, "truncated segment");
            }
            int length = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(pos));
            if (length < 2)
            {
                // Both readers skip no payload for a length below 2 (libjpeg's skip_variable, PIL's _safe_read) where
                // they skip segments; libjpeg's table and header readers fail on it.
                if (marker is not ((>= 0xE0 and <= 0xEF) or 0xFE or 0xDC)) throw Corrupt(name, $"segment 0x{marker:X2} with a length of {length}");
                pos += 2;
                continue;
            }
            if (pos + length > b.Length)
            {
                // After a file's one scan libjpeg waits for the rest, and PIL has every row; unless what has come
                // already fails libjpeg's reading of the segment.
                if (oneScan)
                {
                    if (!FailsCut(marker, b.AsSpan(pos))) break;
                    throw Corrupt(name, $"segment 0x{marker:X2} is damaged (and cut off by the end of the file)");
                }
                throw Corrupt(name, $"segment 0x{marker:X2} runs past the end of the file");
            }
            if (marker == 0xDA && oneScan) throw Corrupt(name, "a second scan after one of every component (an end-of-image marker expected)");
            var seg = b.AsSpan(pos + 2, length - 2);
            segments.Add(new Segment(marker, pos + 2, length - 2));
            pos += length;
            if (marker is 0xC0 or 0xC1 or 0xC2) (frame, frameSegment) = (FrameHeader(seg, marker == 0xC2, name), segments[^1]);
            if (marker == 0xDD && seg.Length == 2) restartInterval = BinaryPrimitives.ReadUInt16BigEndian(seg);
            if (marker != 0xDA) continue;
            if (frame == null) throw Corrupt(name, "scan before the frame header");
            if (scans++ == 0) oneScan = !frame.Value.Progressive && seg.Length > 0 && seg[0] == frame.Value.Components;
            int boundaries = restartInterval > 0 ? (int)Math.Min(int.MaxValue, (Mcus(b.AsSpan(frameSegment.Start, frameSegment.Length), seg) - 1) / restartInterval) : 0;
            pos = ScanDataEnd(b, pos, boundaries);
            // A scan of one of every component whose data runs to the end of the file without a marker: whether PIL
            // takes it depends on how far libjpeg's bit reader reads ahead, which the decoder tells.
            dataRunsToEnd = oneScan && pos >= b.Length;
        }
        if (frame == null) throw Corrupt(name, "no frame header");
        if (scans == 0) throw Corrupt(name, "no image data (no scan)");
        return new File(frame.Value, [.. segments], dataRunsToEnd);
    }

    private static Frame FrameHeader(ReadOnlySpan<byte> seg, bool progressive, string name)
    {
        if (seg.Length < 6) throw Corrupt(name, "short frame header");
        int h = BinaryPrimitives.ReadUInt16BigEndian(seg[1..]), w = BinaryPrimitives.ReadUInt16BigEndian(seg[3..]), n = seg[5];
        if (w == 0 || h == 0) throw Corrupt(name, $"impossible size {w}×{h}");
        if (n is not (1 or 3 or 4) || seg.Length < 6 + 3 * n) throw Corrupt(name, $"frame header with {n} components");
        return new Frame(w, h, n, progressive);
    }

    /// <summary>
    /// Where a scan's entropy-coded data (from <paramref name="pos"/>) ends: at the first marker that is not RSTn, as
    /// libjpeg's bit reader sees markers (an 0xFF, any fill 0xFFs after it, then a byte that is not 0x00), or at
    /// the end of the file. Returns the position of that marker's first 0xFF, or the file's length. While some of
    /// the scan's <paramref name="boundaries"/> (restart points) are still to come, restart markers and markers below
    /// SOF0 are passed over: the decoder takes the first at a restart, and libjpeg's resynchronization skips the
    /// others (JpegBitReader.Resync). Once none are, any marker stops the decoder, so it ends the data.
    /// </summary>
    private static int ScanDataEnd(byte[] b, int pos, long boundaries)
    {
        long restarts = 0;
        while (pos < b.Length)
        {
            if (b[pos] != 0xFF)
            {
                pos++;
                continue;
            }
            int next = pos + 1;
            while (next < b.Length && b[next] == 0xFF) next++;
            if (next >= b.Length) return b.Length; // a marker cut off: the data runs to the end
            byte marker = b[next];
            if (marker != 0x00 && (marker is >= 0xC0 and not (>= 0xD0 and <= 0xD7) || restarts >= boundaries)) return pos;
            if (marker is >= 0xD0 and <= 0xD7) restarts++;
            pos = next + 1;
        }
        return pos;
    }

    /// <summary>
    /// How many MCUs a scan codes (<paramref name="scan"/>: its header) in the frame (<paramref name="frame"/>: its
    /// header, checked): the frame's MCU grid when interleaved, else its one component's blocks. 0 if the scan
    /// header names no component of the frame (the decoder refuses it).
    /// </summary>
    private static long Mcus(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> scan)
    {
        int height = BinaryPrimitives.ReadUInt16BigEndian(frame[1..]), width = BinaryPrimitives.ReadUInt16BigEndian(frame[3..]), n = frame[5];
        int maxH = 1, maxV = 1;
        for (int i = 0; i < n; i++) (maxH, maxV) = (Math.Max(maxH, frame[7 + 3 * i] >> 4), Math.Max(maxV, frame[7 + 3 * i] & 15));
        if (scan.Length < 3) return 0;
        if (scan[0] > 1) return (long)((width + 8 * maxH - 1) / (8 * maxH)) * ((height + 8 * maxV - 1) / (8 * maxV));
        for (int i = 0; i < n; i++)
        {
            if (frame[6 + 3 * i] != scan[1]) continue;
            int h = Math.Max(1, frame[7 + 3 * i] >> 4), v = Math.Max(1, frame[7 + 3 * i] & 15);
            long samplesW = ((long)width * h + maxH - 1) / maxH, samplesH = ((long)height * v + maxV - 1) / maxV;
            return (samplesW + 7) / 8 * ((samplesH + 7) / 8);
        }
        return 0;
    }

    /// <summary>
    /// Whether libjpeg's reading of a marker's segment, cut off by the end of the file after <paramref name="rest"/>
    /// (from its length field), fails on what is there before waiting for more (get_dht, get_dqt, get_dri, get_sos).
    /// </summary>
    private static bool FailsCut(byte marker, ReadOnlySpan<byte> rest)
    {
        int length = BinaryPrimitives.ReadUInt16BigEndian(rest) - 2;
        var s = rest[2..];
        switch (marker)
        {
            case 0xC4:
                while (length > 16)
                {
                    if (s.Length < 17) return false;
                    int count = 0;
                    foreach (var n in s.Slice(1, 16)) count += n;
                    length -= 17;
                    if (count > 256 || count > length) return true;
                    if (s.Length < 17 + count) return false;
                    int index = (s[0] & 0x10) != 0 ? s[0] - 0x10 : s[0];
                    if (index > 3) return true;
                    length -= count;
                    s = s[(17 + count)..];
                }
                return length != 0;
            case 0xDB:
                while (length > 0)
                {
                    if (s.Length < 1) return false;
                    if ((s[0] & 15) > 3) return true;
                    int size = (s[0] >> 4) == 0 ? 64 : 128;
                    if (s.Length < 1 + size) return false;
                    length -= 1 + size;
                    s = s[(1 + size)..];
                }
                return length != 0;
            case 0xDD:
                return length != 2;
            case 0xCC:
                for (; length > 0 && s.Length >= 2; length -= 2, s = s[2..])
                    if (DacFails(s[0], s[1])) return true;
                return length < 0;
            case 0xDA:
                // A second scan after a file's one scan is an error once its header's size and count are read.
                return s.Length >= 1;
            default:
                return false;
        }
    }

    /// <summary>
    /// libjpeg's next_marker: the code of the next marker from <paramref name="pos"/>, which is left past it, passing
    /// over anything up to an 0xFF, fill 0xFFs and stuffed 0xFF 0x00 pairs; -1 (and <paramref name="pos"/> at the
    /// end) if the data ends first.
    /// </summary>
    public static int NextMarker(ReadOnlySpan<byte> b, ref int pos)
    {
        while (true)
        {
            while (pos < b.Length && b[pos] != 0xFF) pos++;
            while (pos < b.Length && b[pos] == 0xFF) pos++;
            if (pos >= b.Length) return -1;
            int c = b[pos++];
            if (c != 0) return c;
        }
    }

    /// <summary>libjpeg's get_dac on one entry: a table index past 31, or a DC table's lower bound above its upper.</summary>
    public static bool DacFails(byte index, byte value) => index >= 32 || (index < 16 && (value & 15) > value >> 4);

    /// <summary>A marker libjpeg's read_markers refuses (JERR_UNKNOWN_MARKER or JERR_SOF_UNSUPPORTED's JPG): below SOF0 but TEM, and the reserved ones.</summary>
    public static bool Unknown(int marker) => marker is (> 0x01 and < 0xC0) or 0xC8 or 0xDE or 0xDF or (>= 0xF0 and <= 0xFD);

    private static InputException Corrupt(string name, string reason) => new($"{name}: corrupt JPEG: {reason}");
}
