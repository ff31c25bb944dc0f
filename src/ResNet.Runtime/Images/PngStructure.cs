using System.Buffers.Binary;
using System.IO.Compression;

namespace ResNet.Runtime.Images;

/// <summary>
/// Checks a PNG's structure before any decoder sees it, as PIL does: signature, IHDR first with legal values,
/// every chunk inside the file with a correct CRC-32, IDAT present, PLTE where a palette is needed, IEND at
/// the end. Then inflates the image data into a buffer its dimensions size, so a zlib bomb stops at that size.
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
    /// Walks and verifies the chunks, then calls <paramref name="admit"/> with the header (the caller's size
    /// limits, before anything is inflated).
    /// </summary>
    public static File Check(byte[] b, string name, Action<Header> admit)
    {
        int pos = 8;
        Header? header = null;
        byte[] palette = [];
        bool sawIdat = false, sawEnd = false;
        var idat = new List<(int Offset, int Length)>();
        while (pos < b.Length)
        {
            if (b.Length - pos < 12) throw Corrupt(name, "truncated chunk");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos));
            if (length > int.MaxValue || length > b.Length - pos - 12) throw Corrupt(name, "truncated file (a chunk runs past the end)");
            var type = b.AsSpan(pos + 4, 4);
            foreach (byte c in type)
            {
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) throw Corrupt(name, "bad chunk type");
            }
            string kind = System.Text.Encoding.ASCII.GetString(type);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos + 8 + (int)length));
            if (System.IO.Hashing.Crc32.HashToUInt32(b.AsSpan(pos + 4, 4 + (int)length)) != crc) throw Corrupt(name, $"CRC check failed in {kind} chunk");
            var data = b.AsSpan(pos + 8, (int)length);
            if (header == null && kind != "IHDR") throw Corrupt(name, "the first chunk is not IHDR");
            switch (kind)
            {
                case "IHDR":
                    if (header != null) throw Corrupt(name, "two IHDR chunks");
                    header = ParseHeader(data, name);
                    break;
                case "PLTE":
                    if (length % 3 != 0 || length == 0 || length > 768) throw Corrupt(name, "PLTE has an impossible size");
                    palette = data.ToArray();
                    break;
                case "IDAT":
                    sawIdat = true;
                    idat.Add((pos + 8, (int)length));
                    break;
                case "IEND":
                    sawEnd = true;
                    break;
            }
            pos += 12 + (int)length;
            if (sawEnd) break;
        }
        if (header == null) throw Corrupt(name, "no IHDR chunk");
        if (!sawIdat) throw Corrupt(name, "no image data (IDAT)");
        if (!sawEnd) throw Corrupt(name, "truncated file (no IEND chunk)");
        if (header.Value.ColorType == 3 && palette.Length == 0) throw Corrupt(name, "no palette (PLTE) for a palette image");
        admit(header.Value);
        return new File(header.Value, idat, palette);
    }

    private static Header ParseHeader(ReadOnlySpan<byte> d, string name)
    {
        if (d.Length != 13) throw Corrupt(name, "IHDR has the wrong size");
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
        if (d[10] != 0 || d[11] != 0 || d[12] > 1) throw Corrupt(name, "unknown compression, filter or interlace method");
        return new Header((int)w, (int)h, depth, color, d[12] == 1);
    }

    /// <summary>
    /// The IDAT stream inflated: exactly the filtered scanlines the header implies. A little trailing data is
    /// ignored, as PIL does; far more is refused as soon as it appears, so nothing grows past the image's size.
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
            if (filled < raw.Length) throw Corrupt(name, "truncated image data");
            var rest = new byte[1 << 16];
            long extra = 0, allowed = expected / 8 + 65536;
            while ((n = z.Read(rest)) > 0)
            {
                extra += n;
                if (extra > allowed) throw Corrupt(name, $"image data inflates far past the {expected} bytes its dimensions need (a zlib bomb?)");
            }
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
