namespace ResNet.Runtime;

/// <summary>The vector instruction set a network's kernels use.</summary>
public enum InstructionSet
{
    /// <summary>128-bit vectors (SSE2, NEON): runs everywhere.</summary>
    Portable,
    /// <summary>256-bit AVX2 with FMA3, 8-channel blocks.</summary>
    Avx2,
    /// <summary>512-bit AVX-512F, 16-channel blocks.</summary>
    Avx512,
}

/// <summary>A per-image tensor shape: channels × height × width.</summary>
public readonly record struct TensorShape(int C, int H, int W)
{
    /// <summary>Number of values per image.</summary>
    public int Elements => C * H * W;

    /// <inheritdoc/>
    public override string ToString() => $"{C}×{H}×{W}";
}

/// <summary>What a fused layer computes.</summary>
public enum LayerKind
{
    /// <summary>Conv2d with its folded BatchNorm2d and optional residual add and ReLU.</summary>
    Conv,
    /// <summary>MaxPool2d.</summary>
    MaxPool,
    /// <summary>AdaptiveAvgPool2d.</summary>
    AvgPool,
    /// <summary>Linear on the flattened input.</summary>
    Linear,
    /// <summary>A standalone ReLU.</summary>
    Relu,
}

/// <summary>How Conv2d pads its input (PyTorch's padding_mode).</summary>
public enum PaddingMode
{
    /// <summary>Zeros outside the image.</summary>
    Zeros,
    /// <summary>Mirror without repeating the edge.</summary>
    Reflect,
    /// <summary>Repeat the edge value.</summary>
    Replicate,
    /// <summary>Wrap around.</summary>
    Circular,
}

/// <summary>torch.nn.Conv2d's attributes.</summary>
public sealed record Conv2dParams(int InChannels, int OutChannels, int KernelH, int KernelW, int StrideH, int StrideW,
    int PadH, int PadW, int DilationH, int DilationW, int Groups, bool Bias, PaddingMode PaddingMode = PaddingMode.Zeros);

/// <summary>torch.nn.MaxPool2d's attributes.</summary>
public sealed record MaxPool2dParams(int KernelH, int KernelW, int StrideH, int StrideW, int PadH, int PadW,
    int DilationH, int DilationW, bool CeilMode);

/// <summary>torch.nn.Linear's attributes.</summary>
public sealed record LinearParams(int InFeatures, int OutFeatures, bool Bias);

/// <summary>
/// One fused layer of a generated network: <see cref="Name"/> is the state_dict prefix of its main module
/// (`layer2.0.conv1`), tensors are referred to by index into <see cref="NetworkInfo.Tensors"/>.
/// </summary>
public sealed record LayerInfo(string Name, string Description, LayerKind Kind, int Input, int Output, int Residual,
    TensorShape InShape, TensorShape OutShape)
{
    /// <summary>Convolution attributes (Conv layers).</summary>
    public Conv2dParams? Conv { get; init; }
    /// <summary>The BatchNorm2d folded into this convolution, if any.</summary>
    public string? BatchNorm { get; init; }
    /// <summary>That BatchNorm's eps.</summary>
    public double BatchNormEps { get; init; }
    /// <summary>Whether a ReLU ends the layer.</summary>
    public bool Relu { get; init; }
    /// <summary>Pool attributes (MaxPool layers).</summary>
    public MaxPool2dParams? Pool { get; init; }
    /// <summary>Linear attributes (Linear layers).</summary>
    public LinearParams? Linear { get; init; }
}

/// <summary>A state_dict entry a network requires, with its exact shape.</summary>
public sealed record ParameterSpec(string Key, int[] Shape);

