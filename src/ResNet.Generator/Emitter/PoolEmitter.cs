using System.Collections.Generic;
using System.Linq;
using ResNet.Generator.Model;
using static ResNet.Generator.Emitter.SourceWriter;
using static ResNet.Generator.Emitter.NetworkEmitter;

namespace ResNet.Generator.Emitter
{
    /// <summary>Max pooling, adaptive average pooling and standalone ReLU over channel-blocked tensors, one vector per pixel.</summary>
    internal static class PoolEmitter
    {
        public static void EmitMaxPool(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var isa = isaPlan.Isa;
            var p = layer.Pool!;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            string V = isa.VectorType;
            w.Line("/// <summary>");
            w.Line($"/// Max pool {p.Kernel.H}×{p.Kernel.W}, stride {p.Stride}, padding {p.Padding}, dilation {p.Dilation}{(p.CeilMode ? ", ceil mode" : "")}: {layer.InShape} → {layer.OutShape} ({layer.Description}).");
            w.Line("/// Padding counts as −∞ (windows are clipped to the image), as in PyTorch. Work items: batch × rows × blocks (threads split the rows).");
            w.Line("/// </summary>");
            KernelHeader(w, plan, "input", "output");
            // Columns whose whole window lies inside the image take no bounds checks (all but the edges).
            int lo = (p.Padding.W + p.Stride.W - 1) / p.Stride.W;
            int last = layer.InShape.W - 1 - (p.Kernel.W - 1) * p.Dilation.W + p.Padding.W; // largest ow·stride whose window ends inside
            int hi = last < 0 ? 0 : System.Math.Min(layer.OutShape.W, last / p.Stride.W + 1);
            if (hi < lo) hi = lo;
            // Only the edge columns check against the width: without edges it would be an unused constant (a warning).
            string inW = lo > 0 || hi < layer.OutShape.W ? $", InW = {I(layer.InShape.W)}" : "";
            w.Line($"const int InH = {I(layer.InShape.H)}{inW}, OutH = {I(layer.OutShape.H)}, Blocks = {I(inL.Blocks)};");
            w.Line($"const int InPlane = {I(inL.PlaneFloats)}, InRow = {I(inL.PaddedW * inL.Block)}, OutPlane = {I(outL.PlaneFloats)}, OutRow = {I(outL.PaddedW * outL.Block)};");
            w.Open("for (int item = begin; item < end; item++)");
            w.Line("int n = item / (OutH * Blocks), oh = item / Blocks % OutH, block = item % Blocks;");
            w.Line($"float* x = input + n * {I(inL.ImageFloats)} + block * InPlane + {I(inL.Origin)};");
            w.Line($"float* y = output + n * {I(outL.ImageFloats)} + block * OutPlane + {I(outL.Origin)} + oh * OutRow;");
            w.Line($"int h0 = oh * {I(p.Stride.H)} - {I(p.Padding.H)};");
            void Column(string owExpr, bool check)
            {
                w.Line($"int w0 = {owExpr} * {I(p.Stride.W)} - {I(p.Padding.W)};");
                if (!check)
                {
                    // A window inside the image: every load, then the maxima as a tree, not a chain — each Max is
                    // three dependent instructions for its NaN and signed-zero rules, and a chain of nine of them
                    // kept the loads' parallelism from mattering.
                    w.Open($"if (h0 >= 0 && h0 + {I((p.Kernel.H - 1) * p.Dilation.H)} < InH)");
                    w.Line($"float* xw = x + h0 * InRow + w0 * {I(inL.Block)};");
                    var loads = new List<string>();
                    for (int kh = 0; kh < p.Kernel.H; kh++)
                    for (int kw = 0; kw < p.Kernel.W; kw++)
                    {
                        w.Line($"{V} l{loads.Count} = {isa.Vector}.Load(xw + {I(kh * p.Dilation.H)} * InRow + {I(kw * p.Dilation.W * inL.Block)});");
                        loads.Add($"l{loads.Count}");
                    }
                    while (loads.Count > 1)
                        loads = Enumerable.Range(0, (loads.Count + 1) / 2).Select(i => 2 * i + 1 < loads.Count ? $"{isa.Vector}.Max({loads[2 * i]}, {loads[2 * i + 1]})" : loads[2 * i]).ToList();
                    w.Line($"({loads[0]}).Store(y + {owExpr} * {I(outL.Block)});");
                    w.Close();
                    w.Open("else");
                }
                w.Line($"{V} m = {isa.Vector}.Create(float.NegativeInfinity);");
                w.Open($"for (int kh = 0; kh < {I(p.Kernel.H)}; kh++)");
                w.Line($"int ih = h0 + kh * {I(p.Dilation.H)};");
                w.Line("if ((uint)ih >= InH) continue;");
                w.Line($"float* xr = x + ih * InRow + w0 * {I(inL.Block)};");
                for (int kw = 0; kw < p.Kernel.W; kw++)
                {
                    string load = $"m = {isa.Vector}.Max(m, {isa.Vector}.Load(xr + {I(kw * p.Dilation.W * inL.Block)}));";
                    w.Line(check ? $"if ((uint)(w0 + {I(kw * p.Dilation.W)}) < InW) {load}" : load);
                }
                w.Close();
                w.Line($"m.Store(y + {owExpr} * {I(outL.Block)});");
                if (!check) w.Close();
            }
            if (lo > 0)
            {
                w.Open($"for (int ow = 0; ow < {I(System.Math.Min(lo, layer.OutShape.W))}; ow++)");
                Column("ow", true);
                w.Close();
            }
            if (hi > lo)
            {
                w.Open($"for (int ow = {I(lo)}; ow < {I(hi)}; ow++)");
                Column("ow", false);
                w.Close();
            }
            if (hi < layer.OutShape.W)
            {
                w.Open($"for (int ow = {I(System.Math.Max(hi, lo))}; ow < {I(layer.OutShape.W)}; ow++)");
                Column("ow", true);
                w.Close();
            }
            w.Close();
            w.Close();
            w.Line();
        }

