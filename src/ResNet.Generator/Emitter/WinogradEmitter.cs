using ResNet.Generator.Model;
using static ResNet.Generator.Emitter.SourceWriter;

namespace ResNet.Generator.Emitter
{
    /// <summary>
    /// Emits Winograd F(4×4, 3×3) (Lavin and Gray) for a stride-1 3×3 convolution over channel-blocked
    /// tensors: 36 multiplies per 4×4 output tile and channel pair instead of 144, paid for by two cheap
    /// transforms. Per work item: Bᵀ·d·B for every 6×6 input window of a row of tiles (into a stack buffer,
    /// channels contiguous), 36 GEMMs over the input channels against the weights transformed at load
    /// (G·g·Gᵀ), then Aᵀ·m·A, bias, residual and ReLU into the output. The transforms run one vector of
    /// channels at a time, columns then rows, through a 36-vector scratch.
    /// </summary>
    internal static class WinogradEmitter
    {
        public static void Emit(SourceWriter w, Layer layer, LayerPlan plan, IsaPlan isaPlan)
        {
            var isa = isaPlan.Isa;
            var wp = plan.Winograd!;
            var inL = isaPlan.Tensors[layer.Input];
            var outL = isaPlan.Tensors[layer.Output];
            var resL = layer.Residual >= 0 ? isaPlan.Tensors[layer.Residual] : null;
            string V = isa.VectorType, Vec = isa.Vector;
            int B = isa.Block, K = inL.Blocks * inL.Block, nOc = wp.OcBlocks, groups = outL.Blocks / nOc;
            int full = wp.TilesPerItem - wp.Remainder;
            string name = plan.WinogradName;

            w.Line("/// <summary>");
            w.Line($"/// Winograd F(4×4, 3×3): {layer.InShape} → {layer.OutShape} ({layer.Description}).");
            w.Line($"/// {wp.TilesH}×{wp.TilesW} tiles of 4×4; a work item is {wp.RowsPerItem} tile row(s) × {nOc} output block(s): batch × {wp.TilesH / wp.RowsPerItem} × {groups} items.");
            w.Line($"/// GEMM tile: {wp.GemmTiles} tiles × {nOc} blocks = {wp.GemmTiles * nOc} accumulators{(wp.Remainder > 0 ? $", then {wp.Remainder} tile(s)" : "")}; K = {K} input channels.");
            w.Line("/// </summary>");
            w.Line("[MethodImpl(MethodImplOptions.AggressiveOptimization)]");
            w.Line("[SkipLocalsInit]");
            w.Open($"public static void {name}(in KernelArgs args, int begin, int end)");
            w.Line("float* input = args.Input, weights = args.Weights, bias = args.Bias, output = args.Output" + (resL != null ? ", residual = args.Residual;" : ";"));
            w.Line($"const int Tiles = {I(wp.TilesPerItem)}, TilesW = {I(wp.TilesW)}, Rows = {I(wp.RowsPerItem)}, Groups = {I(groups)}, ItemsPerImage = {I(wp.TilesH / wp.RowsPerItem * groups)};");
            w.Line($"const int K = {I(K)}, InPlane = {I(inL.PlaneFloats)}, InRow = {I(inL.PaddedW * inL.Block)}, OutH = {I(layer.OutShape.H)}, OutW = {I(layer.OutShape.W)};");
            w.Line($"const int OutPlane = {I(outL.PlaneFloats)}, OutRow = {I(outL.PaddedW * B)}, GroupWeights = {I(36 * K * nOc * B)}, PositionWeights = {I(K * nOc * B)};");
            w.Line($"float* v = stackalloc float[36 * Tiles * K];");
            w.Line($"float* m = stackalloc float[36 * Tiles * {I(nOc * B)}];");
            w.Line($"{V}* t = stackalloc {V}[36];");
            w.Open("for (int item = begin; item < end; item++)");
            w.Line("int n = item / ItemsPerImage, rest = item % ItemsPerImage, tr0 = rest / Groups * Rows, group = rest % Groups;");
            w.Line("// Input transform, Bᵀ·d·B per 6×6 window and channel block (recomputed per output group: cheap next to the GEMMs).");
            w.Open("for (int tile = 0; tile < Tiles; tile++)");
            w.Line($"float* x = input + n * {I(inL.ImageFloats)} + ((tr0 + tile / TilesW) * 4 + {I(inL.PadH - 1)}) * InRow + ((tile % TilesW) * 4 + {I(inL.PadW - 1)}) * {I(inL.Block)};");
            w.Open($"for (int icb = 0; icb < {I(inL.Blocks)}; icb++, x += InPlane)");
            w.Open("for (int s = 0; s < 6; s++)");
            w.Line($"{V} d0 = {Vec}.Load(x + s * {I(B)}), d1 = {Vec}.Load(x + InRow + s * {I(B)}), d2 = {Vec}.Load(x + 2 * InRow + s * {I(B)});");
            w.Line($"{V} d3 = {Vec}.Load(x + 3 * InRow + s * {I(B)}), d4 = {Vec}.Load(x + 4 * InRow + s * {I(B)}), d5 = {Vec}.Load(x + 5 * InRow + s * {I(B)});");
            EmitBt(w, "d", i => $"t[{i} * 6 + s]");
            w.Close();
            w.Open("for (int r = 0; r < 6; r++)");
            w.Line($"{V} d0 = t[r * 6], d1 = t[r * 6 + 1], d2 = t[r * 6 + 2], d3 = t[r * 6 + 3], d4 = t[r * 6 + 4], d5 = t[r * 6 + 5];");
            w.Line($"float* dst = v + (r * 6 * Tiles + tile) * K + icb * {I(B)};");
            EmitBt(w, "d", i => null, i => $"dst + {I(i)} * Tiles * K", Vec);
            w.Close();
            w.Close();
            w.Close();
            w.Line("// 36 GEMMs: m[p][tile][oc] = Σ_k v[p][tile][k] · u[p][k][oc].");
            w.Open("for (int p = 0; p < 36; p++)");
            w.Line("float* u = weights + group * GroupWeights + p * PositionWeights;");
            w.Line("float* vp = v + p * Tiles * K;");
            w.Line($"float* mp = m + p * Tiles * {I(nOc * B)};");
            if (full > 0)
                w.Line($"for (int t0 = 0; t0 < {I(full)}; t0 += {I(wp.GemmTiles)}) {GemmName(name, nOc, wp.GemmTiles)}(vp + t0 * K, u, mp + t0 * {I(nOc * B)});");
            if (wp.Remainder > 0) w.Line($"{GemmName(name, nOc, wp.Remainder)}(vp + {I(full)} * K, u, mp + {I(full * nOc * B)});");
            w.Close();
            w.Line("// Output transform, Aᵀ·m·A, then bias, residual, ReLU; partial edge tiles store only their valid pixels.");
            w.Open("for (int tile = 0; tile < Tiles; tile++)");
            w.Line("int oh0 = (tr0 + tile / TilesW) * 4, ow0 = tile % TilesW * 4;");
            w.Line("int rows = global::System.Math.Min(4, OutH - oh0), cols = global::System.Math.Min(4, OutW - ow0);");
            w.Open($"for (int j = 0; j < {I(nOc)}; j++)");
            w.Line($"float* mt = m + tile * {I(nOc * B)} + j * {I(B)};");
            w.Open("for (int s = 0; s < 6; s++)");
            w.Line($"{V} d0 = {Vec}.Load(mt + s * Tiles * {I(nOc * B)}), d1 = {Vec}.Load(mt + (6 + s) * Tiles * {I(nOc * B)}), d2 = {Vec}.Load(mt + (12 + s) * Tiles * {I(nOc * B)});");
            w.Line($"{V} d3 = {Vec}.Load(mt + (18 + s) * Tiles * {I(nOc * B)}), d4 = {Vec}.Load(mt + (24 + s) * Tiles * {I(nOc * B)}), d5 = {Vec}.Load(mt + (30 + s) * Tiles * {I(nOc * B)});");
            EmitAt(w, i => $"t[{i} * 6 + s] = ");
            w.Close();
            w.Line($"{V} b = {Vec}.Load(bias + (group * {I(nOc)} + j) * {I(B)});");
            w.Line($"float* y = output + n * {I(outL.ImageFloats)} + (group * {I(nOc)} + j) * OutPlane + {I(outL.Origin)} + oh0 * OutRow + ow0 * {I(B)};");
            if (resL != null)
                w.Line($"float* res = residual + n * {I(resL.ImageFloats)} + (group * {I(nOc)} + j) * {I(resL.PlaneFloats)} + {I(resL.Origin)} + oh0 * {I(resL.PaddedW * B)} + ow0 * {I(B)};");
            w.Open("for (int i = 0; i < rows; i++)");
            w.Line($"{V} d0 = t[i * 6], d1 = t[i * 6 + 1], d2 = t[i * 6 + 2], d3 = t[i * 6 + 3], d4 = t[i * 6 + 4], d5 = t[i * 6 + 5];");
            w.Line($"{V} y0, y1, y2, y3;");
            EmitAt(w, i => $"y{i} = b + ");
            for (int c = 0; c < 4; c++)
            {
                if (resL != null) w.Line($"y{c} += {Vec}.Load(res + i * {I(resL.PaddedW * B)} + {I(c * B)});");
                if (layer.Relu) w.Line($"y{c} = {Vec}.Max(y{c}, {V}.Zero);");
            }
            bool edge = layer.OutShape.W % 4 != 0;
            for (int c = 0; c < 4; c++)
                w.Line($"{(edge && c > 0 ? $"if (cols > {c}) " : "")}y{c}.Store(y + i * OutRow + {I(c * B)});");
            w.Close();
            w.Close();
            w.Close();
            w.Close();
            w.Close();
            w.Line();
            EmitGemm(w, name, isa, K, nOc, wp.GemmTiles);
            if (wp.Remainder > 0) EmitGemm(w, name, isa, K, nOc, wp.Remainder);
        }

