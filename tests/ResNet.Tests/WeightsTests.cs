using System.IO.Compression;
using System.Text;
using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>The torch.save reader: real PyTorch files load; anything else is refused with a message naming the problem.</summary>
public class WeightsTests
{
    private static string TinyWeights => Path.Combine(Fixtures.Dir("tiny"), "weights.pth");

    [Fact]
    public void ReadsRealTorchSaveFile()
    {
        var sd = StateDict.Load(TinyWeights);
        Assert.Equal(new[] { 8, 3, 5, 3 }, sd["conv1.weight"].Shape);
        Assert.Equal("int64", sd["bn1.num_batches_tracked"].DType);
        Assert.Null(sd["bn1.num_batches_tracked"].Data);
        Assert.Equal(8 * 3 * 5 * 3, sd.Float("conv1.weight").Length);
        sd.CheckAgainst(TinyResNet.Network.Parameters);
    }

    /// <summary>
    /// Tensors sharing a storage, as PyTorch wrote them (tools/make_views_fixture.py): a tensor that is its whole
    /// storage is read straight into its floats, and views of that storage, before or after it, still get theirs. The
    /// same in torch.save's legacy format, with the tensors pickled as PyTorch 0.3 did, and as a big-endian machine
    /// writes the file (a byteorder record of "big", the storages byte-swapped).
    /// </summary>
    [Theory]
    [InlineData("views.pth")]
    [InlineData("views-legacy.pth")]
    [InlineData("views-legacy-v1.pth")]
    [InlineData("views-big-endian.pth")]
    public void ReadsViewsOfSharedStorages(string file)
    {
        var sd = StateDict.Load(Path.Combine(Fixtures.Dir("views"), file));
        static float[] Range(int from, int count) => Enumerable.Range(from, count).Select(i => (float)i).ToArray();
        Assert.Equal(Range(0, 10), sd.Float("whole"));
        Assert.Equal(Range(2, 8), sd.Float("tail"));
        Assert.Equal(Range(100, 5), sd.Float("head_of_u"));
        Assert.Equal(Range(100, 12), sd.Float("u"));
        Assert.Equal(new[] { 4, 3 }, sd["transposed"].Shape);
        Assert.Equal(new float[] { 200, 204, 208, 201, 205, 209, 202, 206, 210, 203, 207, 211 }, sd.Float("transposed"));
        Assert.Equal(Range(204, 4), sd.Float("row"));
        Assert.Equal(Range(302, 3), sd.Float("middle"));
        Assert.Equal("float16", sd["half_whole"].DType);
        Assert.Equal(Range(400, 10), sd.Float("half_whole"));
        Assert.Equal(Range(403, 7), sd.Float("half_tail"));
        Assert.Equal("bfloat16", sd["bf16_transposed"].DType);
        Assert.Equal(new[] { 3, 2 }, sd["bf16_transposed"].Shape);
        Assert.Equal(new float[] { 10, 13, 11, 14, 12, 15 }, sd.Float("bf16_transposed"));
        Assert.Equal("float64", sd["f64_middle"].DType);
        Assert.Equal(Range(601, 3), sd.Float("f64_middle"));
        // Each tensor owns its values: writing one leaves the views of its storage as they were read.
        sd.Float("whole")[3] = -1;
        Assert.Equal(Range(2, 8), sd.Float("tail"));
    }

    /// <summary>Read to be packed, the same file gives the same tensors, whole storages kept in native memory until released.</summary>
    [Theory]
    [InlineData("views.pth")]
    [InlineData("views-legacy.pth")]
    [InlineData("views-big-endian.pth")]
    public void ReadForPackingGivesTheSameTensorsUntilReleased(string file)
    {
        string path = Path.Combine(Fixtures.Dir("views"), file);
        var managed = StateDict.Load(path);
        var native = StateDict.LoadForPacking(path);
        try
        {
            foreach (var key in managed.Keys) Assert.Equal(managed.Float(key), native.Values(key).ToArray());
            var tiny = StateDict.Load(TinyWeights);
            var tinyNative = StateDict.LoadForPacking(TinyWeights);
            foreach (var key in tiny.Keys.Where(k => tiny[k].DType == "float32")) Assert.Equal(tiny.Float(key), tinyNative.Values(key).ToArray());
            tinyNative.Release();
            Assert.Throws<ObjectDisposedException>(() => tinyNative.Values("conv1.weight").Length);
            Assert.Equal("int64", tinyNative["bn1.num_batches_tracked"].DType);
        }
        finally
        {
            native.Release();
        }
        // An array asked for before the release is the tensor's own copy, and stays.
        var again = StateDict.LoadForPacking(path);
        float[] whole = again.Float("whole");
        again.Release();
        Assert.Equal(managed.Float("whole"), whole);
        Assert.Equal(managed.Float("whole"), again.Float("whole"));
    }

