using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

public sealed class PackingTests
{
    /// <summary>
    /// The Winograd weight transform, eight output channels per vector step, gives exactly the floats of the
    /// one-kernel-at-a-time transform, for both tile sizes, both block widths and a partial last block.
    /// </summary>
    [Theory]
    [InlineData(4, 16, 2, 60, 40)]
    [InlineData(2, 16, 1, 32, 35)]
    [InlineData(4, 8, 4, 64, 24)]
    [InlineData(2, 8, 2, 16, 9)]
    public void WinogradBlocksEqualOneKernelAtATime(int m, int block, int ocTile, int outChannels, int inChannels)
    {
        var c = new Conv2dParams(inChannels, outChannels, 3, 3, 1, 1, 1, 1, 1, 1, 1, false);
        var random = new Random(m * 1000 + block);
        var w = Enumerable.Range(0, outChannels * inChannels * 9).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var packed = new float[Packing.WinogradLength(c, m, block)];
        Packing.Winograd(w, c, m, block, ocTile, packed);

        int alpha = m + 2, positions = alpha * alpha, icPadded = (inChannels + block - 1) / block * block;
        var g = Packing.WinogradG(m);
        var u = new float[positions * block];
        var gg = new double[alpha * 3];
        for (int oc = 0; oc < outChannels; oc++)
        {
            int ob = oc / block, o = oc % block, group = ob / ocTile, j = ob % ocTile;
            for (int ic = 0; ic < inChannels; ic++)
            {
                Packing.Transform(w.AsSpan((oc * inChannels + ic) * 9, 9), g, alpha, gg, u, block, o);
                for (int p = 0; p < positions; p++)
                    Assert.Equal(u[p * block + o], packed[((group * positions + p) * icPadded + ic) * ocTile * block + j * block + o]);
            }
        }
    }
}
