using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

public class AllocationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SteadyStateInferenceAllocatesNothing(bool genericKernels)
    {
        // A batch of 3: on AVX-512 and AVX2 that runs layer4's batched Winograd variant too.
        using var net = new ResNet18(RandomWeights.For(ResNet18.Network, 3), new NetworkOptions { MaxBatch = 3, GenericKernels = genericKernels });
        var input = new float[3 * net.InputLength];
        var output = new float[3 * net.OutputLength];
        net.Run(input, output);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) net.Run(input, output);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        // The same batch as separate images (the CLI's way).
        var images = new[] { new float[net.InputLength], new float[net.InputLength], new float[net.InputLength] };
        net.Run(images, output);
        before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) net.Run(images, output);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        // A batch of 2 at two threads runs its first layers image by image, an image per thread.
        using var two = new ResNet18(RandomWeights.For(ResNet18.Network, 3), new NetworkOptions { MaxBatch = 2, Threads = 2, GenericKernels = genericKernels });
        Assert.Equal(!genericKernels, two.RunsPrefix(2));
        input = new float[2 * two.InputLength];
        two.Run(input, output);
        before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) two.Run(input, output);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
