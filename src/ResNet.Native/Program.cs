using System.Globalization;
using ResNet.Runtime;
using ResNet.Runtime.IO;

namespace ResNet.Native;

/// <summary>`resnet18`: classify inputs with the generated ResNet-18. Exit 0 all ok, 1 some input failed, 2 usage.</summary>
internal static class Program
{
    private const string Usage = "usage: resnet18 --weights W.pth [--top K] [--json] [--logits] FILE...";

    private static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "bench") return BenchCommand.Run(args[1..]);
        if (args.Length == 1 && args[0] is "-h" or "--help")
        {
            Console.WriteLine(Usage);
            return 0;
        }
        var options = Options.Parse(args, out var error);
        if (options == null)
        {
            Console.Error.WriteLine($"resnet18: {error}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
        if (options.Weights == null)
        {
            Console.Error.WriteLine("resnet18: --weights is required");
            Console.Error.WriteLine(Usage);
            return 2;
        }
        ResNet18 model;
        try
        {
            model = ResNet18.Load(options.Weights);
        }
        catch (ResNetException e)
        {
            Console.Error.WriteLine($"resnet18: {e.Message}");
            return 1;
        }
        int failures = 0;
        using (model)
        {
            var logits = new float[model.OutputLength];
            foreach (var file in options.Files)
            {
                try
                {
                    var input = LoadInput(file, model.Info.Input);
                    model.Run(input, logits);
                    var top = Classification.TopK(logits, options.Top);
                    if (options.Json) Console.WriteLine(JsonOut.Result(file, top, options.Logits ? logits : null));
                    else WriteTable(file, top, options.Logits ? logits : null);
                }
                catch (ResNetException e)
                {
                    failures++;
                    if (options.Json) Console.WriteLine(JsonOut.Error(file, e.Message));
                    else Console.Error.WriteLine($"resnet18: {e.Message}");
                }
            }
        }
        return failures == 0 ? 0 : 1;
    }

    private static float[] LoadInput(string file, TensorShape shape)
    {
        var (dims, data) = Npy.Read(file);
        bool ok = (dims.Length == 3 && dims[0] == shape.C && dims[1] == shape.H && dims[2] == shape.W)
            || (dims.Length == 4 && dims[0] == 1 && dims[1] == shape.C && dims[2] == shape.H && dims[3] == shape.W);
        if (!ok)
            throw new InputException($"{file}: tensor of shape [{string.Join(", ", dims)}]; expected [{shape.C}, {shape.H}, {shape.W}] or [1, {shape.C}, {shape.H}, {shape.W}]");
        return data;
    }

    private static void WriteTable(string file, IReadOnlyList<Prediction> top, float[]? logits)
    {
        Console.WriteLine(file);
        for (int i = 0; i < top.Count; i++)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {i + 1,2}  {top[i].Probability,8:0.0000}  {top[i].Index,4}"));
        if (logits != null) Console.WriteLine("  logits: " + string.Join(" ", logits.Select(JsonOut.Num)));
    }
}
