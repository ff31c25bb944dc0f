using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.ExceptionServices;

namespace ResNet.Runtime.Images;

/// <summary>
/// A checked TIFF's pixels as RGB, PIL's bytes: each chunk (strip or tile, of one plane or all) decompressed as libtiff
/// does (LZW with its early code-width change, zlib, PackBits, JPEG; bit-reversed bytes reversed first, horizontal
/// differencing undone after), its samples made 8-bit as PIL's unpackers make them (low depths scaled, 16-bit gray
/// clamped, 16-bit color's high byte), then converted as PIL's convert('RGB') does: gray replicated, palette looked
/// up, premultiplied alpha divided out, CMYK as nk − c·nk/255, other alpha dropped.
/// </summary>
internal static class TiffDecoder
{
    /// <summary>
    /// Decodes the whole image (every chunk, so that damaged data anywhere is refused as PIL refuses it); with
    /// <paramref name="window"/>, only those pixels are converted to RGB, the others' bytes left unspecified.
    /// </summary>
    public static RgbImage Decode(byte[] b, TiffStructure.Header h, string name, PixelWindow? window = null)
    {
        int width = h.Width, height = h.Height, n = h.Samples;
        var pixels = GC.AllocateUninitializedArray<byte>(checked(width * height * 3));
        // Three 8-bit color samples land in the output as they are; other layouts go through one 8-bit sample array.
        bool direct = h.Kind == TiffStructure.PixelKind.Rgb && n == 3 && h.Bits == 8 && !h.Planar;
        byte[] samples = direct ? pixels : GC.AllocateUninitializedArray<byte>(checked(width * height * n));
        DecodeChunks(b, h, name, samples, direct);
        if (!direct)
        {
            var w = window ?? new PixelWindow(0, width, 0, height);
            // Tests poison what the window leaves unconverted (the JPEG decoder's switch), so that a read of it shows.
            if (window != null && JpegDecoder.PoisonSkipped >= 0) pixels.AsSpan().Fill((byte)JpegDecoder.PoisonSkipped);
            ImageParallel.ForRows(w.Y1 - w.Y0, (long)(w.X1 - w.X0) * n, (from, to) => ToRgb(h, samples, pixels, w.X0, w.X1, w.Y0 + from, w.Y0 + to));
        }
        return new RgbImage(width, height, pixels);
    }

    /// <summary>
    /// Every chunk into <paramref name="samples"/>, on several cores when the image repays it: chunks are
    /// independent and write disjoint samples. A damaged image fails with the first damaged chunk's error, as on one
    /// thread: each share of chunks stops at its first failure, and the lowest-numbered failure is the one thrown.
    /// </summary>
    private static void DecodeChunks(byte[] b, TiffStructure.Header h, string name, byte[] samples, bool direct)
    {
        long chunkBytes = h.ChunkRowBytes * h.ChunkHeight; // a chunk's buffer at most, as ImageDecoder admitted it
        int chunks = checked((int)h.ChunkCount);
        // Each share decompresses into a buffer of its own: split only while those stay a small part of the samples'
        // memory, which the decoding was admitted for (ImageDecoder), so one huge strip or tile is decoded alone.
        long perChunkWork = chunkBytes * (h.Compression == 1 ? 1 : 4);
        bool split = (long)ImageParallel.MostChunks(chunks) * chunkBytes <= Math.Max(chunkBytes, samples.LongLength / 4);
        if (!split)
        {
            byte[]? chunk = null;
            for (int i = 0; i < chunks; i++) DecodeChunk(b, h, name, samples, direct, i, ref chunk);
            return;
        }
        int failedAt = int.MaxValue;
        ExceptionDispatchInfo? failure = null;
        var gate = new object();
        ImageParallel.ForRows(chunks, perChunkWork, (from, to) =>
        {
            byte[]? chunk = null;
            for (int i = from; i < to && i < Volatile.Read(ref failedAt); i++)
            {
                try
                {
                    ChunkStarting?.Invoke(h, i);
                    DecodeChunk(b, h, name, samples, direct, i, ref chunk);
                }
                catch (Exception e)
                {
                    lock (gate)
                        if (i < failedAt) (failedAt, failure) = (i, ExceptionDispatchInfo.Capture(e));
                    return;
                }
            }
        });
        failure?.Throw();
    }

