using System.Buffers.Binary;

namespace ResNet.Runtime.Images;

/// <summary>
/// The first image of a TIFF (classic or BigTIFF, either byte order) as PIL 9.4's TiffImagePlugin opens it: the
/// pixel layouts of its OPEN_INFO table that carry unsigned samples of 1, 2, 4, 8 or 16 bits (gray, bilevel, RGB with
/// extra samples, palette, CMYK), stored uncompressed, LZW, JPEG, Deflate or PackBits, in strips or tiles, chunky or
/// planar (JPEG: gray, RGB or YCbCr in one plane). Every offset and size is checked here, before the decoder
/// allocates anything.
/// </summary>
internal static class TiffStructure
{
    /// <summary>How a pixel's samples become RGB once each is 8 bits (<see cref="TiffDecoder"/>).</summary>
    public enum PixelKind { Gray, Gray16, Palette, Rgb, RgbAssociated, Cmyk }

    public sealed record Header(
        int Width, int Height, bool BigEndian, int Compression, int Bits, int Samples, PixelKind Kind, bool Inverted,
        bool ReversedBits, bool Planar, bool Predictor, bool Tiled, int ChunkWidth, int ChunkHeight,
        long[] Offsets, long[]? Counts, byte[]? Palette, (int Start, int Length) JpegTables = default, bool YCbCr = false)
    {
        /// <summary>Samples per pixel in one chunk: all of them, or one for separate planes.</summary>
        public int ChunkSamples => Planar ? 1 : Samples;

        /// <summary>Bytes of one row of a chunk as stored (rows end on a byte).</summary>
        public long ChunkRowBytes => ((long)ChunkWidth * ChunkSamples * Bits + 7) / 8;

        /// <summary>Chunks across, down, and in all (times the planes).</summary>
        public int Across => (int)(((long)Width + ChunkWidth - 1) / ChunkWidth);
        public int Down => (int)(((long)Height + ChunkHeight - 1) / ChunkHeight);
        public long ChunkCount => (long)Across * Down * (Planar ? Samples : 1);

        /// <summary>Chunk <paramref name="i"/>'s plane and the part of the image it covers (its rows inside the image).</summary>
        public (int Plane, int X, int Y, int Columns, int Rows) Region(long i)
        {
            long perPlane = (long)Across * Down, within = i % perPlane;
            int x = (int)(within % Across) * ChunkWidth, y = (int)(within / Across) * ChunkHeight;
            return ((int)(i / perPlane), x, y, Math.Min(ChunkWidth, Width - x), Math.Min(ChunkHeight, Height - y));
        }

    }

    private const int ImageWidth = 256, ImageLength = 257, BitsPerSample = 258, CompressionTag = 259, Photometric = 262,
        FillOrder = 266, StripOffsets = 273, SamplesPerPixel = 277, RowsPerStrip = 278, StripByteCounts = 279,
        PlanarConfiguration = 284, PredictorTag = 317, ColorMap = 320, TileWidth = 322, TileLength = 323,
        TileOffsets = 324, TileByteCounts = 325, ExtraSamples = 338, SampleFormat = 339, JpegTablesTag = 347;

    public static bool IsTiff(ReadOnlySpan<byte> b) =>
        b.Length >= 4 && ((b[0] == 'I' && b[1] == 'I') || (b[0] == 'M' && b[1] == 'M'))
        && ((b[2] == 42 && b[3] == 0) || (b[2] == 0 && b[3] == 42) || (b[2] == 43 && b[3] == 0 && b[0] == 'I') || (b[2] == 0 && b[3] == 43 && b[0] == 'M'));

    private static string CompressionNames(int c) => c switch
    {
        1 => "uncompressed", 2 => "CCITT RLE", 3 => "CCITT Group 3", 4 => "CCITT Group 4", 5 => "LZW", 6 => "old-style JPEG",
        7 => "JPEG", 8 or 32946 => "Deflate", 32773 => "PackBits", 34925 => "LZMA", 50000 => "Zstandard", 50001 => "WebP",
        _ => $"compression {c}",
    };

