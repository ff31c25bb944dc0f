using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>BatchNorm folding gives, bit for bit, the formula computed one weight at a time in double.</summary>
public class FoldingTests
{
    [Theory]
    [InlineData(4, 147)] // conv1's rows: 3 × 7 × 7, not a multiple of the vector
    [InlineData(8, 576)] // 64 × 3 × 3
    [InlineData(3, 5)]   // shorter than a vector
    public void VectorFoldEqualsTheScalarFormula(int outChannels, int perChannel)
    {
        var rng = new Random(outChannels * 1000 + perChannel);
        float Any() => rng.Next(8) switch
        {
            0 => (float)(rng.NextDouble() * 1e-40), // subnormal
            1 => (float)(rng.NextDouble() * 1e30 - 5e29),
            _ => (float)(rng.NextDouble() * 2 - 1),
        };
        var w = Enumerable.Range(0, outChannels * perChannel).Select(_ => Any()).ToArray();
        var b = Enumerable.Range(0, outChannels).Select(_ => Any()).ToArray();
        var gamma = Enumerable.Range(0, outChannels).Select(_ => (float)(rng.NextDouble() * 300 - 150)).ToArray();
        var beta = Enumerable.Range(0, outChannels).Select(_ => Any()).ToArray();
        var mean = Enumerable.Range(0, outChannels).Select(_ => Any()).ToArray();
        var variance = Enumerable.Range(0, outChannels).Select(_ => (float)(rng.NextDouble() * 1e-3)).ToArray();
        const double eps = 1e-5;

        var (wf, bf) = Folding.Fold(w, b, gamma, beta, mean, variance, eps);

        for (int o = 0; o < outChannels; o++)
        {
            double scale = gamma[o] / Math.Sqrt((double)variance[o] + eps);
            for (int i = 0; i < perChannel; i++)
            {
                float expected = (float)(w[o * perChannel + i] * scale);
                Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(wf[o * perChannel + i]));
            }
            Assert.Equal(BitConverter.SingleToInt32Bits((float)(beta[o] + (b[o] - (double)mean[o]) * scale)), BitConverter.SingleToInt32Bits(bf[o]));
        }
    }
}
