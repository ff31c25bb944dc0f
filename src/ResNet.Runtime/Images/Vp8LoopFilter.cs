namespace ResNet.Runtime.Images;

/// <summary>
/// VP8's loop filter (RFC 6386 §15) over the decoded planes, macroblock by macroblock in raster order as libwebp runs
/// it: the left edge, the inner vertical edges, the top edge, the inner horizontal edges. The simple filter touches
/// luma only; the normal one luma and chroma.
/// </summary>
internal static class Vp8LoopFilter
{
    public static void Apply(Vp8Decoder p, bool simple, int mbWidth, int mbHeight, (int Limit, int Interior, int Hev, bool Inner)[] strengths)
    {
        for (int mbY = 0; mbY < mbHeight; mbY++)
        {
            for (int mbX = 0; mbX < mbWidth; mbX++)
            {
                var (limit, interior, hev, inner) = strengths[mbY * mbWidth + mbX];
                if (limit == 0) continue;
                int y = mbY * 16 * p.YStride + mbX * 16, ys = p.YStride;
                if (simple)
                {
                    if (mbX > 0) SimpleEdge(p.Y, y, 1, ys, 16, limit + 4);
                    if (inner) for (int k = 4; k < 16; k += 4) SimpleEdge(p.Y, y + k, 1, ys, 16, limit);
                    if (mbY > 0) SimpleEdge(p.Y, y, ys, 1, 16, limit + 4);
                    if (inner) for (int k = 4; k < 16; k += 4) SimpleEdge(p.Y, y + k * ys, ys, 1, 16, limit);
                    continue;
                }
                int uv = mbY * 8 * p.UvStride + mbX * 8, us = p.UvStride;
                if (mbX > 0)
                {
                    MacroblockEdge(p.Y, y, 1, ys, 16, limit + 4, interior, hev);
                    MacroblockEdge(p.U, uv, 1, us, 8, limit + 4, interior, hev);
                    MacroblockEdge(p.V, uv, 1, us, 8, limit + 4, interior, hev);
                }
                if (inner)
                {
                    for (int k = 4; k < 16; k += 4) InnerEdge(p.Y, y + k, 1, ys, 16, limit, interior, hev);
                    InnerEdge(p.U, uv + 4, 1, us, 8, limit, interior, hev);
                    InnerEdge(p.V, uv + 4, 1, us, 8, limit, interior, hev);
                }
                if (mbY > 0)
                {
                    MacroblockEdge(p.Y, y, ys, 1, 16, limit + 4, interior, hev);
                    MacroblockEdge(p.U, uv, us, 1, 8, limit + 4, interior, hev);
                    MacroblockEdge(p.V, uv, us, 1, 8, limit + 4, interior, hev);
                }
                if (inner)
                {
                    for (int k = 4; k < 16; k += 4) InnerEdge(p.Y, y + k * ys, ys, 1, 16, limit, interior, hev);
                    InnerEdge(p.U, uv + 4 * us, us, 1, 8, limit, interior, hev);
                    InnerEdge(p.V, uv + 4 * us, us, 1, 8, limit, interior, hev);
                }
            }
        }
    }

    // An edge of `count` pixels from `at`, one every `along`; `across` steps from one side of the edge to the other.

    private static void SimpleEdge(byte[] d, int at, int across, int along, int count, int limit)
    {
        int threshold = 2 * limit + 1;
        for (int n = 0; n < count; n++, at += along)
            if (NeedsFilter(d, at, across, threshold)) Filter2(d, at, across);
    }

    /// <summary>The normal filter along an edge: six pixels move on a macroblock's edge, four on an inner one (two where the variance is high).</summary>
    private static void NormalEdge(byte[] d, int at, int across, int along, int count, int limit, int interior, int hev, bool macroblockEdge)
    {
        int threshold = 2 * limit + 1;
        for (int n = 0; n < count; n++, at += along)
        {
            if (!NeedsFilter2(d, at, across, threshold, interior)) continue;
            if (HighEdgeVariance(d, at, across, hev)) Filter2(d, at, across);
            else if (macroblockEdge) Filter6(d, at, across);
            else Filter4(d, at, across);
        }
    }

