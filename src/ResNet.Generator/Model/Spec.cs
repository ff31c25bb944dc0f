using Microsoft.CodeAnalysis.Text;

namespace ResNet.Generator.Model
{
    /// <summary>Where a module sits in the spec file: enough to build a Location later, and value-equal.</summary>
    internal sealed record SpecLocation(string FilePath, TextSpan Span, LinePositionSpan Lines);

    /// <summary>A (height, width) pair, as PyTorch's `_pair` makes from an int or a 2-tuple.</summary>
    internal readonly record struct Pair(int H, int W)
    {
        public override string ToString() => H == W ? H.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"({H}, {W})";
    }

    internal sealed record ConvSpec(int InChannels, int OutChannels, Pair Kernel, Pair Stride, Pair Padding, Pair Dilation,
        int Groups, bool Bias, string PaddingMode);

    internal sealed record BatchNormSpec(int NumFeatures, double Eps, double Momentum, bool Affine, bool TrackRunningStats);

    internal sealed record MaxPoolSpec(Pair Kernel, Pair Stride, Pair Padding, Pair Dilation, bool CeilMode);

    internal sealed record AvgPoolSpec(Pair OutputSize);

    internal sealed record LinearSpec(int InFeatures, int OutFeatures, bool Bias);

    /// <summary>
    /// One module of the spec tree, mirroring a line of torchvision's printout. <see cref="Path"/> is the
    /// state_dict prefix (`layer2.0.downsample.0`); <see cref="JsonPath"/> is where it is in the file.
    /// Exactly one of the typed attribute records is set for a leaf module.
    /// </summary>
    internal sealed record ModuleSpec(string Name, string Path, string JsonPath, string Type, SpecLocation Location,
        ConvSpec? Conv, BatchNormSpec? BatchNorm, MaxPoolSpec? MaxPool, AvgPoolSpec? AvgPool, LinearSpec? Linear,
        bool ReluInplace, EquatableArray<ModuleSpec> Children);

    internal sealed record NetworkSpec(string ClassName, string FilePath, SpecLocation Location, Shape Input,
        EquatableArray<ModuleSpec> Modules);

    /// <summary>A per-image tensor shape, channels × height × width.</summary>
    internal readonly record struct Shape(int C, int H, int W)
    {
        public long Elements => (long)C * H * W;

        public override string ToString() => $"{C}×{H}×{W}";
    }
}
