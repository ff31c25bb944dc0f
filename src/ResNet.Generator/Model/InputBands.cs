namespace ResNet.Generator.Model
{
    /// <summary>
    /// Whether the first layer can start before its input is complete, as a decoder produces the image top to
    /// bottom: a direct convolution reading the network's input whose work items go in row bands, in order
    /// (<see cref="Items"/> items per band of <see cref="Rows"/> output rows: rows first, or one output group). Then
    /// a band whose input rows are in can run while the rest decodes. Zero items: the layer waits for its whole input.
    /// </summary>
    internal readonly struct InputBands
    {
        public InputBands(int items, int rows) => (Items, Rows) = (items, rows);

        public int Items { get; }
        public int Rows { get; }

        public static InputBands For(Graph graph, IsaPlan isaPlan)
        {
            var layer = graph.Layers[0];
            var plan = isaPlan.Layers[0];
            if (layer.Kind != LayerKind.Conv || layer.Input != 0 || plan.Winograd != null || plan.Tile is not ConvTile tile) return default;
            int ocTiles = isaPlan.Tensors[layer.Output].Blocks / tile.OcBlocks;
            return plan.SplitRows || ocTiles == 1 ? new InputBands(ocTiles, tile.Rows) : default;
        }
    }
}
