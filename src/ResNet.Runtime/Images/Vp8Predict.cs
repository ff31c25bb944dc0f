namespace ResNet.Runtime.Images;

/// <summary>
/// VP8's intra predictors (RFC 6386 §12) over a work area 32 bytes a row, each writing the block at <c>at</c> from
/// the row above it and the column to its left, as libwebp computes them.
/// </summary>
internal static unsafe class Vp8Predict
{
    private const int Bps = 32;

    /// <summary>DC prediction where the frame's edge leaves only the left column, only the row above, or neither.</summary>
    public const int DcNoTop = 4, DcNoLeft = 5, DcNoTopLeft = 6;

    public static void Luma16(byte* d, int mode) => Square(d, mode, 16);

    public static void Chroma8(byte* d, int mode) => Square(d, mode, 8);

    /// <summary>The 16×16 and 8×8 predictors: DC (and its edge forms), TrueMotion, vertical, horizontal.</summary>
    private static void Square(byte* d, int mode, int size)
    {
        int shift = size == 16 ? 4 : 3;
        switch (mode)
        {
            case Vp8Decoder.DcPred:
            {
                int dc = size;
                for (int j = 0; j < size; j++) dc += d[-1 + j * Bps] + d[j - Bps];
                Fill(d, size, dc >> (shift + 1));
                break;
            }
            case DcNoTop:
            {
                int dc = size >> 1;
                for (int j = 0; j < size; j++) dc += d[-1 + j * Bps];
                Fill(d, size, dc >> shift);
                break;
            }
            case DcNoLeft:
            {
                int dc = size >> 1;
                for (int i = 0; i < size; i++) dc += d[i - Bps];
                Fill(d, size, dc >> shift);
                break;
            }
            case DcNoTopLeft:
                Fill(d, size, 0x80);
                break;
            case Vp8Decoder.TmPred:
                TrueMotion(d, size);
                break;
            case Vp8Decoder.VPred:
                for (int j = 0; j < size; j++) Buffer.MemoryCopy(d - Bps, d + j * Bps, size, size);
                break;
            default: // H
                for (int j = 0; j < size; j++) new Span<byte>(d + j * Bps, size).Fill(d[j * Bps - 1]);
                break;
        }
    }

    private static void Fill(byte* d, int size, int value)
    {
        for (int j = 0; j < size; j++) new Span<byte>(d + j * Bps, size).Fill((byte)value);
    }

    private static void TrueMotion(byte* d, int size)
    {
        int topLeft = d[-Bps - 1];
        for (int y = 0; y < size; y++)
        {
            int left = d[y * Bps - 1] - topLeft;
            byte* row = d + y * Bps;
            for (int x = 0; x < size; x++) row[x] = Vp8Reconstruction.Clip(d[x - Bps] + left);
        }
    }

    private static byte Avg3(int a, int b, int c) => (byte)((a + 2 * b + c + 2) >> 2);
    private static byte Avg2(int a, int b) => (byte)((a + b + 1) >> 1);

