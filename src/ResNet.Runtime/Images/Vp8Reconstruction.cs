namespace ResNet.Runtime.Images;

/// <summary>
/// Rebuilds one macroblock at a time in a small work area laid out as libwebp's (32 bytes a row, a border row above and
/// four columns to the left), so that prediction sees exactly libwebp's neighbours: the unfiltered bottom rows of the
/// macroblocks above, kept per column, and the previous macroblock's right columns; 127 above the frame and 129 left
/// of it. Then the residuals are added (§14) and the macroblock copied into the planes.
/// </summary>
internal sealed class Vp8Reconstruction
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
        if (mbX > 0)
        {
            // The previous macroblock's right columns (and the row above them) become this one's left border.
            for (int j = -1; j < 16; j++) _y.AsSpan(Origin + j * Bps + 12, 4).CopyTo(_y.AsSpan(Origin + j * Bps - 4));
            for (int j = -1; j < 8; j++)
            {
                _u.AsSpan(Origin + j * Bps + 4, 4).CopyTo(_u.AsSpan(Origin + j * Bps - 4));
                _v.AsSpan(Origin + j * Bps + 4, 4).CopyTo(_v.AsSpan(Origin + j * Bps - 4));
            }
        }
        if (mbY > 0)
        {
            _topY.AsSpan(16 * mbX, 16).CopyTo(_y.AsSpan(Origin - Bps));
            _topU.AsSpan(8 * mbX, 8).CopyTo(_u.AsSpan(Origin - Bps));
            _topV.AsSpan(8 * mbX, 8).CopyTo(_v.AsSpan(Origin - Bps));
        }

        if (i4x4)
        {
            int topRight = Origin - Bps + 16;
            if (mbY > 0)
            {
                if (mbX >= _mbWidth - 1) _y.AsSpan(topRight, 4).Fill(_topY[16 * mbX + 15]);
                else _topY.AsSpan(16 * (mbX + 1), 4).CopyTo(_y.AsSpan(topRight));
            }
            // The 4×4 blocks on the right edge below the first row read the same four pixels as their top-right.
            for (int k = 1; k <= 3; k++) _y.AsSpan(topRight, 4).CopyTo(_y.AsSpan(topRight + 4 * k * Bps));
            for (int n = 0; n < 16; n++)
            {
                int at = Origin + (n >> 2) * 4 * Bps + (n & 3) * 4;
                Vp8Predict.Luma4(_y, at, modes[n]);
                if (residual) AddResidual(coeffs, n * 16, _y, at);
            }
        }
        else
        {
            Vp8Predict.Luma16(_y, Origin, Edge(modes[0], mbX, mbY));
            if (residual)
                for (int n = 0; n < 16; n++) AddResidual(coeffs, n * 16, _y, Origin + (n >> 2) * 4 * Bps + (n & 3) * 4);
        }
        int chroma = Edge(uvMode, mbX, mbY);
        Vp8Predict.Chroma8(_u, Origin, chroma);
        Vp8Predict.Chroma8(_v, Origin, chroma);
        if (residual)
        {
            for (int n = 0; n < 4; n++)
            {
                int at = Origin + (n >> 1) * 4 * Bps + (n & 1) * 4;
                AddResidual(coeffs, (16 + n) * 16, _u, at);
                AddResidual(coeffs, (20 + n) * 16, _v, at);
            }
        }

        _y.AsSpan(Origin + 15 * Bps, 16).CopyTo(_topY.AsSpan(16 * mbX));
        _u.AsSpan(Origin + 7 * Bps, 8).CopyTo(_topU.AsSpan(8 * mbX));
        _v.AsSpan(Origin + 7 * Bps, 8).CopyTo(_topV.AsSpan(8 * mbX));

        for (int j = 0; j < 16; j++)
            _y.AsSpan(Origin + j * Bps, 16).CopyTo(planes.Y.AsSpan((mbY * 16 + j) * planes.YStride + mbX * 16));
        for (int j = 0; j < 8; j++)
        {
            _u.AsSpan(Origin + j * Bps, 8).CopyTo(planes.U.AsSpan((mbY * 8 + j) * planes.UvStride + mbX * 8));
            _v.AsSpan(Origin + j * Bps, 8).CopyTo(planes.V.AsSpan((mbY * 8 + j) * planes.UvStride + mbX * 8));
        }
    }

    /// <summary>DC prediction without the neighbours the frame's edge takes away (libwebp's modes 4-6).</summary>
    private static int Edge(int mode, int mbX, int mbY) =>
        mode != Vp8Decoder.DcPred ? mode : mbX == 0 ? (mbY == 0 ? Vp8Predict.DcNoTopLeft : Vp8Predict.DcNoLeft) : mbY == 0 ? Vp8Predict.DcNoTop : mode;

    /// <summary>The inverse DCT of one block (§14.3, libwebp's integer form) added to the prediction at <paramref name="at"/>.</summary>
    private static void AddResidual(short[] coeffs, int offset, byte[] dst, int at)
    {
        var input = coeffs.AsSpan(offset, 16);
        bool any = false;
        foreach (short v in input) any |= v != 0;
        if (!any) return;
        Span<int> tmp = stackalloc int[16];
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
        for (int i = 0; i < 4; i++)
        {
            int dc = tmp[i] + 4;
            int a = dc + tmp[8 + i];
            int b = dc - tmp[8 + i];
            int c = Mul2(tmp[4 + i]) - Mul1(tmp[12 + i]);
            int d = Mul1(tmp[4 + i]) + Mul2(tmp[12 + i]);
            int row = at + i * Bps;
            dst[row] = Clip(dst[row] + ((a + d) >> 3));
            dst[row + 1] = Clip(dst[row + 1] + ((b + c) >> 3));
            dst[row + 2] = Clip(dst[row + 2] + ((b - c) >> 3));
            dst[row + 3] = Clip(dst[row + 3] + ((a - d) >> 3));
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
