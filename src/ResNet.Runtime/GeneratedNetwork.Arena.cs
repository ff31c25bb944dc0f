using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ResNet.Runtime;

/// <summary>
/// The activations' arena (<see cref="IsaLayout.BufferOffsets"/>): buffers that are never alive at once share
/// memory, so a buffer with a halo may find another's values there. Convolutions read a halo as zero padding and
/// kernels write interiors only, so such a halo is cleared in every pass just before its buffer is first written.
/// </summary>
public abstract unsafe partial class GeneratedNetwork
{
    /// <summary>Per layer, the buffer whose halo is cleared before the layer runs (-1: none).</summary>
    private readonly int[] _zeroHaloBefore;

    /// <summary>The input buffer's halo is cleared before the input is packed into it.</summary>
    private readonly bool _zeroInputHalo;

    /// <summary>Each buffer's layout (one for all the tensors it holds), looked up here so a pass allocates nothing.</summary>
    private readonly TensorLayoutInfo[] _haloLayouts;

    /// <summary>Where each buffer of <see cref="IsaLayout.HaloZeroed"/> is first written in a pass: the layer, or -1 for the input.</summary>
    private static (int[] BeforeLayer, bool Input, TensorLayoutInfo[] Layouts) HaloClearings(NetworkInfo info, IsaLayout layout)
    {
        var layouts = new TensorLayoutInfo[layout.BufferFloats.Length];
        foreach (var t in layout.Tensors) layouts[t.Buffer] = t;
        var before = new int[info.Layers.Count];
        Array.Fill(before, -1);
        bool input = false;
        foreach (int b in layout.HaloZeroed)
        {
            if (layout.Tensors[0].Buffer == b)
            {
                input = true;
                continue;
            }
            int first = info.Layers.ToList().FindIndex(l => layout.Tensors[l.Output].Buffer == b);
            if (first >= 0) before[first] = b;
        }
        return (before, input, layouts);
    }

    /// <summary>Clears the halo of buffer <paramref name="buffer"/> for the first <paramref name="n"/> images.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ZeroHalo(int buffer, int n)
    {
        var l = _haloLayouts[buffer];
        int rowFloats = l.PaddedW * l.Block, side = l.PadW * l.Block;
        // Per plane: the top rows and row 0's left edge are one run, each right edge and the next row's left edge
        // another, and the last right edge with the bottom rows the last.
        int head = l.PadH * rowFloats + side;
        for (int i = 0; i < n; i++)
        for (int k = 0; k < l.Blocks; k++)
        {
            float* plane = Buffer(buffer) + (long)i * l.ImageFloats + (long)k * l.PlaneFloats;
            NativeMemory.Clear(plane, (nuint)head * sizeof(float));
            for (int r = 0; r < l.H; r++)
            {
                float* right = plane + head + r * rowFloats + l.W * l.Block;
                nuint run = r < l.H - 1 ? (nuint)(2 * side) : (nuint)(plane + l.PlaneFloats - right);
                if (run > 0) NativeMemory.Clear(right, run * sizeof(float));
            }
        }
    }
}