    /// <summary>Tests: told each chunk's image and index as a thread of a split decoding starts it (to hold one thread back).</summary>
    internal static Action<TiffStructure.Header, int>? ChunkStarting;

    /// <summary>Chunk <paramref name="i"/> decompressed (into <paramref name="chunk"/>, grown as needed) and its samples made 8-bit in place.</summary>
    private static void DecodeChunk(byte[] b, TiffStructure.Header h, string name, byte[] samples, bool direct, int i, ref byte[]? chunk)
    {
        int width = h.Width, n = h.Samples, chunkSamples = h.ChunkSamples;
        long rowBytes = h.ChunkRowBytes;
        var (plane, x0, y0, cols, rows) = h.Region(i);
        ReadOnlySpan<byte> data;
        if (h.Compression == 1 && !h.ReversedBits)
            data = b.AsSpan((int)h.Offsets[i], (int)(rowBytes * rows));
        else
        {
            // libtiff decodes a strip's rows inside the image and a tile's every row; uncompressed rows are read
            // only inside the image, as PIL does (and as the structure check admitted them).
            int stored = h.Tiled && h.Compression != 1 ? h.ChunkHeight : rows;
            int size = checked((int)(rowBytes * stored));
            if (chunk is null || chunk.Length < size) chunk = GC.AllocateUninitializedArray<byte>(size);
            Span<byte> output = chunk.AsSpan(0, size);
            byte[] source = b;
            int start = (int)h.Offsets[i], count = h.Compression == 1 ? size : (int)h.Counts![i];
            if (h.ReversedBits)
            {
                source = b.AsSpan(start, count).ToArray();
                foreach (ref byte v in source.AsSpan()) v = ReverseBits(v);
                start = 0;
            }
            var input = source.AsSpan(start, count);
            string where = $"{(h.Tiled ? "tile" : "strip")} {i}";
            switch (h.Compression)
            {
                case 1: input.CopyTo(output); break;
                case 5: Lzw(input, output, name, where); break;
                case 32773: PackBits(input, output, name, where); break;
                case 7: Jpeg(h, b, input, output, stored, name, where); break;
                default: Inflate(source, start, count, output, name, where); break;
            }
            if (h.Predictor) Undifference(output, (int)rowBytes, chunkSamples, h.Bits, h.BigEndian);
            data = output;
        }
        for (int r = 0; r < rows; r++)
        {
            var row = data.Slice((int)(r * rowBytes), (int)rowBytes);
            var target = samples.AsSpan(((y0 + r) * width + x0) * n);
            if (direct || h.Bits == 8 && !h.Inverted && !h.Planar)
            {
                row[..(cols * n)].CopyTo(target);
                continue;
            }
            for (int x = 0; x < cols; x++)
                for (int s = 0; s < chunkSamples; s++)
                    target[x * n + plane + s] = Sample8(h, row, x * chunkSamples + s);
        }
    }

    /// <summary>Sample <paramref name="index"/> of a row as PIL's unpacker gives it for the layout's mode.</summary>
    private static byte Sample8(TiffStructure.Header h, ReadOnlySpan<byte> row, int index)
    {
        int v;
        switch (h.Bits)
        {
            case 8: v = row[index]; break;
            case 16:
                int wide = h.BigEndian ? BinaryPrimitives.ReadUInt16BigEndian(row[(2 * index)..]) : BinaryPrimitives.ReadUInt16LittleEndian(row[(2 * index)..]);
                // I;16 → RGB clamps; a color sample keeps its high byte.
                return (byte)(h.Kind == TiffStructure.PixelKind.Gray16 ? Math.Min(wide, 255) : wide >> 8);
            default:
                int perByte = 8 / h.Bits, shift = 8 - h.Bits * (index % perByte + 1);
                v = (row[index / perByte] >> shift) & ((1 << h.Bits) - 1);
                if (h.Kind == TiffStructure.PixelKind.Palette) return (byte)v;
                v = v * 255 / ((1 << h.Bits) - 1);
                break;
        }
        return (byte)(h.Inverted ? 255 - v : v);
    }

