using System.Buffers.Binary;

namespace ResNet.Runtime.Images;

/// <summary>
/// A GIF's first image, found as PIL 9.4's GifImagePlugin finds it (torchvision's loader opens frame 0): the blocks
/// before it read with PIL's rules (a graphic control extension's transparent index is the last one given; bytes that
/// start no block are skipped), the canvas grown to hold an image that reaches past the logical screen, and the
/// palette PIL converts with: its gray ramp with the image's (or else the global) color table over it.
/// </summary>
internal static class GifStructure
{
    /// <summary>
    /// The first image: its place on a <see cref="Width"/> × <see cref="Height"/> canvas whose other pixels are
    /// index <see cref="Fill"/>, its LZW data from <see cref="DataStart"/>, and <see cref="Palette"/> (256 RGB triples).
    /// </summary>
    public sealed record Header(int Width, int Height, int Left, int Top, int FrameWidth, int FrameHeight, bool Interlaced,
        int CodeSize, int DataStart, byte Fill, byte[] Palette);

    public static bool IsGif(ReadOnlySpan<byte> b) => b.Length >= 6 && (b[..6].SequenceEqual("GIF87a"u8) || b[..6].SequenceEqual("GIF89a"u8));

    /// <summary>Reads and checks everything up to the first image's data; <paramref name="admit"/> sees the canvas first.</summary>
    public static Header Check(byte[] b, string name, Action<Header> admit)
    {
        if (b.Length < 13) throw Corrupt(name, "truncated header");
        int width = U16(b, 6), height = U16(b, 8), pos = 13;
        byte[]? global = null;
        if ((b[10] & 0x80) != 0) global = ColorTable(b, ref pos, b[10], name, "global");
        int? transparent = null;
        while (true)
        {
            if (pos >= b.Length || b[pos] == ';') throw Corrupt(name, "no image in the file");
            byte kind = b[pos++];
            if (kind == '!')
            {
                if (pos >= b.Length) throw Corrupt(name, "truncated extension");
                byte label = b[pos++];
                var block = SubBlock(b, ref pos);
                if (label == 0xFE) // a comment: PIL reads its blocks to the end, and nothing more
                {
                    while (block != null) block = SubBlock(b, ref pos);
                    continue;
                }
                if (label == 0xF9)
                {
                    // PIL reads the flags and delay without checking the block's length (and fails where it is short).
                    if (block is not { Length: >= 3 } || ((block[0] & 1) != 0 && block.Length < 4))
                        throw Corrupt(name, "graphic control extension too short");
                    if ((block[0] & 1) != 0) transparent = block[3];
                }
                else if (label == 0xFF && block == null)
                {
                    throw Corrupt(name, "empty application extension");
                }
                // Then the remaining blocks, as PIL skips them: after an empty first block that is past its end.
                while (SubBlock(b, ref pos) != null) { }
            }
            else if (kind == ',')
            {
                if (pos + 9 > b.Length) throw Corrupt(name, "truncated image descriptor");
                int left = U16(b, pos), top = U16(b, pos + 2), frameWidth = U16(b, pos + 4), frameHeight = U16(b, pos + 6);
                byte flags = b[pos + 8];
                pos += 9;
                if (frameWidth == 0 || frameHeight == 0) throw Corrupt(name, $"an empty image ({frameWidth}×{frameHeight})");
                // PIL grows the canvas to an image that reaches past the screen.
                (width, height) = (Math.Max(width, left + frameWidth), Math.Max(height, top + frameHeight));
                // A local table that is PIL's gray ramp makes it a gray image (mode L), but it then gives that image the
                // global table, which its loading applies: the global table's colors, as without a local one.
                var table = (flags & 0x80) != 0 ? ColorTable(b, ref pos, flags, name, "local") ?? global : global;
                if (pos >= b.Length) throw Corrupt(name, "truncated image (no LZW code size)");
                int codeSize = b[pos++];
                if (codeSize > 12) throw Corrupt(name, $"LZW minimum code size {codeSize} (at most 12)");
                var palette = new byte[256 * 3];
                for (int i = 0; i < 256; i++) palette[3 * i] = palette[3 * i + 1] = palette[3 * i + 2] = (byte)i;
                table?.CopyTo(palette, 0);
                var header = new Header(width, height, left, top, frameWidth, frameHeight, (flags & 0x40) != 0, codeSize, pos,
                    (byte)(transparent ?? 0), palette);
                admit(header);
                return header;
            }
            // Any other byte starts no block: PIL skips it.
        }
    }

    /// <summary>A color table of 2 to 256 entries, or null when it is PIL's gray ramp (entry i is (i, i, i)).</summary>
    private static byte[]? ColorTable(byte[] b, ref int pos, byte flags, string name, string which)
    {
        int bytes = 3 << ((flags & 7) + 1);
        if (pos + bytes > b.Length) throw Corrupt(name, $"truncated {which} color table");
        var table = b.AsSpan(pos, bytes).ToArray();
        pos += bytes;
        for (int i = 0; i < bytes; i++)
            if (table[i] != i / 3) return table;
        return null;
    }

    /// <summary>PIL's data(): the next sub-block (cut short at the end of the file), or null for a length of 0 or no byte.</summary>
    private static byte[]? SubBlock(byte[] b, ref int pos)
    {
        if (pos >= b.Length || b[pos] == 0)
        {
            pos = Math.Min(pos + 1, b.Length);
            return null;
        }
        int length = b[pos++], start = pos;
        pos = Math.Min(pos + length, b.Length);
        return b[start..pos];
    }

    private static int U16(byte[] b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at, 2));

    internal static InputException Corrupt(string name, string what) => new($"{name}: corrupt GIF: {what}");
}
