using System.Globalization;
using ResNet.Runtime;
using ResNet.Runtime.Images;
using ResNet.Runtime.IO;

// Embedding WEIGHTS INPUT...: prints the kernels in use, then per input (a .npy tensor or an image) its name and
// 1000 logits on one line, for tools/check_embedding.sh to compare with PyTorch's.
using var net = ResNet18.Load(args[0], new NetworkOptions { Threads = 2 });
Console.WriteLine($"isa {net.Isa}");
foreach (string input in args[1..])
{
    float[] tensor = input.EndsWith(".npy", StringComparison.Ordinal) ? Npy.Read(input).Data : ImageNetTransform.FromFile(input);
    float[] logits = net.Run(tensor);
    Console.WriteLine($"{input} {string.Join(' ', logits.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}");
}
