using System.Buffers.Binary;

namespace ResNet.Runtime.Images;

/// <summary>
/// A Windows bitmap's headers, read as PIL 9.4's BmpImagePlugin reads them (the loader torchvision uses): the same
/// header sizes, bit depths, compressions and bit-field layouts are accepted, and the same quirks kept where they
/// change pixels (a data offset that points into the palette is moved past it; a palette shorter than its indices
/// leaves the gray ramp PIL starts from). Everything is checked before a pixel is allocated.
/// </summary>
internal static class BmpStructure
{
    /// <summary>How one stored pixel becomes RGB.</summary>
    public enum PixelKind
    {
        /// <summary>1, 4 or 8 bits: an index into <see cref="Header.Palette"/>.</summary>
        Indexed,
        /// <summary>16 bits, 5-5-5 (bit 15 unused).</summary>
        Bgr555,
        /// <summary>16 bits, 5-6-5.</summary>
        Bgr565,
        /// <summary>24 or 32 bits: one byte each for R, G and B at <see cref="Header.ByteOfRed"/>….</summary>
        Bytes,
    }

    public const int Uncompressed = 0, Rle8 = 1, Rle4 = 2, BitFields = 3;

    /// <summary>A parsed header. <see cref="Palette"/>: 256 RGB triples (indexed kinds only).</summary>
    public sealed record Header(int Width, int Height, bool TopDown, int Bits, int Compression, PixelKind Kind, long DataOffset,
        long Stride, int ByteOfRed, int ByteOfGreen, int ByteOfBlue, byte[]? Palette)
    {
        public bool Rle => Compression is Rle8 or Rle4;
    }

    public static bool IsBmp(ReadOnlySpan<byte> b) => b.Length >= 2 && b[0] == (byte)'B' && b[1] == (byte)'M';