    /// <summary>
    /// Damaged files (bytes changed at 300 places of the tiny network's weights, one at a time, and cut short) are
    /// refused alike, with the same message, whether read into arrays or to be packed; what loads is the same. As
    /// float32 and float16 torch.save files, a legacy torch.save file and safetensors.
    /// </summary>
    [Theory]
    [InlineData("tiny/weights.pth")]
    [InlineData("formats/float16-pth/weights.pth")]
    [InlineData("formats/float16-legacy-pth/weights.pth")]
    [InlineData("formats/float32-safetensors/weights.safetensors")]
    [InlineData("formats/bfloat16-safetensors/weights.safetensors")]
    public void DamagedFilesAreReadAlikeForPacking(string file)
    {
        var original = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fixtures", file));
        var rng = new Random(27);
        var cases = Enumerable.Range(0, 300).Select(_ =>
        {
            var b = (byte[])original.Clone();
            b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
            return b;
        }).Concat(Enumerable.Range(1, 20).Select(i => original[..(original.Length * i / 21)]));
        int refused = 0;
        foreach (var bytes in cases)
        {
            string? managedError = null, nativeError = null;
            StateDict? managed = null, native = null;
            try { managed = StateDict.Load(new MemoryStream(bytes), "d.pth"); } catch (WeightsException e) { managedError = e.Message; }
            try { native = StateDict.LoadForPacking(new MemoryStream(bytes), "d.pth"); } catch (WeightsException e) { nativeError = e.Message; }
            Assert.Equal(managedError, nativeError);
            if (managedError != null) { refused++; continue; }
            try
            {
                foreach (var key in managed!.Keys.Where(k => managed[k].Data != null)) Assert.Equal(managed.Float(key), native!.Values(key).ToArray());
            }
            finally
            {
                native!.Release();
            }
        }
        Assert.True(refused >= 20, $"only {refused} of the damaged files were refused");
    }

    [Fact]
    public void MissingKeyIsNamed()
    {
        var sd = Without(StateDict.Load(TinyWeights), "layer2.0.downsample.1.running_var");
        var e = Assert.Throws<WeightsException>(() => sd.CheckAgainst(TinyResNet.Network.Parameters));
        Assert.Contains("missing key 'layer2.0.downsample.1.running_var'", e.Message);
    }

    [Fact]
    public void UnexpectedKeyIsNamed()
    {
        var sd = StateDict.Load(TinyWeights);
        var extra = StateDict.FromTensors("x.pth", sd.Keys.Select(k => KeyValuePair.Create(k, sd[k]))
            .Append(KeyValuePair.Create("fc.extra", new Tensor("float32", [1], [0f]))));
        var e = Assert.Throws<WeightsException>(() => extra.CheckAgainst(TinyResNet.Network.Parameters));
        Assert.Contains("unexpected key 'fc.extra'", e.Message);
    }

    [Fact]
    public void WrongShapeIsNamed()
    {
        var sd = StateDict.Load(TinyWeights);
        var bad = StateDict.FromTensors("x.pth", sd.Keys.Select(k => KeyValuePair.Create(k, k == "fc.weight" ? new Tensor("float32", [19, 239], new float[19 * 239]) : sd[k])));
        var e = Assert.Throws<WeightsException>(() => bad.CheckAgainst(TinyResNet.Network.Parameters));
        Assert.Contains("'fc.weight' has shape [19, 239]; expected [19, 240]", e.Message);
    }

    /// <summary>A model fine-tuned to other classes: only the output layer's rows differ, and the message says what to do.</summary>
    [Fact]
    public void OtherClassesAreNamedWithTheRemedy()
    {
        var sd = StateDict.Load(TinyWeights);
        var tenClasses = StateDict.FromTensors("x.pth", sd.Keys.Select(k => KeyValuePair.Create(k,
            k == "fc.weight" ? new Tensor("float32", [10, 240], new float[10 * 240]) : k == "fc.bias" ? new Tensor("float32", [10], new float[10]) : sd[k])));
        var e = Assert.Throws<WeightsException>(() => tenClasses.CheckAgainst(TinyResNet.Network.Parameters));
        Assert.Equal("x.pth: 'fc.weight' has shape [10, 240]; expected [19, 240]: a model with 10 outputs (fine-tuned to other classes?) "
                     + "needs the network generated for them: set out_features to 10 in the layer spec (arch/resnet18.json) and build again", e.Message);
        // Rows that differ anywhere else are not a matter of classes.
        var conv = TinyResNet.Network.Parameters[0];
        var otherRows = StateDict.FromTensors("x.pth", sd.Keys.Select(k => KeyValuePair.Create(k,
            k == conv.Key ? new Tensor("float32", [conv.Shape[0] + 1, .. conv.Shape[1..]], new float[(conv.Shape[0] + 1) * conv.Shape[1..].Aggregate(1, (a, b) => a * b)]) : sd[k])));
        e = Assert.Throws<WeightsException>(() => otherRows.CheckAgainst(TinyResNet.Network.Parameters));
        Assert.EndsWith($"expected {Tensor.Format(conv.Shape)}", e.Message);
    }

