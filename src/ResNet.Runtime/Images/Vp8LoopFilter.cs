namespace ResNet.Runtime.Images;

/// <summary>
/// VP8's loop filter (RFC 6386 §15) over the decoded planes, macroblock by macroblock in raster order as libwebp runs
/// it: the left edge, the inner vertical edges, the top edge, the inner horizontal edges. The simple filter touches
/// luma only; the normal one luma and chroma.
/// </summary>
internal static unsafe partial class Vp8LoopFilter
{
    public static void Apply(Vp8Decoder p, bool simple, int mbWidth, int mbHeight, (int Limit, int Interior, int Hev, bool Inner)[] strengths)
    {
        fixed (byte* yPlane = p.Y, uPlane = p.U, vPlane = p.V)
        {
            int ys = p.YStride, us = p.UvStride;
            for (int mbY = 0; mbY < mbHeight; mbY++)
            {
                for (int mbX = 0; mbX < mbWidth; mbX++)
                {
                    var (limit, interior, hev, inner) = strengths[mbY * mbWidth + mbX];
                    if (limit == 0) continue;
                    byte* y = yPlane + mbY * 16 * ys + mbX * 16;
                    if (simple)
                    {
                        if (mbX > 0) SimpleEdge(y, 1, ys, limit + 4);
                        if (inner) for (int k = 4; k < 16; k += 4) SimpleEdge(y + k, 1, ys, limit);
                        if (mbY > 0) SimpleEdge(y, ys, 1, limit + 4);
                        if (inner) for (int k = 4; k < 16; k += 4) SimpleEdge(y + k * ys, ys, 1, limit);
                        continue;
                    }
                    int uvOffset = mbY * 8 * us + mbX * 8;
                    byte* u = uPlane + uvOffset, v = vPlane + uvOffset;
                    if (mbX > 0)
                    {
                        NormalEdge(y, 1, ys, 16, limit + 4, interior, hev, true);
                        NormalEdge(u, 1, us, 8, limit + 4, interior, hev, true);
                        NormalEdge(v, 1, us, 8, limit + 4, interior, hev, true);
                    }
                    if (inner)
                    {
                        for (int k = 4; k < 16; k += 4) NormalEdge(y + k, 1, ys, 16, limit, interior, hev, false);
                        NormalEdge(u + 4, 1, us, 8, limit, interior, hev, false);
                        NormalEdge(v + 4, 1, us, 8, limit, interior, hev, false);
                    }
                    if (mbY > 0)
                    {
                        NormalEdge(y, ys, 1, 16, limit + 4, interior, hev, true);
                        NormalEdge(u, us, 1, 8, limit + 4, interior, hev, true);
                        NormalEdge(v, us, 1, 8, limit + 4, interior, hev, true);
                    }
                    if (inner)
                    {
                        for (int k = 4; k < 16; k += 4) NormalEdge(y + k * ys, ys, 1, 16, limit, interior, hev, false);
                        NormalEdge(u + 4 * us, us, 1, 8, limit, interior, hev, false);
                        NormalEdge(v + 4 * us, us, 1, 8, limit, interior, hev, false);
                    }
                }
            }
        }
    }

    // An edge of 16 (or `count`) pixels from `p`, one every `along`; `s` steps across it, from one side to the other.

    private static void SimpleEdge(byte* p, int s, int along, int limit)
    {
        if (Vectorized)
        {
            EdgeVectors(p, s, along, 16, limit, 0, 0, Simple);
            return;
        }
        int threshold = 2 * limit + 1;
        for (int n = 0; n < 16; n++, p += along)
        {
            int p1 = p[-2 * s], p0 = p[-s], q0 = p[0], q1 = p[s];
            if (4 * Abs(p0 - q0) + Abs(p1 - q1) <= threshold) Filter2(p, s, p1, p0, q0, q1);
        }
    }

    /// <summary>The normal filter along an edge: six pixels move on a macroblock's edge, four on an inner one (two where the variance is high).</summary>
    private static void NormalEdge(byte* p, int s, int along, int count, int limit, int interior, int hev, bool macroblockEdge)
    {
        if (Vectorized)
        {
            EdgeVectors(p, s, along, count, limit, interior, hev, macroblockEdge ? MacroblockEdge : Inner);
            return;
        }
        int threshold = 2 * limit + 1;
        for (int n = 0; n < count; n++, p += along)
        {
            int p3 = p[-4 * s], p2 = p[-3 * s], p1 = p[-2 * s], p0 = p[-s];
            int q0 = p[0], q1 = p[s], q2 = p[2 * s], q3 = p[3 * s];
            if (4 * Abs(p0 - q0) + Abs(p1 - q1) > threshold) continue;
            if (Abs(p3 - p2) > interior || Abs(p2 - p1) > interior || Abs(p1 - p0) > interior
                || Abs(q3 - q2) > interior || Abs(q2 - q1) > interior || Abs(q1 - q0) > interior) continue;
            if (Abs(p1 - p0) > hev || Abs(q1 - q0) > hev) Filter2(p, s, p1, p0, q0, q1);
            else if (macroblockEdge) Filter6(p, s, p2, p1, p0, q0, q1, q2);
            else Filter4(p, s, p1, p0, q0, q1);
        }
    }

    private static int Abs(int v) => v < 0 ? -v : v;
    private static int S8(int v) => v < -128 ? -128 : v > 127 ? 127 : v;
    private static int S4(int v) => v < -16 ? -16 : v > 15 ? 15 : v;
    private static byte Clip(int v) => Vp8Reconstruction.Clip(v);

    /// <summary>Moves the two pixels next to the edge.</summary>
    private static void Filter2(byte* p, int s, int p1, int p0, int q0, int q1)
    {
        int a = 3 * (q0 - p0) + S8(p1 - q1);
        int a1 = S4((a + 4) >> 3);
        int a2 = S4((a + 3) >> 3);
        p[-s] = Clip(p0 + a2);
        p[0] = Clip(q0 - a1);
    }

    /// <summary>The inner edges' filter: four pixels.</summary>
    private static void Filter4(byte* p, int s, int p1, int p0, int q0, int q1)
    {
        int a = 3 * (q0 - p0);
        int a1 = S4((a + 4) >> 3);
        int a2 = S4((a + 3) >> 3);
        int a3 = (a1 + 1) >> 1;
        p[-2 * s] = Clip(p1 + a3);
        p[-s] = Clip(p0 + a2);
        p[0] = Clip(q0 - a1);
        p[s] = Clip(q1 - a3);
    }

    /// <summary>The macroblock edges' filter: six pixels.</summary>
    private static void Filter6(byte* p, int s, int p2, int p1, int p0, int q0, int q1, int q2)
    {
        int a = S8(3 * (q0 - p0) + S8(p1 - q1));
        int a1 = (27 * a + 63) >> 7;
        int a2 = (18 * a + 63) >> 7;
        int a3 = (9 * a + 63) >> 7;
        p[-3 * s] = Clip(p2 + a3);
        p[-2 * s] = Clip(p1 + a2);
        p[-s] = Clip(p0 + a1);
        p[0] = Clip(q0 - a1);
        p[s] = Clip(q1 - a2);
        p[2 * s] = Clip(q2 - a3);
    }
}