    public static Header Check(byte[] b, string name, Action<Header> admit)
    {
        bool big = b[0] == 'M', bigTiff = (big ? b[3] : b[2]) == 43;
        ulong U16(long at) => big ? BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan((int)at)) : BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan((int)at));
        ulong U32(long at) => big ? BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan((int)at)) : BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan((int)at));
        ulong U64(long at) => big ? BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan((int)at)) : BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan((int)at));

        int headerSize = bigTiff ? 16 : 8, entrySize = bigTiff ? 20 : 12, countSize = bigTiff ? 8 : 2, inline = bigTiff ? 8 : 4;
        if (b.Length < headerSize) throw Corrupt(name, "truncated header");
        ulong ifd = bigTiff ? U64(8) : U32(4);
        if (ifd > (ulong)(b.Length - countSize)) throw Corrupt(name, $"the first directory's offset {ifd} is past the end of the file");
        ulong entries = bigTiff ? U64((long)ifd) : U16((long)ifd);
        if (entries > (ulong)((b.Length - (long)ifd - countSize) / entrySize))
            throw Corrupt(name, $"the first directory's {entries} entries run past the end of the file");

        // The tags that shape the pixels, each as its list of numbers (PIL skips a tag whose data is out of the file).
        var tags = new Dictionary<int, ulong[]>();
        (int Start, int Length) jpegTables = default;
        for (ulong i = 0; i < entries; i++)
        {
            long at = (long)ifd + countSize + (long)i * entrySize;
            int tag = (int)U16(at), type = (int)U16(at + 2);
            ulong count = bigTiff ? U64(at + 4) : U32(at + 4);
            int size = type switch { 1 or 6 => 1, 3 or 8 => 2, 4 or 9 or 13 => 4, 16 or 17 or 18 => 8, _ => 0 };
            long valueAt = at + (bigTiff ? 12 : 8);
            if (tag == JpegTablesTag && type is 1 or 7)
            {
                // The JPEG strips' shared tables: an abbreviated JPEG stream (SOI, DQT/DHT, EOI), kept as bytes.
                long tablesAt = count <= (ulong)inline ? valueAt : (long)(bigTiff ? U64(valueAt) : U32(valueAt));
                if (count <= (ulong)b.Length && tablesAt >= 0 && tablesAt <= b.Length - (long)count) jpegTables = ((int)tablesAt, (int)count);
                continue;
            }
            if (size == 0 || !IsPixelTag(tag)) continue;
            if (count > (ulong)b.Length / (ulong)size) { tags.Remove(tag); continue; }
            long bytes = (long)count * size;
            long dataAt = bytes <= inline ? valueAt : (long)(bigTiff ? U64(valueAt) : U32(valueAt));
            if (dataAt < 0 || dataAt > b.Length - bytes || count == 0) { tags.Remove(tag); continue; }
            var values = new ulong[count];
            for (int k = 0; k < values.Length; k++)
            {
                long p = dataAt + (long)k * size;
                ulong raw = size switch { 1 => b[p], 2 => U16(p), 4 => U32(p), _ => U64(p) };
                long signedValue = type switch { 6 => (sbyte)raw, 8 => (short)raw, 9 => (int)raw, 17 => (long)raw, _ => 0 };
                if (signedValue < 0) throw Corrupt(name, $"tag {tag} holds the negative value {signedValue}");
                values[k] = raw;
            }
            tags[tag] = values;
        }

        ulong One(int tag, ulong fallback) => tags.TryGetValue(tag, out var v) ? v[0] : fallback;
        if (!tags.ContainsKey(ImageWidth) || !tags.ContainsKey(ImageLength)) throw Corrupt(name, "no image width or height");
        ulong w = One(ImageWidth, 0), h = One(ImageLength, 0);
        if (w == 0 || h == 0 || w > int.MaxValue || h > int.MaxValue) throw Corrupt(name, $"impossible size {w}×{h}");
        int width = (int)w, height = (int)h;

        int compression = (int)Math.Min(One(CompressionTag, 1), int.MaxValue);
        if (compression is not (1 or 5 or 7 or 8 or 32946 or 32773))
            throw Unsupported(name, $"{CompressionNames(compression)} data (uncompressed, LZW, JPEG, Deflate and PackBits are read)");
        ulong photometric = One(Photometric, 0), fillOrder = One(FillOrder, 1), planarConfig = One(PlanarConfiguration, 1);

        // PIL's pixel key: sample format (one value when all are unsigned), bits per sample (one value stands for every
        // sample), extra samples; what its table does not list it refuses as an unknown pixel mode.
        var sampleFormat = tags.GetValueOrDefault(SampleFormat, [1UL]);
        if (sampleFormat.Any(f => f != 1)) throw Unsupported(name, "signed or floating-point samples (unsigned integers are read)");
        ulong samples = One(SamplesPerPixel, 1);
        if (samples is 0 or > 6) throw Corrupt(name, $"{samples} samples per pixel (1 to 6)");
        var bits = tags.GetValueOrDefault(BitsPerSample, [1UL]);
        if ((ulong)bits.Length > samples) bits = bits[..(int)samples];
        else if ((ulong)bits.Length < samples && bits.Length == 1) bits = Enumerable.Repeat(bits[0], (int)samples).ToArray();
        if ((ulong)bits.Length != samples) throw Corrupt(name, $"{bits.Length} bits-per-sample values for {samples} samples per pixel");
        var extra = tags.GetValueOrDefault(ExtraSamples, []);
        int bit = (int)Math.Min(bits[0], 64);
        if (bits.Any(x => x != bits[0]))
            throw Unsupported(name, $"samples of {string.Join(", ", bits)} bits (all of one size are read)");
        int n = (int)samples;
        string layout = $"{n} sample{(n == 1 ? "" : "s")} of {bit} bits, photometric interpretation {photometric}, extra samples ({string.Join(", ", extra)})";

        (PixelKind kind, bool inverted)? pixel = (photometric, n, bit, extra.Length == 0 ? -1L : (long)extra[0]) switch
        {
            (0 or 1, 1, 1 or 2 or 4 or 8, -1) => (PixelKind.Gray, photometric == 0),
            // PIL reads 16-bit white-is-zero gray as black-is-zero, and only in little-endian files.
            (1, 1, 16, -1) => (PixelKind.Gray16, false),
            (0, 1, 16, -1) when !big => (PixelKind.Gray16, false),
            (1, 2, 8, 2) => (PixelKind.Gray, false),
            (3, 1, 1 or 2 or 4 or 8, -1) => (PixelKind.Palette, false),
            (3, 2, 8, 2) => (PixelKind.Palette, false),
            (2, 3, 8 or 16, -1) => (PixelKind.Rgb, false),
            // YCbCr PIL reads only through libtiff's JPEG codec, which converts it to RGB.
            (6, 3, 8, -1) when compression == 7 => (PixelKind.Rgb, false),
            (2, 4, 8 or 16, -1 or 0 or 2) => (PixelKind.Rgb, false),
            (2, 4, 8, 999) => (PixelKind.Rgb, false),
            (2, 4, 8 or 16, 1) => (PixelKind.RgbAssociated, false),
            (2, 5 or 6, 8, 0 or 2) when extra.Skip(1).All(x => x == 0) => (PixelKind.Rgb, false),
            (2, 5 or 6, 8, 1) when extra.Skip(1).All(x => x == 0) => (PixelKind.RgbAssociated, false),
            (5, 4, 8, -1) => (PixelKind.Cmyk, false),
            (5, 4, 16, -1) when !big => (PixelKind.Cmyk, false),
            (5, 5 or 6, 8, 0) when extra.Skip(1).All(x => x == 0) => (PixelKind.Cmyk, false),
            _ => null,
        };
        // The extra samples must be the ones beyond the color's (PIL's key holds the whole list).
        int colorSamples = photometric switch { 2 or 6 => 3, 5 => 4, _ => 1 };
        if (pixel is null || extra.Length != 0 && extra.Length != n - colorSamples)
            throw Unsupported(name, $"{layout} (not a layout PIL reads as gray, palette, RGB or CMYK)");
        if (compression == 7 && !(photometric is 1 or 2 or 6 && bit == 8 && extra.Length == 0))
            throw Unsupported(name, $"JPEG data of {layout} (8-bit gray, RGB and YCbCr are read)");
        if (fillOrder is not (1 or 2)) throw Corrupt(name, $"fill order {fillOrder}");
        // PIL's table reverses bits only for these; without compression it also lacks the unpackers for 8-bit
        // white-is-zero gray and for palettes below 8 bits (libtiff reverses them before decompressing).
        bool reversed = fillOrder == 2;
        if (reversed && !(n == 1 && bit <= 8 && photometric is 0 or 1 or 3 || n == 3 && bit == 8 && photometric == 2))
            throw Unsupported(name, $"bit-reversed bytes (fill order 2) with {layout}");
        if (reversed && compression == 1 && (photometric == 0 && bit == 8 || photometric == 3 && bit < 8))
            throw Unsupported(name, $"uncompressed bit-reversed bytes (fill order 2) with {layout}");

        if (planarConfig is not (1 or 2)) throw Corrupt(name, $"planar configuration {planarConfig}");
        bool planar = planarConfig == 2 && n > 1;
        if (planar && (bit != 8 || pixel.Value.kind == PixelKind.RgbAssociated || n > 4 || compression == 7))
            throw Unsupported(name, $"separate planes of {layout} (8-bit planes without premultiplied alpha are read)");

        bool predictor = false;
        if (compression is 5 or 8 or 32946)
        {
            ulong p = One(PredictorTag, 1);
            if (p is not (1 or 2)) throw Unsupported(name, $"predictor {p} (horizontal differencing is read)");
            if (p == 2 && bit is not (8 or 16)) throw Unsupported(name, $"horizontal differencing of {bit}-bit samples");
            predictor = p == 2;
        }

        bool tiled = tags.ContainsKey(TileOffsets) && !tags.ContainsKey(StripOffsets);
        ulong[]? offsets = tags.GetValueOrDefault(tiled ? TileOffsets : StripOffsets), counts = tags.GetValueOrDefault(tiled ? TileByteCounts : StripByteCounts);
        if (offsets is null) throw Corrupt(name, "no strip or tile offsets");
        ulong chunkWidth = w, chunkHeight = Math.Min(One(RowsPerStrip, h), h);
        if (tiled)
        {
            chunkWidth = One(TileWidth, 0);
            chunkHeight = One(TileLength, 0);
            if (chunkWidth == 0 || chunkHeight == 0 || chunkWidth > 1 << 16 || chunkHeight > 1 << 16)
                throw Corrupt(name, $"impossible tile size {chunkWidth}×{chunkHeight}");
        }
        if (chunkHeight == 0) throw Corrupt(name, "zero rows per strip");

        byte[]? palette = null;
        if (pixel.Value.kind == PixelKind.Palette)
        {
            var map = tags.GetValueOrDefault(ColorMap) ?? throw Corrupt(name, "a palette image without a color map");
            int entriesInMap = 1 << bit;
            if (map.Length != 3 * entriesInMap) throw Corrupt(name, $"a color map of {map.Length} values for {bit}-bit indices ({3 * entriesInMap} expected)");
            // PIL keeps each 16-bit value's high byte.
            palette = new byte[3 * entriesInMap];
            for (int i = 0; i < entriesInMap; i++)
                for (int c = 0; c < 3; c++) palette[3 * i + c] = (byte)(map[c * entriesInMap + i] >> 8);
        }

        var header = new Header(width, height, big, compression, bit, n, pixel.Value.kind, pixel.Value.inverted, reversed, planar,
            predictor, tiled, (int)chunkWidth, (int)chunkHeight, offsets.Select(o => (long)Math.Min(o, long.MaxValue)).ToArray(),
            counts?.Select(c => (long)Math.Min(c, long.MaxValue)).ToArray(), palette, jpegTables, photometric == 6);
        admit(header);

        if ((ulong)offsets.Length < (ulong)header.ChunkCount)
            throw Corrupt(name, $"{offsets.Length} {(tiled ? "tile" : "strip")} offsets for {header.ChunkCount} {(tiled ? "tiles" : "strips")}");
        for (int i = 0; i < header.ChunkCount; i++)
        {
            long offset = header.Offsets[i];
            if (compression == 1)
            {
                // Uncompressed chunks are read without their byte counts (as PIL does), so they must hold their rows.
                // PIL reads only the rows inside the image (a last strip or row of tiles may stop there).
                long need = header.ChunkRowBytes * header.Region(i).Rows;
                if (offset > b.Length || need > b.Length - offset)
                    throw Corrupt(name, $"{(tiled ? "tile" : "strip")} {i}'s pixel data ({need} bytes at {offset}) runs past the end of the file");
                continue;
            }
            if (counts is null || (ulong)counts.Length < (ulong)header.ChunkCount)
                throw Corrupt(name, $"{counts?.Length ?? 0} {(tiled ? "tile" : "strip")} byte counts for {header.ChunkCount} {(tiled ? "tiles" : "strips")}");
            if (offset > b.Length || header.Counts![i] > b.Length - offset)
                throw Corrupt(name, $"{(tiled ? "tile" : "strip")} {i} ({header.Counts![i]} bytes at {offset}) runs past the end of the file");
        }
        return header;
    }

    private static bool IsPixelTag(int tag) => tag is ImageWidth or ImageLength or BitsPerSample or CompressionTag or Photometric
        or FillOrder or StripOffsets or SamplesPerPixel or RowsPerStrip or StripByteCounts or PlanarConfiguration or PredictorTag
        or ColorMap or TileWidth or TileLength or TileOffsets or TileByteCounts or ExtraSamples or SampleFormat;

    internal static InputException Corrupt(string name, string what) => new($"{name}: corrupt TIFF: {what}");

    internal static InputException Unsupported(string name, string what) => new($"{name}: unsupported TIFF: {what}");
}
