namespace ResNet.Runtime.Weights;

/// <summary>
/// A tensor from a state_dict: dtype and shape always; values only for float32 tensors, which are the
/// only ones a network uses (int64 `num_batches_tracked` counters are listed but never read).
/// </summary>
public sealed unsafe class Tensor
{
    private float[]? _data;
    private readonly NativeStorage? _native;
    private readonly float* _nativeValues;

    /// <summary>A tensor of <paramref name="dtype"/> and <paramref name="shape"/>, with its values in C order when it is float32.</summary>
    public Tensor(string dtype, int[] shape, float[]? data)
    {
        DType = dtype;
        Shape = shape;
        _data = data;
    }

    /// <summary>A float32 tensor whose values stay in <paramref name="native"/>'s memory (read only to be packed).</summary>
    internal Tensor(int[] shape, NativeStorage native, float* values)
    {
        DType = "float32";
        Shape = shape;
        _native = native;
        _nativeValues = values;
    }

    /// <summary>PyTorch's dtype name: float32, float64, float16, bfloat16, int64, …</summary>
    public string DType { get; }

    /// <summary>The shape, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>Values in C order, for float32 tensors.</summary>
    public float[]? Data => _data ??= _native == null ? null : Values.ToArray();

    /// <summary>The float32 values without copying them out of native memory (empty for other dtypes).</summary>
    internal ReadOnlySpan<float> Values => _data ?? (_native == null ? default : _native.Span(_nativeValues, checked((int)Elements)));

    /// <summary>Number of elements.</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape as PyTorch prints it: [64, 3, 7, 7].</summary>
    public static string Format(IEnumerable<int> shape) => "[" + string.Join(", ", shape) + "]";
}
