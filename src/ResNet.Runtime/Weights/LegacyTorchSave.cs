using System.Buffers.Binary;
using System.Numerics;

namespace ResNet.Runtime.Weights;

/// <summary>
/// Reads torch.save's legacy format: what PyTorch 0.4 to 1.5 wrote by default, and later versions with
/// <c>_use_new_zipfile_serialization=False</c>, which torch.load still reads. It is a sequence of pickles — a magic
/// number, the protocol version (1001), a dict of system information, the state_dict (its persistent ids name each
/// storage by key, dtype and element count, as in the zip format), then the list of storage keys — followed by each
/// listed storage in that order: its element count as a little-endian int64, then its bytes. The state_dict's pickle
/// is read twice: once to find where it ends and which storages it names, since their bytes come after the key list
/// that follows it; then again, now that each storage's place is known, to read the tensors as from a zip.
/// </summary>
internal static class LegacyTorchSave
{
    /// <summary>torch.serialization.MAGIC_NUMBER, the first pickle of every file in this format.</summary>
    private static readonly BigInteger Magic = BigInteger.Parse("119547037146038801333356");

    /// <summary>torch.serialization.PROTOCOL_VERSION, the only one torch.load reads.</summary>
    private const long ProtocolVersion = 1001;

    /// <summary>The pickles are read from a buffer of the file's start, grown from this size while they run past it.</summary>
    private const int FirstHead = 64 << 10;

    /// <summary>Whether <paramref name="stream"/> starts as a pickle of protocol 2 to 5 does: 0x80, the protocol.</summary>
    public static bool Matches(Stream stream)
    {
        if (!stream.CanSeek || stream.Length < 2) return false;
        stream.Position = 0;
        return stream.ReadByte() == 0x80 && stream.ReadByte() is >= 2 and <= 5;
    }

    /// <summary>
    /// The state_dict's tensors in the legacy file in <paramref name="stream"/> (which <see cref="Matches"/> accepted).
    /// Read to be packed (<paramref name="forPacking"/>), its floating-point tensors' float32 values go into one block of
    /// native memory, returned in <paramref name="native"/> for the caller to release.
    /// </summary>
    public static Dictionary<string, Tensor> Read(Stream stream, string file, bool forPacking, out NativeStorage? native)
    {
        long limit = Math.Min(stream.Length, WeightLimits.PickleBytes);
        for (long size = Math.Min(FirstHead, limit); ; size = Math.Min(2 * size, limit))
        {
            var head = new byte[size];
            stream.Position = 0;
            stream.ReadExactly(head);
            var layout = TryLayout(stream, head, file, limit, out int stateDictStart, out long floats);
            if (layout == null) continue;
            // Past the limit (float16 storages count double as float32) the unpickler refuses the file, as it reads it
            // into arrays: no block is reserved for it.
            native = forPacking && floats > 0 && floats * sizeof(float) <= 2 * WeightLimits.StorageBytes ? new NativeStorage(floats * sizeof(float)) : null;
            try
            {
                return new Unpickler(head, file, stateDictStart, "the state_dict's pickle").LoadStateDict(new Storages(stream, layout, file), native);
            }
            catch
            {
                native?.Dispose();
                native = null;
                throw;
            }
        }
    }

