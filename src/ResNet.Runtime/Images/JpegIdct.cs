using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResNet.Runtime.Images;

/// <summary>
/// Dequantization and inverse DCT of one 8×8 block, integer for integer what libjpeg's "islow" method computes
/// (jidctint.c: the Loeffler–Ligtenberg–Moschytz factorization in 13-bit fixed point, 2 extra bits between
/// passes, results wrapped through libjpeg's range-limit table). That is the method PIL decodes with, so pixels
/// come out identical to torchvision's loader. Eight columns (then eight rows) go through the 1-D transform at
/// once, one per 32-bit lane.
/// </summary>
internal static class JpegIdct
{
    private const int ConstBits = 13, Pass1Bits = 2;
    private const int Fix0_298631336 = 2446, Fix0_390180644 = 3196, Fix0_541196100 = 4433, Fix0_765366865 = 6270,
        Fix0_899976223 = 7373, Fix1_175875602 = 9633, Fix1_501321110 = 12299, Fix1_847759065 = 15137,
        Fix1_961570560 = 16069, Fix2_053119869 = 16819, Fix2_562915447 = 20995, Fix3_072711026 = 25172;

    /// <summary>
    /// Transforms <paramref name="coefficients"/> (natural order) with <paramref name="quant"/> (natural order)
    /// into 8 rows of 8 samples at <paramref name="output"/>, <paramref name="stride"/> bytes apart.
    /// </summary>
    public static unsafe void Transform(short* coefficients, int* quant, byte* output, int stride)
    {
        // Pass 1, columns: lane c of row vector r holds coefficient (r, c), dequantized.
        var r0 = Load(coefficients, quant, 0); var r1 = Load(coefficients, quant, 1);
        var r2 = Load(coefficients, quant, 2); var r3 = Load(coefficients, quant, 3);
        var r4 = Load(coefficients, quant, 4); var r5 = Load(coefficients, quant, 5);
        var r6 = Load(coefficients, quant, 6); var r7 = Load(coefficients, quant, 7);
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ConstBits - Pass1Bits);
        // Now r_k lane c is the workspace value of row k, column c; pass 2 needs rows in lanes.
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ConstBits + Pass1Bits + 3);
        // r_k lane j is output sample (row j, column k): transpose back and range-limit.
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Store(r0, output); Store(r1, output + stride); Store(r2, output + 2 * stride); Store(r3, output + 3 * stride);
        Store(r4, output + 4 * stride); Store(r5, output + 5 * stride); Store(r6, output + 6 * stride); Store(r7, output + 7 * stride);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<int> Load(short* c, int* q, int row) =>
        Vector256.WidenLower(Vector256.Create(Vector128.Load(c + 8 * row), Vector128<short>.Zero)) * Vector256.Load(q + 8 * row);

    /// <summary>
    /// The 1-D transform of jidctint.c on eight lanes at once, descaled by <paramref name="shift"/> with rounding.
    /// libjpeg's shortcuts for all-zero AC terms produce the same values, so they are not needed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Butterfly(ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3,
        ref Vector256<int> i4, ref Vector256<int> i5, ref Vector256<int> i6, ref Vector256<int> i7, int shift)
    {
        // Even part.
        var z1 = (i2 + i6) * Fix0_541196100;
        var tmp2 = z1 + i6 * -Fix1_847759065;
        var tmp3 = z1 + i2 * Fix0_765366865;
        var tmp0 = (i0 + i4) << ConstBits;
        var tmp1 = (i0 - i4) << ConstBits;
        var tmp10 = tmp0 + tmp3;
        var tmp13 = tmp0 - tmp3;
        var tmp11 = tmp1 + tmp2;
        var tmp12 = tmp1 - tmp2;
        // Odd part.
        tmp3 = i1; tmp2 = i3; tmp1 = i5; tmp0 = i7;
        var z4 = tmp1 + tmp3;
        var z3 = tmp0 + tmp2;
        var z2 = tmp1 + tmp2;
        z1 = tmp0 + tmp3;
        var z5 = (z3 + z4) * Fix1_175875602;
        tmp3 *= Fix1_501321110;
        tmp2 *= Fix3_072711026;
        tmp1 *= Fix2_053119869;
        tmp0 *= Fix0_298631336;
        z4 = z4 * -Fix0_390180644 + z5;
        z3 = z3 * -Fix1_961570560 + z5;
        z1 *= -Fix0_899976223;
        z2 *= -Fix2_562915447;
        tmp3 += z1 + z4;
        tmp2 += z2 + z3;
        tmp1 += z2 + z4;
        tmp0 += z1 + z3;
        var round = Vector256.Create(1 << (shift - 1));
        i0 = (tmp10 + tmp3 + round) >> shift;
        i7 = (tmp10 - tmp3 + round) >> shift;
        i1 = (tmp11 + tmp2 + round) >> shift;
        i6 = (tmp11 - tmp2 + round) >> shift;
        i2 = (tmp12 + tmp1 + round) >> shift;
        i5 = (tmp12 - tmp1 + round) >> shift;
        i3 = (tmp13 + tmp0 + round) >> shift;
        i4 = (tmp13 - tmp0 + round) >> shift;
    }

    /// <summary>
    /// libjpeg's post-IDCT range limit: x + 128 clamped to 0..255 for x in [-640, 384), and wrapping (via the
    /// index mask 1023) outside it, which only corrupt data reaches.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(Vector256<int> x, byte* output)
    {
        var wrapped = ((x + Vector256.Create(512)) & Vector256.Create(1023)) - Vector256.Create(512); // in [-512, 512)
        var limited = Vector256.Min(Vector256.Max(wrapped + Vector256.Create(128), Vector256<int>.Zero), Vector256.Create(255));
        limited &= ~Vector256.GreaterThanOrEqual(wrapped, Vector256.Create(384)); // the table's zeros past 383
        var shorts = Vector256.Narrow(limited, limited);                             // lanes 0..7 hold the values
        var bytes = Vector256.Narrow(shorts.AsUInt16(), shorts.AsUInt16());
        *(ulong*)output = bytes.AsUInt64().GetElement(0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose(ref Vector256<int> r0, ref Vector256<int> r1, ref Vector256<int> r2, ref Vector256<int> r3,
        ref Vector256<int> r4, ref Vector256<int> r5, ref Vector256<int> r6, ref Vector256<int> r7)
    {
        // 2×2 blocks of 32-bit, then 64-bit, then 128-bit halves.
        var t0 = Unpack(r0, r1, low: true); var t1 = Unpack(r0, r1, low: false);
        var t2 = Unpack(r2, r3, low: true); var t3 = Unpack(r2, r3, low: false);
        var t4 = Unpack(r4, r5, low: true); var t5 = Unpack(r4, r5, low: false);
        var t6 = Unpack(r6, r7, low: true); var t7 = Unpack(r6, r7, low: false);
        var u0 = Unpack64(t0, t2, low: true); var u1 = Unpack64(t0, t2, low: false);
        var u2 = Unpack64(t1, t3, low: true); var u3 = Unpack64(t1, t3, low: false);
        var u4 = Unpack64(t4, t6, low: true); var u5 = Unpack64(t4, t6, low: false);
        var u6 = Unpack64(t5, t7, low: true); var u7 = Unpack64(t5, t7, low: false);
        r0 = Vector256.Create(u0.GetLower(), u4.GetLower()); r4 = Vector256.Create(u0.GetUpper(), u4.GetUpper());
        r1 = Vector256.Create(u1.GetLower(), u5.GetLower()); r5 = Vector256.Create(u1.GetUpper(), u5.GetUpper());
        r2 = Vector256.Create(u2.GetLower(), u6.GetLower()); r6 = Vector256.Create(u2.GetUpper(), u6.GetUpper());
        r3 = Vector256.Create(u3.GetLower(), u7.GetLower()); r7 = Vector256.Create(u3.GetUpper(), u7.GetUpper());
    }

    /// <summary>Per 128-bit half: interleave the low (or high) two 32-bit lanes of a and b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Unpack(Vector256<int> a, Vector256<int> b, bool low)
    {
        if (Avx2.IsSupported) return low ? Avx2.UnpackLow(a, b) : Avx2.UnpackHigh(a, b);
        int o = low ? 0 : 2;
        return Vector256.Create(a[o], b[o], a[o + 1], b[o + 1], a[o + 4], b[o + 4], a[o + 5], b[o + 5]);
    }

    /// <summary>Per 128-bit half: interleave the low (or high) 64-bit lanes of a and b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Unpack64(Vector256<int> a, Vector256<int> b, bool low)
    {
        Vector256<long> x = a.AsInt64(), y = b.AsInt64();
        if (Avx2.IsSupported) return (low ? Avx2.UnpackLow(x, y) : Avx2.UnpackHigh(x, y)).AsInt32();
        int o = low ? 0 : 1;
        return Vector256.Create(x[o], y[o], x[o + 2], y[o + 2]).AsInt32();
    }
}
