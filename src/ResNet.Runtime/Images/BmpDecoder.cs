using System.Buffers.Binary;

namespace ResNet.Runtime.Images;

/// <summary>
/// A checked BMP's pixels as RGB, PIL's bytes: 16-bit channels widened as PIL's unpackers do (v · 255 / 31), palette
/// indices looked up in <see cref="BmpStructure.Header.Palette"/>, alpha and unused bits dropped.
/// </summary>
/// <remarks>
/// Run-length coded bitmaps are decoded as the format describes them where PIL 9.4 does not: it reads a delta's two
/// bytes and two more, reads an odd-length RLE4 literal run one byte short, aligns runs by the file's position rather
/// than the data's (the same for every offset an encoder writes), and refuses a bitmap that ends before its last
/// pixel, which the format allows (the rest is index 0 here). Where PIL decodes such a file it gives other pixels.
/// </remarks>
internal static class BmpDecoder
{
    public static RgbImage Decode(byte[] b, BmpStructure.Header h, string name)
    {
        int width = h.Width, height = h.Height;
        var pixels = GC.AllocateUninitializedArray<byte>(checked(width * height * 3));
        if (h.Rle)
        {
            var indices = RunLengths(b, h, name);
            for (int y = 0; y < height; y++)
                Lookup(indices.AsSpan((h.TopDown ? y : height - 1 - y) * width, width), 8, width, h.Palette!, pixels.AsSpan(y * width * 3, width * 3));
            return new RgbImage(width, height, pixels);
        }
        for (int y = 0; y < height; y++)
        {
            long stored = h.TopDown ? y : height - 1 - y;
            long start = h.DataOffset + stored * h.Stride;
            var row = b.AsSpan((int)start, (int)Math.Min(h.Stride, b.Length - start)); // the last row's padding may be missing
            var output = pixels.AsSpan(y * width * 3, width * 3);
            switch (h.Kind)
            {
                case BmpStructure.PixelKind.Indexed:
                    Lookup(row, h.Bits, width, h.Palette!, output);
                    break;
                case BmpStructure.PixelKind.Bytes:
                    int step = h.Bits / 8;
                    for (int x = 0, i = 0; x < width; x++, i += step)
                    {
                        output[3 * x] = row[i + h.ByteOfRed];
                        output[3 * x + 1] = row[i + h.ByteOfGreen];
                        output[3 * x + 2] = row[i + h.ByteOfBlue];
                    }
                    break;
                default:
                    bool wideGreen = h.Kind == BmpStructure.PixelKind.Bgr565;
                    for (int x = 0; x < width; x++)
                    {
                        int v = BinaryPrimitives.ReadUInt16LittleEndian(row[(2 * x)..]);
                        output[3 * x] = (byte)((wideGreen ? v >> 11 : (v >> 10) & 31) * 255 / 31);
                        output[3 * x + 1] = (byte)(wideGreen ? ((v >> 5) & 63) * 255 / 63 : ((v >> 5) & 31) * 255 / 31);
                        output[3 * x + 2] = (byte)((v & 31) * 255 / 31);
                    }
                    break;
            }
        }
        return new RgbImage(width, height, pixels);
    }

    /// <summary>A row of <paramref name="bits"/>-bit indices, most significant first, through the palette.</summary>
    private static void Lookup(ReadOnlySpan<byte> row, int bits, int width, byte[] palette, Span<byte> output)
    {
        int perByte = 8 / bits, mask = (1 << bits) - 1;
        for (int x = 0; x < width; x++)
        {
            int index = (row[x / perByte] >> (8 - bits - x % perByte * bits)) & mask;
            output[3 * x] = palette[3 * index];
            output[3 * x + 1] = palette[3 * index + 1];
            output[3 * x + 2] = palette[3 * index + 2];
        }
    }

    /// <summary>
    /// RLE8 or RLE4 data as one byte per pixel in stored order (rows bottom to top unless the header says
    /// otherwise). Each step reads at least two bytes, so a file cannot make this loop longer than itself.
    /// </summary>
    private static byte[] RunLengths(byte[] b, BmpStructure.Header h, string name)
    {
        bool four = h.Compression == BmpStructure.Rle4;
        long width = h.Width, total = width * h.Height;
        var indices = new byte[total]; // pixels no run reaches stay index 0
        long pos = 0, x = 0;
        int at = (int)h.DataOffset;
        void Put(byte v)
        {
            if (pos < total) indices[pos] = v;
            pos++;
        }
        while (pos < total)
        {
            // Data that ends before the last pixel without an end-of-bitmap marker is a truncated file (PIL: "not
            // enough image data"); a marker before the last pixel leaves the rest index 0 (PIL refuses that too).
            if (at + 2 > b.Length) throw BmpStructure.Corrupt(name, "RLE data ends before the last pixel (no end-of-bitmap marker)");
            int count = b[at], value = b[at + 1];
            at += 2;
            if (count > 0)
            {
                // An encoded run: clipped at the row's end as PIL clips it.
                if (x + count > width) count = (int)Math.Max(0, width - x);
                for (int i = 0; i < count; i++) Put(four ? (byte)(i % 2 == 0 ? value >> 4 : value & 15) : (byte)value);
                x += count;
            }
            else if (value == 0)
            {
                if (pos % width != 0) pos += width - pos % width; // end of line
                x = 0;
            }
            else if (value == 1)
            {
                break; // end of bitmap
            }
            else if (value == 2)
            {
                if (at + 2 > b.Length) throw BmpStructure.Corrupt(name, "RLE delta runs past the end of the file");
                pos += b[at] + b[at + 1] * width; // skipped pixels are index 0
                at += 2;
                x = pos % width;
            }
            else
            {
                // A literal run of `value` pixels, padded to a 16-bit boundary of the data.
                int bytes = four ? (value + 1) / 2 : value;
                if (at + bytes > b.Length) throw BmpStructure.Corrupt(name, "RLE literal run runs past the end of the file");
                for (int i = 0; i < value; i++) Put(four ? (byte)(i % 2 == 0 ? b[at + i / 2] >> 4 : b[at + i / 2] & 15) : b[at + i]);
                at += bytes + (bytes & 1);
                x += value;
            }
        }
        return indices;
    }
}
