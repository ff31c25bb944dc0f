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
        var c = layer.Conv!;
        var w = sd.Float(layer.Name + ".weight");
        var bias = c.Bias ? sd.Float(layer.Name + ".bias") : new float[c.OutChannels];
        if (layer.BatchNorm == null) return ((float[])w.Clone(), (float[])bias.Clone());
        string bn = layer.BatchNorm;
        return Fold(w, bias, sd.Float(bn + ".weight"), sd.Float(bn + ".bias"), sd.Float(bn + ".running_mean"), sd.Float(bn + ".running_var"), layer.BatchNormEps);
    }

    /// <summary>Folds BatchNorm parameters into OIHW weights <paramref name="w"/> and bias <paramref name="b"/>.</summary>
    public static (float[] Weights, float[] Bias) Fold(float[] w, float[] b, float[] gamma, float[] beta, float[] mean, float[] variance, double eps)
    {
        int oc = b.Length, per = w.Length / oc;
        var wf = new float[w.Length];
        var bf = new float[oc];
        for (int o = 0; o < oc; o++)
        {
            double scale = gamma[o] / Math.Sqrt((double)variance[o] + eps);
            for (int i = 0; i < per; i++) wf[o * per + i] = (float)(w[o * per + i] * scale);
            bf[o] = (float)(beta[o] + (b[o] - (double)mean[o]) * scale);
        }
        return (wf, bf);
    }
}
