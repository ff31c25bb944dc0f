using System.Buffers.Binary;
using System.Text;
using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// Weights in the other dtypes and formats users bring (tools/make_weight_formats.py, from the tiny fixture with
/// real PyTorch): torch.save files of float16, bfloat16 and float64 tensors, legacy torch.save files (PyTorch before
/// 1.6), and safetensors files. Each gives
/// PyTorch's logits for a model that load_state_dict'ed it; a damaged safetensors header is refused by name.
/// </summary>
public class WeightFormatsTests
{
    public static TheoryData<string> Variants() => new()
    {
        "float16-pth", "bfloat16-pth", "float64-pth", "float32-legacy-pth", "float16-legacy-pth", "float32-safetensors",
        "float16-safetensors", "bfloat16-safetensors",
    };

    private static string WeightsOf(string variant) =>
        Path.Combine(Fixtures.Dir("formats"), variant, variant.EndsWith("-pth") ? "weights.pth" : "weights.safetensors");

    [Theory]
    [MemberData(nameof(Variants))]
    public void EachFormatMatchesPyTorch(string variant)
    {
        // Through the packing path (Load, from the file or from a stream, as embedded weights are) and the arrays one
        // (a StateDict), the same network bit for bit.
        using var net = TinyResNet.Load(WeightsOf(variant));
        using var fromStateDict = new TinyResNet(StateDict.Load(WeightsOf(variant)));
        using var stream = new MemoryStream(System.IO.File.ReadAllBytes(WeightsOf(variant)));
        using var fromStream = TinyResNet.Load(stream, variant);
        for (int i = 0; i < 3; i++)
        {
            var input = Fixtures.Npy(Path.Combine(Fixtures.Dir("tiny"), $"input{i}.npy"));
            var expected = Fixtures.Npy(Path.Combine(Fixtures.Dir("formats"), variant, $"input{i}.logits.npy"));
            var logits = net.Run(input);
            Assert.True(Fixtures.MaxDiff(logits, expected) <= 1e-4f, $"{variant} input{i}: max |Δlogit| = {Fixtures.MaxDiff(logits, expected)}");
            Assert.Equal(Fixtures.Top(expected, 5), Fixtures.Top(logits, 5));
            Assert.Equal(logits, fromStateDict.Run(input));
            Assert.Equal(logits, fromStream.Run(input));
        }
    }

    /// <summary>
    /// The values are the float32 weights as PyTorch rounded them to the narrower dtype (to nearest, ties to even),
    /// widened exactly; float64 and a float32 safetensors give the float32 weights themselves. Both formats agree.
    /// </summary>
    [Theory]
    [InlineData("float16-pth", "float16")]
    [InlineData("float16-safetensors", "float16")]
    [InlineData("bfloat16-pth", "bfloat16")]
    [InlineData("bfloat16-safetensors", "bfloat16")]
    [InlineData("float64-pth", "float64")]
    [InlineData("float32-legacy-pth", "float32")]
    [InlineData("float16-legacy-pth", "float16")]
    [InlineData("float32-safetensors", "float32")]
    public void ValuesAreTheFloat32WeightsRoundedAsPyTorchRoundsThem(string variant, string dtype)
    {
        var f32 = StateDict.Load(Path.Combine(Fixtures.Dir("tiny"), "weights.pth"));
        var other = StateDict.Load(WeightsOf(variant));
        Assert.Equal(f32.Keys.Order(), other.Keys.Order());
        foreach (var key in f32.Keys)
        {
            if (f32[key].DType != "float32")
            {
                Assert.Equal(f32[key].DType, other[key].DType);
                continue;
            }
            Assert.Equal(dtype, other[key].DType);
            Assert.Equal(f32[key].Shape, other[key].Shape);
            Func<float, float> round = dtype switch
            {
                "float16" => v => (float)(Half)v,
                "bfloat16" => RoundToBFloat16,
                _ => v => v,
            };
            Assert.Equal(f32.Float(key).Select(round), other.Float(key));
        }
    }

