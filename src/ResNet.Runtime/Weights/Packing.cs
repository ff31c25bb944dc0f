namespace ResNet.Runtime.Weights;

/// <summary>
/// Reorders weights once, at load, into the order the generated kernels stream them, so a kernel reads
/// its weights strictly forward with vector loads. Channels beyond the real count are zero.
/// </summary>
public static class Packing
{
    /// <summary>
    /// OIHW convolution weights → [oc group][ic block][kh][kw][ic in block][oc block in group][oc in block],
    /// where a group is the <paramref name="ocTile"/> output blocks one micro-kernel computes.
    /// </summary>
    public static float[] Conv(float[] w, Conv2dParams c, int inBlock, int outBlock, int ocTile)
    {
        int icBlocks = (c.InChannels + inBlock - 1) / inBlock;
        int ocBlocks = (c.OutChannels + outBlock - 1) / outBlock;
        int groups = ocBlocks / ocTile;
        var packed = new float[groups * icBlocks * c.KernelH * c.KernelW * inBlock * ocTile * outBlock];
        int at = 0;
        for (int g = 0; g < groups; g++)
        for (int icb = 0; icb < icBlocks; icb++)
        for (int kh = 0; kh < c.KernelH; kh++)
        for (int kw = 0; kw < c.KernelW; kw++)
        for (int ci = 0; ci < inBlock; ci++)
        for (int j = 0; j < ocTile; j++)
        for (int co = 0; co < outBlock; co++, at++)
        {
            int ic = icb * inBlock + ci, oc = (g * ocTile + j) * outBlock + co;
            if (ic < c.InChannels && oc < c.OutChannels) packed[at] = w[((oc * c.InChannels + ic) * c.KernelH + kh) * c.KernelW + kw];
        }
        return packed;
    }

    /// <summary>
    /// [out][in] Linear weights, where `in` indexes the flattened C×H×W input, → [out group][ic block][h][w]
    /// [ic in block][out block in group][out in block]: the order the kernel walks the blocked input.
    /// </summary>
    public static float[] Linear(float[] w, LinearParams l, TensorShape inShape, TensorLayoutInfo input, int outBlock, int outTile)
    {
        int outBlocks = (l.OutFeatures + outBlock - 1) / outBlock;
        int groups = outBlocks / outTile;
        var packed = new float[groups * input.Blocks * inShape.H * inShape.W * input.Block * outTile * outBlock];
        int at = 0;
        for (int g = 0; g < groups; g++)
        for (int cb = 0; cb < input.Blocks; cb++)
        for (int h = 0; h < inShape.H; h++)
        for (int x = 0; x < inShape.W; x++)
        for (int ci = 0; ci < input.Block; ci++)
        for (int j = 0; j < outTile; j++)
        for (int o = 0; o < outBlock; o++, at++)
        {
            int c = cb * input.Block + ci, of = (g * outTile + j) * outBlock + o;
            if (c < inShape.C && of < l.OutFeatures) packed[at] = w[(long)of * l.InFeatures + (c * inShape.H + h) * inShape.W + x];
        }
        return packed;
    }

    /// <summary>Winograd F(4×4, 3×3) weight transform G (6×3).</summary>
    private static readonly double[,] G4 =
    {
        { 1 / 4.0, 0, 0 },
        { -1 / 6.0, -1 / 6.0, -1 / 6.0 },
        { -1 / 6.0, 1 / 6.0, -1 / 6.0 },
        { 1 / 24.0, 1 / 12.0, 1 / 6.0 },
        { 1 / 24.0, -1 / 12.0, 1 / 6.0 },
        { 0, 0, 1 },
    };

    /// <summary>Winograd F(2×2, 3×3) weight transform G (4×3).</summary>
    private static readonly double[,] G2 =
    {
        { 1, 0, 0 },
        { 0.5, 0.5, 0.5 },
        { 0.5, -0.5, 0.5 },
        { 0, 0, 1 },
    };

    /// <summary>
    /// 3×3 OIHW weights → U = G·g·Gᵀ (in double) for F(<paramref name="m"/>×m, 3×3), laid out
    /// [oc group][position 0..(m+2)²−1][ic][oc block in group][oc in block], the order the Winograd GEMMs stream them.
    /// </summary>
    public static float[] Winograd(float[] w, Conv2dParams c, int m, int block, int ocTile)
    {
        if (c.KernelH != 3 || c.KernelW != 3) throw new ArgumentException("Winograd F(m×m,3×3) needs 3×3 kernels");
        var g = m switch
        {
            4 => G4,
            2 => G2,
            _ => throw new ArgumentOutOfRangeException(nameof(m), $"Winograd F({m}×{m},3×3) is not implemented; m is 2 or 4"),
        };
        int alpha = m + 2, positions = alpha * alpha;
        int icPadded = (c.InChannels + block - 1) / block * block;
        int ocBlocks = (c.OutChannels + block - 1) / block, groups = ocBlocks / ocTile;
        var packed = new float[groups * positions * icPadded * ocTile * block];
        var gg = new double[alpha, 3];
        for (int oc = 0; oc < c.OutChannels; oc++)
        for (int ic = 0; ic < c.InChannels; ic++)
        {
            int at = (oc * c.InChannels + ic) * 9;
            for (int i = 0; i < alpha; i++)
            for (int k = 0; k < 3; k++)
                gg[i, k] = g[i, 0] * w[at + k] + g[i, 1] * w[at + 3 + k] + g[i, 2] * w[at + 6 + k];
            int group = oc / block / ocTile, j = oc / block % ocTile, o = oc % block;
            for (int i = 0; i < alpha; i++)
            for (int k = 0; k < alpha; k++)
            {
                double u = gg[i, 0] * g[k, 0] + gg[i, 1] * g[k, 1] + gg[i, 2] * g[k, 2];
                packed[(((long)(group * positions + i * alpha + k) * icPadded + ic) * ocTile + j) * block + o] = (float)u;
            }
        }
        return packed;
    }

    /// <summary>Bias padded with zeros to whole blocks.</summary>
    public static float[] Bias(float[] b, int block)
    {
        var padded = new float[(b.Length + block - 1) / block * block];
        b.CopyTo(padded, 0);
        return padded;
    }
}
