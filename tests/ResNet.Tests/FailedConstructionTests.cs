using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

[CollectionDefinition(nameof(FailedConstructionTests), DisableParallelization = true)]
public sealed class FailedConstructionCollection;

/// <summary>
/// A network whose construction fails gives back at once what it had taken: a caller who catches the failure (other
/// weights, a smaller MaxBatch) must not be left with worker threads and native buffers until a finalizer runs.
/// Alone in its collection: it counts the process's worker threads.
/// </summary>
[Collection(nameof(FailedConstructionTests))]
public class FailedConstructionTests
{
    /// <summary>Threads named as the pool names its workers ("resnet18 worker N", cut by Linux to 15 characters).</summary>
    private static int Workers() => Directory.EnumerateDirectories("/proc/self/task")
        .Count(t => File.Exists(Path.Combine(t, "comm")) && File.ReadAllText(Path.Combine(t, "comm")).StartsWith("resnet18 worke", StringComparison.Ordinal));

    /// <summary>
    /// The worker count once it is <paramref name="expected"/>, or as it is after 5 s: a joined thread's managed end
    /// comes a moment before its task leaves /proc, and a started one names itself a moment after it appears there,
    /// while a leaked worker waits for work forever.
    /// </summary>
    private static int WorkersOnceAt(int expected)
    {
        var until = DateTime.UtcNow.AddSeconds(5);
        int n;
        while ((n = Workers()) != expected && DateTime.UtcNow < until) Thread.Sleep(10);
        return n;
    }

    [Theory]
    [InlineData(0, 1, "MaxBatch must be between 1 and 4096, not 0")]
    [InlineData(4097, 1, "MaxBatch must be between 1 and 4096, not 4097")]
    [InlineData(1, 0, "Threads must be between 1 and 1024, not 0")]
    [InlineData(1, -2, "Threads must be between 1 and 1024, not -2")]
    [InlineData(1, 1025, "Threads must be between 1 and 1024, not 1025")]
    public void OptionsOutOfRangeAreRefusedBeforeAnythingIsTaken(int maxBatch, int threads, string message)
    {
        var weights = RandomWeights.For(ResNet18.Network, seed: 3);
        int before = Workers();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ResNet18(weights, new NetworkOptions { MaxBatch = maxBatch, Threads = threads }));
        Assert.StartsWith(message, e.Message);
        Assert.Equal(before, Workers());
    }

    [Fact]
    public void RefusedWeightsLeaveNoWorkerThreadsBehind()
    {
        var good = RandomWeights.For(ResNet18.Network, seed: 3);
        var missing = StateDict.FromTensors("x.pth", good.Keys.Where(k => k != "layer4.1.bn2.running_var").Select(k => KeyValuePair.Create(k, good[k])));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        int before = WorkersOnceAt(0);
        var e = Assert.Throws<WeightsException>(() => new ResNet18(missing, new NetworkOptions { Threads = 3, MaxBatch = 2 }));
        Assert.Contains("missing key 'layer4.1.bn2.running_var'", e.Message);
        Assert.Equal(before, WorkersOnceAt(before));
        // And the same options with the weights complete do start two workers (the count sees them).
        using var net = new ResNet18(good, new NetworkOptions { Threads = 3, MaxBatch = 2 });
        Assert.Equal(before + 2, WorkersOnceAt(before + 2));
    }
}
