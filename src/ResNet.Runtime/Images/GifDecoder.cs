namespace ResNet.Runtime.Images;

/// <summary>
/// A GIF's first image as RGB, PIL's bytes: its LZW data decoded as PIL's GifDecode.c decodes it (a deferred clear
/// keeps the full table; a code of 9 to 12 bits below the clear code stores its low byte; sub-blocks are read by
/// their lengths until the last pixel, whatever follows it), rows placed in interlaced order when flagged, on a
/// canvas of the fill index, through the palette. Data that ends, or reaches its end code, before the last pixel is
/// refused (PIL refuses the first and, for a small file, the second).
/// </summary>
internal static class GifDecoder
{
    private const int TableSize = 4096;

    public static RgbImage Decode(byte[] b, GifStructure.Header h, string name)
    {
        var indices = FrameIndices(b, h, name);
        int width = h.Width, height = h.Height;
        var palette = h.Palette;
        var pixels = GC.AllocateUninitializedArray<byte>(checked(width * height * 3));
        for (int y = 0; y < height; y++)
        {
            var row = pixels.AsSpan(y * width * 3, width * 3);
            bool frameRow = y >= h.Top && y < h.Top + h.FrameHeight;
            for (int x = 0; x < width; x++)
            {
                int index = frameRow && x >= h.Left && x < h.Left + h.FrameWidth
                    ? indices[(y - h.Top) * h.FrameWidth + x - h.Left]
                    : h.Fill;
                row[3 * x] = palette[3 * index];
                row[3 * x + 1] = palette[3 * index + 1];
                row[3 * x + 2] = palette[3 * index + 2];
            }
        }
        return new RgbImage(width, height, pixels);
    }

    /// <summary>The image's palette indices, rows top to bottom.</summary>
    private static byte[] FrameIndices(byte[] b, GifStructure.Header h, string name)
    {
        int w = h.FrameWidth, rows = h.FrameHeight;
        var indices = new byte[(long)w * rows];
        var rowOrder = new Rows(rows, h.Interlaced);
        int x = 0;

        int clear = 1 << h.CodeSize, end = clear + 1;
        var suffix = new byte[TableSize];
        var prefix = new short[TableSize];
        var text = new byte[TableSize]; // a code's string, filled from the end
        int next = 0, size = 0, mask = 0, lastCode = 0;
        byte firstOfLast = 0;
        bool afterClear = true;
        void Reset()
        {
            (next, size, afterClear) = (clear + 2, h.CodeSize + 1, true);
            mask = (1 << size) - 1;
        }
        Reset();

        // Bits come in sub-blocks: a length byte, then that many bytes (a zero length is just an empty block here, as
        // in PIL's decoder); PIL starts on a block only when all of it is there.
        int pos = h.DataStart, blockLeft = 0, bitCount = 0;
        uint bits = 0;
        while (true)
        {
            while (bitCount < size)
            {
                while (blockLeft == 0)
                {
                    if (pos >= b.Length || pos + 1 + b[pos] > b.Length) throw GifStructure.Corrupt(name, "the image data ends before its last pixel");
                    blockLeft = b[pos++];
                }
                bits |= (uint)b[pos++] << bitCount;
                bitCount += 8;
                blockLeft--;
            }
            int code = (int)(bits & mask);
            bits >>= size;
            bitCount -= size;
            if (code == clear)
            {
                Reset();
                continue;
            }
            if (code == end) throw GifStructure.Corrupt(name, "the image data ends before its last pixel");

            int start;
            if (afterClear)
            {
                if (code > clear) throw GifStructure.Corrupt(name, $"bad LZW code {code} after a clear code");
                text[^1] = firstOfLast = (byte)code;
                lastCode = code;
                start = TableSize - 1;
                afterClear = false;
            }
            else
            {
                if (code > next) throw GifStructure.Corrupt(name, $"bad LZW code {code} (the table has {next})");
                start = TableSize;
                int c = code;
                if (code == next)
                {
                    // The string being defined: the last one and its own first byte.
                    text[--start] = firstOfLast;
                    c = lastCode;
                }
                while (c >= clear)
                {
                    if (start == 0) throw GifStructure.Corrupt(name, "bad LZW string");
                    text[--start] = suffix[c];
                    c = prefix[c];
                }
                text[--start] = firstOfLast = (byte)c;
                if (next < TableSize)
                {
                    suffix[next] = (byte)c;
                    prefix[next] = (short)lastCode;
                    if (next == mask && size < 12)
                    {
                        size++;
                        mask = (1 << size) - 1;
                    }
                    next++;
                }
                lastCode = code;
            }
            for (int i = start; i < TableSize; i++)
            {
                indices[rowOrder.Current * (long)w + x] = text[i];
                if (++x < w) continue;
                x = 0;
                if (!rowOrder.Advance()) return indices; // the last pixel: PIL reads nothing more
            }
        }
    }

    /// <summary>Which stored row comes next: in order, or the four interlaced passes (rows 0, 4, 2, 1 mod 8, 8, 4, 2).</summary>
    private sealed class Rows(int count, bool interlaced)
    {
        private int _pass = interlaced ? 1 : 0, _step = interlaced ? 8 : 1;

        public int Current { get; private set; }

        public bool Advance()
        {
            Current += _step;
            while (Current >= count)
            {
                switch (_pass)
                {
                    case 1: (Current, _pass) = (4, 2); break;
                    case 2: (Current, _step, _pass) = (2, 4, 3); break;
                    case 3: (Current, _step, _pass) = (1, 2, 0); break;
                    default: return false;
                }
            }
            return true;
        }
    }
}