    /// <summary>The vectorized float16 conversion against the BCL's, bit for bit, on every pattern (NaNs quieted alike), at every offset of a vector.</summary>
    [Fact]
    public void EveryFloat16PatternConvertsAsTheBclDoes()
    {
        var all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        for (int skip = 0; skip < 17; skip++)
        {
            var source = all.AsSpan(skip);
            var converted = new float[source.Length];
            FloatFormats.HalfToSingle(source, converted);
            for (int i = 0; i < source.Length; i++)
            {
                uint expected = BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf(source[i]));
                if (BitConverter.SingleToUInt32Bits(converted[i]) != expected)
                    Assert.Fail($"0x{source[i]:x4}: 0x{BitConverter.SingleToUInt32Bits(converted[i]):x8}, expected 0x{expected:x8}");
            }
        }
    }

    /// <summary>float → bfloat16 to nearest, ties to even (PyTorch's rounding), as a float again.</summary>
    private static float RoundToBFloat16(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000;
        return BitConverter.UInt32BitsToSingle(bits);
    }

    /// <summary>
    /// What training scripts save (real PyTorch files): a checkpoint dict (epoch, optimizer, …) holding the state_dict,
    /// and a DataParallel model's state_dict ('module.' before every key). load_state_dict takes neither as it is;
    /// the message says what the file is and how to save what it takes.
    /// </summary>
    [Theory]
    [InlineData("checkpoint.pth", "a checkpoint holding a state_dict under 'state_dict', not a state_dict; save that alone: torch.save(checkpoint['state_dict'], 'weights.pth')")]
    [InlineData("dataparallel.pth", "keys start with 'module.' ('module.conv1.weight'): saved from a DataParallel model; save model.module.state_dict() instead, which load_state_dict needs too")]
    public void TrainingCheckpointsAreRefusedWithTheRemedy(string file, string reason)
    {
        string path = Path.Combine(Fixtures.Dir("formats"), "checkpoints", file);
        var e = Assert.Throws<WeightsException>(() => TinyResNet.Load(path));
        Assert.Equal($"{path}: {reason}", e.Message);
    }

    /// <summary>A safetensors file from its parts: the header JSON as given, padded to 8 bytes, then the data.</summary>
    private static byte[] File(string header, int dataBytes, ulong? declaredLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        int padded = (json.Length + 7) / 8 * 8;
        var bytes = new byte[8 + padded + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)padded);
        json.CopyTo(bytes, 8);
        bytes.AsSpan(8 + json.Length, padded - json.Length).Fill((byte)' ');
        return bytes;
    }

    private const string Two = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2,1],"data_offsets":[8,12]}}""";

    [Fact]
    public void ReadsAHandMadeFile()
    {
        var bytes = File(Two, 12);
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(bytes.Length - 12), 1.5f);
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(bytes.Length - 8), -2f);
        BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(bytes.Length - 4), (Half)0.25f);
        BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(bytes.Length - 2), (Half)65504f);
        var sd = StateDict.Load(new MemoryStream(bytes), "m.safetensors");
        Assert.Equal(new[] { "a", "b" }, sd.Keys);
        Assert.Equal(new[] { 1.5f, -2f }, sd.Float("a"));
        Assert.Equal(new[] { 2, 1 }, sd["b"].Shape);
        Assert.Equal("float16", sd["b"].DType);
        Assert.Equal(new[] { 0.25f, 65504f }, sd.Float("b"));
    }

    public static TheoryData<string, byte[], string> BadFiles() => new()
    {
        { "header past the end", File(Two, 12, declaredLength: 1000), "not a torch.save or safetensors file" },
        { "not JSON", File("{\"a\":", 0), "safetensors header is not valid JSON" },
        { "trailing", File("{}x", 0), "safetensors header is not valid JSON" },
        { "array", File("[]", 0), "not a torch.save or safetensors file" },
        { "twice", File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8), "tensor 'a' is named twice" },
        { "unknown dtype", File("""{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}""", 16), "tensor 'a' has unknown dtype 'F128'" },
        { "missing field", File("""{"a":{"dtype":"F32","shape":[1]}}""", 0), "tensor 'a' lacks its dtype, shape or data_offsets" },
        { "extra field", File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}""", 4), "tensor 'a' has an unexpected or repeated field 'x'" },
        { "repeated field", File("""{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}""", 4), "unexpected or repeated field 'dtype'" },
        { "negative", File("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4), "tensor 'a''s shape holds something other than a non-negative integer" },
        { "fraction", File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}""", 4), "data_offsets holds something other than a non-negative integer" },
        { "string shape", File("""{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}""", 4), "tensor 'a''s shape holds something other than integers" },
        { "nine dims", File("""{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}""", 4), "shape has more than 8 entries" },
        { "three offsets", File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}""", 8), "data_offsets has more than 2 entries" },
        { "wrong size", File("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8), "tensor 'a' has 8 bytes; its 3 float32 elements of shape [3] need 12" },
        { "backwards", File("""{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}""", 4), "data_offsets [4, 0] end before they begin" },
        { "gap", File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8), "tensor 'a' begins at byte 4 of the data; expected 0" },
        { "overlap", File("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8), "begins at byte 4 of the data; expected 8" },
        { "data left over", File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 12), "the tensors cover 4 bytes of data; the file has 12" },
        { "data short", File("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 8), "the tensors cover 16 bytes of data; the file has 8" },
        { "huge shape", File("""{"a":{"dtype":"F32","shape":[2147483647,2147483647],"data_offsets":[0,4]}}""", 4), "has shape [2147483647, 2147483647]; out of range" },
        { "metadata not strings", File("""{"__metadata__":{"format":1}}""", 0), "__metadata__ (a map of strings) is not a string" },
    };

    /// <summary>
    /// A header over the limit, as a fact of its own: as theory data its 9 MB were serialized by xunit's discovery
    /// element by element (GBs of memory, minutes: with the other tests running, the OOM killer ended the test host).
    /// </summary>
    [Fact]
    public void AHeaderOverTheLimitIsRefused()
    {
        var bytes = new byte[8 + (9 << 20)];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 9 << 20);
        bytes[8] = (byte)'{';
        AssertRefusedAlike(bytes, "bad.safetensors", "header over the limit", "safetensors header declares 9437184 bytes; limit is 8388608");
    }

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadSafetensorsAreRefusedWithTheReason(string what, byte[] bytes, string reason) =>
        AssertRefusedAlike(bytes, "bad.safetensors", what, reason);

    /// <summary>
    /// <paramref name="bytes"/>, named <paramref name="name"/>, are refused with a one-line message naming the file and
    /// holding <paramref name="reason"/>; read to be packed, the same refusal (and nothing allocated is left behind).
    /// </summary>
    internal static void AssertRefusedAlike(byte[] bytes, string name, string what, string reason)
    {
        var e = Assert.Throws<WeightsException>(() => StateDict.Load(new MemoryStream(bytes), name));
        Assert.StartsWith(name + ": ", e.Message);
        Assert.True(e.Message.Contains(reason, StringComparison.Ordinal), $"{what}: {e.Message}");
        Assert.DoesNotContain('\n', e.Message);
        var packing = Assert.Throws<WeightsException>(() => StateDict.LoadForPacking(new MemoryStream(bytes), name));
        Assert.Equal(e.Message, packing.Message);
    }
}