    /// <summary>The ten 4×4 predictors; the row above reaches four pixels past the block (its top-right).</summary>
    public static void Luma4(byte* d, int mode)
    {
        byte* top = d - Bps;
        // Neighbours named as in the RFC: X above-left, A..H above (E..H above-right), I..L to the left.
        int x0 = top[-1], a = top[0], b = top[1], c = top[2], dd = top[3];
        int e = top[4], f = top[5], g = top[6], h = top[7];
        int i = d[-1], j = d[Bps - 1], k = d[2 * Bps - 1], l = d[3 * Bps - 1];
        void Set(int col, int row, byte v) => d[row * Bps + col] = v;
        void Row(int row, byte v) => *(uint*)(d + row * Bps) = v * 0x01010101u;
        switch (mode)
        {
            case Vp8Decoder.DcPred:
            {
                int dc = (a + b + c + dd + i + j + k + l + 4) >> 3;
                for (int r = 0; r < 4; r++) Row(r, (byte)dc);
                break;
            }
            case Vp8Decoder.TmPred:
                TrueMotion(d, 4);
                break;
            case Vp8Decoder.VPred:
            {
                byte v0 = Avg3(x0, a, b), v1 = Avg3(a, b, c), v2 = Avg3(b, c, dd), v3 = Avg3(c, dd, e);
                for (int r = 0; r < 4; r++) { Set(0, r, v0); Set(1, r, v1); Set(2, r, v2); Set(3, r, v3); }
                break;
            }
            case Vp8Decoder.HPred:
                Row(0, Avg3(x0, i, j));
                Row(1, Avg3(i, j, k));
                Row(2, Avg3(j, k, l));
                Row(3, Avg3(k, l, l));
                break;
            case Vp8Decoder.RdPred:
                Set(0, 3, Avg3(j, k, l));
                Set(1, 3, Avg3(i, j, k)); Set(0, 2, Avg3(i, j, k));
                Set(2, 3, Avg3(x0, i, j)); Set(1, 2, Avg3(x0, i, j)); Set(0, 1, Avg3(x0, i, j));
                Set(3, 3, Avg3(a, x0, i)); Set(2, 2, Avg3(a, x0, i)); Set(1, 1, Avg3(a, x0, i)); Set(0, 0, Avg3(a, x0, i));
                Set(3, 2, Avg3(b, a, x0)); Set(2, 1, Avg3(b, a, x0)); Set(1, 0, Avg3(b, a, x0));
                Set(3, 1, Avg3(c, b, a)); Set(2, 0, Avg3(c, b, a));
                Set(3, 0, Avg3(dd, c, b));
                break;
            case Vp8Decoder.LdPred:
                Set(0, 0, Avg3(a, b, c));
                Set(1, 0, Avg3(b, c, dd)); Set(0, 1, Avg3(b, c, dd));
                Set(2, 0, Avg3(c, dd, e)); Set(1, 1, Avg3(c, dd, e)); Set(0, 2, Avg3(c, dd, e));
                Set(3, 0, Avg3(dd, e, f)); Set(2, 1, Avg3(dd, e, f)); Set(1, 2, Avg3(dd, e, f)); Set(0, 3, Avg3(dd, e, f));
                Set(3, 1, Avg3(e, f, g)); Set(2, 2, Avg3(e, f, g)); Set(1, 3, Avg3(e, f, g));
                Set(3, 2, Avg3(f, g, h)); Set(2, 3, Avg3(f, g, h));
                Set(3, 3, Avg3(g, h, h));
                break;
            case Vp8Decoder.VrPred:
                Set(0, 0, Avg2(x0, a)); Set(1, 2, Avg2(x0, a));
                Set(1, 0, Avg2(a, b)); Set(2, 2, Avg2(a, b));
                Set(2, 0, Avg2(b, c)); Set(3, 2, Avg2(b, c));
                Set(3, 0, Avg2(c, dd));
                Set(0, 3, Avg3(k, j, i));
                Set(0, 2, Avg3(j, i, x0));
                Set(0, 1, Avg3(i, x0, a)); Set(1, 3, Avg3(i, x0, a));
                Set(1, 1, Avg3(x0, a, b)); Set(2, 3, Avg3(x0, a, b));
                Set(2, 1, Avg3(a, b, c)); Set(3, 3, Avg3(a, b, c));
                Set(3, 1, Avg3(b, c, dd));
                break;
            case Vp8Decoder.VlPred:
                Set(0, 0, Avg2(a, b));
                Set(1, 0, Avg2(b, c)); Set(0, 2, Avg2(b, c));
                Set(2, 0, Avg2(c, dd)); Set(1, 2, Avg2(c, dd));
                Set(3, 0, Avg2(dd, e)); Set(2, 2, Avg2(dd, e));
                Set(0, 1, Avg3(a, b, c));
                Set(1, 1, Avg3(b, c, dd)); Set(0, 3, Avg3(b, c, dd));
                Set(2, 1, Avg3(c, dd, e)); Set(1, 3, Avg3(c, dd, e));
                Set(3, 1, Avg3(dd, e, f)); Set(2, 3, Avg3(dd, e, f));
                Set(3, 2, Avg3(e, f, g));
                Set(3, 3, Avg3(f, g, h));
                break;
            case Vp8Decoder.HdPred:
                Set(0, 0, Avg2(i, x0)); Set(2, 1, Avg2(i, x0));
                Set(0, 1, Avg2(j, i)); Set(2, 2, Avg2(j, i));
                Set(0, 2, Avg2(k, j)); Set(2, 3, Avg2(k, j));
                Set(0, 3, Avg2(l, k));
                Set(3, 0, Avg3(a, b, c));
                Set(2, 0, Avg3(x0, a, b));
                Set(1, 0, Avg3(i, x0, a)); Set(3, 1, Avg3(i, x0, a));
                Set(1, 1, Avg3(j, i, x0)); Set(3, 2, Avg3(j, i, x0));
                Set(1, 2, Avg3(k, j, i)); Set(3, 3, Avg3(k, j, i));
                Set(1, 3, Avg3(l, k, j));
                break;
            default: // HU
                Set(0, 0, Avg2(i, j));
                Set(2, 0, Avg2(j, k)); Set(0, 1, Avg2(j, k));
                Set(2, 1, Avg2(k, l)); Set(0, 2, Avg2(k, l));
                Set(1, 0, Avg3(i, j, k));
                Set(3, 0, Avg3(j, k, l)); Set(1, 1, Avg3(j, k, l));
                Set(3, 1, Avg3(k, l, l)); Set(1, 2, Avg3(k, l, l));
                Set(3, 2, (byte)l); Set(2, 2, (byte)l); Set(0, 3, (byte)l); Set(1, 3, (byte)l); Set(2, 3, (byte)l); Set(3, 3, (byte)l);
                break;
        }
    }
}