    /// <summary>
    /// Reads and checks the headers; <paramref name="admit"/> sees the header before the pixel data's length is
    /// checked (a bomb's size is refused as one, not as a truncated file).
    /// </summary>
    public static Header Check(byte[] b, string name, Action<Header> admit)
    {
        if (b.Length < 18) throw Corrupt(name, "truncated file header");
        long offset = U32(b, 10);
        uint headerSize = U32(b, 14);
        if (headerSize is not (12 or 40 or 64 or 108 or 124))
            throw Unsupported(name, $"a {headerSize}-byte info header (those of 12, 40, 64, 108 and 124 bytes are read)");
        if (b.Length < 14 + headerSize) throw Corrupt(name, "truncated info header");
        long width, height;
        int bits, compression, paletteEntry;
        long colors = 0;
        bool topDown = false;
        if (headerSize == 12)
        {
            // OS/2 1.x: 16-bit sizes, never compressed, palette entries of three bytes.
            (width, height, bits, compression, paletteEntry) = (U16(b, 18), U16(b, 20), U16(b, 24), Uncompressed, 3);
        }
        else
        {
            width = U32(b, 18);
            uint storedHeight = U32(b, 22);
            // A negative height (as PIL tells it: the top byte 0xFF) stores the rows top to bottom.
            topDown = b[25] == 0xFF;
            height = topDown ? (1L << 32) - storedHeight : storedHeight;
            (bits, compression, colors, paletteEntry) = (U16(b, 28), (int)Math.Min(U32(b, 30), int.MaxValue), U32(b, 46), 4);
        }
        if (width == 0 || height == 0 || width > int.MaxValue || height > int.MaxValue)
            throw Corrupt(name, $"impossible size {width}×{height}");
        if (colors == 0) colors = 1L << Math.Min(bits, 32);
        if (offset == 14 + headerSize && bits <= 8) offset += 4 * colors; // PIL's: an offset into the palette moves past it
        if (bits is not (1 or 4 or 8 or 16 or 24 or 32))
            throw Unsupported(name, $"{bits} bits per pixel (1, 4, 8, 16, 24 and 32 are read)");

        var kind = bits switch { <= 8 => PixelKind.Indexed, 16 => PixelKind.Bgr555, _ => PixelKind.Bytes };
        int red = 2, green = 1, blue = 0;
        switch (compression)
        {
            case Uncompressed:
                break;
            case Rle8 or Rle4:
                if (bits != (compression == Rle8 ? 8 : 4))
                    throw Unsupported(name, $"RLE{(compression == Rle8 ? 8 : 4)} compression with {bits} bits per pixel");
                break;
            case BitFields:
                // The layouts PIL reads; the 40-byte header keeps its three masks after it, the longer ones inside.
                if (b.Length < 14 + 40 + 12) throw Corrupt(name, "truncated bit-field masks");
                uint r = U32(b, 54), g = U32(b, 58), bl = U32(b, 62), a = headerSize >= 56 ? U32(b, 66) : 0;
                switch (bits, r, g, bl, a)
                {
                    case (32, 0xFF0000, 0xFF00, 0xFF, 0 or 0xFF000000): case (32, 0, 0, 0, 0): case (24, 0xFF0000, 0xFF00, 0xFF, _):
                        break;
                    case (32, 0xFF000000, 0xFF0000, 0xFF00, 0 or 0xFF):
                        (red, green, blue) = (3, 2, 1);
                        break;
                    case (32, 0xFF, 0xFF00, 0xFF0000, 0xFF000000):
                        (red, green, blue) = (0, 1, 2);
                        break;
                    case (16, 0xF800, 0x7E0, 0x1F, _):
                        kind = PixelKind.Bgr565;
                        break;
                    case (16, 0x7C00, 0x3E0, 0x1F, _):
                        break;
                    default:
                        throw Unsupported(name, $"{bits}-bit bit fields R 0x{r:X} G 0x{g:X} B 0x{bl:X}" + (bits == 32 ? $" A 0x{a:X}" : "") +
                            " (the byte-aligned 24/32-bit layouts and 16-bit 5-5-5 and 5-6-5 are read)");
                }
                break;
            default:
                string what = compression switch { 4 => " (a JPEG inside)", 5 => " (a PNG inside)", _ => "" };
                throw Unsupported(name, $"compression {compression}{what}; uncompressed, RLE8, RLE4 and bit fields are read");
        }

        byte[]? palette = null;
        if (kind == PixelKind.Indexed)
        {
            if (colors > 65536) throw Corrupt(name, $"a palette of {colors} colors");
            // PIL starts a palette image from a gray ramp and overwrites the entries the file has: an index past them
            // is that gray.
            palette = new byte[256 * 3];
            for (int i = 0; i < 256; i++) palette[3 * i] = palette[3 * i + 1] = palette[3 * i + 2] = (byte)i;
            long start = 14 + headerSize, entries = Math.Min(colors, 256);
            if (start + entries * paletteEntry > b.Length) throw Corrupt(name, "truncated palette");
            for (int i = 0; i < entries; i++)
            {
                long p = start + i * paletteEntry;
                (palette[3 * i], palette[3 * i + 1], palette[3 * i + 2]) = (b[p + 2], b[p + 1], b[p]);
            }
        }
        long stride = ((width * bits + 31) >> 3) & ~3L;
        var header = new Header((int)width, (int)height, topDown, bits, compression, kind, offset, stride, red, green, blue, palette);
        admit(header);
        if (offset > b.Length) throw Corrupt(name, $"pixel data offset {offset} is past the end of the file");
        // PIL's raw decoder is done with the last row's pixels: that row's padding may be missing.
        long needed = stride * (height - 1) + (width * bits + 7) / 8;
        if (!header.Rle && needed > b.Length - offset)
            throw Corrupt(name, $"truncated pixel data ({b.Length - offset} of {needed} bytes)");
        return header;
    }

    private static uint U32(byte[] b, long at) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan((int)at, 4));

    private static int U16(byte[] b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at, 2));

    internal static InputException Corrupt(string name, string what) => new($"{name}: corrupt BMP: {what}");

    private static InputException Unsupported(string name, string what) => new($"{name}: unsupported BMP: {what}");
}