/// <summary>A generated network's graph: tensors (0 is the input, the last layer's output is the result), layers, parameters.</summary>
public sealed class NetworkInfo(string name, TensorShape[] tensors, LayerInfo[] layers, ParameterSpec[] parameters)
{
    /// <summary>The spec's name (the generated class name).</summary>
    public string Name { get; } = name;
    /// <summary>Every tensor's per-image shape.</summary>
    public IReadOnlyList<TensorShape> Tensors { get; } = tensors;
    /// <summary>Fused layers in execution order.</summary>
    public IReadOnlyList<LayerInfo> Layers { get; } = layers;
    /// <summary>Required state_dict entries.</summary>
    public IReadOnlyList<ParameterSpec> Parameters { get; } = parameters;
    /// <summary>The input shape.</summary>
    public TensorShape Input => tensors[0];
    /// <summary>The output shape (the last layer's).</summary>
    public TensorShape Output => tensors[layers[^1].Output];
    /// <summary>Multiply-adds ×2 per image, the usual FLOP count (3.63 G for ResNet-18 at 224).</summary>
    public double Flops => layers.Sum(l => l.Kind switch
    {
        LayerKind.Conv => 2.0 * l.OutShape.Elements * l.Conv!.InChannels / l.Conv.Groups * l.Conv.KernelH * l.Conv.KernelW,
        LayerKind.Linear => 2.0 * l.Linear!.InFeatures * l.Linear.OutFeatures,
        _ => 0,
    });
}

/// <summary>
/// How a tensor is stored for one instruction set: channel blocks of <see cref="Block"/> ([block][h][w][c] per
/// image; 1 means planar NCHW) with a zero halo of <see cref="PadH"/>×<see cref="PadW"/>, in buffer <see cref="Buffer"/>.
/// </summary>
public sealed record TensorLayoutInfo(int Block, int Blocks, int H, int W, int PadH, int PadW, int Buffer)
{
    /// <summary>Height including the halo.</summary>
    public int PaddedH => H + 2 * PadH;
    /// <summary>Width including the halo.</summary>
    public int PaddedW => W + 2 * PadW;
    /// <summary>Floats per channel block.</summary>
    public int PlaneFloats => PaddedH * PaddedW * Block;
    /// <summary>Floats per image.</summary>
    public int ImageFloats => Blocks * PlaneFloats;
    /// <summary>Offset of channel c at (h, w) of one image.</summary>
    public int Offset(int c, int h, int w) => (c / Block) * PlaneFloats + ((h + PadH) * PaddedW + w + PadW) * Block + c % Block;
}

/// <summary>
/// Tensor layouts and per-image buffer sizes of one instruction set. The buffers live in one arena of
/// <c>ArenaFloats</c> per image, buffer b at <c>BufferOffsets[b]</c> (times the batch), where buffers never alive
/// at once overlap; those in <c>HaloZeroed</c> get their halo cleared in every pass before their first writer.
/// <c>ScratchFloats</c> hold one transformed input that Winograd layers compute once and read from every output
/// group; the scratch is in the arena at <c>ScratchOffset</c> (times the batch), room for two per image, or -1 when
/// no layer uses it. <c>Signature</c> identifies the generated code (a packed-weights cache file is only valid for
/// the same one). The first layer's work items go in row bands (<c>Bands</c> with the direct kernels,
/// <c>WinogradBands</c> with the default ones) when it can start on an input still arriving
/// (<see cref="GeneratedNetwork.BeginStreamedInput"/>). <c>BatchedFrom</c>, per layer: the batch size from which it runs a batched variant (work
/// items spanning images), 0 for none. <c>TileFloats</c>: the most floats of transformed tiles a kernel keeps in its
/// thread's <see cref="TileScratch"/>.
/// </summary>
public sealed record IsaLayout(TensorLayoutInfo[] Tensors, int[] BufferFloats, int[] BufferOffsets, int ArenaFloats, int[] HaloZeroed,
    int ScratchFloats = 0, int ScratchOffset = -1, InputBandsInfo Bands = default, InputBandsInfo WinogradBands = default, string Signature = "",
    int[]? BatchedFrom = null, int TileFloats = 0);

/// <summary>
/// The first layer's work items in bands, in order: <c>Items</c> items per band of <c>Rows</c> output rows (0 items: it
/// waits for its whole input). Band b reads input rows up to <c>LastInputRow</c> + b × <c>InputRows</c>.
/// </summary>
public readonly record struct InputBandsInfo(int Items, int Rows, int LastInputRow, int InputRows)
{
    /// <summary>Bands whose input rows are all among the first <paramref name="rows"/> of <paramref name="height"/>, of the <paramref name="outputRows"/> rows' bands.</summary>
    public int Ready(int rows, int height, int outputRows)
    {
        int bands = (outputRows + Rows - 1) / Rows;
        // Rows outside the image are the halo's zeros, so with every row in, every band is ready.
        if (rows >= height) return bands;
        return rows - 1 < LastInputRow ? 0 : Math.Min(bands, (rows - 1 - LastInputRow) / InputRows + 1);
    }
}
