using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResNet.Runtime.Images;

/// <summary>
/// Dequantization and inverse DCT of one 8×8 block, integer for integer what libjpeg-turbo's "islow" method
/// computes on x86-64, where it always runs its SIMD version (jidctint-avx2.asm, or the SSE2 one, which does the
/// same arithmetic): the Loeffler–Ligtenberg–Moschytz factorization in 13-bit fixed point with 2 extra bits
/// between passes, in 16-bit lanes. That is the method PIL decodes with, so pixels come out identical to
/// torchvision's loader. Valid data gives what the C version (jidctint.c) gives; corrupt data's huge coefficients
/// go through the SIMD code's 16-bit wrap-arounds and saturations (<see cref="Butterfly{T}"/>), which differ from
/// the C version's range-limit table, so those are reproduced. Eight columns (then eight rows) go through the 1-D
/// transform at once, one per 32-bit lane.
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
        if (ShortcutWraps(coefficients, r0)) r0 = r1 = r2 = r3 = r4 = r5 = r6 = r7 = DcColumns(r0);
        else Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ConstBits - Pass1Bits, short.MinValue, short.MaxValue);
        // Now r_k lane c is the workspace value of row k, column c; pass 2 needs rows in lanes.
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ConstBits + Pass1Bits + 3, sbyte.MinValue, sbyte.MaxValue);
        // r_k lane j is output sample (row j, column k): transpose back and range-limit.
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Store(r0, output); Store(r1, output + stride); Store(r2, output + 2 * stride); Store(r3, output + 3 * stride);
        Store(r4, output + 4 * stride); Store(r5, output + 5 * stride); Store(r6, output + 6 * stride); Store(r7, output + 7 * stride);
    }

    /// <summary>
    /// <see cref="Transform"/> for two blocks with the same quantization table at once, one per 256-bit half of
    /// 512-bit vectors (where they are accelerated; else one after the other). The same integers, so the same bytes.
    /// </summary>
    public static unsafe void Transform2(short* first, short* second, int* quant, byte* firstOutput, byte* secondOutput, int stride)
    {
        Vector512<int> r0;
        if (!Vector512.IsHardwareAccelerated
            || ShortcutWraps(first, (r0 = Load2(first, second, quant, 0)).GetLower()) || ShortcutWraps(second, r0.GetUpper()))
        {
            Transform(first, quant, firstOutput, stride);
            Transform(second, quant, secondOutput, stride);
            return;
        }
        var r1 = Load2(first, second, quant, 1);
        var r2 = Load2(first, second, quant, 2); var r3 = Load2(first, second, quant, 3);
        var r4 = Load2(first, second, quant, 4); var r5 = Load2(first, second, quant, 5);
        var r6 = Load2(first, second, quant, 6); var r7 = Load2(first, second, quant, 7);
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ConstBits - Pass1Bits, short.MinValue, short.MaxValue);
        Transpose2(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ConstBits + Pass1Bits + 3, sbyte.MinValue, sbyte.MaxValue);
        Transpose2(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Store2(r0, firstOutput, secondOutput); Store2(r1, firstOutput + stride, secondOutput + stride);
        Store2(r2, firstOutput + 2 * stride, secondOutput + 2 * stride); Store2(r3, firstOutput + 3 * stride, secondOutput + 3 * stride);
        Store2(r4, firstOutput + 4 * stride, secondOutput + 4 * stride); Store2(r5, firstOutput + 5 * stride, secondOutput + 5 * stride);
        Store2(r6, firstOutput + 6 * stride, secondOutput + 6 * stride); Store2(r7, firstOutput + 7 * stride, secondOutput + 7 * stride);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector512<int> Load2(short* first, short* second, int* q, int row)
    {
        var shorts = Vector256.Create(Vector128.Load(first + 8 * row), Vector128.Load(second + 8 * row));
        var quant = Vector256.Load(q + 8 * row);
        return Wrap16(Avx512F.ConvertToVector512Int32(shorts) * Vector512.Create(quant, quant));
    }

    /// <summary>
    /// Whether the SIMD code's first-pass shortcut gives this block other values than its full first pass. With
    /// coefficient rows 1 to 7 all zero it gives each column its dequantized first-row term shifted left by two in
    /// 16 bits (DcColumns), which wraps where the full pass saturates: only where such a term (<paramref name="row0"/>)
    /// is 8192 or more in magnitude, which only corrupt data reaches, so that is tested first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe bool ShortcutWraps(short* c, Vector256<int> row0)
    {
        if (!Vector256.GreaterThanOrEqualAny(Vector256.Abs(row0), Vector256.Create(8192))) return false;
        var any = Vector128.Load(c + 8) | Vector128.Load(c + 16) | Vector128.Load(c + 24) | Vector128.Load(c + 32)
            | Vector128.Load(c + 40) | Vector128.Load(c + 48) | Vector128.Load(c + 56);
        return any == Vector128<short>.Zero;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> DcColumns(Vector256<int> dc) => (dc << (16 + Pass1Bits)) >> 16;


    /// <summary>The low 16 bits of each lane, sign-extended: the SIMD code's 16-bit multiplies and adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Wrap16(Vector512<int> x) => (x << 16) >> 16;

    /// <summary>Each 256-bit half (one block) transposed as 8×8 32-bit values, as <see cref="Transpose"/> does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose2(ref Vector512<int> r0, ref Vector512<int> r1, ref Vector512<int> r2, ref Vector512<int> r3,
        ref Vector512<int> r4, ref Vector512<int> r5, ref Vector512<int> r6, ref Vector512<int> r7)
    {
        var t0 = Avx512F.UnpackLow(r0, r1); var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3); var t3 = Avx512F.UnpackHigh(r2, r3);
        var t4 = Avx512F.UnpackLow(r4, r5); var t5 = Avx512F.UnpackHigh(r4, r5);
        var t6 = Avx512F.UnpackLow(r6, r7); var t7 = Avx512F.UnpackHigh(r6, r7);
        Vector512<long> u0 = Avx512F.UnpackLow(t0.AsInt64(), t2.AsInt64()), u1 = Avx512F.UnpackHigh(t0.AsInt64(), t2.AsInt64());
        Vector512<long> u2 = Avx512F.UnpackLow(t1.AsInt64(), t3.AsInt64()), u3 = Avx512F.UnpackHigh(t1.AsInt64(), t3.AsInt64());
        Vector512<long> u4 = Avx512F.UnpackLow(t4.AsInt64(), t6.AsInt64()), u5 = Avx512F.UnpackHigh(t4.AsInt64(), t6.AsInt64());
        Vector512<long> u6 = Avx512F.UnpackLow(t5.AsInt64(), t7.AsInt64()), u7 = Avx512F.UnpackHigh(t5.AsInt64(), t7.AsInt64());
        // 128-bit lanes: the low lane of each block's half from the first source, then from the second.
        var low = Vector512.Create(0L, 1, 8, 9, 4, 5, 12, 13);
        var high = Vector512.Create(2L, 3, 10, 11, 6, 7, 14, 15);
        r0 = Avx512F.PermuteVar8x64x2(u0, low, u4).AsInt32(); r4 = Avx512F.PermuteVar8x64x2(u0, high, u4).AsInt32();
        r1 = Avx512F.PermuteVar8x64x2(u1, low, u5).AsInt32(); r5 = Avx512F.PermuteVar8x64x2(u1, high, u5).AsInt32();
        r2 = Avx512F.PermuteVar8x64x2(u2, low, u6).AsInt32(); r6 = Avx512F.PermuteVar8x64x2(u2, high, u6).AsInt32();
        r3 = Avx512F.PermuteVar8x64x2(u3, low, u7).AsInt32(); r7 = Avx512F.PermuteVar8x64x2(u3, high, u7).AsInt32();
    }

    /// <summary><see cref="Store"/> on 16 lanes: the first eight to one block's row, the rest to the other's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store2(Vector512<int> x, byte* first, byte* second)
    {
        var bytes = Avx512F.ConvertToVector128Byte(x + Vector512.Create(128)).AsUInt64();
        *(ulong*)first = bytes.GetElement(0);
        *(ulong*)second = bytes.GetElement(1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<int> Load(short* c, int* q, int row)
    {
        var product = Vector256.WidenLower(Vector256.Create(Vector128.Load(c + 8 * row), Vector128<short>.Zero)) * Vector256.Load(q + 8 * row);
        return (product << 16) >> 16; // the SIMD code's 16-bit multiply
    }

    /// <summary>The 1-D transform on eight lanes (one block's columns or rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Butterfly(ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3,
        ref Vector256<int> i4, ref Vector256<int> i5, ref Vector256<int> i6, ref Vector256<int> i7, int shift, int min, int max)
    {
        Lanes8 l0 = new(i0), l1 = new(i1), l2 = new(i2), l3 = new(i3), l4 = new(i4), l5 = new(i5), l6 = new(i6), l7 = new(i7);
        Butterfly(ref l0, ref l1, ref l2, ref l3, ref l4, ref l5, ref l6, ref l7, shift, min, max);
        (i0, i1, i2, i3, i4, i5, i6, i7) = (l0.V, l1.V, l2.V, l3.V, l4.V, l5.V, l6.V, l7.V);
    }

    /// <summary>The 1-D transform on sixteen lanes (two blocks' columns or rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Butterfly(ref Vector512<int> i0, ref Vector512<int> i1, ref Vector512<int> i2, ref Vector512<int> i3,
        ref Vector512<int> i4, ref Vector512<int> i5, ref Vector512<int> i6, ref Vector512<int> i7, int shift, int min, int max)
    {
        Lanes16 l0 = new(i0), l1 = new(i1), l2 = new(i2), l3 = new(i3), l4 = new(i4), l5 = new(i5), l6 = new(i6), l7 = new(i7);
        Butterfly(ref l0, ref l1, ref l2, ref l3, ref l4, ref l5, ref l6, ref l7, shift, min, max);
        (i0, i1, i2, i3, i4, i5, i6, i7) = (l0.V, l1.V, l2.V, l3.V, l4.V, l5.V, l6.V, l7.V);
    }

    /// <summary>
    /// The 1-D transform of jidctint.c on every lane at once (inputs 16-bit values), descaled by
    /// <paramref name="shift"/> with rounding and saturated to [<paramref name="min"/>, <paramref name="max"/>]
    /// as the SIMD code packs its results (16 bits after the first pass; bytes, centred, after the second). Its
    /// products and their sums are 32-bit there as here (the same integers modulo 2^32, whatever the grouping),
    /// but four sums of inputs are 16-bit adds, which wrap: those are wrapped here too.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Butterfly<T>(ref T i0, ref T i1, ref T i2, ref T i3, ref T i4, ref T i5, ref T i6, ref T i7, int shift, int min, int max)
        where T : struct, ILanes<T>
    {
        // Even part.
        var z1 = (i2 + i6) * Fix0_541196100;
        var tmp2 = z1 + i6 * -Fix1_847759065;
        var tmp3 = z1 + i2 * Fix0_765366865;
        var tmp0 = Wrap16(i0 + i4) << ConstBits;
        var tmp1 = Wrap16(i0 - i4) << ConstBits;
        var tmp10 = tmp0 + tmp3;
        var tmp13 = tmp0 - tmp3;
        var tmp11 = tmp1 + tmp2;
        var tmp12 = tmp1 - tmp2;
        // Odd part.
        tmp3 = i1; tmp2 = i3; tmp1 = i5; tmp0 = i7;
        var z4 = Wrap16(tmp1 + tmp3);
        var z3 = Wrap16(tmp0 + tmp2);
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
        var round = T.Create(1 << (shift - 1));
        T lo = T.Create(min), hi = T.Create(max);
        i0 = T.Clamp((tmp10 + tmp3 + round) >> shift, lo, hi);
        i7 = T.Clamp((tmp10 - tmp3 + round) >> shift, lo, hi);
        i1 = T.Clamp((tmp11 + tmp2 + round) >> shift, lo, hi);
        i6 = T.Clamp((tmp11 - tmp2 + round) >> shift, lo, hi);
        i2 = T.Clamp((tmp12 + tmp1 + round) >> shift, lo, hi);
        i5 = T.Clamp((tmp12 - tmp1 + round) >> shift, lo, hi);
        i3 = T.Clamp((tmp13 + tmp0 + round) >> shift, lo, hi);
        i4 = T.Clamp((tmp13 - tmp0 + round) >> shift, lo, hi);

        static T Wrap16(T x) => (x << 16) >> 16;
    }

    /// <summary>32-bit integer lanes the butterfly runs on (Vector256 and Vector512 share no such interface).</summary>
    private interface ILanes<T> where T : struct, ILanes<T>
    {
        static abstract T Create(int value);
        static abstract T operator +(T a, T b);
        static abstract T operator -(T a, T b);
        static abstract T operator *(T a, int b);
        static abstract T operator <<(T a, int b);
        static abstract T operator >>(T a, int b);
        static abstract T Clamp(T a, T min, T max);
    }

    private readonly struct Lanes8(Vector256<int> v) : ILanes<Lanes8>
    {
        public readonly Vector256<int> V = v;
        public static Lanes8 Create(int value) => new(Vector256.Create(value));
        public static Lanes8 operator +(Lanes8 a, Lanes8 b) => new(a.V + b.V);
        public static Lanes8 operator -(Lanes8 a, Lanes8 b) => new(a.V - b.V);
        public static Lanes8 operator *(Lanes8 a, int b) => new(a.V * b);
        public static Lanes8 operator <<(Lanes8 a, int b) => new(a.V << b);
        public static Lanes8 operator >>(Lanes8 a, int b) => new(a.V >> b);
        public static Lanes8 Clamp(Lanes8 a, Lanes8 min, Lanes8 max) => new(Vector256.Min(Vector256.Max(a.V, min.V), max.V));
    }

    private readonly struct Lanes16(Vector512<int> v) : ILanes<Lanes16>
    {
        public readonly Vector512<int> V = v;
        public static Lanes16 Create(int value) => new(Vector512.Create(value));
        public static Lanes16 operator +(Lanes16 a, Lanes16 b) => new(a.V + b.V);
        public static Lanes16 operator -(Lanes16 a, Lanes16 b) => new(a.V - b.V);
        public static Lanes16 operator *(Lanes16 a, int b) => new(a.V * b);
        public static Lanes16 operator <<(Lanes16 a, int b) => new(a.V << b);
        public static Lanes16 operator >>(Lanes16 a, int b) => new(a.V >> b);
        public static Lanes16 Clamp(Lanes16 a, Lanes16 min, Lanes16 max) => new(Vector512.Min(Vector512.Max(a.V, min.V), max.V));
    }

    /// <summary>One row of samples: the second pass's results (saturated to [-128, 127]) centred on 128.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(Vector256<int> x, byte* output)
    {
        var limited = x + Vector256.Create(128);
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
