using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ResNet.Runtime.Weights;

/// <summary>
/// Folds an eval-mode BatchNorm2d into the convolution before it:
/// w' = w·γ/√(σ²+ε), b' = β + (b − μ)·γ/√(σ²+ε), per output channel, computed in double and stored as float.
/// </summary>
public static class Folding
{
    /// <summary>The folded OIHW weights and bias of a Conv layer (unchanged weights and zero or own bias without BatchNorm).</summary>
    public static (float[] Weights, float[] Bias) FoldConv(StateDict sd, LayerInfo layer)
    {
        var wf = new float[sd.Values(layer.Name + ".weight").Length];
        var bf = new float[layer.Conv!.OutChannels];
        FoldConv(sd, layer, wf, bf);
        return (wf, bf);
    }

    /// <summary>
    /// <see cref="FoldConv(StateDict, LayerInfo)"/> into <paramref name="wf"/> (as long as the layer's weights) and
    /// <paramref name="bf"/> (one per output channel): packing folds each layer into a scratch buffer it reuses, so
    /// loading does not fault in a fresh copy of every weight.
    /// </summary>
    internal static void FoldConv(StateDict sd, LayerInfo layer, Span<float> wf, Span<float> bf)
    {
        var c = layer.Conv!;
        var w = sd.Values(layer.Name + ".weight");
        var bias = c.Bias ? sd.Values(layer.Name + ".bias") : new float[c.OutChannels];
        if (layer.BatchNorm == null)
        {
            w.CopyTo(wf);
            bias.CopyTo(bf);
            return;
        }
        string bn = layer.BatchNorm;
        Fold(w, bias, sd.Values(bn + ".weight"), sd.Values(bn + ".bias"), sd.Values(bn + ".running_mean"), sd.Values(bn + ".running_var"), layer.BatchNormEps, wf, bf);
    }

    /// <summary>Folds BatchNorm parameters into OIHW weights <paramref name="w"/> and bias <paramref name="b"/>.</summary>
    public static (float[] Weights, float[] Bias) Fold(float[] w, float[] b, float[] gamma, float[] beta, float[] mean, float[] variance, double eps)
    {
        var wf = new float[w.Length];
        var bf = new float[b.Length];
        Fold(w, b, gamma, beta, mean, variance, eps, wf, bf);
        return (wf, bf);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Fold(ReadOnlySpan<float> w, ReadOnlySpan<float> b, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> variance, double eps,
        Span<float> wf, Span<float> bf)
    {
        int oc = b.Length, per = w.Length / oc;
        for (int o = 0; o < oc; o++)
        {
            double scale = gamma[o] / Math.Sqrt((double)variance[o] + eps);
            ScaleRow(w.Slice(o * per, per), scale, wf.Slice(o * per, per));
            bf[o] = (float)(beta[o] + (b[o] - (double)mean[o]) * scale);
        }
    }

    /// <summary>
    /// dst[i] = (float)(src[i] · scale), eight at a time where the hardware has the vectors: widening a float to
    /// double is exact and both roundings are IEEE round-to-nearest, so the vectors give the scalar loop's floats
    /// (the scalar loop was a fifth of an uncached load's time).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScaleRow(ReadOnlySpan<float> src, double scale, Span<float> dst)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale);
            for (; i <= src.Length - 8; i += 8)
            {
                var x = Vector256.Create(src.Slice(i, 8));
                Vector256.Narrow(Vector256.WidenLower(x) * s, Vector256.WidenUpper(x) * s).CopyTo(dst.Slice(i, 8));
            }
        }
        for (; i < src.Length; i++) dst[i] = (float)(src[i] * scale);
    }
}
