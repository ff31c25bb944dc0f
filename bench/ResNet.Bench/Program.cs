using BenchmarkDotNet.Running;

namespace ResNet.Bench;

/// <summary>
/// dotnet run -c Release --project bench/ResNet.Bench -- [--filter *EndToEnd*|*Layer*] [--fixtures DIR]
/// `compare` runs a quick alternating ORT-vs-generated comparison without BenchmarkDotNet.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "compare") return Compare.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
