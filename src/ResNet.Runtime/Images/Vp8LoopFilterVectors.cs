using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using V = System.Runtime.Intrinsics.Vector128<short>;

namespace ResNet.Runtime.Images;

/// <summary>
/// The loop filter eight pixels of an edge at a time: each pixel's arithmetic as in the scalar filter, in 16-bit
/// lanes, its choice of filter made by masks. A horizontal edge's pixels lie in rows; a vertical edge's eight rows are
/// transposed in and out.
/// </summary>
internal static unsafe partial class Vp8LoopFilter
{
    /// <summary>Whether edges go through the vectors (tests turn it off to check the scalar filter against PIL too).</summary>
    internal static bool Vectorized = Sse2.IsSupported;

    private const int Simple = 0, Inner = 1, MacroblockEdge = 2;

    /// <summary>
    /// <paramref name="count"/> (8 or 16) pixels of an edge from <paramref name="p"/>, one every <paramref name="along"/>;
    /// <paramref name="s"/> steps across it. One of the two is 1.
    /// </summary>
    private static void EdgeVectors(byte* p, int s, int along, int count, int limit, int interior, int hev, int kind)
    {
        for (int g = 0; g < count; g += 8)
        {
            V p3, p2, p1, p0, q0, q1, q2, q3;
            if (along == 1)
            {
                byte* at = p + g;
                p3 = Row(at - 4 * s); p2 = Row(at - 3 * s); p1 = Row(at - 2 * s); p0 = Row(at - s);
                q0 = Row(at); q1 = Row(at + s); q2 = Row(at + 2 * s); q3 = Row(at + 3 * s);
                if (!Kernel(ref p2, ref p1, ref p0, ref q0, ref q1, ref q2, p3, q3, limit, interior, hev, kind)) continue;
                Store(at - 3 * s, p2); Store(at - 2 * s, p1); Store(at - s, p0);
                Store(at, q0); Store(at + s, q1); Store(at + 2 * s, q2);
            }
            else
            {
                byte* at = p + g * along - 4;
                Transpose(Vector128.CreateScalarUnsafe(*(ulong*)at).AsByte(), Vector128.CreateScalarUnsafe(*(ulong*)(at + along)).AsByte(),
                    Vector128.CreateScalarUnsafe(*(ulong*)(at + 2 * along)).AsByte(), Vector128.CreateScalarUnsafe(*(ulong*)(at + 3 * along)).AsByte(),
                    Vector128.CreateScalarUnsafe(*(ulong*)(at + 4 * along)).AsByte(), Vector128.CreateScalarUnsafe(*(ulong*)(at + 5 * along)).AsByte(),
                    Vector128.CreateScalarUnsafe(*(ulong*)(at + 6 * along)).AsByte(), Vector128.CreateScalarUnsafe(*(ulong*)(at + 7 * along)).AsByte(),
                    out var c01, out var c23, out var c45, out var c67);
                p3 = Vector128.WidenLower(c01).AsInt16(); p2 = Vector128.WidenUpper(c01).AsInt16();
                p1 = Vector128.WidenLower(c23).AsInt16(); p0 = Vector128.WidenUpper(c23).AsInt16();
                q0 = Vector128.WidenLower(c45).AsInt16(); q1 = Vector128.WidenUpper(c45).AsInt16();
                q2 = Vector128.WidenLower(c67).AsInt16(); q3 = Vector128.WidenUpper(c67).AsInt16();
                if (!Kernel(ref p2, ref p1, ref p0, ref q0, ref q1, ref q2, p3, q3, limit, interior, hev, kind)) continue;
                var w01 = Vector128.Narrow(p3.AsUInt16(), p2.AsUInt16());
                var w23 = Vector128.Narrow(p1.AsUInt16(), p0.AsUInt16());
                var w45 = Vector128.Narrow(q0.AsUInt16(), q1.AsUInt16());
                var w67 = Vector128.Narrow(q2.AsUInt16(), q3.AsUInt16());
                Transpose(w01, Sse2.ShiftRightLogical128BitLane(w01, 8), w23, Sse2.ShiftRightLogical128BitLane(w23, 8),
                    w45, Sse2.ShiftRightLogical128BitLane(w45, 8), w67, Sse2.ShiftRightLogical128BitLane(w67, 8),
                    out var r01, out var r23, out var r45, out var r67);
                *(ulong*)at = r01.AsUInt64().GetElement(0);
                *(ulong*)(at + along) = r01.AsUInt64().GetElement(1);
                *(ulong*)(at + 2 * along) = r23.AsUInt64().GetElement(0);
                *(ulong*)(at + 3 * along) = r23.AsUInt64().GetElement(1);
                *(ulong*)(at + 4 * along) = r45.AsUInt64().GetElement(0);
                *(ulong*)(at + 5 * along) = r45.AsUInt64().GetElement(1);
                *(ulong*)(at + 6 * along) = r67.AsUInt64().GetElement(0);
                *(ulong*)(at + 7 * along) = r67.AsUInt64().GetElement(1);
            }
        }
    }