        /// <summary>Bᵀ applied to d0..d5: writes six results through <paramref name="target"/> (assignment) or stores them.</summary>
        private static void EmitBt(SourceWriter w, string d, System.Func<int, string?> target, System.Func<int, string>? store = null, string? vec = null)
        {
            string[] rows =
            {
                $"{d}0 * 4f - {d}2 * 5f + {d}4",
                $"{d}3 + {d}4 - ({d}1 + {d}2) * 4f",
                $"({d}1 - {d}2) * 4f + {d}4 - {d}3",
                $"({d}3 - {d}1) * 2f + {d}4 - {d}2",
                $"({d}1 - {d}3) * 2f + {d}4 - {d}2",
                $"{d}1 * 4f - {d}3 * 5f + {d}5",
            };
            for (int i = 0; i < 6; i++)
            {
                if (store != null) w.Line($"({rows[i]}).Store({store(i)});");
                else w.Line($"{target(i)} = {rows[i]};");
            }
        }

        /// <summary>Aᵀ applied to d0..d5 (four results), each written as prefix + expression.</summary>
        private static void EmitAt(SourceWriter w, System.Func<int, string> prefix)
        {
            string[] rows =
            {
                "d0 + d1 + d2 + d3 + d4",
                "d1 - d2 + (d3 - d4) * 2f",
                "d1 + d2 + (d3 + d4) * 4f",
                "d1 - d2 + (d3 - d4) * 8f + d5",
            };
            for (int i = 0; i < 4; i++) w.Line($"{prefix(i)}{(prefix(i).Contains("+ ") ? $"({rows[i]})" : rows[i])};");
        }

