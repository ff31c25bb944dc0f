using System.Diagnostics;
using ResNet.Runtime;
using ResNet.Runtime.Images;
using Xunit;

namespace ResNet.Tests;

/// <summary>Inputs the fuzzers found (fixtures/regressions), each now handled quickly and cleanly.</summary>
public class FuzzRegressionTests
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Fixtures.Dir("regressions")).Order()) data.Add(Path.GetFileName(f));
        return data;
    }

    /// <summary>
    /// AFL++ hangs: 638-byte JPEGs declaring 65526×8 and similar. Resize(256) makes them 2096832×256 (1.6 GB for
    /// Pillow); the crop-window resize computes only the 224×224 that is kept. jpeg-walk-*: garbage that the
    /// JPEG decoder, when it still walked the markers itself (libjpeg's way: skip to the next 0xFF), read as
    /// other segments than the structure check had, among them frame headers larger than the one admitted
    /// against the pixel limit; it now reads only the structure check's segments.
    /// tiff-no-samples: a TIFF whose SamplesPerPixel is 0 (no bits-per-sample left to read).
    /// *-preset-dictionary: zlib data whose header asks for a preset dictionary (.NET throws ZLibException, not
    /// InvalidDataException, for it); found in a TIFF, present in the PNG reader since session 1.
    /// </summary>
    [Theory]
    [MemberData(nameof(Files))]
    public void FoundInputIsHandledQuickly(string file)
    {
        var bytes = File.ReadAllBytes(Path.Combine(Fixtures.Dir("regressions"), file));
        var clock = Stopwatch.StartNew();
        // This thread's allocations: the process's total counts other tests' too, which run beside this one (an input
        // that decodes, as jpeg-elongated-3 does since session 40, gives them the time to pass 64 MiB).
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            if (file.EndsWith(".pth"))
            {
                ResNet.Runtime.Weights.StateDict.Load(new MemoryStream(bytes), file);
            }
            else
            {
                var tensor = ImageNetTransform.ToTensor(ImageNetTransform.ResizeAndCrop(ImageDecoder.Decode(bytes, file)));
                Assert.Equal(3 * 224 * 224, tensor.Length);
            }
        }
        catch (ResNetException e)
        {
            Assert.StartsWith(file, e.Message);
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"{file} took {clock.Elapsed}");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 64 << 20, $"{file} allocated {allocated >> 20} MiB");
    }
}
