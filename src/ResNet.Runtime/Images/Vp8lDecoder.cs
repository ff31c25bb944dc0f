namespace ResNet.Runtime.Images;

/// <summary>
/// Decodes a lossless WebP (VP8L) image to ARGB pixels as libwebp does: its transforms (each at most once), color
/// cache, meta prefix codes, LZ77 copies with the 2-D distance codes, and libwebp's rules for what it refuses:
/// incomplete codes, copies from before the image or past its end, data that runs out.
/// </summary>
internal sealed class Vp8lDecoder
{
    private const int Predictor = 0, CrossColor = 1, SubtractGreen = 2, ColorIndexing = 3;

    /// <summary>(dy, 8 - dx) of the 120 short distance codes, nearest first (the format's table).</summary>
    private static ReadOnlySpan<byte> CodeToPlane =>
    [
        0x18, 0x07, 0x17, 0x19, 0x28, 0x06, 0x27, 0x29, 0x16, 0x1a, 0x26, 0x2a, 0x38, 0x05, 0x37, 0x39, 0x15, 0x1b, 0x36, 0x3a,
        0x25, 0x2b, 0x48, 0x04, 0x47, 0x49, 0x14, 0x1c, 0x35, 0x3b, 0x46, 0x4a, 0x24, 0x2c, 0x58, 0x45, 0x4b, 0x34, 0x3c, 0x03,
        0x57, 0x59, 0x13, 0x1d, 0x56, 0x5a, 0x23, 0x2d, 0x44, 0x4c, 0x55, 0x5b, 0x33, 0x3d, 0x68, 0x02, 0x67, 0x69, 0x12, 0x1e,
        0x66, 0x6a, 0x22, 0x2e, 0x54, 0x5c, 0x43, 0x4d, 0x65, 0x6b, 0x32, 0x3e, 0x78, 0x01, 0x77, 0x79, 0x53, 0x5d, 0x11, 0x1f,
        0x64, 0x6c, 0x42, 0x4e, 0x76, 0x7a, 0x21, 0x2f, 0x75, 0x7b, 0x31, 0x3f, 0x63, 0x6d, 0x52, 0x5e, 0x00, 0x74, 0x7c, 0x41,
        0x4f, 0x10, 0x20, 0x62, 0x6e, 0x30, 0x73, 0x7d, 0x51, 0x5f, 0x40, 0x72, 0x7e, 0x61, 0x6f, 0x50, 0x71, 0x7f, 0x60, 0x70,
    ];

