using Microsoft.CodeAnalysis;
using Xunit;

namespace ResNet.Generator.Tests;

/// <summary>Each kind of bad spec gives its diagnostic, with the JSON path and what was expected; nothing crashes.</summary>
public class DiagnosticTests
{
    private const string Conv = "{\"name\": \"conv1\", \"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3, \"padding\": 1}";

    private static string Net(string modules, string input = "\"input\": [3, 8, 8], ") => $"{{\"name\": \"Bad\", {input}\"modules\": [{modules}]}}";

    public static TheoryData<string, string, string[]> Cases() => new()
    {
        { "{\"name\": \"Bad\", \"input\": [3, 8", "RN1001", ["not valid JSON", "unexpected end of file"] },
        { "[1, 2]", "RN1001", ["the top level must be an object"] },
        { Net(Conv, input: ""), "RN1004", ["no \"input\" property"] },
        { Net(Conv, input: "\"input\": [3, 0, 8], "), "RN1004", ["$.input", "input[1] is 0"] },
        { Net("{\"name\": \"x\", \"type\": \"Conv3d\"}"), "RN1003", ["$.modules[0]", "unknown module type 'Conv3d'"] },
        { Net("{\"name\": \"conv1\", \"type\": \"Conv2d\", \"in_channels\": 3, \"kernel_size\": 3}"), "RN1002", ["$.modules[0].out_channels", "is missing"] },
        { Net("{\"name\": \"conv1\", \"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": \"4\", \"kernel_size\": 3}"), "RN1002", ["$.modules[0].out_channels", "is \"4\"; expected an integer"] },
        { Net("{\"name\": \"conv1\", \"type\": \"Conv2d\", \"in_channels\": 5, \"out_channels\": 4, \"kernel_size\": 3}"), "RN1005", ["$.modules[0] (conv1)", "in_channels is 5 but the incoming tensor has 3 channels"] },
        { Net(Conv + ", {\"name\": \"bn1\", \"type\": \"BatchNorm2d\", \"num_features\": 5}"), "RN1005", ["$.modules[1] (bn1)", "num_features is 5"] },
        { Net("{\"name\": \"conv1\", \"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 11}"), "RN1006", ["$.modules[0] (conv1)", "smaller than the dilated kernel (11)"] },
        { Net("{\"name\": \"pool\", \"type\": \"MaxPool2d\", \"kernel_size\": 2, \"padding\": 2}"), "RN1006", ["$.modules[0] (pool)", "more than half of kernel_size"] },
        { Net("{\"name\": \"conv1\", \"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3, \"stride\": 0}"), "RN1002", ["$.modules[0].stride"] },
        { Net(Conv + ", {\"name\": \"fc\", \"type\": \"Linear\", \"in_features\": 100, \"out_features\": 2}"), "RN1007", ["$.modules[1] (fc)", "expected in_features = 256"] },
        { Net(Conv + ", {\"name\": \"layer1\", \"type\": \"Sequential\", \"modules\": [{\"name\": \"0\", \"type\": \"BasicBlock\", \"modules\": [" + Conv + "]}]}"), "RN1008", ["$.modules[1].modules[0] (layer1.0)", "a BasicBlock must have exactly conv1"] },
        { Net(Conv + ", " + Conv), "RN1008", ["$.modules[1] (conv1)", "a sibling is already named 'conv1'"] },
        { Net("{\"name\": \"conv1\", \"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 3, \"kernel_size\": 3, \"groups\": 3}"), "RN1009", ["groups=3"] },
        { Net("{\"name\": \"conv1\", \"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3, \"padding_mode\": \"reflect\"}"), "RN1009", ["padding_mode=\"reflect\""] },
        { Net("{\"name\": \"bn\", \"type\": \"BatchNorm2d\", \"num_features\": 3}"), "RN1009", ["must directly follow a Conv2d"] },
        { Net("{\"name\": \"conv1\", \"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 4000000, \"kernel_size\": 3}"), "RN1002", ["$.modules[0].out_channels", "expected an integer from 1 to 1048576"] },
        { Net("{\"name\": \"conv1\", \"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 1048576, \"kernel_size\": 1}", input: "\"input\": [3, 1000, 1000], "), "RN1010", ["$.modules[0] (conv1)", "elements per image; expected at most"] },
        { Net(""), "RN1008", ["computes nothing"] },
        { new string('[', 5000), "RN1001", ["nesting deeper than 64 levels"] },
        { Net(string.Concat(Enumerable.Repeat("{\"name\": \"s\", \"type\": \"Sequential\", \"modules\": [", 200)) + Conv + new string(']', 1) + string.Concat(Enumerable.Repeat("]}", 199)) + "]}"), "RN1001", ["nesting deeper than 64 levels"] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadSpecGivesDiagnostic(string json, string id, string[] fragments)
    {
        var (_, result, _) = GeneratorHarness.Run("/arch/bad.json", json);
        Assert.Empty(result.GeneratedTrees);
        var d = Assert.Single(result.Diagnostics, x => x.Id == id);
        string message = d.GetMessage(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var f in fragments) Assert.Contains(f, message);
        Assert.Equal("/arch/bad.json", d.Location.GetLineSpan().Path);
        Assert.DoesNotContain(result.Diagnostics, x => x.Id == "CS8785");
    }

    /// <summary>An unknown property is a warning (other exporters may add attributes), yet a typo must not pass unseen.</summary>
    [Theory]
    [InlineData("\"strides\": 2", "$.modules[0].strides (conv1): unknown property 'strides' on a Conv2d, ignored; did you mean 'stride'?")]
    [InlineData("\"Padding\": 1", "did you mean 'padding'?")]
    [InlineData("\"weight_init\": \"kaiming\"", "unknown property 'weight_init' on a Conv2d, ignored; a Conv2d has name, type, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode")]
    public void UnknownPropertyIsAWarningAndTheCodeIsStillGenerated(string extra, string fragment)
    {
        string conv = Conv.Replace("\"padding\": 1}", "\"padding\": 1, " + extra + "}");
        var (_, result, output) = GeneratorHarness.Run("/arch/typo.json", Net(conv));
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(("RN1012", DiagnosticSeverity.Warning), (d.Id, d.Severity));
        Assert.Contains(fragment, d.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.NotEmpty(result.GeneratedTrees);
        Assert.Empty(output.GetDiagnostics().Where(x => x.Severity == DiagnosticSeverity.Error));
    }

    [Fact]
    public void UnknownPropertiesAreReportedOnContainersAndTheTopLevel()
    {
        string json = "{\"name\": \"Bad\", \"input\": [3, 8, 8], \"inputs\": 1, \"modules\": [{\"name\": \"s\", \"type\": \"Sequential\", \"stride\": 2, \"modules\": [" + Conv + "]}]}";
        var (_, result, _) = GeneratorHarness.Run("/arch/extra.json", json);
        var messages = result.Diagnostics.Select(x => (x.Id, x.GetMessage(System.Globalization.CultureInfo.InvariantCulture))).ToList();
        Assert.Equal(2, messages.Count);
        Assert.All(messages, m => Assert.Equal("RN1012", m.Id));
        Assert.Contains(messages, m => m.Item2.Contains("$.inputs (network): unknown property 'inputs' on a network, ignored; did you mean 'input'?"));
        Assert.Contains(messages, m => m.Item2.Contains("$.modules[0].stride (s): unknown property 'stride' on a Sequential, ignored; a Sequential has name, type, modules"));
        Assert.NotEmpty(result.GeneratedTrees);
    }

    [Fact]
    public void DiagnosticPointsAtTheModuleLine()
    {
        string json = "{\"name\": \"Bad\", \"input\": [3, 8, 8], \"modules\": [\n  {\"name\": \"ok\", \"type\": \"ReLU\"},\n  {\"name\": \"x\", \"type\": \"Conv3d\"}\n]}";
        var (_, result, _) = GeneratorHarness.Run("/arch/bad.json", json);
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(2, d.Location.GetLineSpan().StartLinePosition.Line);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
    }

    [Fact]
    public void TruncatedSpecsNeverCrashTheGenerator()
    {
        string spec = GeneratorHarness.Spec("resnet18.json");
        var rng = new Random(1);
        for (int i = 0; i < 150; i++)
        {
            int cut = rng.Next(spec.Length);
            string mangled = i % 2 == 0 ? spec[..cut] : spec.Remove(cut, Math.Min(7, spec.Length - cut));
            var (_, result, _) = GeneratorHarness.Run("/arch/mangled.json", mangled);
            Assert.All(result.Diagnostics, d => Assert.StartsWith("RN", d.Id));
            Assert.True(result.Results.All(r => r.Exception == null), $"generator threw on cut {cut}");
        }
    }
}