    /// <summary>Pixels [<paramref name="x0"/>, <paramref name="x1"/>) of rows [<paramref name="y0"/>, <paramref name="y1"/>) converted as PIL's convert('RGB').</summary>
    private static void ToRgb(TiffStructure.Header h, byte[] samples, byte[] pixels, int x0, int x1, int y0, int y1)
    {
        int n = h.Samples;
        for (int y = y0; y < y1; y++)
        {
            long first = (long)y * h.Width + x0;
            var source = samples.AsSpan().Slice(checked((int)(first * n)), (x1 - x0) * n);
            var target = pixels.AsSpan().Slice(checked((int)(first * 3)), (x1 - x0) * 3);
            // One loop per layout: a switch per pixel took most of a large CMYK image's conversion.
            switch (h.Kind)
            {
                case TiffStructure.PixelKind.Gray:
                case TiffStructure.PixelKind.Gray16:
                    for (int i = 0, o = 0; o < target.Length; i += n, o += 3) target[o] = target[o + 1] = target[o + 2] = source[i];
                    break;
                case TiffStructure.PixelKind.Palette:
                    var palette = h.Palette!;
                    for (int i = 0, o = 0; o < target.Length; i += n, o += 3)
                    {
                        int e = 3 * source[i];
                        (target[o], target[o + 1], target[o + 2]) = (palette[e], palette[e + 1], palette[e + 2]);
                    }
                    break;
                case TiffStructure.PixelKind.Rgb:
                    for (int i = 0, o = 0; o < target.Length; i += n, o += 3) (target[o], target[o + 1], target[o + 2]) = (source[i], source[i + 1], source[i + 2]);
                    break;
                case TiffStructure.PixelKind.RgbAssociated:
                    // PIL's RGBa unpacker: color · 255 / alpha, truncated and clipped; nothing where alpha is 0.
                    for (int i = 0, o = 0; o < target.Length; i += n, o += 3)
                    {
                        int a = source[i + 3];
                        for (int c = 0; c < 3; c++)
                            target[o + c] = a == 0 ? (byte)0 : a == 255 ? source[i + c] : (byte)Math.Min(255, source[i + c] * 255 / a);
                    }
                    break;
                default:
                    for (int i = 0, o = 0; o < target.Length; i += n, o += 3)
                    {
                        int nk = 255 - source[i + 3];
                        for (int c = 0; c < 3; c++) target[o + c] = (byte)(nk - JpegColor.MulDiv255(source[i + c], nk));
                    }
                    break;
            }
        }
    }

    private static byte ReverseBits(byte v) => (byte)(((v * 0x80200802UL) & 0x0884422110UL) * 0x0101010101UL >> 32);

    /// <summary>Horizontal differencing undone row by row, on samples of 8 or 16 bits in the file's byte order.</summary>
    private static void Undifference(Span<byte> data, int rowBytes, int samplesPerPixel, int bits, bool bigEndian)
    {
        for (int start = 0; start + rowBytes <= data.Length; start += rowBytes)
        {
            var row = data.Slice(start, rowBytes);
            if (bits == 8)
            {
                for (int i = samplesPerPixel; i < row.Length; i++) row[i] += row[i - samplesPerPixel];
                continue;
            }
            for (int i = samplesPerPixel; 2 * i + 1 < row.Length; i++)
            {
                var at = row[(2 * i)..];
                var before = row[(2 * (i - samplesPerPixel))..];
                if (bigEndian)
                    BinaryPrimitives.WriteUInt16BigEndian(at, (ushort)(BinaryPrimitives.ReadUInt16BigEndian(at) + BinaryPrimitives.ReadUInt16BigEndian(before)));
                else
                    BinaryPrimitives.WriteUInt16LittleEndian(at, (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(at) + BinaryPrimitives.ReadUInt16LittleEndian(before)));
            }
        }
    }