    private static void MacroblockEdge(byte[] d, int at, int across, int along, int count, int limit, int interior, int hev) =>
        NormalEdge(d, at, across, along, count, limit, interior, hev, true);

    private static void InnerEdge(byte[] d, int at, int across, int along, int count, int limit, int interior, int hev) =>
        NormalEdge(d, at, across, along, count, limit, interior, hev, false);

    private static int Clamp(int v, int lo, int hi) => v < lo ? lo : v > hi ? hi : v;
    private static int S8(int v) => Clamp(v, -128, 127);
    private static int S4(int v) => Clamp(v, -16, 15);

    private static bool NeedsFilter(byte[] d, int at, int s, int threshold)
    {
        int p1 = d[at - 2 * s], p0 = d[at - s], q0 = d[at], q1 = d[at + s];
        return 4 * Math.Abs(p0 - q0) + Math.Abs(p1 - q1) <= threshold;
    }

    private static bool NeedsFilter2(byte[] d, int at, int s, int threshold, int interior)
    {
        int p3 = d[at - 4 * s], p2 = d[at - 3 * s], p1 = d[at - 2 * s], p0 = d[at - s];
        int q0 = d[at], q1 = d[at + s], q2 = d[at + 2 * s], q3 = d[at + 3 * s];
        if (4 * Math.Abs(p0 - q0) + Math.Abs(p1 - q1) > threshold) return false;
        return Math.Abs(p3 - p2) <= interior && Math.Abs(p2 - p1) <= interior && Math.Abs(p1 - p0) <= interior
            && Math.Abs(q3 - q2) <= interior && Math.Abs(q2 - q1) <= interior && Math.Abs(q1 - q0) <= interior;
    }

    private static bool HighEdgeVariance(byte[] d, int at, int s, int threshold) =>
        Math.Abs(d[at - 2 * s] - d[at - s]) > threshold || Math.Abs(d[at + s] - d[at]) > threshold;

    /// <summary>Moves the two pixels next to the edge.</summary>
    private static void Filter2(byte[] d, int at, int s)
    {
        int p1 = d[at - 2 * s], p0 = d[at - s], q0 = d[at], q1 = d[at + s];
        int a = 3 * (q0 - p0) + S8(p1 - q1);
        int a1 = S4((a + 4) >> 3);
        int a2 = S4((a + 3) >> 3);
        d[at - s] = Vp8Reconstruction.Clip(p0 + a2);
        d[at] = Vp8Reconstruction.Clip(q0 - a1);
    }

    /// <summary>The inner edges' filter: four pixels.</summary>
    private static void Filter4(byte[] d, int at, int s)
    {
        int p1 = d[at - 2 * s], p0 = d[at - s], q0 = d[at], q1 = d[at + s];
        int a = 3 * (q0 - p0);
        int a1 = S4((a + 4) >> 3);
        int a2 = S4((a + 3) >> 3);
        int a3 = (a1 + 1) >> 1;
        d[at - 2 * s] = Vp8Reconstruction.Clip(p1 + a3);
        d[at - s] = Vp8Reconstruction.Clip(p0 + a2);
        d[at] = Vp8Reconstruction.Clip(q0 - a1);
        d[at + s] = Vp8Reconstruction.Clip(q1 - a3);
    }

    /// <summary>The macroblock edges' filter: six pixels.</summary>
    private static void Filter6(byte[] d, int at, int s)
    {
        int p2 = d[at - 3 * s], p1 = d[at - 2 * s], p0 = d[at - s];
        int q0 = d[at], q1 = d[at + s], q2 = d[at + 2 * s];
        int a = S8(3 * (q0 - p0) + S8(p1 - q1));
        int a1 = (27 * a + 63) >> 7;
        int a2 = (18 * a + 63) >> 7;
        int a3 = (9 * a + 63) >> 7;
        d[at - 3 * s] = Vp8Reconstruction.Clip(p2 + a3);
        d[at - 2 * s] = Vp8Reconstruction.Clip(p1 + a2);
        d[at - s] = Vp8Reconstruction.Clip(p0 + a1);
        d[at] = Vp8Reconstruction.Clip(q0 - a1);
        d[at + s] = Vp8Reconstruction.Clip(q1 - a2);
        d[at + 2 * s] = Vp8Reconstruction.Clip(q2 - a3);
    }
}