    /// <summary>An integer tensor where a parameter belongs, or a floating-point one without values (made by hand).</summary>
    [Theory]
    [InlineData("int32", "x.pth: 'fc.bias' is int32; expected float32 (or float16, bfloat16, float64)")]
    [InlineData("float64", "x.pth: 'fc.bias' is float64 without values")]
    public void ATensorWithoutFloatValuesIsNamed(string dtype, string message)
    {
        var sd = StateDict.Load(TinyWeights);
        var bad = StateDict.FromTensors("x.pth", sd.Keys.Select(k => KeyValuePair.Create(k, k == "fc.bias" ? new Tensor(dtype, [19], null) : sd[k])));
        var e = Assert.Throws<WeightsException>(() => bad.CheckAgainst(TinyResNet.Network.Parameters));
        Assert.Equal(message, e.Message);
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("subprocess", "Popen")]
    [InlineData("posix", "system")]
    [InlineData("torch", "load")]
    public void ForbiddenGlobalIsRefusedWithoutRunning(string module, string name)
    {
        // GLOBAL module.name, ('touch /tmp/pwned',), REDUCE, STOP: what a malicious pickle does.
        var pkl = new List<byte> { 0x80, 2, (byte)'c' };
        pkl.AddRange(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        pkl.Add(0x8c);
        var arg = Encoding.ASCII.GetBytes("touch /tmp/pwned");
        pkl.Add((byte)arg.Length);
        pkl.AddRange(arg);
        pkl.AddRange(new byte[] { 0x85, (byte)'R', (byte)'.' });
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(Zip(("archive/data.pkl", pkl.ToArray())), "evil.pth"));
        Assert.Contains($"refuses to load global '{module}.{name}'", e.Message);
        Assert.StartsWith("evil.pth: ", e.Message);
    }

