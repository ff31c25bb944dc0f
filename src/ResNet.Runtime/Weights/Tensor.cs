namespace ResNet.Runtime.Weights;

/// <summary>
/// A tensor from a state_dict: dtype and shape always; values only for float32 tensors, which are the
/// only ones a network uses (int64 `num_batches_tracked` counters are listed but never read).
/// </summary>
public sealed class Tensor(string dtype, int[] shape, float[]? data)
{
    /// <summary>PyTorch's dtype name: float32, float64, float16, bfloat16, int64, …</summary>
    public string DType { get; } = dtype;

    /// <summary>The shape, outermost first.</summary>
    public int[] Shape { get; } = shape;

    /// <summary>Values in C order, for float32 tensors.</summary>
    public float[]? Data { get; } = data;

    /// <summary>Number of elements.</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape as PyTorch prints it: [64, 3, 7, 7].</summary>
    public static string Format(IEnumerable<int> shape) => "[" + string.Join(", ", shape) + "]";
}