    private static V Row(byte* at) => Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)at).AsByte()).AsInt16();

    private static void Store(byte* at, V v) => *(ulong*)at = Vector128.Narrow(v.AsUInt16(), v.AsUInt16()).AsUInt64().ToScalar();

    /// <summary>
    /// An 8×8 transpose: rows <paramref name="r0"/>..<paramref name="r7"/> (8 bytes each, in the low half) become
    /// columns, two to a vector (column 0 in <paramref name="c01"/>'s low half, column 1 in its high half, ...).
    /// </summary>
    private static void Transpose(Vector128<byte> r0, Vector128<byte> r1, Vector128<byte> r2, Vector128<byte> r3,
        Vector128<byte> r4, Vector128<byte> r5, Vector128<byte> r6, Vector128<byte> r7,
        out Vector128<byte> c01, out Vector128<byte> c23, out Vector128<byte> c45, out Vector128<byte> c67)
    {
        var t0 = Sse2.UnpackLow(r0, r1).AsInt16();
        var t1 = Sse2.UnpackLow(r2, r3).AsInt16();
        var t2 = Sse2.UnpackLow(r4, r5).AsInt16();
        var t3 = Sse2.UnpackLow(r6, r7).AsInt16();
        var u0 = Sse2.UnpackLow(t0, t1).AsInt32();
        var u1 = Sse2.UnpackHigh(t0, t1).AsInt32();
        var u2 = Sse2.UnpackLow(t2, t3).AsInt32();
        var u3 = Sse2.UnpackHigh(t2, t3).AsInt32();
        c01 = Sse2.UnpackLow(u0, u2).AsByte();
        c23 = Sse2.UnpackHigh(u0, u2).AsByte();
        c45 = Sse2.UnpackLow(u1, u3).AsByte();
        c67 = Sse2.UnpackHigh(u1, u3).AsByte();
    }

    private static V Clamp(V v, short lo, short hi) => Vector128.Min(Vector128.Max(v, Vector128.Create(lo)), Vector128.Create(hi));
    private static V Sra(V v, int n) => Vector128.ShiftRightArithmetic(v, n);

    /// <summary>Filters the lanes that pass the edge's tests; false when none does (nothing to store).</summary>
    private static bool Kernel(ref V p2, ref V p1, ref V p0, ref V q0, ref V q1, ref V q2, V p3, V q3, int limit, int interior, int hev, int kind)
    {
        var mask = Vector128.LessThanOrEqual(Vector128.Abs(p0 - q0) * 4 + Vector128.Abs(p1 - q1), Vector128.Create((short)(2 * limit + 1)));
        if (kind != Simple)
        {
            var i = Vector128.Create((short)interior);
            mask &= Vector128.LessThanOrEqual(Vector128.Abs(p3 - p2), i) & Vector128.LessThanOrEqual(Vector128.Abs(p2 - p1), i)
                & Vector128.LessThanOrEqual(Vector128.Abs(p1 - p0), i) & Vector128.LessThanOrEqual(Vector128.Abs(q3 - q2), i)
                & Vector128.LessThanOrEqual(Vector128.Abs(q2 - q1), i) & Vector128.LessThanOrEqual(Vector128.Abs(q1 - q0), i);
        }
        if (mask == V.Zero) return false;
        var d3 = (q0 - p0) * 3;
        // The two-pixel filter (the simple filter's, and the normal one's where the edge's variance is high).
        var a = d3 + Clamp(p1 - q1, -128, 127);
        var p0Two = Clamp(p0 + Clamp(Sra(a + Vector128.Create((short)3), 3), -16, 15), 0, 255);
        var q0Two = Clamp(q0 - Clamp(Sra(a + Vector128.Create((short)4), 3), -16, 15), 0, 255);
        if (kind == Simple)
        {
            p0 = Vector128.ConditionalSelect(mask, p0Two, p0);
            q0 = Vector128.ConditionalSelect(mask, q0Two, q0);
            return true;
        }
        var h = Vector128.Create((short)hev);
        var high = Vector128.GreaterThan(Vector128.Abs(p1 - p0), h) | Vector128.GreaterThan(Vector128.Abs(q1 - q0), h);
        var two = mask & high;
        var wide = Vector128.AndNot(mask, high);
        if (kind == MacroblockEdge)
        {
            var w = Clamp(a, -128, 127);
            var c63 = Vector128.Create((short)63);
            var a1 = Sra(w * 27 + c63, 7);
            var a2 = Sra(w * 18 + c63, 7);
            var a3 = Sra(w * 9 + c63, 7);
            p2 = Vector128.ConditionalSelect(wide, Clamp(p2 + a3, 0, 255), p2);
            p1 = Vector128.ConditionalSelect(wide, Clamp(p1 + a2, 0, 255), p1);
            p0 = Vector128.ConditionalSelect(two, p0Two, Vector128.ConditionalSelect(wide, Clamp(p0 + a1, 0, 255), p0));
            q0 = Vector128.ConditionalSelect(two, q0Two, Vector128.ConditionalSelect(wide, Clamp(q0 - a1, 0, 255), q0));
            q1 = Vector128.ConditionalSelect(wide, Clamp(q1 - a2, 0, 255), q1);
            q2 = Vector128.ConditionalSelect(wide, Clamp(q2 - a3, 0, 255), q2);
        }
        else
        {
            var f1 = Clamp(Sra(d3 + Vector128.Create((short)4), 3), -16, 15);
            var f2 = Clamp(Sra(d3 + Vector128.Create((short)3), 3), -16, 15);
            var f3 = Sra(f1 + Vector128.Create((short)1), 1);
            p1 = Vector128.ConditionalSelect(wide, Clamp(p1 + f3, 0, 255), p1);
            p0 = Vector128.ConditionalSelect(two, p0Two, Vector128.ConditionalSelect(wide, Clamp(p0 + f2, 0, 255), p0));
            q0 = Vector128.ConditionalSelect(two, q0Two, Vector128.ConditionalSelect(wide, Clamp(q0 - f1, 0, 255), q0));
            q1 = Vector128.ConditionalSelect(wide, Clamp(q1 - f3, 0, 255), q1);
        }
        return true;
    }
}
