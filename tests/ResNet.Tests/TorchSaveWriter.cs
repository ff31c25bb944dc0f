using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using ResNet.Runtime.Weights;

namespace ResNet.Tests;

/// <summary>
/// Writes a state_dict the way torch.save does (zip: archive/data.pkl with pickle protocol 2, archive/data/N
/// raw little-endian storages, archive/version), so tests can make weight files of any network without Python.
/// </summary>
internal static class TorchSaveWriter
{
    public static void Write(string path, StateDict sd)
    {
        using var file = File.Create(path);
        Write(file, sd.Keys.Select(k => (k, sd[k])));
    }

    /// <param name="declaredElements">Overrides the element count a storage declares in the pickle (to make lying files).</param>
    public static void Write(Stream stream, IEnumerable<(string Key, Tensor Tensor)> tensors, Func<int, long>? declaredElements = null)
    {
        var list = tensors.ToList();
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        var pkl = new List<byte> { 0x80, 2 };
        Global(pkl, "collections", "OrderedDict");
        pkl.Add((byte)')');
        pkl.Add((byte)'R');
        pkl.Add((byte)'(');
        for (int i = 0; i < list.Count; i++)
        {
            var (key, t) = list[i];
            Str(pkl, key);
            Global(pkl, "torch._utils", "_rebuild_tensor_v2");
            pkl.Add((byte)'(');
            pkl.Add((byte)'(');
            Str(pkl, "storage");
            Global(pkl, "torch", "FloatStorage");
            Str(pkl, i.ToString());
            Str(pkl, "cpu");
            Int(pkl, (int)(declaredElements?.Invoke(i) ?? t.Elements));
            pkl.Add((byte)'t');
            pkl.Add((byte)'Q');
            Int(pkl, 0);
            pkl.Add((byte)'(');
            foreach (var d in t.Shape) Int(pkl, d);
            pkl.Add((byte)'t');
            pkl.Add((byte)'(');
            int stride = 1;
            var strides = new int[t.Shape.Length];
            for (int d = t.Shape.Length - 1; d >= 0; d--) { strides[d] = stride; stride *= t.Shape[d]; }
            foreach (var s in strides) Int(pkl, s);
            pkl.Add((byte)'t');
            pkl.Add(0x89);
            Global(pkl, "collections", "OrderedDict");
            pkl.Add((byte)')');
            pkl.Add((byte)'R');
            pkl.Add((byte)'t');
            pkl.Add((byte)'R');
            var data = new byte[t.Data!.Length * 4];
            for (int j = 0; j < t.Data.Length; j++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * j), t.Data[j]);
            Entry(zip, $"archive/data/{i}", data);
        }
        pkl.Add((byte)'u');
        pkl.Add((byte)'.');
        Entry(zip, "archive/data.pkl", pkl.ToArray());
        Entry(zip, "archive/version", "3\n"u8.ToArray());
    }

    private static void Entry(ZipArchive zip, string name, byte[] data)
    {
        using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
        s.Write(data);
    }

    /// <summary>GLOBAL module.name (what pickle writes for a class or function).</summary>
    internal static void Global(List<byte> p, string module, string name)
    {
        p.Add((byte)'c');
        p.AddRange(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
    }

    /// <summary>BINUNICODE s.</summary>
    internal static void Str(List<byte> p, string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        p.Add((byte)'X');
        var len = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(len, b.Length);
        p.AddRange(len);
        p.AddRange(b);
    }

    private static void Int(List<byte> p, int v)
    {
        p.Add((byte)'J');
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        p.AddRange(b);
    }
}
