using ResNet.Generator.Model;
using static ResNet.Generator.Emitter.SourceWriter;
using static ResNet.Generator.Emitter.NetworkEmitter;

namespace ResNet.Generator.Emitter
{
    /// <summary>
    /// Emits a Linear layer reading its (flattened) input straight from the blocked layout: the weights
    /// were packed in the same order at load, so no transpose happens per inference.
    /// </summary>
    internal static class LinearEmitter
    {
        /// <summary>Output blocks computed together: the largest divisor of the block count not above the register budget.</summary>
        public static int OutputTile(Layer layer, Isa isa)
        {
            int blocks = (layer.Linear!.OutFeatures + isa.Block - 1) / isa.Block;
            int best = 1;
            for (int t = 1; t <= System.Math.Min(8, blocks); t++)
            {
                if (blocks % t == 0) best = t;
            }
            return best;
        }

        public static void Emit(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var isa = isaPlan.Isa;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            int tile = OutputTile(layer, isa);
            int groups = outL.Blocks / tile;
            string V = isa.VectorType;
            w.Line("/// <summary>");
            w.Line($"/// Linear {layer.Linear!.InFeatures} → {layer.Linear.OutFeatures} ({layer.Description}) on the flattened {layer.InShape} input;");
            w.Line($"/// {tile} output block(s) per work item, bias first. Work items: batch × {groups} groups.");
            w.Line("/// </summary>");
            KernelHeader(w, plan, "input", "weights", "bias", "output");
            w.Line($"const int Groups = {I(groups)}, GroupWeights = {I(inL.Blocks * layer.InShape.H * layer.InShape.W * inL.Block * tile * isa.Block)};");
            w.Open("for (int item = begin; item < end; item++)");
            w.Line("int n = item / Groups, group = item % Groups;");
            w.Line("float* w = weights + group * GroupWeights;");
            w.Line($"float* b = bias + group * {I(tile * isa.Block)};");
            for (int j = 0; j < tile; j++) w.Line($"{V} acc{j} = {isa.Vector}.Load(b + {I(j * isa.Block)});");
            w.Open($"for (int cb = 0; cb < {I(inL.Blocks)}; cb++)");
            w.Open($"for (int h = 0; h < {I(layer.InShape.H)}; h++)");
            w.Line($"float* x = input + n * {I(inL.ImageFloats)} + {I(inL.Origin)} + cb * {I(inL.PlaneFloats)} + h * {I(inL.PaddedW * inL.Block)};");
            w.Open($"for (int i = 0; i < {I(layer.InShape.W * inL.Block)}; i++, w += {I(tile * isa.Block)})");
            w.Line($"{V} xi = {isa.Vector}.Create(x[i]);");
            for (int j = 0; j < tile; j++) w.Line($"acc{j} = {isa.Fma}(xi, {isa.Vector}.Load(w + {I(j * isa.Block)}), acc{j});");
            w.Close();
            w.Close();
            w.Close();
            w.Line($"float* y = output + n * {I(outL.ImageFloats)} + {I(outL.Origin)} + group * {I(tile * outL.PlaneFloats)};");
            for (int j = 0; j < tile; j++) w.Line($"acc{j}.Store(y + {I(j * outL.PlaneFloats)});");
            w.Close();
            w.Close();
            w.Line();
        }
    }
}
