namespace ResNet.Runtime;

/// <summary>
/// The pointers a generated kernel reads and writes. One shape for every kernel, so a layer can be handed to
/// the worker threads as a function pointer plus this struct, with no delegate or closure allocated.
/// </summary>
public readonly unsafe struct KernelArgs(float* input, float* weights, float* bias, float* output, float* residual, void* shape = null, int images = 0)
{
    /// <summary>The layer's input tensor buffer.</summary>
    public readonly float* Input = input;
    /// <summary>Packed weights.</summary>
    public readonly float* Weights = weights;
    /// <summary>Folded bias, padded to whole blocks.</summary>
    public readonly float* Bias = bias;
    /// <summary>The layer's output tensor buffer.</summary>
    public readonly float* Output = output;
    /// <summary>The residual tensor buffer, or null.</summary>
    public readonly float* Residual = residual;
    /// <summary>The layer's sizes and strides, for kernels not specialized to one shape (the generic kernels); null for generated ones.</summary>
    public readonly void* Shape = shape;
    /// <summary>Images in the batch, for kernels whose work items span images (the batched Winograd variants); 0 for the others.</summary>
    public readonly int Images = images;
}
