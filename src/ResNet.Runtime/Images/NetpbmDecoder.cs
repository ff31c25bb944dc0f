using System.Buffers.Binary;

namespace ResNet.Runtime.Images;

/// <summary>
/// Netpbm images (PBM, PGM, PPM; binary P4/P5/P6 and plain P1/P2/P3) as PIL 9.4's PpmImagePlugin reads them: its
/// header tokens (a comment may sit inside one: PIL skips it and goes on with the token), samples scaled by Python's
/// round(v / maxval · 255) where maxval is not 255 (to 65535 for gray above 255, which the RGB conversion then clamps
/// to 255, as PIL's I → RGB does), 1 black and 0 white for bitmaps.
/// </summary>
internal static class NetpbmDecoder
{
    /// <summary>The header: kind 1 to 6 (P1…P6), size, maximum sample value (1 for bitmaps), where the samples start.</summary>
    public sealed record Header(int Kind, int Width, int Height, int MaxValue, int DataStart)
    {
        public bool Plain => Kind <= 3;
        public int Channels => Kind is 3 or 6 ? 3 : 1;
        public string Format => (Kind % 3) switch { 1 => "PBM", 2 => "PGM", _ => "PPM" };
    }

    public static bool IsNetpbm(ReadOnlySpan<byte> b) => b.Length >= 3 && b[0] == 'P' && b[1] is >= (byte)'1' and <= (byte)'6' && IsSpace(b[2]);

    private static bool IsSpace(byte c) => c is 0x20 or 0x09 or 0x0A or 0x0B or 0x0C or 0x0D;

    public static Header Check(byte[] b, string name, Action<Header> admit)
    {
        int kind = b[1] - '0', pos = 3;
        string format = (kind % 3) switch { 1 => "PBM", 2 => "PGM", _ => "PPM" };
        int Number(string what)
        {
            string token = Token(b, ref pos, name, format);
            if (!int.TryParse(token, System.Globalization.NumberStyles.None, null, out int value))
                throw Corrupt(name, format, $"{what} '{Printable.Quote(token)}' is not a number");
            return value;
        }
        int width = Number("width"), height = Number("height");
        int maxValue = kind is 1 or 4 ? 1 : Number("maximum value");
        if (width == 0 || height == 0) throw Corrupt(name, format, $"impossible size {width}×{height}");
        if (maxValue is 0 or > 65535) throw Corrupt(name, format, $"maximum value {maxValue} (1 to 65535)");
        var header = new Header(kind, width, height, maxValue, pos);
        admit(header);
        if (!header.Plain)
        {
            long need = kind == 4 ? (width + 7L) / 8 * height : (long)width * height * header.Channels * (maxValue > 255 ? 2 : 1);
            if (need > b.Length - pos) throw Corrupt(name, format, $"truncated pixel data ({b.Length - pos} of {need} bytes)");
        }
        else
        {
            // Each sample takes a character at least (P1) or a digit and a separator: a short file is refused before
            // its samples' memory is taken — but for P2 and P3 data that stops in a token, which PIL repeats to the end.
            long count = (long)width * height * header.Channels, least = kind == 1 ? count : 2 * count - 1;
            bool repeats = kind != 1 && b.Length > pos && !IsSpace(b[^1]);
            if (least > b.Length - pos && !repeats)
                throw Corrupt(name, format, $"the pixel data ends early ({b.Length - pos} bytes for {count} {(kind == 1 ? "pixels" : "samples")})");
        }
        return header;
    }

    /// <summary>
    /// PIL's header token: whitespace before it skipped, one whitespace character after it consumed, a '#' anywhere
    /// skipping to the end of its line, at most 10 characters.
    /// </summary>
    private static string Token(byte[] b, ref int pos, string name, string format)
    {
        var token = new System.Text.StringBuilder();
        while (token.Length <= 10 && pos < b.Length)
        {
            byte c = b[pos++];
            if (IsSpace(c))
            {
                if (token.Length == 0) continue;
                break;
            }
            if (c == '#')
            {
                while (pos < b.Length && b[pos++] is not ((byte)'\r' or (byte)'\n')) { }
                continue;
            }
            token.Append((char)c);
        }
        if (token.Length == 0) throw Corrupt(name, format, "the header ends early");
        if (token.Length > 10) throw Corrupt(name, format, $"header token '{Printable.Quote(token.ToString())}…' is too long");
        return token.ToString();
    }

