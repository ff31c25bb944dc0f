using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace ResNet.Generator.Model
{
    /// <summary>
    /// Walks the spec tree in forward order, checks every module against the tensor it receives, fuses
    /// Conv2d+BatchNorm2d(+ReLU) and BasicBlock's residual add, and returns the flat layer graph with every
    /// tensor's shape, or the diagnostics that stop it. Pure: no Roslyn state.
    /// </summary>
    internal sealed class ShapeInference
    {
        /// <summary>Per-image elements of one tensor; beyond this, batch × size overflows int32 offsets.</summary>
        public const long MaxTensorElements = 1L << 26;

        private readonly NetworkSpec _spec;
        private readonly List<Shape> _tensors = new List<Shape>();
        private readonly List<Layer> _layers = new List<Layer>();
        private readonly List<DiagnosticInfo> _diagnostics = new List<DiagnosticInfo>();

        private ShapeInference(NetworkSpec spec) => _spec = spec;

        public static (Graph? Graph, EquatableArray<DiagnosticInfo> Diagnostics) Run(NetworkSpec spec)
        {
            var inference = new ShapeInference(spec);
            int input = inference.NewTensor(spec.Input);
            int? output = inference.Sequence(spec.Modules, input, topLevel: true);
            if (output != null && inference._layers.Count == 0)
                inference.Report(Diagnostics.BadStructure, spec.Location, "$.modules", "network", "the network computes nothing; expected at least one layer");
            bool ok = output != null && inference._diagnostics.Count == 0;
            var graph = ok ? new Graph(spec.ClassName, spec.Input, inference._tensors.ToEquatableArray(), inference._layers.ToEquatableArray()) : null;
            return (graph, inference._diagnostics.ToEquatableArray());
        }

        private int? Sequence(EquatableArray<ModuleSpec> modules, int input, bool topLevel)
        {
            int current = input;
            for (int i = 0; i < modules.Count; i++)
            {
                var m = modules[i];
                int? next;
                switch (m.Type)
                {
                    case "Conv2d":
                        {
                            var bn = i + 1 < modules.Count && modules[i + 1].Type == "BatchNorm2d" ? modules[i + 1] : null;
                            int after = i + (bn != null ? 2 : 1);
                            var relu = after < modules.Count && modules[after].Type == "ReLU" ? modules[after] : null;
                            next = Conv(m, bn, relu, current, residual: -1);
                            i = after - 1 + (relu != null ? 1 : 0);
                            break;
                        }
                    case "BatchNorm2d":
                        Report(Diagnostics.Unsupported, m, "a BatchNorm2d must directly follow a Conv2d so it can be folded into it");
                        return null;
                    case "ReLU":
                        next = Add(new Layer(MethodName(m.Path), m.Path, m.Path, LayerKind.Relu, current, NewTensor(_tensors[current]), -1,
                            _tensors[current], _tensors[current], null, null, 0, true, null, null, null));
                        break;
                    case "MaxPool2d":
                        next = MaxPool(m, current);
                        break;
                    case "AdaptiveAvgPool2d":
                        {
                            var shape = new Shape(_tensors[current].C, m.AvgPool!.OutputSize.H, m.AvgPool.OutputSize.W);
                            next = Add(new Layer(MethodName(m.Path), m.Path, m.Path, LayerKind.AvgPool, current, NewTensor(shape), -1,
                                _tensors[current], shape, null, null, 0, false, null, m.AvgPool, null));
                            break;
                        }
                    case "Linear":
                        next = Linear(m, current, topLevel);
                        break;
                    case "Sequential":
                        next = Sequence(m.Children, current, topLevel: false);
                        break;
                    case "BasicBlock":
                        next = BasicBlock(m, current);
                        break;
                    default:
                        Report(Diagnostics.UnknownModule, m, m.Type);
                        return null;
                }
                if (next == null) return null;
                current = next.Value;
            }
            return current;
        }

        private int? Conv(ModuleSpec m, ModuleSpec? bn, ModuleSpec? relu, int input, int residual)
        {
            var c = m.Conv!;
            var x = _tensors[input];
            if (c.InChannels != x.C)
            {
                Report(Diagnostics.ChannelMismatch, m, "in_channels", c.InChannels.ToString(CultureInfo.InvariantCulture), x.C.ToString(CultureInfo.InvariantCulture));
                return null;
            }
            if (c.InChannels % c.Groups != 0 || c.OutChannels % c.Groups != 0)
            {
                Report(Diagnostics.ShapeMismatch, m, $"groups={c.Groups} does not divide in_channels={c.InChannels} and out_channels={c.OutChannels}; expected both to be multiples of groups");
                return null;
            }
            if (c.Groups != 1)
            {
                Report(Diagnostics.Unsupported, m, $"groups={c.Groups}; the generator emits dense convolutions only (groups=1)");
                return null;
            }
            if (c.PaddingMode != "zeros")
            {
                Report(Diagnostics.Unsupported, m, $"padding_mode=\"{c.PaddingMode}\"; the generator emits zero padding only (the generic kernels do all four)");
                return null;
            }
            int? oh = WindowOutput(m, "height", x.H, c.Kernel.H, c.Stride.H, c.Padding.H, c.Dilation.H, ceil: false);
            if (oh == null) return null;
            int? ow = WindowOutput(m, "width", x.W, c.Kernel.W, c.Stride.W, c.Padding.W, c.Dilation.W, ceil: false);
            if (ow == null) return null;
            var shape = new Shape(c.OutChannels, oh.Value, ow.Value);
            if (!CheckSize(m, shape)) return null;
            if ((long)c.OutChannels * c.InChannels * c.Kernel.H * c.Kernel.W > MaxTensorElements)
            {
                Report(Diagnostics.TooLarge, m, $"the weight tensor has {(long)c.OutChannels * c.InChannels * c.Kernel.H * c.Kernel.W} elements; expected at most {MaxTensorElements}");
                return null;
            }
            if (bn != null && bn.BatchNorm!.NumFeatures != c.OutChannels)
            {
                Report(Diagnostics.ChannelMismatch, bn, "num_features", bn.BatchNorm.NumFeatures.ToString(CultureInfo.InvariantCulture), c.OutChannels.ToString(CultureInfo.InvariantCulture));
                return null;
            }
            if (bn != null && (!bn.BatchNorm!.Affine || !bn.BatchNorm.TrackRunningStats))
            {
                Report(Diagnostics.Unsupported, bn, "affine=false or track_running_stats=false; folding needs the affine parameters and running statistics (expected both true, as in torchvision)");
                return null;
            }
            if (residual >= 0 && !_tensors[residual].Equals(shape))
            {
                Report(Diagnostics.ShapeMismatch, m, $"the residual is {_tensors[residual]} but this convolution gives {shape}; expected the downsample to match it");
                return null;
            }
            var description = new StringBuilder(m.Path);
            if (bn != null) description.Append(" + ").Append(bn.Name);
            if (residual >= 0) description.Append(" + residual");
            if (relu != null) description.Append(" + ").Append(relu.Name);
            return Add(new Layer(MethodName(m.Path), m.Path, description.ToString(), LayerKind.Conv, input, NewTensor(shape), residual, x, shape,
                c, bn?.Path, bn?.BatchNorm!.Eps ?? 0, relu != null, null, null, null));
        }

        private int? MaxPool(ModuleSpec m, int input)
        {
            var p = m.MaxPool!;
            var x = _tensors[input];
            if (p.Padding.H * 2 > p.Kernel.H || p.Padding.W * 2 > p.Kernel.W)
            {
                Report(Diagnostics.ImpossibleWindow, m, $"padding {p.Padding} is more than half of kernel_size {p.Kernel}; expected padding ≤ kernel_size / 2 (as PyTorch requires)");
                return null;
            }
            int? oh = WindowOutput(m, "height", x.H, p.Kernel.H, p.Stride.H, p.Padding.H, p.Dilation.H, p.CeilMode);
            if (oh == null) return null;
            int? ow = WindowOutput(m, "width", x.W, p.Kernel.W, p.Stride.W, p.Padding.W, p.Dilation.W, p.CeilMode);
            if (ow == null) return null;
            var shape = new Shape(x.C, oh.Value, ow.Value);
            return Add(new Layer(MethodName(m.Path), m.Path, m.Path, LayerKind.MaxPool, input, NewTensor(shape), -1, x, shape,
                null, null, 0, false, p, null, null));
        }

        private int? Linear(ModuleSpec m, int input, bool topLevel)
        {
            var l = m.Linear!;
            var x = _tensors[input];
            if (l.InFeatures != x.Elements)
            {
                string flat = topLevel ? $"flattened input {x} = {x.Elements}" : $"input {x}";
                Report(Diagnostics.ShapeMismatch, m, $"in_features is {l.InFeatures} but the {flat} features; expected in_features = {x.Elements}");
                return null;
            }
            if (!topLevel && (x.H != 1 || x.W != 1))
            {
                Report(Diagnostics.ShapeMismatch, m, $"a Linear inside a Sequential gets {x} without a flatten; expected a 1×1 input");
                return null;
            }
            if ((long)l.InFeatures * l.OutFeatures > MaxTensorElements)
            {
                Report(Diagnostics.TooLarge, m, $"the weight matrix has {(long)l.InFeatures * l.OutFeatures} elements; expected at most {MaxTensorElements}");
                return null;
            }
            var shape = new Shape(l.OutFeatures, 1, 1);
            return Add(new Layer(MethodName(m.Path), m.Path, m.Path, LayerKind.Linear, input, NewTensor(shape), -1, x, shape,
                null, null, 0, false, null, null, l));
        }

        /// <summary>torchvision's BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x)).</summary>
        private int? BasicBlock(ModuleSpec block, int input)
        {
            var byName = block.Children.ToDictionary(c => c.Name);
            ModuleSpec? Child(string name, string type) => byName.TryGetValue(name, out var c) && c.Type == type ? c : null;
            var conv1 = Child("conv1", "Conv2d");
            var bn1 = Child("bn1", "BatchNorm2d");
            var relu = Child("relu", "ReLU");
            var conv2 = Child("conv2", "Conv2d");
            var bn2 = Child("bn2", "BatchNorm2d");
            byName.TryGetValue("downsample", out var downsample);
            int expectedCount = downsample != null ? 6 : 5;
            if (conv1 == null || bn1 == null || relu == null || conv2 == null || bn2 == null || block.Children.Count != expectedCount
                || (downsample != null && downsample.Type != "Sequential"))
            {
                Report(Diagnostics.BadStructure, block, "a BasicBlock must have exactly conv1 (Conv2d), bn1 (BatchNorm2d), relu (ReLU), conv2 (Conv2d), bn2 (BatchNorm2d) and optionally downsample (Sequential), as torchvision's does");
                return null;
            }
            int? hidden = Conv(conv1, bn1, relu, input, -1);
            if (hidden == null) return null;
            int identity = input;
            if (downsample != null)
            {
                int? d = Sequence(downsample.Children, input, topLevel: false);
                if (d == null) return null;
                identity = d.Value;
            }
            return Conv(conv2, bn2, relu, hidden.Value, identity);
        }

        private int? WindowOutput(ModuleSpec m, string axis, int size, int kernel, int stride, int padding, int dilation, bool ceil)
        {
            long span = (long)dilation * (kernel - 1) + 1;
            long room = size + 2L * padding - span;
            if (room < 0)
            {
                Report(Diagnostics.ImpossibleWindow, m, $"the {axis} {size} with padding {padding} is smaller than the dilated kernel ({span}); expected the window to fit at least once");
                return null;
            }
            long output = (ceil ? (room + stride - 1) / stride : room / stride) + 1;
            // PyTorch drops a last ceil-mode window that would start entirely in the right padding.
            if (ceil && (output - 1) * stride >= size + padding) output--;
            return (int)output;
        }

        private bool CheckSize(ModuleSpec m, Shape shape)
        {
            if (shape.Elements <= MaxTensorElements) return true;
            Report(Diagnostics.TooLarge, m, $"the output tensor {shape} has {shape.Elements} elements per image; expected at most {MaxTensorElements}");
            return false;
        }

        private int NewTensor(Shape shape)
        {
            _tensors.Add(shape);
            return _tensors.Count - 1;
        }

        private int Add(Layer layer)
        {
            _layers.Add(layer);
            return layer.Output;
        }

        private void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, ModuleSpec m, params string[] args) =>
            _diagnostics.Add(new DiagnosticInfo(descriptor.Id, m.Location.FilePath, m.Location.Span, m.Location.Lines,
                new[] { m.JsonPath, m.Path }.Concat(args).ToEquatableArray()));

        private void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, SpecLocation at, params string[] args) =>
            _diagnostics.Add(new DiagnosticInfo(descriptor.Id, at.FilePath, at.Span, at.Lines, args.ToEquatableArray()));

        /// <summary>`layer2.0.downsample.0` → `Layer2_0_Downsample_0`: a method name a reader maps back to the printout.</summary>
        public static string MethodName(string path)
        {
            var sb = new StringBuilder();
            foreach (var part in path.Split('.'))
            {
                if (sb.Length > 0) sb.Append('_');
                sb.Append(char.ToUpperInvariant(part[0])).Append(part, 1, part.Length - 1);
            }
            if (char.IsDigit(sb[0])) sb.Insert(0, "Module");
            return sb.ToString();
        }
    }
}
