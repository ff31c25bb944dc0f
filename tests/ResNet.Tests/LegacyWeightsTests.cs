using System.Buffers.Binary;
using System.Formats.Tar;
using System.Text;
using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// torch.save's legacy format (PyTorch before 1.6, and <c>_use_new_zipfile_serialization=False</c> since): real files
/// are tested with the other formats (WeightFormatsTests, WeightsTests' views); here, files made by hand, each with one
/// thing wrong, are refused by the reason.
/// </summary>
public class LegacyWeightsTests
{
    private static void Str(List<byte> b, string s) => TorchSaveWriter.Str(b, s);

    private static void Global(List<byte> b, string module, string name) => TorchSaveWriter.Global(b, module, name);

    /// <summary>The pickles and data of a legacy file holding 'a' = [1.5, -2] in storage 'k0', each part replaceable.</summary>
    private sealed record Legacy
    {
        public byte[] Magic { get; init; } = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
        public int Version { get; init; } = 1001;
        public string SysInfo { get; init; } = "";
        public string StorageType { get; init; } = "FloatStorage";
        public bool ViewMetadata { get; init; }
        /// <summary>Tensor 'a''s one dimension and stride (a view of the whole storage unless changed).</summary>
        public int Size { get; init; } = 2;
        public int Stride { get; init; } = 1;
                /// <summary>The element count the state_dict's pickle declares for the storage.</summary>
        public long Declared { get; init; } = 2;
        /// <summary>A second tensor 'b' on the same storage, named as this storage type.</summary>
        public string? AlsoAs { get; init; }
        public string[] Keys { get; init; } = ["k0"];
        public bool KeysAsDict { get; init; }
        public long Count { get; init; } = 2;
        public int DataBytes { get; init; } = 8;

