using System.Buffers.Binary;
using System.IO.Compression;

namespace ResNet.Runtime.Images;

/// <summary>
/// Checks a PNG's structure before any decoder sees it, as PIL 9.4 reads it (<see cref="Check"/>): signature, IHDR
/// first with legal values, the chunks before the image data whole with correct CRC-32s, IDAT present, PLTE where a
/// palette is needed; what follows the image data read as PIL reads it. Then inflates the image data into a buffer
/// its dimensions size, so a zlib bomb stops at that size.
/// </summary>
internal static class PngStructure
{
    public readonly record struct Header(int Width, int Height, int BitDepth, int ColorType, bool Interlaced)
    {
        public int Channels => ColorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };

        /// <summary>Bytes of one filtered scanline of <paramref name="width"/> pixels, without its filter byte.</summary>
        public long Stride(long width) => (width * Channels * BitDepth + 7) / 8;

        /// <summary>Bytes of filtered scanlines the IDAT stream must inflate to (Adam7 passes summed when interlaced).</summary>
        public long RawBytes()
        {
            long total = 0;
            foreach (var p in Passes()) total += p.Height * (1 + Stride(p.Width));
            return total;
        }

        /// <summary>
        /// The sub-images the scanlines come in, in stream order, each with the pixel grid it fills (x0 + i·dx,
        /// y0 + j·dy): the whole image, or Adam7's seven passes less the empty ones.
        /// </summary>
        public IEnumerable<(int X0, int Y0, int Dx, int Dy, int Width, int Height)> Passes()
        {
            if (!Interlaced)
            {
                yield return (0, 0, 1, 1, Width, Height);
                yield break;
            }
            int[] x0 = [0, 4, 0, 2, 0, 1, 0], y0 = [0, 0, 4, 0, 2, 0, 1], dx = [8, 8, 4, 4, 2, 2, 1], dy = [8, 8, 8, 4, 4, 2, 2];
            for (int p = 0; p < 7; p++)
            {
                int w = (Width - x0[p] + dx[p] - 1) / dx[p], h = (Height - y0[p] + dy[p] - 1) / dy[p];
                if (w > 0 && h > 0) yield return (x0[p], y0[p], dx[p], dy[p], w, h);
            }
        }
    }

    /// <summary>A checked PNG: its header, where its IDAT payloads are, and its palette (empty when none).</summary>
    public sealed record File(Header Header, List<(int Offset, int Length)> Idat, byte[] Palette);

    /// <summary>
    /// Walks and verifies the chunks as PIL 9.4 reads them, then calls <paramref name="admit"/> with the header (the
    /// caller's size limits, before anything is inflated): up to the first IDAT every chunk whole with a correct CRC-32
    /// (PIL's <c>_open</c>); the image data is the IDAT chunks from there on, one after another, their CRCs unread (PIL's
    /// <c>load_read</c>: a truncated last one gives what it holds); after them chunks are read until IEND or until one
    /// has no whole header or a malformed type, without CRCs, but each must be whole (PIL's <c>load_end</c>). Chunk types
    /// are four of <c>[A-Za-z0-9_]</c> (PIL's <c>\w</c>), and every chunk, before the image data or after it, gets what
    /// PIL's handler for it refuses (<see cref="Refusal"/>).
    /// </summary>
    public static File Check(byte[] b, string name, Action<Header> admit)
    {
        int pos = 8;
        Header? header = null;
        byte[] palette = [];
        var chunks = new ChunkState();
        while (true)
        {
            if (b.Length - pos < 8) throw Corrupt(name, pos < b.Length ? "truncated chunk" : header == null ? "no IHDR chunk" : "no image data (IDAT)");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos));
            if (!IsChunkType(b.AsSpan(pos + 4, 4))) throw Corrupt(name, "bad chunk type");
            string kind = System.Text.Encoding.ASCII.GetString(b, pos + 4, 4);
            if (header == null && kind != "IHDR") throw Corrupt(name, "the first chunk is not IHDR");
            if (kind == "IDAT") break;
            if (kind == "IEND") throw Corrupt(name, "no image data (IDAT)");
            if (length > int.MaxValue || length > b.Length - pos - 12) throw Corrupt(name, "truncated file (a chunk runs past the end)");
            var data = b.AsSpan(pos + 8, (int)length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos + 8 + (int)length));
            if (System.IO.Hashing.Crc32.HashToUInt32(b.AsSpan(pos + 4, 4 + (int)length)) != crc) throw Corrupt(name, $"CRC check failed in {kind} chunk");
            switch (kind)
            {
                case "IHDR":
                    header = ParseHeader(data, name);
                    break;
                case "PLTE":
                    if (length % 3 != 0 || length == 0 || length > 768) throw Corrupt(name, "PLTE has an impossible size");
                    palette = data.ToArray();
                    break;
                default:
                    if (Refusal(kind, data, header!.Value, chunks) is { } reason) throw Corrupt(name, reason);
                    break;
            }
            pos += 12 + (int)length;
        }
        var idat = new List<(int Offset, int Length)>();
        while (b.Length - pos >= 8 && b.AsSpan(pos + 4, 4).SequenceEqual("IDAT"u8))
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos));
            int held = (int)Math.Min(length, (uint)(b.Length - pos - 8));
            idat.Add((pos + 8, held));
            pos += 8 + held + 4;
            if (held < length) break;
        }
        // What follows is read once the image is complete: a chunk cut short there fails the file, a malformed header
        // ends the reading. (PIL reads it after the rows, so a damaged image's own error comes first: here this comes first.)
        while (b.Length - pos >= 8 && IsChunkType(b.AsSpan(pos + 4, 4)))
        {
            string kind = System.Text.Encoding.ASCII.GetString(b, pos + 4, 4);
            if (kind == "IEND" || (kind == "fcTL" && chunks.Frames > 1)) break;
            uint length = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos));
            if (length > b.Length - pos - 8) throw Corrupt(name, $"truncated {kind} chunk after the image data");
            if (Refusal(kind, b.AsSpan(pos + 8, (int)length), header!.Value, chunks) is { } reason) throw Corrupt(name, reason);
            pos += 12 + (int)length;
        }
        if (header!.Value.ColorType == 3 && palette.Length == 0) throw Corrupt(name, "no palette (PLTE) for a palette image");
        admit(header.Value);
        return new File(header.Value, idat, palette);
    }

    /// <summary>PIL's <c>is_cid</c>: <c>\w{4}</c>, letters, digits or underscores.</summary>
    private static bool IsChunkType(ReadOnlySpan<byte> type)
    {
        foreach (byte c in type)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
        return true;
    }

    /// <summary>What PIL's chunk handlers remember from one chunk to the next: APNG's frame count and sequence number.</summary>
    private sealed class ChunkState
    {
        public long? Frames;
        public long? Sequence;
        public bool SawAnimationControl;
    }

    /// <summary>
    /// Why PIL 9.4's handler for a chunk other than IHDR, PLTE, IDAT and IEND refuses it, or null: the fixed-size chunks
    /// too short for their fields, compression methods it does not know, text that inflates past its 1 MiB limit, APNG's
    /// frame control out of sequence or off the image. Unknown chunks are skipped.
    /// </summary>
    private static string? Refusal(string kind, ReadOnlySpan<byte> d, Header h, ChunkState state)
    {
        switch (kind)
        {
            case "IHDR":
                return HeaderRefusal(d);
            case "tRNS":
                return (h.ColorType == 0 && d.Length < 2) || (h.ColorType == 2 && d.Length < 6) ? "tRNS chunk too short" : null;
            case "gAMA":
                return d.Length < 4 ? "gAMA chunk too short" : null;
            case "cHRM":
                return d.Length % 4 != 0 ? "cHRM chunk not a whole number of values" : null;
            case "sRGB":
                return d.Length < 1 ? "empty sRGB chunk" : null;
            case "pHYs":
                return d.Length < 9 ? "pHYs chunk too short" : null;
            case "zTXt":
            {
                int nul = d.IndexOf((byte)0);
                if (nul < 0 || nul + 1 == d.Length) return null;
                if (d[nul + 1] != 0) return $"unknown compression method {d[nul + 1]} in zTXt chunk";
                return InflatesPastText(d[(nul + 2)..], out _) ? "zTXt text inflates past 1 MiB" : null;
            }
            case "iTXt":
            {
                int nul = d.IndexOf((byte)0);
                if (nul < 0 || d.Length - nul - 1 < 2) return null;
                var r = d[(nul + 1)..];
                byte compressed = r[0], method = r[1];
                r = r[2..];
                int language = r.IndexOf((byte)0);
                if (language < 0) return null;
                int keyword = r[(language + 1)..].IndexOf((byte)0);
                if (keyword < 0 || compressed == 0 || method != 0) return null;
                bool large = InflatesPastText(r[(language + 1 + keyword + 1)..], out bool corrupt);
                return corrupt ? "corrupt compressed text in iTXt chunk" : large ? "iTXt text inflates past 1 MiB" : null;
            }
            case "iCCP":
            {
                if (d.Length == 0) return "empty iCCP chunk";
                // PIL reads the compression method at the separator itself (always 0), or the last byte without one.
                int nul = d.IndexOf((byte)0);
                if (nul < 0) return $"unknown compression method {d[^1]} in iCCP chunk";
                return InflatesPastText(d[Math.Min(d.Length, nul + 2)..], out _) ? "iCCP profile inflates past 1 MiB" : null;
            }
            case "acTL":
            {
                if (d.Length < 8) return "acTL chunk too short";
                uint frames = BinaryPrimitives.ReadUInt32BigEndian(d);
                // A second acTL, or a count of 0 or past 2^31, leaves a still image (a warning in PIL).
                state.Frames = state.SawAnimationControl || frames == 0 || frames > 0x80000000u ? null : frames;
                state.SawAnimationControl = true;
                return null;
            }
            case "fcTL":
            {
                if (d.Length < 26) return "fcTL chunk too short";
                uint sequence = BinaryPrimitives.ReadUInt32BigEndian(d);
                if (state.Sequence is null ? sequence != 0 : state.Sequence != sequence - 1L) return "APNG frames out of sequence";
                state.Sequence = sequence;
                long width = BinaryPrimitives.ReadUInt32BigEndian(d[4..]), height = BinaryPrimitives.ReadUInt32BigEndian(d[8..]);
                long x = BinaryPrimitives.ReadUInt32BigEndian(d[12..]), y = BinaryPrimitives.ReadUInt32BigEndian(d[16..]);
                return x + width > h.Width || y + height > h.Height ? "an APNG frame off the image" : null;
            }
            case "fdAT":
            {
                if (d.Length < 4) return "fdAT chunk too short";
                uint sequence = BinaryPrimitives.ReadUInt32BigEndian(d);
                if (state.Sequence != sequence - 1L) return "APNG frames out of sequence";
                state.Sequence = sequence;
                return null;
            }
            default:
                return null;
        }
    }

    /// <summary>
    /// Whether zlib data inflates past PIL's 1 MiB for a text chunk; <paramref name="corrupt"/>: it is not zlib data
    /// (data that merely stops is no error: PIL's decompressor returns what it has).
    /// </summary>
    private static bool InflatesPastText(ReadOnlySpan<byte> compressed, out bool corrupt)
    {
        corrupt = false;
        if (compressed.IsEmpty) return false;
        const int Limit = 1 << 20;
        using var z = new ZLibStream(new MemoryStream(compressed.ToArray()), CompressionMode.Decompress);
        var buffer = new byte[1 << 16];
        long total = 0;
        try
        {
            int n;
            while ((n = z.Read(buffer)) > 0)
                if ((total += n) > Limit) return true;
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            corrupt = true;
        }
        return false;
    }

    private static Header ParseHeader(ReadOnlySpan<byte> d, string name)
    {
        if (HeaderRefusal(d) is { } reason) throw Corrupt(name, reason);
        uint w = BinaryPrimitives.ReadUInt32BigEndian(d), h = BinaryPrimitives.ReadUInt32BigEndian(d[4..]);
        int depth = d[8], color = d[9];
        if (w == 0 || h == 0 || w > int.MaxValue || h > int.MaxValue) throw Corrupt(name, $"impossible size {w}×{h}");
        bool ok = color switch
        {
            0 => depth is 1 or 2 or 4 or 8 or 16,
            3 => depth is 1 or 2 or 4 or 8,
            2 or 4 or 6 => depth is 8 or 16,
            _ => false,
        };
        if (!ok) throw Corrupt(name, $"unsupported color type {color} with bit depth {depth}");
        return new Header((int)w, (int)h, depth, color, d[12] != 0);
    }

    /// <summary>
    /// What PIL's IHDR handler refuses: fewer than 13 bytes (it reads the first 13 of a longer one), a filter method
    /// other than 0. The compression byte is not read; any interlace method but 0 is Adam7.
    /// </summary>
    private static string? HeaderRefusal(ReadOnlySpan<byte> d) =>
        d.Length < 13 ? "IHDR has the wrong size" : d[11] != 0 ? "unknown filter method" : null;

    /// <summary>
    /// The IDAT stream inflated: exactly the filtered scanlines the header implies; what follows them is not
    /// inflated (as in PIL), so nothing grows past the image's size.
    /// </summary>
    public static byte[] Inflate(byte[] b, File file, string name)
    {
        var raw = RawBuffer(file, name);
        Inflate(b, file, name, raw, null);
        return raw;
    }

    /// <summary>
    /// The buffer <see cref="Inflate(byte[], File, string, byte[], Action{int}?)"/> fills: the filtered scanlines' size.
    /// <paramref name="kept"/>: from <see cref="ScratchBuffers"/> (an image no caller sees, made into a tensor), to go back there.
    /// </summary>
    public static byte[] RawBuffer(File file, string name, bool kept = false)
    {
        long expected = file.Header.RawBytes();
        if (expected > Array.MaxLength) throw Corrupt(name, $"{expected} bytes of image data is more than one buffer holds");
        bool fresh = true;
        // Exactly as long: Inflate fills the whole buffer. Its old bytes are all overwritten.
        var raw = kept ? ScratchBuffers.Rent((int)expected, out fresh, exact: true) : new byte[expected];
        if (fresh) FreshPages.Populate(raw, 0, raw.Length);
        return raw;
    }

    /// <summary>Inflates into <paramref name="raw"/>, telling <paramref name="progress"/> how many bytes are in after each 64 KiB.</summary>
    public static void Inflate(byte[] b, File file, string name, byte[] raw, Action<int>? progress)
    {
        long expected = raw.Length;
        using var z = new ZLibStream(new ChunkStream(b, file.Idat), CompressionMode.Decompress);
        try
        {
            int filled = 0, n, step = progress == null ? raw.Length : 1 << 16;
            while (filled < raw.Length && (n = z.Read(raw, filled, Math.Min(step, raw.Length - filled))) > 0)
            {
                filled += n;
                progress?.Invoke(filled);
            }
            // Nothing is inflated past the last row, as in PIL: zlib's call that fills it has decoded the next code
            // (at the stream's end, checked the checksum) in both, and no more.
            if (filled < raw.Length) throw Corrupt(name, "truncated image data");
        }
        // zlib's other refusals (a preset dictionary the stream asks for) come as an internal ZLibException, an IOException
        // (the data is in memory, so no other IOException can come).
        catch (Exception e) when (e is InvalidDataException or IOException) { throw Corrupt(name, "corrupt compressed image data"); }
    }

    public static InputException Corrupt(string name, string reason) => new($"{name}: corrupt PNG: {reason}");

    /// <summary>The IDAT chunks' payloads as one stream.</summary>
    private sealed class ChunkStream(byte[] data, List<(int Offset, int Length)> chunks) : Stream
    {
        private int _chunk, _offset;

        public override int Read(byte[] buffer, int offset, int count)
        {
            while (_chunk < chunks.Count && _offset == chunks[_chunk].Length)
            {
                _chunk++;
                _offset = 0;
            }
            if (_chunk == chunks.Count) return 0;
            int n = Math.Min(count, chunks[_chunk].Length - _offset);
            Array.Copy(data, chunks[_chunk].Offset + _offset, buffer, offset, n);
            _offset += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