        public static void EmitAvgPool(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var isa = isaPlan.Isa;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            string V = isa.VectorType;
            w.Line("/// <summary>");
            w.Line($"/// Adaptive average pool {layer.InShape} → {layer.OutShape} ({layer.Description}): cell (i, j) averages rows");
            w.Line("/// [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉) and the same for columns, as PyTorch's adaptive_avg_pool2d. Work items: batch × blocks.");
            w.Line("/// </summary>");
            KernelHeader(w, plan, "input", "output");
            w.Line($"const int InH = {I(layer.InShape.H)}, InW = {I(layer.InShape.W)}, OutH = {I(layer.OutShape.H)}, OutW = {I(layer.OutShape.W)}, Blocks = {I(inL.Blocks)};");
            w.Line($"const int InRow = {I(inL.PaddedW * inL.Block)}, OutRow = {I(outL.PaddedW * outL.Block)};");
            w.Open("for (int item = begin; item < end; item++)");
            w.Line($"float* x = input + (item / Blocks) * {I(inL.ImageFloats)} + (item % Blocks) * {I(inL.PlaneFloats)} + {I(inL.Origin)};");
            w.Line($"float* y = output + (item / Blocks) * {I(outL.ImageFloats)} + (item % Blocks) * {I(outL.PlaneFloats)} + {I(outL.Origin)};");
            w.Open("for (int oh = 0; oh < OutH; oh++)");
            w.Line("int h0 = oh * InH / OutH, h1 = ((oh + 1) * InH + OutH - 1) / OutH;");
            w.Open("for (int ow = 0; ow < OutW; ow++)");
            w.Line("int w0 = ow * InW / OutW, w1 = ((ow + 1) * InW + OutW - 1) / OutW;");
            w.Line($"{V} sum = {V}.Zero;");
            w.Line("for (int ih = h0; ih < h1; ih++)");
            w.Line($"    for (int iw = w0; iw < w1; iw++) sum += {isa.Vector}.Load(x + ih * InRow + iw * {I(inL.Block)});");
            w.Line($"(sum / {isa.Vector}.Create((float)((h1 - h0) * (w1 - w0)))).Store(y + oh * OutRow + ow * {I(outL.Block)});");
            w.Close();
            w.Close();
            w.Close();
            w.Close();
            w.Line();
        }

        public static void EmitRelu(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var isa = isaPlan.Isa;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            w.Line($"/// <summary>ReLU over {layer.InShape} ({layer.Description}). Work items: batch × blocks × rows.</summary>");
            KernelHeader(w, plan, "input", "output");
            w.Line($"const int H = {I(layer.InShape.H)}, W = {I(layer.InShape.W)}, Blocks = {I(inL.Blocks)};");
            w.Open("for (int item = begin; item < end; item++)");
            w.Line("int plane = item / H, h = item % H;");
            w.Line($"float* x = input + (plane / Blocks) * {I(inL.ImageFloats)} + (plane % Blocks) * {I(inL.PlaneFloats)} + {I(inL.Origin)} + h * {I(inL.PaddedW * inL.Block)};");
            w.Line($"float* y = output + (plane / Blocks) * {I(outL.ImageFloats)} + (plane % Blocks) * {I(outL.PlaneFloats)} + {I(outL.Origin)} + h * {I(outL.PaddedW * outL.Block)};");
            w.Line($"for (int i = 0; i < W; i++) {isa.Vector}.Max({isa.Vector}.Load(x + i * {I(inL.Block)}), {isa.VectorType}.Zero).Store(y + i * {I(outL.Block)});");
            w.Close();
            w.Close();
            w.Line();
        }
    }
}
