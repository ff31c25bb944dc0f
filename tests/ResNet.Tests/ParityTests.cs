using ResNet.Runtime;
using ResNet.Runtime.Reference;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>Generated networks against real PyTorch's logits (fixtures from tools/make_fixtures.py).</summary>
public class ParityTests
{
    public static TheoryData<InstructionSet> Isas()
    {
        var data = new TheoryData<InstructionSet>();
        foreach (var isa in Fixtures.SupportedIsas()) data.Add(isa);
        return data;
    }

    /// <summary>Every ISA, with Winograd (the default, bound 1e-3) and exact (direct only, bound 1e-4).</summary>
    public static TheoryData<InstructionSet, bool> IsasAndModes()
    {
        var data = new TheoryData<InstructionSet, bool>();
        foreach (var isa in Fixtures.SupportedIsas())
        {
            data.Add(isa, false);
            data.Add(isa, true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(IsasAndModes))]
    public void TinyNetworkMatchesPyTorch(InstructionSet isa, bool exact)
    {
        string dir = Fixtures.Dir("tiny");
        using var net = TinyResNet.Load(Path.Combine(dir, "weights.pth"), new NetworkOptions { InstructionSet = isa, Exact = exact });
        for (int i = 0; i < 3; i++)
        {
            var logits = net.Run(Fixtures.Npy(Path.Combine(dir, $"input{i}.npy")));
            var expected = Fixtures.Npy(Path.Combine(dir, $"input{i}.logits.npy"));
            Assert.True(Fixtures.MaxDiff(logits, expected) <= 1e-4f, $"{isa} input{i}: max |Δlogit| = {Fixtures.MaxDiff(logits, expected)}");
            Assert.Equal(Fixtures.Top(expected, 5), Fixtures.Top(logits, 5));
        }
    }

    /// <summary>The three ways in give the same network, bit for bit: a file, a stream (the CLI's embedded weights), a state_dict.</summary>
    [Fact]
    public void LoadingFromAStreamOrAStateDictGivesTheSameLogits()
    {
        string dir = Fixtures.Dir("tiny"), path = Path.Combine(dir, "weights.pth");
        var input = Fixtures.Npy(Path.Combine(dir, "input0.npy"));
        using var fromFile = TinyResNet.Load(path);
        using var stream = File.OpenRead(path);
        using var fromStream = TinyResNet.Load(stream, "tiny.pth");
        using var fromStateDict = new TinyResNet(StateDict.Load(path));
        var expected = fromFile.Run(input);
        Assert.Equal(expected, fromStream.Run(input));
        Assert.Equal(expected, fromStateDict.Run(input));
        var e = Assert.Throws<WeightsException>(() => TinyResNet.Load(new MemoryStream(new byte[100]), "zeros.pth"));
        Assert.Equal("zeros.pth: not a torch.save or safetensors file (expected a zip archive with data.pkl, a legacy torch.save pickle, or a safetensors header)", e.Message);
    }

    [Fact]
    public void ReferenceNetworkMatchesPyTorch()
    {
        string dir = Fixtures.Dir("tiny");
        var reference = new ReferenceNetwork(TinyResNet.Network, StateDict.Load(Path.Combine(dir, "weights.pth")));
        var logits = reference.Run(Fixtures.Npy(Path.Combine(dir, "input0.npy")));
        Assert.True(Fixtures.MaxDiff(logits, Fixtures.Npy(Path.Combine(dir, "input0.logits.npy"))) <= 1e-4f);
    }

    /// <summary>
    /// A batch of 3 runs the batched Winograd variants (on some of TinyResNet's layers, from 2 or 3 images on by
    /// instruction set): each image still matches PyTorch.
    /// </summary>
    [Theory]
    [MemberData(nameof(Isas))]
    public void TinyBatchMatchesPyTorch(InstructionSet isa)
    {
        string dir = Fixtures.Dir("tiny");
        using var net = TinyResNet.Load(Path.Combine(dir, "weights.pth"), new NetworkOptions { InstructionSet = isa, MaxBatch = 3 });
        var logits = net.Run(Enumerable.Range(0, 3).SelectMany(i => Fixtures.Npy(Path.Combine(dir, $"input{i}.npy"))).ToArray());
        for (int i = 0; i < 3; i++)
        {
            var expected = Fixtures.Npy(Path.Combine(dir, $"input{i}.logits.npy"));
            var actual = logits.AsSpan(i * net.OutputLength, net.OutputLength).ToArray();
            Assert.True(Fixtures.MaxDiff(actual, expected) <= 1e-4f, $"{isa} input{i}: max |Δlogit| = {Fixtures.MaxDiff(actual, expected)}");
        }
    }

    /// <summary>
    /// An image's logits do not depend on the batch around it, float for float: in a batch of 10 (a work item of
    /// the batched variants holds 8 images, so the last two make an item of their own) and in a batch of 3 in
    /// another order. Without the batched variants a batch equals one image at a time.
    /// </summary>
    [Theory]
    [MemberData(nameof(Isas))]
    public void AnImagesLogitsDoNotDependOnItsBatch(InstructionSet isa)
    {
        var weights = StateDict.Load(Path.Combine(Fixtures.Dir("tiny"), "weights.pth"));
        using var net = new TinyResNet(weights, new NetworkOptions { InstructionSet = isa, MaxBatch = 10, Threads = 2 });
        var rng = new Random(8);
        var inputs = Enumerable.Range(0, 10 * net.InputLength).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] Image(float[] batch, int i, int length) => batch.AsSpan(i * length, length).ToArray();
        var ten = net.Run(inputs);
        int[] order = { 9, 0, 4 };
        var three = net.Run(order.SelectMany(i => Image(inputs, i, net.InputLength)).ToArray());
        for (int j = 0; j < order.Length; j++)
            Assert.Equal(Image(ten, order[j], net.OutputLength), Image(three, j, net.OutputLength));

        using var single = new TinyResNet(weights, new NetworkOptions { InstructionSet = isa, MaxBatch = 10, BatchedVariants = false });
        var unbatched = single.Run(inputs);
        for (int i = 0; i < 10; i += 3)
            Assert.Equal(single.Run(Image(inputs, i, net.InputLength)), Image(unbatched, i, net.OutputLength));
        // The batched variants compute other sums (F(4×4) where one image gets F(2×2)): close, not equal.
        Assert.True(Fixtures.MaxDiff(ten, unbatched) <= 1e-4f * (ten.Max(Math.Abs) + 1), $"{isa}: max |Δ| = {Fixtures.MaxDiff(ten, unbatched)}");
        Assert.NotEqual(ten, unbatched);
    }