    /// <summary>The order the code length code's lengths come in.</summary>
    private static ReadOnlySpan<byte> CodeLengthOrder => [17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    private readonly Func<string, Exception> _corrupt;
    private Vp8lBitReader _br;
    private readonly int _height;
    private readonly bool _alpha;
    private int _transformsSeen;

    private sealed record Transform(int Type, int Width, int Bits, uint[] Data);

    private Vp8lDecoder(Vp8lBitReader br, int height, Func<string, Exception> corrupt, bool alpha = false) =>
        (_br, _height, _corrupt, _alpha) = (br, height, corrupt, alpha);

    /// <summary>The image in <paramref name="b"/>[<paramref name="start"/>, +<paramref name="length"/>) (its 5-byte header checked), as RGB.</summary>
    public static byte[] DecodeToRgb(byte[] b, int start, int length, int width, int height, Func<string, Exception> corrupt)
    {
        var br = new Vp8lBitReader(b, start, length);
        br.Read(8); // signature
        br.Read(14);
        br.Read(14);
        br.Read(1); // alpha used: PIL drops alpha all the same
        br.Read(3); // version 0
        var d = new Vp8lDecoder(br, height, corrupt);
        var argb = d.DecodeImage(width, height, level0: true);
        var rgb = GC.AllocateUninitializedArray<byte>(checked(width * height * 3));
        for (int i = 0; i < argb.Length; i++)
        {
            uint p = argb[i];
            rgb[3 * i] = (byte)(p >> 16);
            rgb[3 * i + 1] = (byte)(p >> 8);
            rgb[3 * i + 2] = (byte)p;
        }
        return rgb;
    }

    /// <summary>
    /// Checks an alpha plane's lossless stream (an ALPH chunk's, without the 5-byte header: the frame gives the size)
    /// as libwebp decodes it; its transforms are read but not undone.
    /// </summary>
    public static void CheckAlpha(byte[] b, int start, int length, int width, int height, Func<string, Exception> corrupt) =>
        new Vp8lDecoder(new Vp8lBitReader(b, start, length), height, corrupt, alpha: true).DecodeImage(width, height, level0: true);

    private Exception Corrupt(string reason) => _corrupt(reason);

    private void CheckEos()
    {
        if (_br.Eos) throw Corrupt("premature end of the lossless data");
    }

    /// <summary>
    /// An entropy-coded image: the main one (<paramref name="level0"/>: transforms and meta prefix codes allowed, and
    /// the transforms undone) or one of the sub-images transforms and meta codes are stored in.
    /// </summary>
    private uint[] DecodeImage(int width, int height, bool level0)
    {
        var transforms = new List<Transform>();
        int codedWidth = width;
        if (level0)
        {
            while (_br.Read(1) != 0)
            {
                transforms.Add(ReadTransform(ref codedWidth));
                CheckEos();
            }
        }
        int cacheBits = 0;
        if (_br.Read(1) != 0)
        {
            cacheBits = _br.Read(4);
            if (cacheBits < 1 || cacheBits > 11) throw Corrupt($"color cache of {cacheBits} bits");
        }
        CheckEos();

        int metaBits = 0;
        int[]? meta = null;
        int groups = 1;
        int[]? dense = null; // a group's place among the groups the meta image uses (-1: none), as libwebp's mapping
        int used = 1;
        if (level0 && _br.Read(1) != 0)
        {
            metaBits = _br.Read(3) + 2;
            var metaImage = DecodeImage(SubSample(codedWidth, metaBits), SubSample(height, metaBits), level0: false);
            foreach (uint m in metaImage) groups = Math.Max(groups, (int)((m >> 8) & 0xFFFF) + 1);
            dense = new int[groups];
            Array.Fill(dense, -1);
            used = 0;
            meta = new int[metaImage.Length];
            for (int i = 0; i < metaImage.Length; i++)
            {
                int g = (int)((metaImage[i] >> 8) & 0xFFFF);
                if (dense[g] < 0) dense[g] = used++;
                meta[i] = dense[g];
            }
        }
        // Every group's codes are read and checked; only the used groups' are kept (up to 65536 groups are declared).
        var codes = new Vp8lPrefixCode[used * 5];
        int cacheSize = cacheBits > 0 ? 1 << cacheBits : 0;
        for (int g = 0; g < groups; g++)
        {
            int at = dense == null ? g : dense[g];
            for (int k = 0; k < 5; k++)
            {
                var code = ReadCode(k == 0 ? 256 + 24 + cacheSize : k == 4 ? 40 : 256);
                if (at >= 0) codes[5 * at + k] = code;
            }
        }

        // libwebp decodes an alpha plane of palette indices a byte per pixel when nothing but the green code reads any bits
        // (no color cache, one-symbol red, blue and alpha codes); there, data that runs out with the last pixel is no error.
        bool bytePerPixel = _alpha && level0 && transforms is [{ Type: ColorIndexing }] && cacheBits == 0;
        for (int i = 0; bytePerPixel && i < codes.Length; i++)
            bytePerPixel = i % 5 is 0 or 4 || codes[i].IsSingleSymbol;
        var pixels = DecodePixels(codedWidth, height, codes, meta, metaBits, cacheBits, lenientEnd: bytePerPixel);
        if (_alpha) return pixels;
        for (int t = transforms.Count - 1; t >= 0; t--) pixels = Undo(transforms[t], pixels, height);
        return pixels;
    }

    private static int SubSample(int size, int bits) => (size + (1 << bits) - 1) >> bits;

    private Transform ReadTransform(ref int width)
    {
        int type = _br.Read(2);
        if ((_transformsSeen & (1 << type)) != 0) throw Corrupt("a transform given twice");
        _transformsSeen |= 1 << type;
        int transformWidth = width;
        switch (type)
        {
            case Predictor:
            case CrossColor:
            {
                int bits = _br.Read(3) + 2;
                var data = DecodeImage(SubSample(width, bits), SubSample(_height, bits), level0: false);
                return new Transform(type, transformWidth, bits, data);
            }
            case ColorIndexing:
            {
                int colors = _br.Read(8) + 1;
                int bits = colors > 16 ? 0 : colors > 4 ? 1 : colors > 2 ? 2 : 3;
                width = SubSample(width, bits);
                var palette = DecodeImage(colors, 1, level0: false);
                // Deltas from the previous entry, per channel; the indices past the palette give transparent black.
                var expanded = new uint[1 << (8 >> bits)];
                expanded[0] = palette[0];
                for (int i = 1; i < colors; i++) expanded[i] = AddPixels(palette[i], expanded[i - 1]);
                return new Transform(type, transformWidth, bits, expanded);
            }
            default:
                return new Transform(SubtractGreen, transformWidth, 0, []);
        }
    }

    private Vp8lPrefixCode ReadCode(int alphabet)
    {
        var lengths = new int[Math.Max(alphabet, 256)];
        if (_br.Read(1) != 0)
        {
            // A simple code: one or two symbols, the first of 1 or 8 bits, the second of 8.
            int symbols = _br.Read(1) + 1;
            int first = _br.Read(_br.Read(1) == 0 ? 1 : 8);
            lengths[first] = 1;
            if (symbols == 2) lengths[_br.Read(8)] = 1;
        }
        else
        {
            var lengthLengths = new int[19];
            int count = _br.Read(4) + 4;
            for (int i = 0; i < count; i++) lengthLengths[CodeLengthOrder[i]] = _br.Read(3);
            ReadCodeLengths(Vp8lPrefixCode.Build(lengthLengths) ?? throw Corrupt("invalid code length code"), lengths.AsSpan(0, alphabet));
        }
        // libwebp checks its end-of-stream flag here, which the last length may have run past without setting.
        if (_br.EosFlag) throw Corrupt("premature end of the lossless data");
        return Vp8lPrefixCode.Build(lengths.AsSpan(0, alphabet)) ?? throw Corrupt("invalid prefix code");
    }

    private void ReadCodeLengths(Vp8lPrefixCode lengthCode, Span<int> lengths)
    {
        int maxSymbol = lengths.Length;
        if (_br.Read(1) != 0)
        {
            int lengthBits = 2 + 2 * _br.Read(3);
            maxSymbol = 2 + _br.Read(lengthBits);
            if (maxSymbol > lengths.Length) throw Corrupt("more code lengths than symbols");
        }
        int symbol = 0, previous = 8;
        while (symbol < lengths.Length)
        {
            if (maxSymbol-- == 0) break;
            _br.Fill();
            int length = lengthCode.Read(ref _br);
            if (length < 16)
            {
                lengths[symbol++] = length;
                if (length != 0) previous = length;
                continue;
            }
            int slot = length - 16;
            int repeat = _br.Read(slot switch { 0 => 2, 1 => 3, _ => 7 }) + (slot == 2 ? 11 : 3);
            if (symbol + repeat > lengths.Length) throw Corrupt("code lengths repeated past the last symbol");
            lengths.Slice(symbol, repeat).Fill(length == 16 ? previous : 0);
            symbol += repeat;
        }
    }

    private int CopyValue(int symbol)
    {
        if (symbol < 4) return symbol + 1;
        int extra = (symbol - 2) >> 1;
        return ((2 + (symbol & 1)) << extra) + _br.Read(extra) + 1;
    }

    private uint[] DecodePixels(int width, int height, Vp8lPrefixCode[] codes, int[]? meta, int metaBits, int cacheBits, bool lenientEnd = false)
    {
        var pixels = new uint[checked(width * height)];
        var cache = cacheBits > 0 ? new uint[1 << cacheBits] : null;
        int cacheShift = 32 - cacheBits, metaWidth = SubSample(width, metaBits);
        int pos = 0, cached = 0, x = 0, y = 0; // (x, y): pos's place in the image
        while (pos < pixels.Length)
        {
            int g = meta == null ? 0 : meta[(y >> metaBits) * metaWidth + (x >> metaBits)];
            int start = pos;
            // The reads and fills in libwebp's order: past the end of the data the values depend on it.
            _br.Fill();
            int code = codes[5 * g].Read(ref _br);
            if (code < 256)
            {
                int red = codes[5 * g + 1].Read(ref _br);
                _br.Fill();
                int blue = codes[5 * g + 2].Read(ref _br);
                int alpha = codes[5 * g + 3].Read(ref _br);
                pixels[pos++] = (uint)(alpha << 24 | red << 16 | code << 8 | blue);
            }
            else if (code < 256 + 24)
            {
                int length = CopyValue(code - 256);
                int distanceSymbol = codes[5 * g + 4].Read(ref _br);
                _br.Fill();
                int distanceCode = CopyValue(distanceSymbol);
                int distance = PlaneDistance(width, distanceCode);
                if (!lenientEnd) CheckEos();
                if (distance > pos || length > pixels.Length - pos) throw Corrupt("a copy from outside the image");
                for (int i = 0; i < length; i++, pos++) pixels[pos] = pixels[pos - distance];
            }
            else
            {
                // Every earlier pixel is in the cache already: each symbol's pixels go in right after it.
                if (cache == null) throw Corrupt("a color cache code without a cache");
                pixels[pos++] = cache[code - 280];
            }
            if (!lenientEnd || pos < pixels.Length) CheckEos();
            if (cache != null)
                for (; cached < pos; cached++) cache[(0x1E35A7BDu * pixels[cached]) >> cacheShift] = pixels[cached];
            x += pos - start;
            if (x >= width)
            {
                y += x / width;
                x %= width;
            }
        }
        return pixels;
    }

    private static int PlaneDistance(int width, int code)
    {
        if (code > 120) return code - 120;
        int v = CodeToPlane[code - 1];
        int distance = (v >> 4) * width + 8 - (v & 15);
        return distance >= 1 ? distance : 1;
    }

    // Per-channel arithmetic on packed ARGB.
    private static uint AddPixels(uint a, uint b) =>
        (((a & 0xFF00FF00u) + (b & 0xFF00FF00u)) & 0xFF00FF00u) | (((a & 0x00FF00FFu) + (b & 0x00FF00FFu)) & 0x00FF00FFu);

    private static uint Average2(uint a, uint b) => (((a ^ b) & 0xFEFEFEFEu) >> 1) + (a & b);

    private static uint Channel(uint p, int shift) => (p >> shift) & 0xFF;

    private static uint Select(uint top, uint left, uint topLeft)
    {
        int score = 0; // Σ|L - TL| - Σ|T - TL|: the nearer of top and left to the gradient's estimate wins
        for (int s = 0; s < 32; s += 8)
            score += Math.Abs((int)Channel(left, s) - (int)Channel(topLeft, s)) - Math.Abs((int)Channel(top, s) - (int)Channel(topLeft, s));
        return score <= 0 ? top : left;
    }

    private static uint Clamp255(int v) => v < 0 ? 0u : v > 255 ? 255u : (uint)v;

    private static uint AddSubtractFull(uint a, uint b, uint c)
    {
        uint r = 0;
        for (int s = 0; s < 32; s += 8) r |= Clamp255((int)Channel(a, s) + (int)Channel(b, s) - (int)Channel(c, s)) << s;
        return r;
    }

    private static uint AddSubtractHalf(uint a, uint b)
    {
        uint r = 0;
        for (int s = 0; s < 32; s += 8)
        {
            int ca = (int)Channel(a, s), cb = (int)Channel(b, s);
            r |= Clamp255(ca + (ca - cb) / 2) << s;
        }
        return r;
    }

    private static uint Predict(int mode, uint left, uint top, uint topLeft, uint topRight) => mode switch
    {
        1 => left,
        2 => top,
        3 => topRight,
        4 => topLeft,
        5 => Average2(Average2(left, topRight), top),
        6 => Average2(left, topLeft),
        7 => Average2(left, top),
        8 => Average2(topLeft, top),
        9 => Average2(top, topRight),
        10 => Average2(Average2(left, topLeft), Average2(top, topRight)),
        11 => Select(top, left, topLeft),
        12 => AddSubtractFull(left, top, topLeft),
        13 => AddSubtractHalf(Average2(left, top), topLeft),
        _ => 0xFF000000u, // 0, and 14 and 15 as libwebp treats them
    };

    private static uint[] Undo(Transform t, uint[] p, int height)
    {
        int width = t.Width;
        switch (t.Type)
        {
            case SubtractGreen:
                for (int i = 0; i < p.Length; i++)
                {
                    uint green = (p[i] >> 8) & 0xFF;
                    p[i] = (p[i] & 0xFF00FF00u) | ((((p[i] >> 16) + green) & 0xFF) << 16) | ((p[i] + green) & 0xFF);
                }
                return p;
            case Predictor:
            {
                int tiles = SubSample(width, t.Bits);
                p[0] = AddPixels(p[0], 0xFF000000u);
                for (int x = 1; x < width; x++) p[x] = AddPixels(p[x], p[x - 1]);
                for (int y = 1; y < height; y++)
                {
                    int row = y * width;
                    p[row] = AddPixels(p[row], p[row - width]);
                    for (int x = 1; x < width; x++)
                    {
                        int mode = (int)((t.Data[(y >> t.Bits) * tiles + (x >> t.Bits)] >> 8) & 15);
                        int i = row + x;
                        // The top-right of a row's last pixel is the first pixel of this row, as libwebp reads it.
                        p[i] = AddPixels(p[i], Predict(mode, p[i - 1], p[i - width], p[i - width - 1], p[i - width + 1]));
                    }
                }
                return p;
            }
            case CrossColor:
            {
                int tiles = SubSample(width, t.Bits);
                for (int y = 0; y < height; y++)
                {
                    for (int x = 0; x < width; x++)
                    {
                        uint m = t.Data[(y >> t.Bits) * tiles + (x >> t.Bits)];
                        sbyte greenToRed = (sbyte)m, greenToBlue = (sbyte)(m >> 8), redToBlue = (sbyte)(m >> 16);
                        int i = y * width + x;
                        uint argb = p[i];
                        sbyte green = (sbyte)(argb >> 8);
                        int red = (int)((argb >> 16) & 0xFF) + ((greenToRed * green) >> 5);
                        red &= 0xFF;
                        int blue = (int)(argb & 0xFF) + ((greenToBlue * green) >> 5) + ((redToBlue * (sbyte)red) >> 5);
                        blue &= 0xFF;
                        p[i] = (argb & 0xFF00FF00u) | ((uint)red << 16) | (uint)blue;
                    }
                }
                return p;
            }
            default: // color indexing: indices, several to a pixel when the palette is small, into the palette
            {
                int packedWidth = SubSample(width, t.Bits);
                var output = new uint[checked(width * height)];
                int perPixel = 1 << t.Bits, bitsPer = 8 >> t.Bits, mask = (1 << bitsPer) - 1;
                for (int y = 0; y < height; y++)
                {
                    for (int x = 0; x < width; x++)
                    {
                        uint packed = (p[y * packedWidth + (x >> t.Bits)] >> 8) & 0xFF;
                        int index = (int)(packed >> ((x & (perPixel - 1)) * bitsPer)) & mask;
                        output[y * width + x] = t.Data[index];
                    }
                }
                return output;
            }
        }
    }
}