        public byte[] Bytes()
        {
            var b = new List<byte>();
            b.AddRange([0x80, 2, 0x8a, (byte)Magic.Length, .. Magic, (byte)'.']);
            b.AddRange([0x80, 2, (byte)'M', (byte)Version, (byte)(Version >> 8), (byte)'.']);
            b.AddRange([0x80, 2]);
            Str(b, SysInfo);
            b.Add((byte)'.');
            b.AddRange([0x80, 2]);
            Global(b, "collections", "OrderedDict");
            b.AddRange([(byte)')', (byte)'R', (byte)'(']);
            Tensor(b, "a", StorageType);
            if (AlsoAs != null) Tensor(b, "b", AlsoAs);
            b.AddRange([(byte)'u', (byte)'.']);
            b.AddRange([0x80, 2, (byte)(KeysAsDict ? '}' : ']'), (byte)'(']);
            foreach (var k in Keys)
            {
                Str(b, k);
                if (KeysAsDict) Str(b, k);
            }
            b.AddRange([(byte)(KeysAsDict ? 'u' : 'e'), (byte)'.']);
            foreach (var _ in Keys)
            {
                var count = new byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(count, Count);
                b.AddRange(count);
                var data = new byte[DataBytes];
                if (DataBytes >= 8)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(data, 1.5f);
                    BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), -2f);
                }
                b.AddRange(data);
            }
            return b.ToArray();
        }

        /// <summary>_rebuild_tensor_v2((storage persistent id), 0, (2,), (1,), False, OrderedDict()), keyed <paramref name="name"/>.</summary>
        private void Tensor(List<byte> b, string name, string storageType)
        {
            Str(b, name);
            Global(b, "torch._utils", "_rebuild_tensor_v2");
            b.AddRange([(byte)'(', (byte)'(']);
            Str(b, "storage");
            Global(b, "torch", storageType);
            Str(b, "k0");
            Str(b, "cpu");
            var declared = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(declared, Declared);
            b.AddRange([0x8a, 8, .. declared]);
            if (ViewMetadata)
            {
                Str(b, "k1");
                b.AddRange([(byte)'K', 0, (byte)'K', 2, 0x87]);
            }
            else b.Add((byte)'N');
            b.AddRange([(byte)'t', (byte)'Q', (byte)'K', 0, (byte)'J', .. BitConverter.GetBytes(Size), 0x85, (byte)'J', .. BitConverter.GetBytes(Stride), 0x85, 0x89]);
            Global(b, "collections", "OrderedDict");
            b.AddRange([(byte)')', (byte)'R', (byte)'t', (byte)'R']);
        }
    }

    [Fact]
    public void ReadsAHandMadeFile()
    {
        var sd = StateDict.Load(new MemoryStream(new Legacy().Bytes()), "old.pth");
        Assert.Equal(new[] { "a" }, sd.Keys);
        Assert.Equal("float32", sd["a"].DType);
        Assert.Equal(new[] { 1.5f, -2f }, sd.Float("a"));
    }

    /// <summary>Pickles longer than the first read of the file's start (64 KiB) are read from a longer one.</summary>
    [Fact]
    public void ReadsPicklesLongerThanTheFirstRead()
    {
        var sd = StateDict.Load(new MemoryStream(new Legacy { SysInfo = new string('x', 300_000) }.Bytes()), "old.pth");
        Assert.Equal(new[] { 1.5f, -2f }, sd.Float("a"));
    }

    public static TheoryData<string, byte[], string> BadFiles() => new()
    {
        { "another magic number", new Legacy { Magic = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }.Bytes(), "a pickle, but not a torch.save file (its first pickle is not torch.save's magic number)" },
        { "a small magic number", new Legacy { Magic = [1] }.Bytes(), "a pickle, but not a torch.save file" },
        { "another protocol", new Legacy { Version = 1000 }.Bytes(), "legacy torch.save file of protocol version other than 1001, which is all torch.load reads" },
        { "count", new Legacy { Count = 3 }.Bytes(), "storage 'k0' holds 3 elements by its count; the state_dict declares 2" },
        { "unnamed key", new Legacy { Keys = ["k0", "zz"] }.Bytes(), "storage 'zz' in the key list is not named by the state_dict" },
        { "key twice", new Legacy { Keys = ["k0", "k0"] }.Bytes(), "storage 'k0' is listed twice" },
        { "key missing", new Legacy { Keys = [] }.Bytes(), "storage 'k0' named by the state_dict is not in the key list" },
        { "keys not a list", new Legacy { KeysAsDict = true }.Bytes(), "the pickle after the state_dict is not the list of its storage keys" },
        { "data short", new Legacy { DataBytes = 4 }.Bytes(), "storage 'k0' ends past the end of the file (truncated?)" },
        { "storage view", new Legacy { ViewMetadata = true }.Bytes(), "storage 'k0' is a view of another storage (PyTorch 0.3 and earlier); not supported" },
        // 2^62 float32 elements are 2^64 bytes: a product that wraps to 0 once let the empty storage through, and the
        // view's read then ran past it (ArgumentOutOfRangeException, not a refusal).
        { "a count that wraps", new Legacy { Declared = 1L << 62, Count = 1L << 62, DataBytes = 0 }.Bytes(), "storage 'k0' declares 4611686018427387904 elements; out of range" },
        // A stride of 0 (an expanded tensor) over a storage of 2 elements: 2^31 - 1 values, more than .NET's largest
        // float array (OutOfMemoryException, not a refusal); a little fewer would have been an 8 GB array.
        { "a view of 2^31 values", new Legacy { Size = int.MaxValue, Stride = 0 }.Bytes(), "tensor values add up to more than 320 MiB" },
                { "two dtypes", new Legacy { AlsoAs = "HalfStorage" }.Bytes(), "storage 'k0' is named as 2 float16 elements and as 2 float32" },
        { "cut in its pickles", new Legacy().Bytes()[..150], "pickle is truncated" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadLegacyFilesAreRefusedWithTheReason(string what, byte[] bytes, string reason) =>
        WeightFormatsTests.AssertRefusedAlike(bytes, "old.pth", what, reason);

    /// <summary>Pickles past the limit are refused as that (a fact of its own: as theory data, xunit's discovery would serialize its 9 MB element by element).</summary>
    [Fact]
    public void PicklesOverTheLimitAreRefused() =>
        WeightFormatsTests.AssertRefusedAlike(new Legacy { SysInfo = new string('x', 9 << 20) }.Bytes(), "old.pth", "pickles over the limit",
            "its pickles are larger than 8 MiB; not a state_dict");

    /// <summary>The oldest format, a tar of 'sys_info', 'pickle', 'tensors' and 'storages', is named, not read (as torch.load(weights_only=True) does).</summary>
    [Fact]
    public void TheTarFormatIsNamed()
    {
        var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var name in new[] { "sys_info", "pickle", "tensors", "storages" })
                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(new Legacy().Bytes()) });
        }
        tar.Position = 0;
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(tar, "ancient.pth"));
        Assert.Equal("ancient.pth: a tar archive, torch.save's oldest format, which torch.load(weights_only=True) refuses too; re-save it with torch.save(torch.load(f), f2)", e.Message);
    }
}
