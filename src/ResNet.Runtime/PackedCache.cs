using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace ResNet.Runtime;

/// <summary>
/// Packed weights on disk, so a second start skips unpickling, folding and packing (about 130 of a cold
/// start's ~170 ms). A file is named by what its bytes depend on: the network, the instruction set, exact or
/// Winograd, a hash of the weights file's full path, then a hash of its size and modification time (as make
/// and ccache judge staleness) and of the generated code's signature. Its header repeats every layer's float
/// counts, which must equal the ones the network computes itself before a byte is used; anything else is a
/// miss. Files are written to a temporary name and renamed, so a reader never sees half a file; writing one
/// removes the files it supersedes (same weights path, older contents or code), so rebuilds and retrained
/// weights do not pile up ~100 MB each. Failing to write is not an error.
/// </summary>
internal static class PackedCache
{
    private static ReadOnlySpan<byte> Magic => "RN18PACK"u8;
    private const int Version = 1;

    public static string FileFor(string directory, string weightsPath, string network, InstructionSet isa, bool exact, string signature)
    {
        var info = new FileInfo(weightsPath);
        string contents = Hash(string.Join("\n", info.Exists ? info.Length : -1, info.Exists ? info.LastWriteTimeUtc.Ticks : 0, signature, Version));
        return Path.Combine(directory, $"{Family(info.FullName, network, isa, exact)}{contents}.packed");
    }

    /// <summary>The name prefix every version of one weights file's packed copy shares (per network, ISA and mode).</summary>
    private static string Family(string weightsPath, string network, InstructionSet isa, bool exact) =>
        $"{network}-{isa.ToString().ToLowerInvariant()}-{(exact ? "exact" : "winograd")}-{Hash(weightsPath)[..12]}-";

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..24].ToLowerInvariant();

    /// <summary>Fills the destinations from <paramref name="file"/> if it exists and its layout matches exactly.</summary>
    public static unsafe bool TryRead(string file, (IntPtr Weights, long WeightFloats, IntPtr Bias, long BiasFloats)[] layers)
    {
        try
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read);
            var header = Header(layers);
            long expected = header.Length + layers.Sum(l => (l.WeightFloats + l.BiasFloats) * sizeof(float));
            if (RandomAccess.GetLength(handle) != expected) return false;
            var actual = new byte[header.Length];
            if (RandomAccess.Read(handle, actual, 0) != actual.Length || !actual.AsSpan().SequenceEqual(header)) return false;
            // Layers are independent ranges of the file: read them in parallel (a page-cache copy of ~130 MB).
            var offsets = new long[layers.Length];
            long at = header.Length;
            for (int i = 0; i < layers.Length; i++)
            {
                offsets[i] = at;
                at += (layers[i].WeightFloats + layers[i].BiasFloats) * sizeof(float);
            }
            bool ok = true;
            Parallel.For(0, layers.Length, i =>
            {
                var (w, wn, b, bn) = layers[i];
                if (!ReadExactly(handle, (byte*)w, wn * sizeof(float), offsets[i]) || !ReadExactly(handle, (byte*)b, bn * sizeof(float), offsets[i] + wn * sizeof(float)))
                    ok = false;
            });
            return ok;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public static unsafe void TryWrite(string file, (IntPtr Weights, long WeightFloats, IntPtr Bias, long BiasFloats)[] layers)
    {
        string temp = $"{file}.{Environment.ProcessId}.tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            using (var handle = File.OpenHandle(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                var header = Header(layers);
                RandomAccess.Write(handle, header, 0);
                long at = header.Length;
                foreach (var (w, wn, b, bn) in layers)
                {
                    at = WriteAll(handle, (byte*)w, wn * sizeof(float), at);
                    at = WriteAll(handle, (byte*)b, bn * sizeof(float), at);
                }
            }
            File.Move(temp, file, overwrite: true);
            string name = Path.GetFileName(file);
            string family = name[..(name.LastIndexOf('-') + 1)];
            foreach (var old in Directory.EnumerateFiles(Path.GetDirectoryName(file)!, family + "*.packed"))
                if (Path.GetFileName(old) != name) File.Delete(old);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (Exception) { /* nothing more to do: the cache is an optimisation */ }
        }
    }

    /// <summary>Magic, version, layer count, then each layer's weight and bias float counts.</summary>
    private static byte[] Header((IntPtr, long WeightFloats, IntPtr, long BiasFloats)[] layers)
    {
        var header = new byte[Magic.Length + 8 + 16 * layers.Length];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), Version);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), layers.Length);
        for (int i = 0; i < layers.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16 + 16 * i), layers[i].WeightFloats);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(24 + 16 * i), layers[i].BiasFloats);
        }
        return header;
    }

    private static unsafe bool ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle handle, byte* p, long bytes, long offset)
    {
        while (bytes > 0)
        {
            int chunk = (int)Math.Min(bytes, 1 << 30);
            int n = RandomAccess.Read(handle, new Span<byte>(p, chunk), offset);
            if (n <= 0) return false;
            p += n;
            bytes -= n;
            offset += n;
        }
        return true;
    }

    private static unsafe long WriteAll(Microsoft.Win32.SafeHandles.SafeFileHandle handle, byte* p, long bytes, long offset)
    {
        while (bytes > 0)
        {
            int chunk = (int)Math.Min(bytes, 1 << 30);
            RandomAccess.Write(handle, new ReadOnlySpan<byte>(p, chunk), offset);
            p += chunk;
            bytes -= chunk;
            offset += chunk;
        }
        return offset;
    }

}
