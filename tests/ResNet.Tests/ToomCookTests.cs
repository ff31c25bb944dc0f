using ResNet.Shared;
using Xunit;

namespace ResNet.Tests;

/// <summary>The Winograd matrices the generator unrolls and the packing applies: each F(m, r) computes the correlation.</summary>
public class ToomCookTests
{
    [Theory]
    [InlineData(4, 4)] // ResNet's stem: 7 taps at stride 2, phases of 4 and 3 taps
    [InlineData(4, 3)]
    [InlineData(2, 3)]
    [InlineData(4, 2)]
    [InlineData(6, 3)]
    [InlineData(3, 4)]
    public void EachFilterCorrelatesItsInputs(int m, int r)
    {
        var tc = ToomCook.For(m, r);
        int alpha = m + r - 1;
        Assert.Equal((alpha, m * alpha, alpha * r, alpha * alpha), (tc.Alpha, tc.AT.Length, tc.G.Length, tc.BT.Length));
        var rng = new Random(m * 10 + r);
        for (int trial = 0; trial < 20; trial++)
        {
            var g = Enumerable.Range(0, r).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
            var d = Enumerable.Range(0, alpha).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
            var product = new double[alpha];
            for (int j = 0; j < alpha; j++)
            {
                double u = 0, v = 0;
                for (int k = 0; k < r; k++) u += tc.G[j * r + k] * g[k];
                for (int i = 0; i < alpha; i++) v += tc.BT[j * alpha + i] * d[i];
                product[j] = u * v;
            }
            for (int i = 0; i < m; i++)
            {
                double y = 0, expected = 0;
                for (int j = 0; j < alpha; j++) y += tc.AT[i * alpha + j] * product[j];
                for (int k = 0; k < r; k++) expected += g[k] * d[i + k];
                Assert.True(Math.Abs(y - expected) < 1e-12, $"F({m},{r}) output {i}: {y} against {expected}");
            }
        }
    }

    [Fact]
    public void OutputTransformEntriesArePowersOfTwo()
    {
        // The points are 0, ±1, ±1/2, ±2: Aᵀ's entries (their powers) multiply exactly in floats.
        var tc = ToomCook.For(4, 4);
        foreach (double a in tc.AT)
            Assert.True(a == 0 || Math.Abs(Math.Log2(Math.Abs(a)) - Math.Round(Math.Log2(Math.Abs(a)))) == 0, $"{a}");
    }
}
