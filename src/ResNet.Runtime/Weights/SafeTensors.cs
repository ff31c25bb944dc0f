using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace ResNet.Runtime.Weights;

/// <summary>
/// Reads a safetensors file, the format the Hugging Face hub distributes weights in (timm's <c>resnet18.tv_in1k</c>
/// is torchvision's ResNet-18 under the same names): an 8-byte little-endian header length, a JSON header giving each
/// tensor's dtype, shape and byte range in the data that follows, then the raw little-endian bytes. There is no code
/// in it to refuse, only sizes to check: the header as the reference implementation checks it (the byte ranges in
/// order, back to back, covering the data exactly, each as long as its shape and dtype need), against our limits
/// before anything is allocated.
/// </summary>
internal static class SafeTensors
{
    /// <summary>The safetensors dtypes PyTorch has, by their names there; anything else is refused.</summary>
    private static readonly Dictionary<string, (string DType, int Size)> DTypes = new()
    {
        ["F32"] = ("float32", 4),
        ["F16"] = ("float16", 2),
        ["BF16"] = ("bfloat16", 2),
        ["F64"] = ("float64", 8),
        ["I64"] = ("int64", 8),
        ["I32"] = ("int32", 4),
        ["I16"] = ("int16", 2),
        ["I8"] = ("int8", 1),
        ["U8"] = ("uint8", 1),
        ["U16"] = ("uint16", 2),
        ["U32"] = ("uint32", 4),
        ["U64"] = ("uint64", 8),
        ["BOOL"] = ("bool", 1),
        ["F8_E4M3"] = ("float8_e4m3fn", 1),
        ["F8_E5M2"] = ("float8_e5m2", 1),
    };

    private sealed record Entry(string Name, string DType, int ElementSize, int[] Shape, long Begin, long End);

    /// <summary>
    /// Whether <paramref name="stream"/> starts as a safetensors file does: a header length that fits in the stream,
    /// then '{'. A torch.save zip starts "PK", a legacy pickle 0x80: neither can.
    /// </summary>
    public static bool Matches(Stream stream)
    {
        if (!stream.CanSeek || stream.Length < 10) return false;
        Span<byte> head = stackalloc byte[9];
        stream.Position = 0;
        stream.ReadExactly(head);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(head);
        return length >= 2 && length <= (ulong)(stream.Length - 8) && head[8] == '{';
    }

    /// <summary>
    /// The tensors of the safetensors file in <paramref name="stream"/> (which <see cref="Matches"/> accepted), in
    /// header order. Read to be packed (<paramref name="forPacking"/>), its floating-point tensors' float32 values go into
    /// one block of native memory, returned in <paramref name="native"/> for the caller to release.
    /// </summary>
    public static Dictionary<string, Tensor> Read(Stream stream, string file, bool forPacking, out NativeStorage? native)
    {
        var entries = Header(stream, file, out long dataStart);
        long nativeBytes = entries.Where(e => FloatFormats.IsFloating(e.DType)).Sum(e => (e.End - e.Begin) / e.ElementSize * 4 + 64);
        native = forPacking && nativeBytes > 0 ? new NativeStorage(nativeBytes) : null;
        try
        {
            var tensors = new Dictionary<string, Tensor>(entries.Count);
            foreach (var e in entries) tensors[e.Name] = ReadTensor(stream, file, e, dataStart, native);
            return tensors;
        }
        catch
        {
            native?.Dispose();
            native = null;
            throw;
        }
    }

    private static Tensor ReadTensor(Stream stream, string file, Entry e, long dataStart, NativeStorage? native)
    {
        long elements = e.Shape.Aggregate(1L, (a, b) => a * b);
        if (!FloatFormats.IsFloating(e.DType)) return new Tensor(e.DType, e.Shape, null);
        stream.Position = dataStart + e.Begin;
        // As for a zip's storages: straight into the tensor's floats, no byte[] between; other dtypes converted a
        // chunk at a time on the way.
        var tensor = Tensor.ToFill(e.DType, e.Shape, elements, native, out var floats);
        if (e.DType == "float32" && BitConverter.IsLittleEndian) Fill(stream, file, e, MemoryMarshal.AsBytes(floats));
        else if (!FloatFormats.ConvertFrom(stream, e.DType, floats)) throw new WeightsException($"{file}: tensor '{Printable.Quote(e.Name)}' ends past the end of the file");
        return tensor;
    }

    private static void Fill(Stream stream, string file, Entry e, Span<byte> destination)
    {
        try
        {
            stream.ReadExactly(destination);
        }
        catch (EndOfStreamException)
        {
            throw new WeightsException($"{file}: tensor '{Printable.Quote(e.Name)}' ends past the end of the file");
        }
    }

    /// <summary>The header's tensors, checked; <paramref name="dataStart"/> is where their byte ranges count from.</summary>
    private static List<Entry> Header(Stream stream, string file, out long dataStart)
    {
        stream.Position = 0;
        Span<byte> head = stackalloc byte[8];
        stream.ReadExactly(head);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(head);
        if (length > (ulong)WeightLimits.PickleBytes) throw Error(file, $"header declares {length} bytes; limit is {WeightLimits.PickleBytes}");
        if (length > (ulong)(stream.Length - 8)) throw Error(file, $"header declares {length} bytes; the file has {stream.Length - 8} after the length");
        var json = new byte[length];
        stream.ReadExactly(json);
        dataStart = 8 + (long)length;
        var entries = Parse(json, file);
        CheckLayout(entries, stream.Length - dataStart, file);
        return entries;
    }

