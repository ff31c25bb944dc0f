using System.Text.Json;
using ResNet.Runtime;
using ResNet.Runtime.Reference;
using Xunit;

namespace ResNet.Tests;

/// <summary>The scalar reference kernels against PyTorch on every option (fixtures from tools/make_kernel_fixtures.py).</summary>
public class ReferenceKernelTests
{
    private static readonly string Dir = Fixtures.Dir("kernels");

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "cases.json")));
        foreach (var c in doc.RootElement.EnumerateArray()) data.Add(c.GetProperty("name").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void MatchesPyTorch(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "cases.json")));
        var c = doc.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
        int I(string p) => c.GetProperty(p).GetInt32();
        int P(string p, int i) => c.GetProperty(p)[i].GetInt32();
        float[] Load(string part) => Fixtures.Npy(Path.Combine(Dir, $"{name}.{part}.npy"));
        var x = Load("x");
        var expected = Load("y");
        float[] actual;
        switch (c.GetProperty("kind").GetString())
        {
            case "conv":
                {
                    var mode = Enum.Parse<PaddingMode>(c.GetProperty("mode").GetString()!, ignoreCase: true);
                    bool bias = c.GetProperty("bias").GetBoolean();
                    var p = new Conv2dParams(I("ic"), I("oc"), P("k", 0), P("k", 1), P("s", 0), P("s", 1), P("p", 0), P("p", 1),
                        P("d", 0), P("d", 1), I("g"), bias, mode);
                    actual = ReferenceKernels.Conv2d(x, 2, new TensorShape(I("ic"), I("h"), I("w")), p, Load("w"), bias ? Load("b") : null);
                    break;
                }
            case "maxpool":
                {
                    var p = new MaxPool2dParams(P("k", 0), P("k", 1), P("s", 0), P("s", 1), P("p", 0), P("p", 1), P("d", 0), P("d", 1), c.GetProperty("ceil").GetBoolean());
                    actual = ReferenceKernels.MaxPool2d(x, 2, new TensorShape(I("c"), I("h"), I("w")), p, out _);
                    break;
                }
            default:
                actual = ReferenceKernels.AdaptiveAvgPool2d(x, 2, new TensorShape(I("c"), I("h"), I("w")), I("oh"), I("ow"));
                break;
        }
        Assert.Equal(expected.Length, actual.Length);
        Assert.True(Fixtures.MaxDiff(actual, expected) <= 1e-5f, $"{name}: max |Δ| = {Fixtures.MaxDiff(actual, expected)}");
    }

    [Theory]
    [InlineData(-1, 4, PaddingMode.Reflect, 1)]
    [InlineData(-2, 4, PaddingMode.Reflect, 2)]
    [InlineData(4, 4, PaddingMode.Reflect, 2)]
    [InlineData(-1, 4, PaddingMode.Replicate, 0)]
    [InlineData(5, 4, PaddingMode.Replicate, 3)]
    [InlineData(-1, 4, PaddingMode.Circular, 3)]
    [InlineData(4, 4, PaddingMode.Circular, 0)]
    [InlineData(-1, 4, PaddingMode.Zeros, -1)]
    public void PaddingModesMapCoordinates(int i, int size, PaddingMode mode, int expected) =>
        Assert.Equal(expected, ReferenceKernels.Pad(i, size, mode));
}
