using ResNet.Runtime.Weights;

namespace ResNet.Runtime.Reference;

/// <summary>
/// Runs a generated network's graph with the reference kernels and the raw, unfolded weights: Conv2d, then
/// BatchNorm2d, then the residual add and ReLU, exactly as PyTorch's modules would, one at a time.
/// </summary>
public sealed class ReferenceNetwork(NetworkInfo info, StateDict weights)
{
    /// <summary>The graph being interpreted.</summary>
    public NetworkInfo Info { get; } = info;

    /// <summary>Runs n images (NCHW) and returns n × output values.</summary>
    public float[] Run(float[] input)
    {
        int n = input.Length / Info.Input.Elements;
        var tensors = new float[Info.Tensors.Count][];
        tensors[0] = input;
        foreach (var l in Info.Layers) tensors[l.Output] = RunLayer(l, tensors[l.Input], n, l.Residual >= 0 ? tensors[l.Residual] : null);
        return tensors[Info.Layers[^1].Output];
    }

    /// <summary>One fused layer on its NCHW input, unfused into PyTorch's separate steps.</summary>
    public float[] RunLayer(LayerInfo l, float[] x, int n, float[]? residual)
    {
        switch (l.Kind)
        {
            case LayerKind.Conv:
                {
                    var c = l.Conv!;
                    var y = ReferenceKernels.Conv2d(x, n, l.InShape, c, weights.Float(l.Name + ".weight"), c.Bias ? weights.Float(l.Name + ".bias") : null);
                    if (l.BatchNorm is string bn)
                        y = ReferenceKernels.BatchNorm2d(y, n, l.OutShape, weights.Float(bn + ".weight"), weights.Float(bn + ".bias"),
                            weights.Float(bn + ".running_mean"), weights.Float(bn + ".running_var"), l.BatchNormEps);
                    if (residual != null) y = ReferenceKernels.Add(y, residual);
                    return l.Relu ? ReferenceKernels.Relu(y) : y;
                }
            case LayerKind.MaxPool:
                return ReferenceKernels.MaxPool2d(x, n, l.InShape, l.Pool!, out _);
            case LayerKind.AvgPool:
                return ReferenceKernels.AdaptiveAvgPool2d(x, n, l.InShape, l.OutShape.H, l.OutShape.W);
            case LayerKind.Linear:
                return ReferenceKernels.Linear(x, n, l.Linear!, weights.Float(l.Name + ".weight"), l.Linear!.Bias ? weights.Float(l.Name + ".bias") : null);
            default:
                return ReferenceKernels.Relu(x);
        }
    }
}
