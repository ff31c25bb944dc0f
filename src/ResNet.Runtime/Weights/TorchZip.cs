using System.IO.Compression;

namespace ResNet.Runtime.Weights;

/// <summary>Reads the parts of a torch.save zip, checking declared sizes before reading anything.</summary>
internal static class TorchZip
{
    public static byte[] ReadEntry(ZipArchiveEntry entry, string file, long limit)
    {
        var data = new byte[CheckedLength(entry, file, limit)];
        ReadInto(entry, file, data);
        return data;
    }

    /// <summary>
    /// The entry's uncompressed size from the central directory: checked before inflating anything, and enforced
    /// again by <see cref="ReadInto"/> in case the header lies.
    /// </summary>
    public static long CheckedLength(ZipArchiveEntry entry, string file, long limit)
    {
        if (entry.Length > limit) throw new WeightsException($"{file}: entry {Printable.Quote(entry.FullName)} declares {entry.Length} bytes; limit is {limit}");
        return entry.Length;
    }

    /// <summary>Reads the whole entry into <paramref name="data"/>, which is as long as the entry declares.</summary>
    public static void ReadInto(ZipArchiveEntry entry, string file, Span<byte> data)
    {
        try
        {
            using var s = entry.Open();
            int read = 0;
            while (read < data.Length)
            {
                int n = s.Read(data[read..]);
                if (n == 0) break;
                read += n;
            }
            if (read != data.Length || s.ReadByte() != -1) throw Short(entry, file);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException)
        {
            throw Corrupt(entry, file, e);
        }
    }

    /// <summary>Reads the whole entry, elements of <paramref name="dtype"/>, into <paramref name="values"/> as float32 (<see cref="FloatFormats"/>).</summary>
    public static void ReadConverted(ZipArchiveEntry entry, string file, string dtype, Span<float> values)
    {
        try
        {
            using var s = entry.Open();
            if (!FloatFormats.ConvertFrom(s, dtype, values) || s.ReadByte() != -1) throw Short(entry, file);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException)
        {
            throw Corrupt(entry, file, e);
        }
    }

    private static WeightsException Short(ZipArchiveEntry entry, string file) =>
        new($"{file}: entry {Printable.Quote(entry.FullName)} does not hold the {entry.Length} bytes its header declares");

    private static WeightsException Corrupt(ZipArchiveEntry entry, string file, Exception e) =>
        new($"{file}: entry {Printable.Quote(entry.FullName)} is corrupt ({Printable.Quote(e.Message.TrimEnd('.'), 200)})");

    /// <summary>
    /// What the archive's byteorder record says its storages are: "little" or "big" (torch.load refuses anything else);
    /// without one (PyTorch before 2.1), little-endian, as torch.load then takes them too.
    /// </summary>
    public static bool IsBigEndian(ZipArchive zip, string prefix, string file)
    {
        var entry = zip.GetEntry(prefix + "byteorder");
        if (entry == null) return false;
        var order = ReadEntry(entry, file, 16);
        if (order.AsSpan().SequenceEqual("little"u8)) return false;
        if (order.AsSpan().SequenceEqual("big"u8)) return true;
        throw new WeightsException($"{file}: byteorder record is '{Printable.Quote(System.Text.Encoding.Latin1.GetString(order))}'; expected 'little' or 'big'");
    }

    /// <summary>
    /// The storages of one archive, by the keys data.pkl names them with; <paramref name="bigEndian"/> when its byteorder
    /// record says so (PyTorch 2.1 and later write one; a file saved on a big-endian machine holds big-endian storages,
    /// which torch.load swaps on a little-endian one, and so do we).
    /// </summary>
    public sealed class Storages(ZipArchive zip, string prefix, string file, bool bigEndian) : IStorageSource
    {
        public long Length(string key) => CheckedLength(Entry(key), file, WeightLimits.StorageBytes);

        public void Read(string key, int elementSize, Span<byte> destination)
        {
            ReadInto(Entry(key), file, destination);
            if (bigEndian) FloatFormats.SwapBytes(destination, elementSize);
        }

        public void ReadConverted(string key, string dtype, Span<float> values)
        {
            if (!bigEndian)
            {
                TorchZip.ReadConverted(Entry(key), file, dtype, values);
                return;
            }
            // Rare enough that a copy of the bytes, swapped and then converted, is fast enough.
            int size = FloatFormats.Size(dtype);
            var raw = new byte[(long)values.Length * size];
            Read(key, size, raw);
            FloatFormats.Convert(raw, dtype, values);
        }

        private ZipArchiveEntry Entry(string key) =>
            zip.GetEntry($"{prefix}data/{key}") ?? throw new WeightsException($"{file}: storage '{Printable.Quote(key)}' named by data.pkl is not in the archive");
    }
}

/// <summary>Where the unpickler finds a storage's raw bytes: its size first, then the bytes into memory of that size.</summary>
internal interface IStorageSource
{
    /// <summary>The storage's size in bytes, as its archive declares it (refusing a missing or oversized one).</summary>
    long Length(string key);

    /// <summary>Reads the storage, elements of <paramref name="elementSize"/> bytes, into <paramref name="destination"/> (exactly <see cref="Length"/> bytes), little-endian.</summary>
    void Read(string key, int elementSize, Span<byte> destination);

    /// <summary>Reads the storage, all of it elements of floating-point <paramref name="dtype"/>, into <paramref name="values"/> as float32.</summary>
    void ReadConverted(string key, string dtype, Span<float> values);
}