    /// <summary>
    /// A JPEG strip or tile as libtiff's codec gives it to PIL: the file's shared tables put in front of it, decoded by
    /// our libjpeg-exact decoder in the color space the TIFF states, whatever markers the strip carries (libtiff sets
    /// libjpeg's): YCbCr converted to RGB (PIL asks libtiff for RGB), RGB and gray taken as they are.
    /// </summary>
    private static void Jpeg(TiffStructure.Header h, byte[] file, ReadOnlySpan<byte> input, Span<byte> output, int stored, string name, string where)
    {
        static ReadOnlySpan<byte> WithoutStart(ReadOnlySpan<byte> s) => s.Length >= 2 && s[0] == 0xFF && s[1] == 0xD8 ? s[2..] : s;
        var tables = WithoutStart(file.AsSpan(h.JpegTables.Start, h.JpegTables.Length));
        if (tables.Length >= 2 && tables[^2] == 0xFF && tables[^1] == 0xD9) tables = tables[..^2];
        var data = WithoutStart(input);
        var bytes = new byte[2 + tables.Length + data.Length];
        bytes[0] = 0xFF;
        bytes[1] = 0xD8;
        tables.CopyTo(bytes.AsSpan(2));
        data.CopyTo(bytes.AsSpan(2 + tables.Length));
        string label = $"{name} ({where})";
        var jpeg = JpegStructure.Check(bytes, label);
        var f = jpeg.Frame;
        // libtiff refuses a larger codestream and warns of a smaller one, whose missing rows it never fills.
        if (f.Components != h.Samples || f.Width != h.ChunkWidth || f.Height != stored)
            throw TiffStructure.Corrupt(name, $"{where}'s JPEG data is a {f.Width}×{f.Height} image of {f.Components} components, not its {h.ChunkWidth}×{stored} of {h.Samples}");
        if (!h.YCbCr && f.Components > 1 && Subsampled(bytes, jpeg))
            throw TiffStructure.Unsupported(name, $"subsampled JPEG data without YCbCr in {where}");
        var space = h.Samples == 1 ? JpegColor.Space.Gray : h.YCbCr ? JpegColor.Space.YCbCr : JpegColor.Space.Rgb;
        var image = JpegDecoder.Decode(bytes, jpeg, label, space: space);
        int n = h.Samples, rowBytes = h.ChunkWidth * n;
        for (int y = 0; y < f.Height; y++)
        {
            var source = image.Pixels.AsSpan(y * f.Width * 3, f.Width * 3);
            var target = output.Slice(y * rowBytes, rowBytes);
            if (n == 3) source.CopyTo(target);
            else
                for (int x = 0; x < f.Width; x++) target[x] = source[3 * x];
        }
    }

    /// <summary>Whether a component of the frame has sampling factors other than 1×1.</summary>
    private static bool Subsampled(byte[] bytes, JpegStructure.File jpeg)
    {
        var sof = jpeg.Segments.First(s => s.Marker is 0xC0 or 0xC1 or 0xC2);
        int count = bytes[sof.Start + 5];
        for (int c = 0; c < count; c++)
            if (bytes[sof.Start + 6 + 3 * c + 1] != 0x11) return true;
        return false;
    }