    /// <summary>
    /// Reads the pickles in <paramref name="head"/>, the start of the file, up to the end of the storage keys' list,
    /// and where each storage's bytes are; null when they run past <paramref name="head"/> and the file has more (up to
    /// <paramref name="limit"/>) to try with. <paramref name="floats"/> counts what the floating-point storages need as
    /// float32, each aligned to a cache line.
    /// </summary>
    private static Dictionary<string, (long Offset, long Bytes)>? TryLayout(Stream stream, byte[] head, string file, long limit, out int stateDictStart, out long floats)
    {
        stateDictStart = 0;
        floats = 0;
        Unpickler? at = null;
        try
        {
            at = new Unpickler(head, file, 0, "the magic number's pickle");
            if (at.LoadValue() is not BigInteger magic || magic != Magic)
                throw new WeightsException($"{file}: a pickle, but not a torch.save file (its first pickle is not torch.save's magic number)");
            at = new Unpickler(head, file, at.Position, "the protocol version's pickle");
            if (at.LoadValue() is not long version || version != ProtocolVersion)
                throw new WeightsException($"{file}: legacy torch.save file of protocol version other than {ProtocolVersion}, which is all torch.load reads");
            at = new Unpickler(head, file, at.Position, "the system information's pickle");
            at.LoadValue(); // the saving machine's byte order and C type sizes: the data is little-endian regardless
            stateDictStart = at.Position;
            at = new Unpickler(head, file, stateDictStart, "the state_dict's pickle");
            at.LoadStateDict(null);
            var referenced = at.Referenced;
            at = new Unpickler(head, file, at.Position, "the storage keys' pickle");
            if (at.LoadValue() is not List<object?> keys) throw new WeightsException($"{file}: the pickle after the state_dict is not the list of its storage keys");
            floats = referenced.Values.Where(s => FloatFormats.IsFloating(s.DType)).Sum(s => s.Elements + 16);
            return Layout(stream, keys, referenced, at.Position, file);
        }
        catch (WeightsException) when (at is { RanOut: true } && head.Length < limit)
        {
            return null;
        }
        catch (WeightsException) when (at is { RanOut: true } && head.Length < stream.Length)
        {
            throw new WeightsException($"{file}: its pickles are larger than {WeightLimits.PickleBytes >> 20} MiB; not a state_dict");
        }
    }

    /// <summary>
    /// Each listed storage's bytes, after the key list ends at <paramref name="at"/>: an int64 element count, which must
    /// be what the state_dict's pickle declared (torch.load checks it too), then the bytes, which must be in the file.
    /// All checked before any tensor is read.
    /// </summary>
    private static Dictionary<string, (long Offset, long Bytes)> Layout(Stream stream, List<object?> keys,
        IReadOnlyDictionary<string, Unpickler.StorageRef> referenced, long at, string file)
    {
        var layout = new Dictionary<string, (long, long)>();
        Span<byte> count = stackalloc byte[8];
        foreach (var item in keys)
        {
            if (item is not string key) throw new WeightsException($"{file}: the storage key list holds something that is not a string");
            if (!referenced.TryGetValue(key, out var storage)) throw new WeightsException($"{file}: storage '{Printable.Quote(key)}' in the key list is not named by the state_dict");
            if (layout.ContainsKey(key)) throw new WeightsException($"{file}: storage '{Printable.Quote(key)}' is listed twice");
            long bytes = storage.Elements * storage.ElementSize;
            if (at + 8 + bytes > stream.Length) throw new WeightsException($"{file}: storage '{Printable.Quote(key)}' ends past the end of the file (truncated?)");
            stream.Position = at;
            stream.ReadExactly(count);
            long elements = BinaryPrimitives.ReadInt64LittleEndian(count);
            if (elements != storage.Elements)
                throw new WeightsException($"{file}: storage '{Printable.Quote(key)}' holds {elements} elements by its count; the state_dict declares {storage.Elements}");
            layout[key] = (at + 8, bytes);
            at += 8 + bytes;
        }
        foreach (var key in referenced.Keys)
        {
            if (!layout.ContainsKey(key)) throw new WeightsException($"{file}: storage '{Printable.Quote(key)}' named by the state_dict is not in the key list");
        }
        return layout;
    }

    /// <summary>The storages of one legacy file, where <see cref="Layout"/> found them.</summary>
    private sealed class Storages(Stream stream, Dictionary<string, (long Offset, long Bytes)> layout, string file) : IStorageSource
    {
        public long Length(string key) => layout[key].Bytes;

        public void Read(string key, int elementSize, Span<byte> destination)
        {
            stream.Position = layout[key].Offset;
            try
            {
                stream.ReadExactly(destination);
            }
            catch (EndOfStreamException)
            {
                throw Truncated(key);
            }
        }

        public void ReadConverted(string key, string dtype, Span<float> values)
        {
            stream.Position = layout[key].Offset;
            if (!FloatFormats.ConvertFrom(stream, dtype, values)) throw Truncated(key);
        }

        // The layout was checked against the file's length: only a file that shrank while being read gets here.
        private WeightsException Truncated(string key) => new($"{file}: storage '{Printable.Quote(key)}' ends past the end of the file");
    }
}