    private static List<Entry> Parse(byte[] json, string file)
    {
        var entries = new List<Entry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 4 });
            Expect(ref reader, JsonTokenType.StartObject, "the header", file);
            while (Next(ref reader, file) == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                if (!names.Add(name)) throw Error(file, $"tensor '{Printable.Quote(name)}' is named twice in the header");
                if (name == "__metadata__")
                {
                    SkipMetadata(ref reader, file);
                    continue;
                }
                if (entries.Count >= WeightLimits.Tensors) throw Error(file, $"header names more than {WeightLimits.Tensors} tensors");
                entries.Add(ParseEntry(ref reader, name, file));
            }
            if (reader.TokenType != JsonTokenType.EndObject) throw Error(file, "header is not a JSON object of tensors");
            if (reader.Read()) throw Error(file, "header has more after its JSON object");
        }
        catch (JsonException e)
        {
            throw Error(file, $"header is not valid JSON ({Printable.Quote(e.Message.TrimEnd('.'), 200)})");
        }
        catch (InvalidOperationException e)
        {
            throw Error(file, $"header is not valid JSON ({Printable.Quote(e.Message.TrimEnd('.'), 200)})");
        }
        return entries;
    }

    /// <summary>{"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [begin, end]}, each once, nothing else.</summary>
    private static Entry ParseEntry(ref Utf8JsonReader reader, string name, string file)
    {
        string what = $"tensor '{Printable.Quote(name)}'";
        Expect(ref reader, JsonTokenType.StartObject, what, file);
        string? dtype = null;
        int[]? shape = null;
        long[]? offsets = null;
        while (Next(ref reader, file) == JsonTokenType.PropertyName)
        {
            string field = reader.GetString()!;
            switch (field)
            {
                case "dtype" when dtype == null:
                    Expect(ref reader, JsonTokenType.String, $"{what}'s dtype", file);
                    dtype = reader.GetString()!;
                    break;
                case "shape" when shape == null:
                    shape = Integers(ref reader, $"{what}'s shape", file, 8).Select(d => d <= int.MaxValue ? (int)d : throw Error(file, $"{what}'s shape has a dimension out of range")).ToArray();
                    break;
                case "data_offsets" when offsets == null:
                    offsets = Integers(ref reader, $"{what}'s data_offsets", file, 2);
                    if (offsets.Length != 2) throw Error(file, $"{what}'s data_offsets are not [begin, end]");
                    break;
                default:
                    throw Error(file, $"{what} has an unexpected or repeated field '{Printable.Quote(field)}'");
            }
        }
        if (dtype == null || shape == null || offsets == null) throw Error(file, $"{what} lacks its dtype, shape or data_offsets");
        if (!DTypes.TryGetValue(dtype, out var type)) throw Error(file, $"{what} has unknown dtype '{Printable.Quote(dtype)}'");
        long elements = 1;
        foreach (int d in shape)
        {
            elements *= d;
            if (elements > WeightLimits.StorageBytes) throw Error(file, $"{what} has shape {Tensor.Format(shape)}; out of range");
        }
        long begin = offsets[0], end = offsets[1];
        if (end < begin) throw Error(file, $"{what}'s data_offsets [{begin}, {end}] end before they begin");
        if (end - begin != elements * type.Size)
            throw Error(file, $"{what} has {end - begin} bytes; its {elements} {type.DType} elements of shape {Tensor.Format(shape)} need {elements * type.Size}");
        return new Entry(name, type.DType, type.Size, shape, begin, end);
    }

    /// <summary>The byte ranges, in order of where they begin, back to back from 0 to the end of the data: no gaps, no overlaps.</summary>
    private static void CheckLayout(List<Entry> entries, long dataBytes, string file)
    {
        if (dataBytes > WeightLimits.StorageBytes) throw Error(file, $"tensor data is {dataBytes} bytes; limit is {WeightLimits.StorageBytes}");
        long at = 0;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin != at) throw Error(file, $"tensor '{Printable.Quote(e.Name)}' begins at byte {e.Begin} of the data; expected {at} (tensors are stored back to back)");
            at = e.End;
        }
        if (at != dataBytes) throw Error(file, $"the tensors cover {at} bytes of data; the file has {dataBytes}");
    }

    private static void SkipMetadata(ref Utf8JsonReader reader, string file)
    {
        Expect(ref reader, JsonTokenType.StartObject, "__metadata__", file);
        while (Next(ref reader, file) == JsonTokenType.PropertyName)
            Expect(ref reader, JsonTokenType.String, "__metadata__ (a map of strings)", file);
        if (reader.TokenType != JsonTokenType.EndObject) throw Error(file, "__metadata__ is not a map of strings");
    }

    private static long[] Integers(ref Utf8JsonReader reader, string what, string file, int max)
    {
        Expect(ref reader, JsonTokenType.StartArray, what, file);
        var values = new List<long>();
        while (Next(ref reader, file) == JsonTokenType.Number)
        {
            if (values.Count == max) throw Error(file, $"{what} has more than {max} entries");
            if (!reader.TryGetInt64(out long v) || v < 0) throw Error(file, $"{what} holds something other than a non-negative integer");
            values.Add(v);
        }
        if (reader.TokenType != JsonTokenType.EndArray) throw Error(file, $"{what} holds something other than integers");
        return values.ToArray();
    }

    private static JsonTokenType Next(ref Utf8JsonReader reader, string file) =>
        reader.Read() ? reader.TokenType : throw Error(file, "header ends inside its JSON");

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string what, string file)
    {
        if (Next(ref reader, file) != type)
            throw Error(file, $"{what} is not {(type switch { JsonTokenType.StartObject => "a JSON object", JsonTokenType.StartArray => "a JSON array", _ => "a string" })}");
    }

    private static WeightsException Error(string file, string reason) => new($"{file}: safetensors {reason}");
}
