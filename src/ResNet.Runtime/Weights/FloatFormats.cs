using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ResNet.Runtime.Weights;

/// <summary>
/// The floating-point dtypes weights may be stored in, read as float32 the way PyTorch's <c>load_state_dict</c>
/// copies them into a float32 model's parameters (<c>Tensor.copy_</c>): float16 and bfloat16 widen exactly, float64
/// rounds to the nearest float32 (ties to even, as C's conversion does). Weights shared at half the size load as
/// they load into torchvision's model.
/// </summary>
internal static class FloatFormats
{
    /// <summary>Whether <paramref name="dtype"/> (PyTorch's name) holds values a float32 parameter can take.</summary>
    public static bool IsFloating(string dtype) => dtype is "float32" or "float16" or "bfloat16" or "float64";

    /// <summary>The bytes of one element of floating-point <paramref name="dtype"/>.</summary>
    public static int Size(string dtype) => dtype switch
    {
        "float16" or "bfloat16" => 2,
        "float32" => 4,
        "float64" => 8,
        _ => throw new ArgumentException($"{dtype} is not a floating-point dtype", nameof(dtype)),
    };

    /// <summary>Reverses the bytes of each <paramref name="elementSize"/>-byte element of <paramref name="data"/>, in place (big-endian to little).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SwapBytes(Span<byte> data, int elementSize)
    {
        switch (elementSize)
        {
            case 2: BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, ushort>(data), MemoryMarshal.Cast<byte, ushort>(data)); break;
            case 4: BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, uint>(data), MemoryMarshal.Cast<byte, uint>(data)); break;
            case 8: BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, ulong>(data), MemoryMarshal.Cast<byte, ulong>(data)); break;
        }
    }

    /// <summary>Element <paramref name="index"/> of a little-endian storage of <paramref name="dtype"/>.</summary>
    public static float Read(ReadOnlySpan<byte> storage, long index, string dtype) => dtype switch
    {
        "float32" => BinaryPrimitives.ReadSingleLittleEndian(storage.Slice(checked((int)(index * 4)), 4)),
        "float16" => (float)BinaryPrimitives.ReadHalfLittleEndian(storage.Slice(checked((int)(index * 2)), 2)),
        "bfloat16" => BFloat16(BinaryPrimitives.ReadUInt16LittleEndian(storage.Slice(checked((int)(index * 2)), 2))),
        "float64" => (float)BinaryPrimitives.ReadDoubleLittleEndian(storage.Slice(checked((int)(index * 8)), 8)),
        _ => throw new ArgumentException($"{dtype} is not a floating-point dtype", nameof(dtype)),
    };

    /// <summary>Converts the contiguous little-endian elements in <paramref name="source"/> to <paramref name="destination"/>, one for one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Convert(ReadOnlySpan<byte> source, string dtype, Span<float> destination)
    {
        if (dtype == "float32" && BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, float>(source)[..destination.Length].CopyTo(destination);
            return;
        }
        // The dtype is chosen once, not per element: ResNet-18 has 11.7 M of them.
        switch (dtype)
        {
            case "float16" when BitConverter.IsLittleEndian:
                HalfToSingle(MemoryMarshal.Cast<byte, ushort>(source)[..destination.Length], destination);
                break;
            case "float16":
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source.Slice(i * 2, 2));
                break;
            case "bfloat16":
                for (int i = 0; i < destination.Length; i++) destination[i] = BFloat16(BinaryPrimitives.ReadUInt16LittleEndian(source.Slice(i * 2, 2)));
                break;
            case "float64":
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(source.Slice(i * 8, 8));
                break;
            default: // float32 on a big-endian machine
                for (int i = 0; i < destination.Length; i++) destination[i] = Read(source, i, dtype);
                break;
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with the elements <paramref name="source"/> holds next, converted a chunk at
    /// a time (no array the size of the tensor's bytes, whose fresh pages would cost more than the conversion); false
    /// when the stream ends first.
    /// </summary>
    public static bool ConvertFrom(Stream source, string dtype, Span<float> destination)
    {
        int size = Size(dtype);
        Span<byte> chunk = stackalloc byte[16384];
        for (int done = 0; done < destination.Length;)
        {
            int count = Math.Min(chunk.Length / size, destination.Length - done), filled = 0;
            while (filled < count * size)
            {
                int n = source.Read(chunk[filled..(count * size)]);
                if (n == 0) return false;
                filled += n;
            }
            Convert(chunk[..filled], dtype, destination.Slice(done, count));
            done += count;
        }
        return true;
    }

    /// <summary>
    /// float16 bits to float32, 16 at a time where 256-bit vectors run (the scalar conversion took ~15 ms of a float16
    /// ResNet-18's loading): the exponent and mantissa shifted into a float32's place are the value times 2^-112,
    /// exactly, subnormals included, so one multiply rescales them; infinities and NaNs get float32's all-ones exponent
    /// instead (NaNs quiet); the sign goes back on last. Equal to <c>(float)(Half)</c> for all 65,536 patterns (a test checks).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void HalfToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var scale = Vector256.Create(BitConverter.Int32BitsToSingle(0x77800000)); // 2^112
            var magnitude = Vector256.Create(0x7FFFu);
            var infinity = Vector256.Create(0x7C00u);
            for (; i + 16 <= source.Length; i += 16)
            {
                var (lower, upper) = Vector256.Widen(Vector256.Create(source.Slice(i, 16)));
                Widened(lower, scale, magnitude, infinity).CopyTo(destination.Slice(i, 8));
                Widened(upper, scale, magnitude, infinity).CopyTo(destination.Slice(i + 8, 8));
            }
        }
        for (; i < source.Length; i++) destination[i] = (float)BitConverter.UInt16BitsToHalf(source[i]);
    }

    private static Vector256<float> Widened(Vector256<uint> h, Vector256<float> scale, Vector256<uint> magnitude, Vector256<uint> infinity)
    {
        var m = h & magnitude;
        var finite = ((m << 13).AsSingle() * scale).AsUInt32();
        // NaNs come out quiet, as the BCL's conversion and the hardware's make them.
        var special = (m << 13) | Vector256.Create(0x7F800000u) | (Vector256.GreaterThan(m, infinity) & Vector256.Create(0x00400000u));
        return (Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(m, infinity), special, finite) | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>bfloat16 is float32's upper half: widening is a shift.</summary>
    private static float BFloat16(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);
}
