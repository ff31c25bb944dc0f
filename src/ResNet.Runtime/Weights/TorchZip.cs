using System.IO.Compression;

namespace ResNet.Runtime.Weights;

/// <summary>Reads the parts of a torch.save zip, checking declared sizes before reading anything.</summary>
internal static class TorchZip
{
    /// <summary>
    /// A state_dict's pickle is well under a kilobyte per tensor (ResNet-18's: 20 kB); a larger one could
    /// build millions of objects, so the cap also bounds the unpickler's memory.
    /// </summary>
    public const long MaxPickleBytes = 8L << 20;

    /// <summary>
    /// One storage, and all together (see Unpickler): raw bytes plus the float copy stay well under 1 GiB.
    /// ResNet-18 needs 47 MB.
    /// </summary>
    public const long MaxStorageBytes = 320L << 20;

    public static byte[] ReadEntry(ZipArchiveEntry entry, string file, long limit)
    {
        // Length is the uncompressed size from the central directory: checked before inflating anything,
        // and enforced again while reading in case the header lies.
        if (entry.Length > limit) throw new WeightsException($"{file}: entry {Printable.Quote(entry.FullName)} declares {entry.Length} bytes; limit is {limit}");
        var data = new byte[entry.Length];
        try
        {
            using var s = entry.Open();
            int read = 0;
            while (read < data.Length)
            {
                int n = s.Read(data, read, data.Length - read);
                if (n == 0) break;
                read += n;
            }
            if (read != data.Length || s.ReadByte() != -1)
                throw new WeightsException($"{file}: entry {Printable.Quote(entry.FullName)} does not hold the {entry.Length} bytes its header declares");
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException)
        {
            throw new WeightsException($"{file}: entry {Printable.Quote(entry.FullName)} is corrupt ({Printable.Quote(e.Message.TrimEnd('.'), 200)})");
        }
        return data;
    }

    public static byte[] Storage(ZipArchive zip, string prefix, string key, string file)
    {
        var entry = zip.GetEntry($"{prefix}data/{key}") ?? throw new WeightsException($"{file}: storage '{Printable.Quote(key)}' named by data.pkl is not in the archive");
        return ReadEntry(entry, file, MaxStorageBytes);
    }
}
