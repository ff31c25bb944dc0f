namespace ResNet.Runtime.Images;

/// <summary>
/// Rebuilds one macroblock at a time in a small work area laid out as libwebp's (32 bytes a row, a border row above and
/// four columns to the left), so that prediction sees exactly libwebp's neighbours: the unfiltered bottom rows of the
/// macroblocks above, kept per column, and the previous macroblock's right columns; 127 above the frame and 129 left
/// of it. Then the residuals are added (§14) and the macroblock copied into the planes.
/// </summary>
internal sealed unsafe class Vp8Reconstruction
{
    private const int Bps = 32;
    private const int Origin = Bps + 8; // (0, 0) of each work area: one row above it, eight columns to its left

    private readonly byte[] _y = new byte[Bps * 17];
    private readonly byte[] _u = new byte[Bps * 9];
    private readonly byte[] _v = new byte[Bps * 9];
    // The unfiltered last row of each macroblock of the row above: 16 Y, 8 U, 8 V per column.
    private readonly byte[] _topY, _topU, _topV;
    private readonly int _mbWidth;
    private int _mbY;

    public Vp8Reconstruction(int mbWidth)
    {
        _mbWidth = mbWidth;
        _topY = new byte[16 * mbWidth];
        _topU = new byte[8 * mbWidth];
        _topV = new byte[8 * mbWidth];
    }

    public void StartRow(int mbY)
    {
        _mbY = mbY;
        for (int j = 0; j < 16; j++) _y[Origin + j * Bps - 1] = 129;
        for (int j = 0; j < 8; j++) _u[Origin + j * Bps - 1] = _v[Origin + j * Bps - 1] = 129;
        if (mbY > 0)
        {
            _y[Origin - Bps - 1] = _u[Origin - Bps - 1] = _v[Origin - Bps - 1] = 129;
        }
        else
        {
            _y.AsSpan(Origin - Bps - 1, 16 + 4 + 1).Fill(127);
            _u.AsSpan(Origin - Bps - 1, 8 + 1).Fill(127);
            _v.AsSpan(Origin - Bps - 1, 8 + 1).Fill(127);
        }
    }

    public void Macroblock(int mbX, int mbY, bool i4x4, byte[] modes, int uvMode, short[] coeffs, bool residual, Vp8Decoder planes)
    {
        fixed (byte* yWork = _y, uWork = _u, vWork = _v, topY = _topY, topU = _topU, topV = _topV)
        fixed (short* c = coeffs)
        {
            byte* y = yWork + Origin, u = uWork + Origin, v = vWork + Origin;
            if (mbX > 0)
            {
                // The previous macroblock's right columns (and the row above them) become this one's left border.
                for (int j = -1; j < 16; j++) *(uint*)(y + j * Bps - 4) = *(uint*)(y + j * Bps + 12);
                for (int j = -1; j < 8; j++)
                {
                    *(uint*)(u + j * Bps - 4) = *(uint*)(u + j * Bps + 4);
                    *(uint*)(v + j * Bps - 4) = *(uint*)(v + j * Bps + 4);
                }
            }
            if (mbY > 0)
            {
                Buffer.MemoryCopy(topY + 16 * mbX, y - Bps, 16, 16);
                *(ulong*)(u - Bps) = *(ulong*)(topU + 8 * mbX);
                *(ulong*)(v - Bps) = *(ulong*)(topV + 8 * mbX);
            }

            if (i4x4)
            {
                uint* topRight = (uint*)(y - Bps + 16);
                if (mbY > 0) *topRight = mbX >= _mbWidth - 1 ? topY[16 * mbX + 15] * 0x01010101u : *(uint*)(topY + 16 * (mbX + 1));
                // The 4×4 blocks on the right edge below the first row read the same four pixels as their top-right.
                for (int k = 1; k <= 3; k++) *(uint*)((byte*)topRight + 4 * k * Bps) = *topRight;
                for (int n = 0; n < 16; n++)
                {
                    byte* at = y + (n >> 2) * 4 * Bps + (n & 3) * 4;
                    Vp8Predict.Luma4(at, modes[n]);
                    if (residual) AddResidual(c + n * 16, at);
                }
            }
            else
            {
                Vp8Predict.Luma16(y, Edge(modes[0], mbX, mbY));
                if (residual)
                    for (int n = 0; n < 16; n++) AddResidual(c + n * 16, y + (n >> 2) * 4 * Bps + (n & 3) * 4);
            }
            int chroma = Edge(uvMode, mbX, mbY);
            Vp8Predict.Chroma8(u, chroma);
            Vp8Predict.Chroma8(v, chroma);
            if (residual)
            {
                for (int n = 0; n < 4; n++)
                {
                    int at = (n >> 1) * 4 * Bps + (n & 1) * 4;
                    AddResidual(c + (16 + n) * 16, u + at);
                    AddResidual(c + (20 + n) * 16, v + at);
                }
            }

            Buffer.MemoryCopy(y + 15 * Bps, topY + 16 * mbX, 16, 16);
            *(ulong*)(topU + 8 * mbX) = *(ulong*)(u + 7 * Bps);
            *(ulong*)(topV + 8 * mbX) = *(ulong*)(v + 7 * Bps);

            fixed (byte* yPlane = planes.Y, uPlane = planes.U, vPlane = planes.V)
            {
                byte* yOut = yPlane + mbY * 16 * planes.YStride + mbX * 16;
                for (int j = 0; j < 16; j++) Buffer.MemoryCopy(y + j * Bps, yOut + j * planes.YStride, 16, 16);
                int uvOffset = mbY * 8 * planes.UvStride + mbX * 8;
                for (int j = 0; j < 8; j++)
                {
                    *(ulong*)(uPlane + uvOffset + j * planes.UvStride) = *(ulong*)(u + j * Bps);
                    *(ulong*)(vPlane + uvOffset + j * planes.UvStride) = *(ulong*)(v + j * Bps);
                }
            }
        }
    }