    public static RgbImage Decode(byte[] b, Header h, string name)
    {
        int width = h.Width, height = h.Height, channels = h.Channels;
        long samples = (long)width * height * channels;
        var pixels = GC.AllocateUninitializedArray<byte>(checked(width * height * 3));
        // Gray above 255 is PIL's mode I: scaled to 65535, then clamped to 255 by the conversion to RGB.
        int top = channels == 1 && h.MaxValue > 255 ? 65535 : 255;
        byte Scale(int v) => (byte)Math.Min(255, Math.Min(top, (int)Math.Round(v / (double)h.MaxValue * top, MidpointRounding.ToEven)));
        var values = h.Kind switch
        {
            1 => PlainBits(b, h, name, samples),
            2 or 3 => PlainSamples(b, h, name, samples),
            _ => null,
        };
        for (long i = 0; i < samples; i++)
        {
            byte value = h.Kind switch
            {
                1 => values![i] == 1 ? (byte)0 : (byte)255,
                4 => (b[h.DataStart + i / width * ((width + 7) / 8) + i % width / 8] >> (7 - (int)(i % width % 8)) & 1) == 1 ? (byte)0 : (byte)255,
                2 or 3 => Scale(values![i]),
                _ when h.MaxValue == 255 => b[h.DataStart + i],
                _ => Scale(h.MaxValue > 255 ? BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(h.DataStart + (int)(2 * i))) : b[h.DataStart + i]),
            };
            if (channels == 3) pixels[i] = value;
            else pixels[3 * i] = pixels[3 * i + 1] = pixels[3 * i + 2] = value;
        }
        return new RgbImage(width, height, pixels);
    }

    /// <summary>
    /// The plain formats' data with PIL's comment removal: from '#' through the end of its line, the line end too,
    /// so the text on either side joins (PIL's quirk; a comment on a line of its own is just skipped).
    /// </summary>
    private static List<byte> WithoutComments(byte[] b, int from)
    {
        var text = new List<byte>(b.Length - from);
        for (int pos = from; pos < b.Length; pos++)
        {
            if (b[pos] != '#') text.Add(b[pos]);
            else while (pos < b.Length && b[pos] is not ((byte)'\r' or (byte)'\n')) pos++;
        }
        return text;
    }

    /// <summary>P1's samples: the characters 0 and 1, whitespace between them optional.</summary>
    private static int[] PlainBits(byte[] b, Header h, string name, long count)
    {
        var values = new int[count];
        long n = 0;
        foreach (byte c in WithoutComments(b, h.DataStart))
        {
            if (n == count) break;
            if (c is (byte)'0' or (byte)'1') values[n++] = c - '0';
            else if (!IsSpace(c)) throw Corrupt(name, "PBM", $"'{Printable.Quote(((char)c).ToString())}' in the pixel data (0 and 1 are allowed)");
        }
        if (n < count) throw Corrupt(name, "PBM", $"the pixel data ends early ({n} of {count} pixels)");
        return values;
    }

    /// <summary>P2's and P3's samples: decimal numbers of at most 10 digits, none above the maximum value.</summary>
    private static int[] PlainSamples(byte[] b, Header h, string name, long count)
    {
        var values = new int[count];
        var text = WithoutComments(b, h.DataStart);
        long n = 0;
        int pos = 0;
        while (n < count)
        {
            while (pos < text.Count && IsSpace(text[pos])) pos++;
            if (pos >= text.Count) break;
            int start = pos;
            long value = 0;
            for (; pos < text.Count && !IsSpace(text[pos]); pos++)
            {
                if (text[pos] is < (byte)'0' or > (byte)'9' || pos - start >= 10)
                {
                    var shown = text.GetRange(start, Math.Min(pos + 1 - start, 11)).ToArray();
                    throw Corrupt(name, h.Format, $"'{Printable.Quote(System.Text.Encoding.Latin1.GetString(shown))}' in the pixel data is not a sample value");
                }
                value = value * 10 + text[pos] - '0';
            }
            if (value > h.MaxValue) throw Corrupt(name, h.Format, $"sample value {value} is above the maximum value {h.MaxValue}");
            values[n++] = (int)value;
        }
        // PIL stitches a token a read block cuts in two to the next block; at the end of the file it adds a space to
        // the cut token and stitches it again, and again: data that stops in a token repeats it to the image's end.
        if (n < count && n > 0 && text.Count > 0 && !IsSpace(text[^1])) Array.Fill(values, values[n - 1], (int)n, (int)(count - n));
        else if (n < count) throw Corrupt(name, h.Format, $"the pixel data ends early ({n} of {count} samples)");
        return values;
    }

    private static InputException Corrupt(string name, string format, string what) => new($"{name}: corrupt {format}: {what}");
}
