using System.Runtime.CompilerServices;
using ResNet.Runtime.Generic;

namespace ResNet.Runtime;

/// <summary>
/// The generic kernels' side of a network (<see cref="NetworkOptions.GenericKernels"/>): each convolution the
/// generated code packs records its geometry for the generic direct or Winograd kernel, and runs through it
/// instead of the generated kernel, on the same buffers.
/// </summary>
public abstract unsafe partial class GeneratedNetwork
{
    /// <summary>
    /// Room for every layer's generic-kernel geometry (filled as the layers are packed: the generated code says
    /// which are Winograd) and the largest transformed input a generic Winograd layer may need.
    /// </summary>
    private void AllocateGeneric()
    {
        int layers = Info.Layers.Count;
        _convGeometry = (ConvGeometry*)Allocate(((long)layers * sizeof(ConvGeometry) + sizeof(float) - 1) / sizeof(float));
        _winogradGeometry = (WinogradGeometry*)Allocate(((long)layers * sizeof(WinogradGeometry) + sizeof(float) - 1) / sizeof(float));
        _rowWinogradGeometry = (RowWinogradGeometry*)Allocate(((long)layers * sizeof(RowWinogradGeometry) + sizeof(float) - 1) / sizeof(float));
        long scratch = 0;
        foreach (var l in Info.Layers)
        {
            if (!GenericConv.Supports(l) || l.Conv!.KernelH != 3 || l.Conv.KernelW != 3) continue;
            foreach (int m in new[] { 2, 4 })
                scratch = Math.Max(scratch, WinogradGeometry.For(l, m, _layout.Tensors[l.Input], _layout.Tensors[l.Output], null, 1).ScratchImage);
        }
        _genericScratch = Allocate(scratch * MaxBatch);
    }

    /// <summary>
    /// The output-block group size to pack layer <paramref name="layer"/>'s weights in: the generated kernel's
    /// <paramref name="ocTile"/>, or with generic kernels the generic tile's, the layer's geometry then recorded
    /// for the generic direct kernel (<paramref name="winogradM"/> and <paramref name="rowWinogradM"/> 0), Winograd
    /// F(m×m) or the row-Winograd kernel.
    /// </summary>
    private int GenericPacking(int layer, int ocTile, int winogradM, int rowWinogradM = 0)
    {
        var l = Info.Layers[layer];
        if (!GenericKernels || !GenericConv.Supports(l)) return ocTile;
        TensorLayoutInfo input = _layout.Tensors[l.Input], output = _layout.Tensors[l.Output];
        var residual = l.Residual >= 0 ? _layout.Tensors[l.Residual] : null;
        int blocks = GenericConv.GroupBlocks(output.Blocks);
        if (rowWinogradM > 0)
        {
            var g = RowWinogradGeometry.For(l, rowWinogradM, input, output, residual, blocks);
            if ((long)g.TileFloats * sizeof(float) > TileScratch.Bytes)
                throw new NotSupportedException($"{l.Name}: the generic row-Winograd kernel keeps more than a thread's tile scratch");
            _rowWinogradGeometry[layer] = g;
        }
        else if (winogradM == 0) _convGeometry[layer] = ConvGeometry.For(l, input, output, residual, blocks);
        else _winogradGeometry[layer] = WinogradGeometry.For(l, winogradM, input, output, residual, blocks);
        return blocks;
    }

    private ConvGeometry* _convGeometry;
    private WinogradGeometry* _winogradGeometry;
    private RowWinogradGeometry* _rowWinogradGeometry;
    private float* _genericScratch;

    /// <summary>Whether layer <paramref name="layer"/> runs a generic kernel (tests check the dispatch).</summary>
    internal bool RunsGeneric(int layer) =>
        GenericKernels && (_convGeometry[layer].Groups > 0 || _winogradGeometry[layer].Groups > 0 || _rowWinogradGeometry[layer].Groups > 0);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RunLayerCore(int layer, int n)
    {
        if (_zeroHaloBefore[layer] >= 0) ZeroHalo(_zeroHaloBefore[layer], n);
        if (!RunsGeneric(layer))
        {
            ForwardLayer(layer, n);
            return;
        }
        var l = Info.Layers[layer];
        float* input = _buffers[_layout.Tensors[l.Input].Buffer], output = _buffers[_layout.Tensors[l.Output].Buffer];
        float* residual = l.Residual >= 0 ? _buffers[_layout.Tensors[l.Residual].Buffer] : null;
        if (_winogradGeometry[layer].Groups > 0)
        {
            var w = _winogradGeometry + layer;
            RunKernel(GenericWinograd.InputPass(Isa), new KernelArgs(input, null, null, _genericScratch, null, w), n * w->TilesH * w->InBlocks, endsLayer: false);
            RunKernel(GenericWinograd.MainPass(Isa), new KernelArgs(_genericScratch, _weights[layer], _biases[layer], output, residual, w), n * w->Groups * w->Chunks);
            return;
        }
        if (_rowWinogradGeometry[layer].Groups > 0)
        {
            var rw = _rowWinogradGeometry + layer;
            RunKernel(GenericRowWinograd.Kernel(Isa), new KernelArgs(input, _weights[layer], _biases[layer], output, residual, rw), n * rw->Items);
            return;
        }
        var c = _convGeometry + layer;
        RunKernel(GenericConv.Kernel(Isa), new KernelArgs(input, _weights[layer], _biases[layer], output, residual, c), n * c->Groups * c->Out.H);
    }
}
