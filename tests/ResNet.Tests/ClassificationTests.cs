using ResNet.Runtime;
using Xunit;

namespace ResNet.Tests;

/// <summary>Softmax and top-k: the ranking against a full sort (the obvious definition), ties and NaN included.</summary>
public sealed class ClassificationTests
{
    /// <summary>Every index ranked: higher logit first, then lower index; NaN below every number (float.CompareTo).</summary>
    private static int[] Ranked(float[] logits) =>
        Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(17)]
    [InlineData(1000)]
    [InlineData(1200)]
    public void TopKIsTheFullRankingsHead(int k)
    {
        var random = new Random(k + 1);
        for (int round = 0; round < 20; round++)
        {
            // Few distinct values, so ties are everywhere; some NaN and infinities.
            var logits = Enumerable.Range(0, 1000).Select(_ => random.Next(40) switch
            {
                0 => float.NaN,
                1 => float.PositiveInfinity,
                2 => float.NegativeInfinity,
                var v => (v - 20) / 4f,
            }).ToArray();
            if (round == 0) Array.Sort(logits); // ascending input: every class enters the top and moves up
            var top = Classification.TopK(logits, k, ImageNetLabels.All);
            var expected = Ranked(logits).Take(k).ToArray();
            Assert.Equal(expected, top.Select(t => t.Index).ToArray());
            var p = Classification.Softmax(logits);
            Assert.All(top, t => Assert.Equal(p[t.Index], t.Probability));
            Assert.All(top, t => Assert.Equal(ImageNetLabels.All[t.Index], t.Label));
        }
    }

    [Fact]
    public void TiesKeepTheLowerIndexFirst()
    {
        var top = Classification.TopK([1f, 3f, 3f, 2f, 3f], 4);
        Assert.Equal([1, 2, 4, 3], top.Select(t => t.Index));
        Assert.All(top, t => Assert.Null(t.Label));
    }

    [Fact]
    public void SoftmaxSumsToOneForLargeLogits()
    {
        var p = Classification.Softmax([1000f, 999f, -1000f]);
        Assert.Equal(1.0, p.Sum(v => (double)v), 5);
        Assert.True(p[0] > p[1] && p[2] == 0f);
    }
}
