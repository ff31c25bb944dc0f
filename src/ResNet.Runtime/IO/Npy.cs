using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;

namespace ResNet.Runtime.IO;

/// <summary>Reads and writes NumPy .npy files holding little-endian float32 arrays in C order.</summary>
public static partial class Npy
{
    /// <summary>An .npy header is at most a few hundred bytes; numpy pads it to 64-byte alignment.</summary>
    private const int MaxHeader = 1 << 16;

    /// <summary>
    /// Reads a float32 C-order array; returns its shape and values. The values are read from the file straight
    /// into the array, its pages mapped in one call first (<see cref="FreshPages"/>): through a byte array and a
    /// copy, a 224×224 tensor touched ~300 fresh pages one fault at a time (~3.6 ms where faults trap to the host).
    /// </summary>
    public static (int[] Shape, float[] Data) Read(string path)
    {
        try
        {
            if (FileFailures.BeforeOpening(path, 1L << 30, "an input tensor") is { } reason) throw new InputException($"{path}: {reason}");
            using var file = File.OpenHandle(path);
            long length = RandomAccess.GetLength(file);
            // The header is a few hundred bytes: read a page, and again up to its whole length if numpy's is longer.
            var head = new byte[(int)Math.Min(length, 4096)];
            if (!FileReads.ReadExactly(file, head, 0)) throw EndedEarly(path);
            var (headerLength, start) = Preamble(head, path);
            if (start + headerLength > head.Length && length >= start + headerLength)
            {
                head = new byte[start + headerLength];
                if (!FileReads.ReadExactly(file, head, 0)) throw EndedEarly(path);
            }
            var (dims, count, dataStart) = Header(head, length, path);
            var data = GC.AllocateUninitializedArray<float>((int)count);
            FreshPages.Populate(data, 0, data.Length);
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan());
            if (!FileReads.ReadExactly(file, bytes, dataStart)) throw EndedEarly(path);
            if (!BitConverter.IsLittleEndian)
                for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(4 * i, 4));
            return (dims, data);
        }
        catch (Exception e) when (FileFailures.Of(e) is { } reason) { throw new InputException($"{path}: {reason}"); }
    }

    /// <summary>The file was shorter when read than when measured: changed meanwhile.</summary>
    private static InputException EndedEarly(string path) => new($"{path}: the file ended early (it changed while being read)");

    /// <summary>Parses .npy bytes; <paramref name="name"/> names the file in errors.</summary>
    public static (int[] Shape, float[] Data) Parse(ReadOnlySpan<byte> bytes, string name)
    {
        var (dims, count, dataStart) = Header(bytes, bytes.Length, name);
        var data = new float[count];
        for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(dataStart + 4 * i, 4));
        return (dims, data);
    }

    /// <summary>The header's length and where it starts, from the magic, version and length fields alone.</summary>
    private static (int HeaderLength, int Start) Preamble(ReadOnlySpan<byte> bytes, string name)
    {
        if (bytes.Length < 10 || bytes[0] != 0x93 || !bytes[1..6].SequenceEqual("NUMPY"u8)) throw new InputException($"{name}: not a .npy file (bad magic)");
        int major = bytes[6];
        if (major == 1) return (BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]), 10);
        if (major is 2 or 3)
        {
            if (bytes.Length < 12) throw new InputException($"{name}: truncated .npy header");
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]);
            if (len > MaxHeader) throw new InputException($"{name}: .npy header of {len} bytes is implausible");
            return ((int)len, 12);
        }
        throw new InputException($"{name}: unsupported .npy version {major}");
    }

    /// <summary>
    /// Validates the header at the start of <paramref name="bytes"/> against a file of <paramref name="fileLength"/>
    /// bytes: the shape, the element count and where the data starts.
    /// </summary>
    private static (int[] Dims, long Count, int DataStart) Header(ReadOnlySpan<byte> bytes, long fileLength, string name)
    {
        var (headerLength, start) = Preamble(bytes, name);
        if (start + headerLength > bytes.Length) throw new InputException($"{name}: truncated .npy header");
        string header = Encoding.Latin1.GetString(bytes.Slice(start, headerLength));
        var descr = DescrPattern().Match(header);
        var order = FortranPattern().Match(header);
        var shape = ShapePattern().Match(header);
        if (!descr.Success || !order.Success || !shape.Success) throw new InputException($"{name}: malformed .npy header");
        if (descr.Groups[1].Value is not ("<f4" or "=f4")) throw new InputException($"{name}: dtype {Printable.Quote(descr.Groups[1].Value)}; expected float32 ('<f4')");
        if (order.Groups[1].Value == "True") throw new InputException($"{name}: Fortran-order array; expected C order");
        string shapeText = Printable.Quote(shape.Groups[1].Value);
        var dims = new List<int>();
        long count = 1;
        foreach (var part in shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, out int d) || d < 0) throw new InputException($"{name}: bad shape in .npy header");
            dims.Add(d);
            count = checked(count * d);
            if (count > 1 << 28) throw new InputException($"{name}: array of shape ({shapeText}) is too large");
        }
        int dataStart = start + headerLength;
        long expected = count * 4;
        if (fileLength - dataStart != expected)
            throw new InputException($"{name}: shape ({shapeText}) needs {expected} data bytes but the file has {fileLength - dataStart}");
        return (dims.ToArray(), count, dataStart);
    }

    /// <summary>Writes a float32 C-order .npy file (version 1.0).</summary>
    public static void Write(string path, ReadOnlySpan<int> shape, ReadOnlySpan<float> data)
    {
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape.ToArray());
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = 10 + header.Length + 1;
        header += new string(' ', (64 - total % 64) % 64) + "\n";
        using var f = File.Create(path);
        f.WriteByte(0x93);
        f.Write("NUMPY"u8);
        f.Write([1, 0]);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        f.Write(len);
        f.Write(Encoding.Latin1.GetBytes(header));
        var buf = new byte[data.Length * 4];
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(4 * i), data[i]);
        f.Write(buf);
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