    private static void PackBits(ReadOnlySpan<byte> input, Span<byte> output, string name, string where)
    {
        int i = 0, o = 0;
        while (o < output.Length && i < input.Length)
        {
            int n = (sbyte)input[i++];
            if (n >= 0)
            {
                int take = Math.Min(n + 1, Math.Min(input.Length - i, output.Length - o));
                input.Slice(i, take).CopyTo(output[o..]);
                (i, o) = (i + n + 1, o + take);
            }
            else if (n != -128 && i < input.Length)
            {
                int take = Math.Min(1 - n, output.Length - o);
                output.Slice(o, take).Fill(input[i++]);
                o += take;
            }
        }
        if (o < output.Length) throw NotEnoughData(name, where, "PackBits", o, output.Length);
    }

    private static void Inflate(byte[] source, int start, int count, Span<byte> output, string name, string where)
    {
        int o = 0;
        try
        {
            using var z = new ZLibStream(new MemoryStream(source, start, count, writable: false), CompressionMode.Decompress);
            while (o < output.Length)
            {
                int got = z.Read(output[o..]);
                if (got == 0) break;
                o += got;
            }
        }
        // zlib's other refusals (a preset dictionary the stream asks for) come as an internal ZLibException, an IOException
        // (the data is in memory, so no other IOException can come).
        catch (Exception e) when (e is InvalidDataException or IOException) { throw TiffStructure.Corrupt(name, $"{where}'s Deflate data is damaged"); }
        if (o < output.Length) throw NotEnoughData(name, where, "Deflate", o, output.Length);
    }

    /// <summary>libtiff's LZW decoder: codes of 9 to 12 bits, most significant bit first, one wider from the code before a power of two.</summary>
    private static void Lzw(ReadOnlySpan<byte> input, Span<byte> output, string name, string where)
    {
        const int Clear = 256, End = 257, First = 258;
        if (input.Length >= 2 && input[0] == 0 && (input[1] & 1) != 0)
            throw TiffStructure.Unsupported(name, $"old-style LZW data in {where}");
        Span<short> prefix = stackalloc short[4096];
        Span<byte> suffix = stackalloc byte[4096], firstByte = stackalloc byte[4096];
        Span<short> length = stackalloc short[4096];
        for (int c = 0; c < 256; c++) (prefix[c], suffix[c], firstByte[c], length[c]) = (-1, (byte)c, (byte)c, 1);
        int next = First, bits = 9, old = -1, o = 0, at = 0, held = 0;
        ulong acc = 0;
        while (o < output.Length)
        {
            while (held < bits && at < input.Length)
            {
                acc = (acc << 8) | input[at++];
                held += 8;
            }
            if (held < bits) break;
            int code = (int)(acc >> (held - bits)) & ((1 << bits) - 1);
            held -= bits;
            if (code == End) break;
            if (code == Clear)
            {
                (next, bits, old) = (First, 9, -1);
                continue;
            }
            if (old < 0)
            {
                if (code > 255) throw TiffStructure.Corrupt(name, $"{where}'s LZW data starts with code {code}");
                output[o++] = (byte)code;
                old = code;
                continue;
            }
            if (code > next || code == next && next > 4095) throw TiffStructure.Corrupt(name, $"{where}'s LZW data has code {code} before the table holds it");
            if (next <= 4095)
            {
                prefix[next] = (short)old;
                suffix[next] = code < next ? firstByte[code] : firstByte[old];
                firstByte[next] = firstByte[old];
                length[next] = (short)(length[old] + 1);
            }
            next++;
            if (next >= (1 << bits) - 1 && bits < 12) bits++;
            // Write the string backwards from its last byte; past the chunk's end it is cut.
            int len = length[code], end = o + len;
            for (int c = code, to = end - 1; c >= 0; c = prefix[c], to--)
                if (to < output.Length) output[to] = suffix[c];
            o = Math.Min(end, output.Length);
            old = code;
        }
        if (o < output.Length) throw NotEnoughData(name, where, "LZW", o, output.Length);
    }

    private static InputException NotEnoughData(string name, string where, string codec, int got, int need) =>
        TiffStructure.Corrupt(name, $"{where}'s {codec} data ends early ({got} of {need} bytes)");
}