        private static string GemmName(string kernel, int oc, int tiles) => $"{kernel}_Gemm{oc}x{tiles}";

        private static void EmitGemm(SourceWriter w, string kernel, Isa isa, int k, int oc, int tiles)
        {
            string V = isa.VectorType;
            int B = isa.Block;
            w.Line($"/// <summary>{tiles} tiles × {oc} output block(s) of one Winograd position, summed over {k} input channels.</summary>");
            w.Line("[MethodImpl(MethodImplOptions.AggressiveInlining)]");
            w.Open($"private static void {GemmName(kernel, oc, tiles)}(float* v, float* u, float* m)");
            for (int j = 0; j < oc; j++)
            {
                var names = new System.Text.StringBuilder();
                for (int t = 0; t < tiles; t++) names.Append(t == 0 ? "" : ", ").Append($"acc{j}x{t} = {V}.Zero");
                w.Line($"{V} {names};");
            }
            w.Open($"for (int k = 0; k < {I(k)}; k++, u += {I(oc * B)})");
            for (int j = 0; j < oc; j++) w.Line($"{V} w{j} = {isa.Vector}.Load(u + {I(j * B)});");
            for (int t = 0; t < tiles; t++)
            {
                w.Line($"{V} x{t} = {isa.Vector}.Create(v[{I(t * k)} + k]);");
                for (int j = 0; j < oc; j++) w.Line($"acc{j}x{t} = {isa.Fma}(x{t}, w{j}, acc{j}x{t});");
            }
            w.Close();
            for (int t = 0; t < tiles; t++)
                for (int j = 0; j < oc; j++) w.Line($"acc{j}x{t}.Store(m + {I(t * oc * B + j * B)});");
            w.Close();
            w.Line();
        }
    }
}
