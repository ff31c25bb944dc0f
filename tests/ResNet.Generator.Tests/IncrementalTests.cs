using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;
using Xunit;

namespace ResNet.Generator.Tests;

/// <summary>The pipeline caches on value equality: edits that do not change the plan regenerate nothing.</summary>
public class IncrementalTests
{
    [Fact]
    public void WhitespaceEditLeavesThePlanUnchanged()
    {
        string spec = GeneratorHarness.Spec("tiny_resnet.json");
        var result = RunEdit(spec, spec.Replace("\n", "\n\n  "));
        var plan = result.Results[0].TrackedSteps[ResNetGenerator.PlanStep];
        Assert.All(plan.SelectMany(s => s.Outputs), o => Assert.Equal(IncrementalStepRunReason.Unchanged, o.Reason));
        Assert.Equal(4, result.Results[0].GeneratedSources.Length);
    }

    [Fact]
    public void ShapeEditChangesThePlan()
    {
        string spec = GeneratorHarness.Spec("tiny_resnet.json");
        var result = RunEdit(spec, spec.Replace("\"out_features\": 19", "\"out_features\": 20"));
        var plan = result.Results[0].TrackedSteps[ResNetGenerator.PlanStep];
        Assert.Contains(plan.SelectMany(s => s.Outputs), o => o.Reason == IncrementalStepRunReason.Modified);
    }

    private static GeneratorDriverRunResult RunEdit(string before, string after)
    {
        var first = new TestText("/arch/tiny.json", before);
        var driver = GeneratorHarness.Driver().AddAdditionalTexts([first]);
        (driver, _, _) = GeneratorHarness.Run(driver);
        driver = driver.ReplaceAdditionalText(first, new TestText("/arch/tiny.json", after));
        return GeneratorHarness.Run(driver).Result;
    }

    private sealed class TestText(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }
}