    /// <summary>DC prediction without the neighbours the frame's edge takes away (libwebp's modes 4-6).</summary>
    private static int Edge(int mode, int mbX, int mbY) =>
        mode != Vp8Decoder.DcPred ? mode : mbX == 0 ? (mbY == 0 ? Vp8Predict.DcNoTopLeft : Vp8Predict.DcNoLeft) : mbY == 0 ? Vp8Predict.DcNoTop : mode;

    /// <summary>The inverse DCT of one block (§14.3, libwebp's integer form) added to the prediction at <paramref name="dst"/>.</summary>
    [System.Runtime.CompilerServices.SkipLocalsInit]
    private static void AddResidual(short* input, byte* dst)
    {
        if ((((ulong*)input)[0] | ((ulong*)input)[1] | ((ulong*)input)[2] | ((ulong*)input)[3]) == 0) return;
        int* tmp = stackalloc int[16];
        for (int i = 0; i < 4; i++)
        {
            int a = input[i] + input[8 + i];
            int b = input[i] - input[8 + i];
            int c = Mul2(input[4 + i]) - Mul1(input[12 + i]);
            int d = Mul1(input[4 + i]) + Mul2(input[12 + i]);
            tmp[4 * i] = a + d;
            tmp[4 * i + 1] = b + c;
            tmp[4 * i + 2] = b - c;
            tmp[4 * i + 3] = a - d;
        }
        for (int i = 0; i < 4; i++, dst += Bps)
        {
            int dc = tmp[i] + 4;
            int a = dc + tmp[8 + i];
            int b = dc - tmp[8 + i];
            int c = Mul2(tmp[4 + i]) - Mul1(tmp[12 + i]);
            int d = Mul1(tmp[4 + i]) + Mul2(tmp[12 + i]);
            dst[0] = Clip(dst[0] + ((a + d) >> 3));
            dst[1] = Clip(dst[1] + ((b + c) >> 3));
            dst[2] = Clip(dst[2] + ((b - c) >> 3));
            dst[3] = Clip(dst[3] + ((a - d) >> 3));
        }
    }

    private static int Mul1(int a) => ((a * 20091) >> 16) + a;
    private static int Mul2(int a) => (a * 35468) >> 16;
    internal static byte Clip(int v) => (uint)v <= 255 ? (byte)v : v < 0 ? (byte)0 : (byte)255;

    /// <summary>The inverse Walsh-Hadamard transform of a 16×16 macroblock's second-order block (§14.3): each result is a Y block's DC.</summary>
    public static void InverseWalshHadamard(ReadOnlySpan<short> input, Span<short> coeffs)
    {
        Span<int> tmp = stackalloc int[16];
        for (int i = 0; i < 4; i++)
        {
            int a0 = input[i] + input[12 + i];
            int a1 = input[4 + i] + input[8 + i];
            int a2 = input[4 + i] - input[8 + i];
            int a3 = input[i] - input[12 + i];
            tmp[i] = a0 + a1;
            tmp[8 + i] = a0 - a1;
            tmp[4 + i] = a3 + a2;
            tmp[12 + i] = a3 - a2;
        }
        for (int i = 0; i < 4; i++)
        {
            int dc = tmp[4 * i] + 3;
            int a0 = dc + tmp[4 * i + 3];
            int a1 = tmp[4 * i + 1] + tmp[4 * i + 2];
            int a2 = tmp[4 * i + 1] - tmp[4 * i + 2];
            int a3 = dc - tmp[4 * i + 3];
            coeffs[(4 * i) * 16] = unchecked((short)((a0 + a1) >> 3));
            coeffs[(4 * i + 1) * 16] = unchecked((short)((a3 + a2) >> 3));
            coeffs[(4 * i + 2) * 16] = unchecked((short)((a0 - a1) >> 3));
            coeffs[(4 * i + 3) * 16] = unchecked((short)((a3 - a2) >> 3));
        }
    }
}
