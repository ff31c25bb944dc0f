namespace ResNet.Runtime.Reference;

/// <summary>
/// Plain, runtime-shaped reference kernels with PyTorch's semantics, over NCHW float arrays for a batch of
/// n images. Obviously correct rather than fast: they are the oracle for the generated kernels (`resnet18 bench
/// --kernels reference`); the fast kernels that any shape can use are in <c>ResNet.Runtime.Generic</c>.
/// </summary>
public static class ReferenceKernels
{
    /// <summary>torch.nn.functional.conv2d with every Conv2d option: stride, padding (any padding_mode), dilation, groups, bias.</summary>
    public static float[] Conv2d(float[] x, int n, TensorShape s, Conv2dParams c, float[] w, float[]? bias)
    {
        int oh = (s.H + 2 * c.PadH - c.DilationH * (c.KernelH - 1) - 1) / c.StrideH + 1;
        int ow = (s.W + 2 * c.PadW - c.DilationW * (c.KernelW - 1) - 1) / c.StrideW + 1;
        int icPerGroup = c.InChannels / c.Groups, ocPerGroup = c.OutChannels / c.Groups;
        var y = new float[n * c.OutChannels * oh * ow];
        for (int b = 0; b < n; b++)
        for (int o = 0; o < c.OutChannels; o++)
        {
            int g = o / ocPerGroup;
            for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                double acc = bias?[o] ?? 0;
                for (int ci = 0; ci < icPerGroup; ci++)
                {
                    int ic = g * icPerGroup + ci;
                    for (int kh = 0; kh < c.KernelH; kh++)
                    {
                        int ih = Pad(i * c.StrideH - c.PadH + kh * c.DilationH, s.H, c.PaddingMode);
                        if (ih < 0) continue;
                        for (int kw = 0; kw < c.KernelW; kw++)
                        {
                            int iw = Pad(j * c.StrideW - c.PadW + kw * c.DilationW, s.W, c.PaddingMode);
                            if (iw < 0) continue;
                            acc += (double)x[((b * s.C + ic) * s.H + ih) * s.W + iw] * w[((o * icPerGroup + ci) * c.KernelH + kh) * c.KernelW + kw];
                        }
                    }
                }
                y[((b * c.OutChannels + o) * oh + i) * ow + j] = (float)acc;
            }
        }
        return y;
    }

    /// <summary>Maps a coordinate outside [0, size) per padding_mode; -1 means "zero" (zeros mode).</summary>
    public static int Pad(int i, int size, PaddingMode mode)
    {
        if ((uint)i < (uint)size) return i;
        switch (mode)
        {
            case PaddingMode.Zeros: return -1;
            case PaddingMode.Replicate: return Math.Clamp(i, 0, size - 1);
            case PaddingMode.Circular: return ((i % size) + size) % size;
            default:
                // reflect: mirror about the edge pixels without repeating them (PyTorch requires pad < size).
                if (size == 1) return 0;
                int period = 2 * (size - 1);
                int m = ((i % period) + period) % period;
                return m < size ? m : period - m;
        }
    }

    /// <summary>Eval-mode BatchNorm2d: (x − μ)/√(σ²+ε)·γ + β per channel.</summary>
    public static float[] BatchNorm2d(float[] x, int n, TensorShape s, float[] gamma, float[] beta, float[] mean, float[] variance, double eps)
    {
        var y = new float[x.Length];
        int hw = s.H * s.W;
        for (int b = 0; b < n; b++)
        for (int c = 0; c < s.C; c++)
        {
            double scale = gamma[c] / Math.Sqrt(variance[c] + eps);
            for (int i = 0; i < hw; i++)
            {
                int at = (b * s.C + c) * hw + i;
                y[at] = (float)((x[at] - mean[c]) * scale + beta[c]);
            }
        }
        return y;
    }

    /// <summary>max(x, 0) elementwise.</summary>
    public static float[] Relu(float[] x) => x.Select(v => Math.Max(v, 0f)).ToArray();

    /// <summary>Elementwise sum.</summary>
    public static float[] Add(float[] a, float[] b) => a.Zip(b, (p, q) => p + q).ToArray();

    /// <summary>MaxPool2d's output size per axis, with ceil_mode's rule that a window may not start in the right padding.</summary>
    public static int PoolOutput(int size, int k, int stride, int pad, int dilation, bool ceil)
    {
        int room = size + 2 * pad - dilation * (k - 1) - 1;
        int o = (ceil ? (room + stride - 1) / stride : room / stride) + 1;
        if (ceil && (o - 1) * stride >= size + pad) o--;
        return o;
    }

    /// <summary>torch.nn.functional.max_pool2d with dilation and ceil_mode; padding acts as −∞.</summary>
    public static float[] MaxPool2d(float[] x, int n, TensorShape s, MaxPool2dParams p, out TensorShape outShape)
    {
        int oh = PoolOutput(s.H, p.KernelH, p.StrideH, p.PadH, p.DilationH, p.CeilMode);
        int ow = PoolOutput(s.W, p.KernelW, p.StrideW, p.PadW, p.DilationW, p.CeilMode);
        outShape = new TensorShape(s.C, oh, ow);
        var y = new float[n * s.C * oh * ow];
        for (int b = 0; b < n; b++)
        for (int c = 0; c < s.C; c++)
        for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++)
        {
            float m = float.NegativeInfinity;
            for (int kh = 0; kh < p.KernelH; kh++)
            {
                int ih = i * p.StrideH - p.PadH + kh * p.DilationH;
                if ((uint)ih >= (uint)s.H) continue;
                for (int kw = 0; kw < p.KernelW; kw++)
                {
                    int iw = j * p.StrideW - p.PadW + kw * p.DilationW;
                    if ((uint)iw < (uint)s.W) m = Math.Max(m, x[((b * s.C + c) * s.H + ih) * s.W + iw]);
                }
            }
            y[((b * s.C + c) * oh + i) * ow + j] = m;
        }
        return y;
    }

    /// <summary>adaptive_avg_pool2d to any output size: cell i covers [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉).</summary>
    public static float[] AdaptiveAvgPool2d(float[] x, int n, TensorShape s, int oh, int ow)
    {
        var y = new float[n * s.C * oh * ow];
        for (int b = 0; b < n; b++)
        for (int c = 0; c < s.C; c++)
        for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++)
        {
            int h0 = i * s.H / oh, h1 = ((i + 1) * s.H + oh - 1) / oh;
            int w0 = j * s.W / ow, w1 = ((j + 1) * s.W + ow - 1) / ow;
            double sum = 0;
            for (int h = h0; h < h1; h++)
            for (int w = w0; w < w1; w++) sum += x[((b * s.C + c) * s.H + h) * s.W + w];
            y[((b * s.C + c) * oh + i) * ow + j] = (float)(sum / ((h1 - h0) * (w1 - w0)));
        }
        return y;
    }

    /// <summary>y = x·Wᵀ + b on each image's flattened input.</summary>
    public static float[] Linear(float[] x, int n, LinearParams l, float[] w, float[]? bias)
    {
        var y = new float[n * l.OutFeatures];
        for (int b = 0; b < n; b++)
        for (int o = 0; o < l.OutFeatures; o++)
        {
            double acc = bias?[o] ?? 0;
            for (int i = 0; i < l.InFeatures; i++) acc += (double)x[b * l.InFeatures + i] * w[(long)o * l.InFeatures + i];
            y[b * l.OutFeatures + o] = (float)acc;
        }
        return y;
    }
}
