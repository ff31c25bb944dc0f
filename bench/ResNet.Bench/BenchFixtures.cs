using ResNet.Runtime.Weights;

namespace ResNet.Bench;

/// <summary>The weights and ONNX export of the same PyTorch model (tools/make_fixtures.py --onnx).</summary>
internal static class BenchFixtures
{
    public static string Dir
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("RESNET18_FULL_FIXTURES");
            if (!string.IsNullOrEmpty(env)) return env;
            for (var d = new DirectoryInfo(Environment.CurrentDirectory); d != null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "fixtures", "full");
                if (File.Exists(Path.Combine(candidate, "model.onnx"))) return candidate;
            }
            throw new InvalidOperationException("no fixtures/full/model.onnx: run python3 tools/make_fixtures.py --spec arch/resnet18.json --torchvision --onnx --out fixtures/full");
        }
    }

    public static StateDict Weights() => StateDict.Load(Path.Combine(Dir, "weights.pth"));

    public static string Onnx => Path.Combine(Dir, "model.onnx");

    public static float[] Input(int batch)
    {
        var rng = new Random(7);
        return Enumerable.Range(0, batch * 3 * 224 * 224).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
    }
}
