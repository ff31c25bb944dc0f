namespace ResNet.Runtime.Weights;

/// <summary>
/// A tensor from a state_dict: dtype and shape always; values, as float32, only for floating-point tensors, which
/// are the only ones a network uses (int64 `num_batches_tracked` counters are listed but never read). float16,
/// bfloat16 and float64 tensors keep their dtype and hold their values converted as PyTorch's load_state_dict copies
/// them into a float32 model's parameters.
/// </summary>
public sealed unsafe class Tensor
{
    private float[]? _data;
    private readonly NativeStorage? _native;
    private readonly float* _nativeValues;

    /// <summary>A tensor of <paramref name="dtype"/> and <paramref name="shape"/>, with its values as float32 in C order when it is floating-point.</summary>
    public Tensor(string dtype, int[] shape, float[]? data)
    {
        DType = dtype;
        Shape = shape;
        _data = data;
    }

    /// <summary>A tensor of floating-point <paramref name="dtype"/> whose values, as float32, stay in <paramref name="native"/>'s memory (read only to be packed).</summary>
    private Tensor(string dtype, int[] shape, NativeStorage native, float* values)
    {
        DType = dtype;
        Shape = shape;
        _native = native;
        _nativeValues = values;
    }

    /// <summary>
    /// A tensor of floating-point <paramref name="dtype"/> whose float32 values the caller is about to write into
    /// <paramref name="values"/>: in <paramref name="native"/>'s block while it has room, else in an array whose pages
    /// are mapped in one call first (a file's bytes then land in mapped memory, not one fault per page).
    /// </summary>
    internal static Tensor ToFill(string dtype, int[] shape, long elements, NativeStorage? native, out Span<float> values)
    {
        float* p = native != null ? native.TryTake(elements) : null;
        if (p != null)
        {
            values = new Span<float>(p, checked((int)elements));
            return new Tensor(dtype, shape, native!, p);
        }
        var array = new float[elements];
        FreshPages.Populate(array, 0, elements);
        values = array;
        return new Tensor(dtype, shape, array);
    }

    /// <summary>PyTorch's dtype name: float32, float64, float16, bfloat16, int64, …</summary>
    public string DType { get; }

    /// <summary>The shape, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>Values as float32 in C order, for floating-point tensors (null for others).</summary>
    public float[]? Data => _data ??= _native == null ? null : Values.ToArray();

    /// <summary>The float32 values without copying them out of native memory (empty for integer dtypes).</summary>
    internal ReadOnlySpan<float> Values => _data ?? (_native == null ? default : _native.Span(_nativeValues, checked((int)Elements)));

    /// <summary>Whether the tensor holds values (floating-point tensors read from a file do; integer ones do not).</summary>
    internal bool HasValues => _data != null || _native != null;

    /// <summary>Number of elements.</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape as PyTorch prints it: [64, 3, 7, 7].</summary>
    public static string Format(IEnumerable<int> shape) => "[" + string.Join(", ", shape) + "]";
}
