namespace ResNet.Runtime.Images;

/// <summary>
/// libjpeg's block smoothing of a progressive JPEG whose scans leave the first nine AC coefficients inexact
/// (jdcoefct.c, decompress_smooth_data): a block's coefficients still zero are estimated from the DC terms of the
/// 5×5 blocks around it, and with no AC data at all the DC term too. PIL decodes with it on (libjpeg's default),
/// so a progressive file that ends before its last scans — an end-of-image marker in damaged data, or an encoder's
/// script that stops refining early — gives these pixels. Whole files refine every bit, and nothing changes.
/// </summary>
internal static class JpegSmoothing
{
    /// <summary>Zigzag positions 1–9 (the coefficients smoothed) in natural order.</summary>
    private static readonly int[] Natural = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24];

    /// <summary>
    /// libjpeg's smoothing_ok: every component has its quantization table, with the ten smoothed terms nonzero, and
    /// some DC data; and some component's first nine AC coefficients are not exact.
    /// </summary>
    public static bool Applies(JpegDecoder.Component[] components)
    {
        bool useful = false;
        foreach (var c in components)
        {
            if (c.Quant == null || Natural.Any(k => c.Quant[k] == 0) || c.CoefBits[0] < 0) return false;
            for (int k = 1; k < 10; k++) useful |= c.CoefBits[k] != 0;
        }
        return useful;
    }

    /// <summary>
    /// Block row <paramref name="by"/> of <paramref name="c"/> with libjpeg's estimates, into <paramref name="workspace"/>
    /// (64 coefficients per block of the row; blocks past the component's edge copied as they are).
    /// <paramref name="iMcuRows"/>: the frame's MCU rows; <paramref name="lastGoodRow"/>: the last MCU row the last
    /// scan had data for (the rows after it take the bits known before that scan).
    /// </summary>
    public static unsafe void SmoothRow(JpegDecoder.Component c, int by, int iMcuRows, int lastGoodRow, short* workspace)
    {
        fixed (short* all = c.Coefficients)
        {
            long stride = (long)c.BlocksW * 64;
            short* row = all + by * stride;
            new ReadOnlySpan<short>(row, (int)stride).CopyTo(new Span<short>(workspace, (int)stride));
            if (by >= c.OwnBlocksH) return;
            // The neighbouring block rows as libjpeg picks them, edges repeated (its conditions, quirks included: in
            // the next-to-last MCU row the row two below is never used).
            int v = c.V, r = by / v, blockRow = by % v, last = iMcuRows - 1;
            int blockRows = r < last ? v : c.OwnBlocksH % v == 0 ? v : c.OwnBlocksH % v;
            short* prev = blockRow > 0 || r > 0 ? row - stride : row;
            short* prevPrev = blockRow > 1 || r > 1 ? row - 2 * stride : prev;
            short* next = blockRow < blockRows - 1 || r < last ? row + stride : row;
            short* nextNext = blockRow < blockRows - 2 || r + 1 < last ? row + 2 * stride : next;
            short*[] rows = [prevPrev, prev, row, next, nextNext];
            var bits = r > lastGoodRow ? c.PrevCoefBits : c.CoefBits;
            bool changeDc = true;
            for (int k = 1; k < 10; k++) changeDc &= bits[k] == -1;
            // libjpeg's sliding registers of DC terms: five rows by five columns around the block, starting as the
            // first column, taking column bx + 2 while it is inside the image.
            var dc = new int[25];
            for (int i = 0; i < 5; i++) dc.AsSpan(5 * i, 5).Fill(rows[i][0]);
            int lastColumn = c.OwnBlocksW - 1;
            for (int bx = 0; bx <= lastColumn; bx++)
            {
                for (int i = 0; i < 5; i++)
                {
                    if (bx == 0 && bx < lastColumn) dc[5 * i + 3] = rows[i][64];
                    if (bx + 1 < lastColumn) dc[5 * i + 4] = rows[i][(bx + 2) * 64];
                }
                Estimate(c.Quant!, bits, changeDc, dc, workspace + bx * 64);
                for (int i = 0; i < 5; i++) dc.AsSpan(5 * i + 1, 4).CopyTo(dc.AsSpan(5 * i, 4));
            }
        }
    }

    /// <summary>One block's estimates from its 5×5 DC window (<paramref name="dc"/>: libjpeg's DC01–DC25, row by row).</summary>
    private static unsafe void Estimate(int[] quant, int[] bits, bool changeDc, int[] dc, short* block)
    {
        long q00 = quant[0];
        int D(int n) => dc[n - 1];
        void Predict(int zigzag, long num)
        {
            int al = bits[zigzag], pos = Natural[zigzag];
            if (al == 0 || block[pos] != 0) return;
            long q = quant[pos];
            num *= q00;
            int pred = (int)(((q << 7) + Math.Abs(num)) / (q << 8));
            if (al > 0 && pred >= 1 << al) pred = (1 << al) - 1;
            block[pos] = (short)(num >= 0 ? pred : -pred);
        }
        Predict(1, changeDc
            ? -D(1) - D(2) + D(4) + D(5) - 3 * D(6) + 13 * D(7) - 13 * D(9) + 3 * D(10) - 3 * D(11) + 38 * D(12) - 38 * D(14)
              + 3 * D(15) - 3 * D(16) + 13 * D(17) - 13 * D(19) + 3 * D(20) - D(21) - D(22) + D(24) + D(25)
            : -7 * D(11) + 50 * D(12) - 50 * D(14) + 7 * D(15));
        Predict(2, changeDc
            ? -D(1) - 3 * D(2) - 3 * D(3) - 3 * D(4) - D(5) - D(6) + 13 * D(7) + 38 * D(8) + 13 * D(9) - D(10) + D(16)
              - 13 * D(17) - 38 * D(18) - 13 * D(19) + D(20) + D(21) + 3 * D(22) + 3 * D(23) + 3 * D(24) + D(25)
            : -7 * D(3) + 50 * D(8) - 50 * D(18) + 7 * D(23));
        Predict(3, changeDc
            ? D(3) + 2 * D(7) + 7 * D(8) + 2 * D(9) - 5 * D(12) - 14 * D(13) - 5 * D(14) + 2 * D(17) + 7 * D(18) + 2 * D(19) + D(23)
            : -D(3) + 13 * D(8) - 24 * D(13) + 13 * D(18) - D(23));
        Predict(4, changeDc
            ? -D(1) + D(5) + 9 * D(7) - 9 * D(9) - 9 * D(17) + 9 * D(19) + D(21) - D(25)
            : D(10) + D(16) - 10 * D(17) + 10 * D(19) - D(2) - D(20) + D(22) - D(24) + D(4) - D(6) + 10 * D(7) - 10 * D(9));
        Predict(5, changeDc
            ? 2 * D(7) - 5 * D(8) + 2 * D(9) + D(11) + 7 * D(12) - 14 * D(13) + 7 * D(14) + D(15) + 2 * D(17) - 5 * D(18) + 2 * D(19)
            : -D(11) + 13 * D(12) - 24 * D(13) + 13 * D(14) - D(15));
        if (!changeDc) return;
        Predict(6, D(7) - D(9) + 2 * D(12) - 2 * D(14) + D(17) - D(19));
        Predict(7, D(7) - 3 * D(8) + D(9) - D(17) + 3 * D(18) - D(19));
        Predict(8, D(7) - D(9) - 3 * D(12) + 3 * D(14) + D(17) - D(19));
        Predict(9, D(7) + 2 * D(8) + D(9) - D(17) - 2 * D(18) - D(19));
        // The DC term itself (libjpeg needs its bits known, which Applies checked).
        long num = q00 * (-2 * D(1) - 6 * D(2) - 8 * D(3) - 6 * D(4) - 2 * D(5) - 6 * D(6) + 6 * D(7) + 42 * D(8) + 6 * D(9)
            - 6 * D(10) - 8 * D(11) + 42 * D(12) + 152 * D(13) + 42 * D(14) - 8 * D(15) - 6 * D(16) + 6 * D(17) + 42 * D(18)
            + 6 * D(19) - 6 * D(20) - 2 * D(21) - 6 * D(22) - 8 * D(23) - 6 * D(24) - 2 * D(25));
        int pred = (int)(((q00 << 7) + Math.Abs(num)) / (q00 << 8));
        block[0] = (short)(num >= 0 ? pred : -pred);
    }
}
