using System.Runtime.CompilerServices;

namespace ResNet.Runtime.Generic;

/// <summary>Where a generic kernel's results go (offsets and strides in floats): the output tensor, the residual added to it, the ReLU.</summary>
internal struct OutputGeometry
{
    public int H, W, Plane, Row, Image, Origin;
    public int ResPlane, ResRow, ResImage, ResOrigin;
    public bool Residual, Relu;

    public static OutputGeometry For(LayerInfo layer, TensorLayoutInfo output, TensorLayoutInfo? residual) => new()
    {
        H = output.H, W = output.W, Plane = output.PlaneFloats, Row = output.PaddedW * output.Block, Image = output.ImageFloats,
        Origin = output.Offset(0, 0, 0),
        Residual = residual != null,
        ResPlane = residual?.PlaneFloats ?? 0, ResRow = residual != null ? residual.PaddedW * residual.Block : 0,
        ResImage = residual?.ImageFloats ?? 0, ResOrigin = residual?.Offset(0, 0, 0) ?? 0,
        Relu = layer.Relu,
    };

    /// <summary>Output block <paramref name="block"/> of image <paramref name="n"/> at (row, column).</summary>
    public readonly unsafe float* At(float* output, int n, int block, int row, int column, int lanes) =>
        output + (long)n * Image + block * Plane + Origin + row * Row + column * lanes;

    /// <summary>The same place in the residual tensor (null without one).</summary>
    public readonly unsafe float* ResidualAt(float* residual, int n, int block, int row, int column, int lanes) =>
        Residual ? residual + (long)n * ResImage + block * ResPlane + ResOrigin + row * ResRow + column * lanes : null;
}

/// <summary>The fused end of every generic kernel: add the residual, apply the ReLU, store.</summary>
internal static unsafe class Epilogue<TOps, TV> where TOps : struct, ISimd<TV> where TV : struct
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Finish(OutputGeometry* o, TV acc, float* y, float* r)
    {
        if (o->Residual) acc = TOps.Add(acc, TOps.Load(r));
        if (o->Relu) acc = TOps.Relu(acc);
        TOps.Store(acc, y);
    }
}
