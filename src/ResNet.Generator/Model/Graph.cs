namespace ResNet.Generator.Model
{
    internal enum LayerKind { Conv, MaxPool, AvgPool, Linear, Relu }

    /// <summary>
    /// One computed step after fusion: a convolution with its folded BatchNorm, ReLU and residual add, or a
    /// pool, a linear layer, a standalone ReLU. Tensors are referred to by id; shapes are per image.
    /// No source locations here, so moving text in the spec does not invalidate generated code.
    /// </summary>
    internal sealed record Layer(string MethodName, string Path, string Description, LayerKind Kind,
        int Input, int Output, int Residual, Shape InShape, Shape OutShape,
        ConvSpec? Conv, string? BatchNormPath, double BatchNormEps, bool Relu,
        MaxPoolSpec? Pool, AvgPoolSpec? Avg, LinearSpec? Linear);

    /// <summary>The network after shape inference: tensor 0 is the input, the last layer's output is the result.</summary>
    internal sealed record Graph(string ClassName, Shape Input, EquatableArray<Shape> Tensors, EquatableArray<Layer> Layers)
    {
        public Shape Output => Tensors[Layers[Layers.Count - 1].Output];
    }
}
