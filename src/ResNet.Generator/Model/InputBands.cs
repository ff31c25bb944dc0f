namespace ResNet.Generator.Model
{
    /// <summary>
    /// Whether the first layer can start before its input is complete, as a decoder produces the image top to
    /// bottom: a convolution reading the network's input whose work items go in row bands, in order
    /// (<see cref="Items"/> items per band of <see cref="Rows"/> output rows: rows first, or one output group; or one
    /// row-Winograd tile of rows). Band b reads input rows up to <see cref="LastInputRow"/> + b ·
    /// <see cref="InputRows"/>, so it can run once those are in while the rest decodes. Zero items: the layer waits
    /// for its whole input.
    /// </summary>
    internal readonly struct InputBands
    {
        public InputBands(int items, int rows, int lastInputRow, int inputRows) =>
            (Items, Rows, LastInputRow, InputRows) = (items, rows, lastInputRow, inputRows);

        public int Items { get; }
        public int Rows { get; }
        public int LastInputRow { get; }
        public int InputRows { get; }

        /// <summary>The first layer's bands with the direct kernels (<paramref name="exact"/>) or the default ones.</summary>
        public static InputBands For(Graph graph, IsaPlan isaPlan, bool exact)
        {
            var layer = graph.Layers[0];
            var plan = isaPlan.Layers[0];
            if (layer.Kind != LayerKind.Conv || layer.Input != 0 || plan.Winograd != null || plan.Tile is not ConvTile tile) return default;
            var c = layer.Conv!;
            if (!exact && plan.RowWinograd is RowWinogradPlan rp)
                // A tile of M rows reads phase rows up to α − 1 past its first: input row S·(α − 1) + S − 1 − padding.
                return new InputBands(1, rp.M, rp.Phases * rp.Alpha - 1 - c.Padding.H, rp.Phases * rp.M);
            int ocTiles = isaPlan.Tensors[layer.Output].Blocks / tile.OcBlocks;
            if (!plan.SplitRows && ocTiles != 1) return default;
            // Output row r reads input rows up to r·stride − padding + (kernel − 1)·dilation.
            return new InputBands(ocTiles, tile.Rows, (tile.Rows - 1) * c.Stride.H - c.Padding.H + (c.Kernel.H - 1) * c.Dilation.H, tile.Rows * c.Stride.H);
        }
    }
}