    [Fact]
    public void NotAZipIsRefused()
    {
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(new MemoryStream(Encoding.ASCII.GetBytes("hello world, not a zip")), "w.pth"));
        Assert.Equal("w.pth: not a torch.save or safetensors file (expected a zip archive with data.pkl, a legacy torch.save pickle, or a safetensors header)", e.Message);
    }

    /// <summary>torch.load knows two byte orders and refuses any other record.</summary>
    [Fact]
    public void AnUnknownByteOrderIsRefused()
    {
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(Zip(("archive/data.pkl", [0x80, 2, (byte)'}', (byte)'.']), ("archive/byteorder", "middle"u8.ToArray())), "w.pth"));
        Assert.Equal("w.pth: byteorder record is 'middle'; expected 'little' or 'big'", e.Message);
    }

    [Fact]
    public void ZipWithoutPickleIsRefused()
    {
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(Zip(("archive/other", [1, 2, 3])), "w.pth"));
        Assert.Contains("no <name>/data.pkl", e.Message);
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        var e = Assert.Throws<WeightsException>(() => StateDict.Load("/nonexistent/w.pth"));
        Assert.Equal("/nonexistent/w.pth: no such file", e.Message);
        string directory = Directory.CreateTempSubdirectory("weights-dir").FullName;
        try
        {
            e = Assert.Throws<WeightsException>(() => StateDict.Load(directory));
            Assert.Equal($"{directory}: is a directory", e.Message);
        }
        finally
        {
            Directory.Delete(directory);
        }
    }

    [Fact]
    public void TruncatedStorageIsRefused()
    {
        // Rewrite the tiny file with one storage shortened by 4 bytes.
        using var source = ZipFile.OpenRead(TinyWeights);
        var entries = source.Entries.Select(en =>
        {
            using var s = en.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            var bytes = ms.ToArray();
            if (en.FullName.EndsWith("/data/0")) bytes = bytes[..^4];
            return (en.FullName, bytes);
        }).ToArray();
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(Zip(entries), "short.pth"));
        Assert.Contains("storage '0' has", e.Message);
    }

    [Fact]
    public void ZipBombEntryIsRefusedBeforeInflating()
    {
        // 200 MB of zeros deflate to ~200 kB: the declared size is refused without inflating it.
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            using var s = zip.CreateEntry("archive/data.pkl", CompressionLevel.Fastest).Open();
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 200; i++) s.Write(zeros);
        }
        ms.Position = 0;
        long before = GC.GetTotalAllocatedBytes();
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(ms, "bomb.pth"));
        Assert.Equal("bomb.pth: entry archive/data.pkl declares 209715200 bytes; limit is 8388608", e.Message);
        Assert.True(GC.GetTotalAllocatedBytes() - before < 16 << 20, "the bomb was inflated");
    }

    [Fact]
    public void HeaderThatUnderstatesItsSizeIsCaught()
    {
        var ms = new MemoryStream();
        TorchSaveWriter.Write(ms, [("w", new Tensor("float32", [4], [1, 2, 3, 4]))]);
        var bytes = ms.ToArray();
        // Halve data.pkl's declared uncompressed size in its local and central headers.
        PatchSizes(bytes, "archive/data.pkl", size => size / 2);
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(new MemoryStream(bytes), "liar.pth"));
        Assert.Contains("liar.pth: ", e.Message);
    }

    [Fact]
    public void TensorReachingPastItsStorageIsRefused()
    {
        var ms = new MemoryStream();
        TorchSaveWriter.Write(ms, [("w", new Tensor("float32", [4], [1, 2, 3, 4]))], declaredElements: _ => 2);
        ms.Position = 0;
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(ms, "short.pth"));
        Assert.Equal("short.pth: tensor of shape [4] at offset 0 reaches past its storage of 2 elements", e.Message);
    }

    [Fact]
    public void StorageSizeDisagreeingWithItsDeclarationIsRefused()
    {
        var ms = new MemoryStream();
        TorchSaveWriter.Write(ms, [("w", new Tensor("float32", [4], [1, 2, 3, 4]))], declaredElements: _ => 8);
        ms.Position = 0;
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(ms, "odd.pth"));
        Assert.Equal("odd.pth: storage '0' has 16 bytes; its 8 float32 elements need 32", e.Message);
    }

    [Fact]
    public void TruncatedZipIsRefused()
    {
        var bytes = File.ReadAllBytes(TinyWeights);
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(new MemoryStream(bytes[..(bytes.Length / 2)]), "cut.pth"));
        Assert.StartsWith("cut.pth: ", e.Message);
    }

    /// <summary>Regression (found by MutationTests): ZipArchive reads the central directory lazily, so its damage surfaced outside our checks.</summary>
    [Fact]
    public void CorruptCentralDirectoryIsRefused()
    {
        var bytes = File.ReadAllBytes(TinyWeights);
        int eocd = bytes.Length - 22;
        Assert.Equal(0x06054b50u, BitConverter.ToUInt32(bytes, eocd));
        bytes[eocd + 10]++; // total entries no longer matches the directory
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(new MemoryStream(bytes), "eocd.pth"));
        Assert.StartsWith("eocd.pth: corrupt zip archive (", e.Message);
    }

    private static void PatchSizes(byte[] zip, string entry, Func<uint, uint> change)
    {
        var name = Encoding.ASCII.GetBytes(entry);
        for (int i = 0; i + 46 < zip.Length; i++)
        {
            uint sig = BitConverter.ToUInt32(zip, i);
            if (sig == 0x04034b50 && zip.AsSpan(i + 30, name.Length).SequenceEqual(name))
            {
                BitConverter.TryWriteBytes(zip.AsSpan(i + 22), change(BitConverter.ToUInt32(zip, i + 22)));
                BitConverter.TryWriteBytes(zip.AsSpan(i + 18), change(BitConverter.ToUInt32(zip, i + 18)));
            }
            if (sig == 0x02014b50 && zip.AsSpan(i + 46, Math.Min(name.Length, zip.Length - i - 46)).SequenceEqual(name))
            {
                BitConverter.TryWriteBytes(zip.AsSpan(i + 24), change(BitConverter.ToUInt32(zip, i + 24)));
                BitConverter.TryWriteBytes(zip.AsSpan(i + 20), change(BitConverter.ToUInt32(zip, i + 20)));
            }
        }
    }

    private static StateDict Without(StateDict sd, string key) =>
        StateDict.FromTensors(sd.Source, sd.Keys.Where(k => k != key).Select(k => KeyValuePair.Create(k, sd[k])));

    internal static MemoryStream Zip(params (string Name, byte[] Data)[] entries)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        }
        ms.Position = 0;
        return ms;
    }
}