    /// <summary>A batch given as separate images runs as the same images laid end to end, and refuses a wrong image or count.</summary>
    [Fact]
    public void SeparateImagesRunAsOneArray()
    {
        using var net = TinyResNet.Load(Path.Combine(Fixtures.Dir("tiny"), "weights.pth"), new NetworkOptions { MaxBatch = 3 });
        var rng = new Random(12);
        var images = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, net.InputLength).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray()).ToArray();
        var expected = net.Run(images.SelectMany(i => i).ToArray());
        var actual = new float[3 * net.OutputLength];
        net.Run(images, actual);
        Assert.Equal(expected, actual);
        var two = new float[2 * net.OutputLength];
        net.Run(images[1..], two);
        Assert.Equal(expected[net.OutputLength..], two);

        Assert.Throws<ArgumentException>(() => net.Run(new[] { images[0], new float[net.InputLength - 1] }, actual));
        Assert.Throws<ArgumentException>(() => net.Run(Enumerable.Repeat(images[0], 4).ToArray(), new float[4 * net.OutputLength]));
        Assert.Throws<ArgumentException>(() => net.Run(images, new float[net.OutputLength]));
    }

    /// <summary>
    /// Full-size ResNet-18 (random weights, so no fixtures needed) on one image gives bit-identical logits on 1,
    /// 2 and 3 threads: 2 threads give each thread its own Winograd input transform, 3 share one.
    /// </summary>
    [Theory]
    [MemberData(nameof(Isas))]
    public void FullSizeThreadCountsAgreeExactly(InstructionSet isa)
    {
        var weights = RandomWeights.For(ResNet18.Network, seed: 3);
        var input = new float[ResNet18.Network.Input.Elements];
        var random = new Random(4);
        for (int i = 0; i < input.Length; i++) input[i] = (float)(random.NextDouble() * 4 - 2);
        float[] Logits(int threads)
        {
            using var net = new ResNet18(weights, new NetworkOptions { InstructionSet = isa, Threads = threads });
            net.Run(input); // a second run reuses every buffer and scratch slot: it must not depend on the first
            return net.Run(input);
        }
        var one = Logits(1);
        Assert.Equal(one, Logits(2));
        Assert.Equal(one, Logits(3));
    }

    /// <summary>Both full-size fixture sets × every ISA × Winograd and exact.</summary>
    public static TheoryData<string, InstructionSet, bool> SetsIsasAndModes()
    {
        var data = new TheoryData<string, InstructionSet, bool>();
        foreach (string set in Fixtures.FullSizeSets)
        foreach (var isa in Fixtures.SupportedIsas())
        {
            data.Add(set, isa, false);
            data.Add(set, isa, true);
        }
        return data;
    }

    /// <summary>
    /// Full-size ResNet-18 against PyTorch, on uniformly random statistics ("full") and on statistics measured on
    /// photos with near-dead channels, whose folded weights are hundreds of times larger ("calibrated").
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(SetsIsasAndModes))]
    public void FullSizeResNet18MatchesPyTorch(string set, InstructionSet isa, bool exact)
    {
        string? dir = Fixtures.FullSize(set);
        if (dir == null && Fixtures.FullSizeRequired) Assert.Fail($"RESNET18_REQUIRE_FULL=1 but no full-size fixtures ({set}) were generated");
        Skip.If(dir == null, "full-size fixtures absent: run tools/make_fixtures.py (CI does)");
        using var net = ResNet18.Load(Path.Combine(dir!, "weights.pth"), new NetworkOptions { InstructionSet = isa, Exact = exact });
        float bound = exact ? 1e-4f : 1e-3f;
        foreach (var input in Directory.GetFiles(dir!, "input*.npy").Where(f => !f.EndsWith(".logits.npy")))
        {
            var logits = net.Run(Fixtures.Npy(input));
            var expected = Fixtures.Npy(input.Replace(".npy", ".logits.npy"));
            float diff = Fixtures.MaxDiff(logits, expected);
            Assert.True(diff <= bound, $"{set} {isa} exact={exact} {Path.GetFileName(input)}: max |Δlogit| = {diff}");
            Assert.Equal(Fixtures.Top(expected, 5), Fixtures.Top(logits, 5));
        }
    }

    /// <summary>
    /// The fixtures' inputs as one batch on two threads: batched scratch, item orders and shares on real shapes
    /// (the calibrated set's 7 photos: 3 images a thread through the image-by-image prefix and one left over).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(SetsIsasAndModes))]
    public void FullSizeBatchMatchesPyTorch(string set, InstructionSet isa, bool exact)
    {
        string? dir = Fixtures.FullSize(set);
        Skip.If(dir == null, "full-size fixtures absent: run tools/make_fixtures.py (CI does)");
        var inputs = Directory.GetFiles(dir!, "input*.npy").Where(f => !f.EndsWith(".logits.npy")).Order().ToList();
        using var net = ResNet18.Load(Path.Combine(dir!, "weights.pth"), new NetworkOptions { InstructionSet = isa, Exact = exact, MaxBatch = inputs.Count, Threads = 2 });
        var logits = net.Run(inputs.SelectMany(Fixtures.Npy).ToArray());
        for (int i = 0; i < inputs.Count; i++)
        {
            var expected = Fixtures.Npy(inputs[i].Replace(".npy", ".logits.npy"));
            var actual = logits.AsSpan(i * net.OutputLength, net.OutputLength).ToArray();
            Assert.True(Fixtures.MaxDiff(actual, expected) <= (exact ? 1e-4f : 1e-3f), $"{set} {isa} exact={exact} image {i}: max |Δlogit| = {Fixtures.MaxDiff(actual, expected)}");
            Assert.Equal(Fixtures.Top(expected, 5), Fixtures.Top(actual, 5));
        }
    }
}
