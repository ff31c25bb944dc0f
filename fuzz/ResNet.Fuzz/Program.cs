using ResNet.Runtime;
using ResNet.Runtime.Images;
using ResNet.Runtime.IO;
using ResNet.Runtime.Weights;
using SharpFuzz;

namespace ResNet.Fuzz;

/// <summary>
/// `ResNet.Fuzz image|weights|npy`: reads one input per AFL++ iteration from stdin (SharpFuzz's out-of-process
/// mode). A reader's own ResNetException is the expected refusal; any other exception escapes and AFL++
/// records it as a crash, a hang as a timeout.
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        Action<byte[]> target = args.FirstOrDefault() switch
        {
            // Whole, then only the crop's source window, then through FromBytes (streamed where it can be, its buffers
            // kept from one input to the next: ScratchBuffers): all must refuse alike or succeed.
            "image" => bytes =>
            {
                try
                {
                    ImageNetTransform.ToTensor(ImageNetTransform.ResizeAndCrop(ImageDecoder.Decode(bytes, "fuzz.img")));
                }
                finally
                {
                    try
                    {
                        ImageNetTransform.ToTensor(ImageNetTransform.ResizeAndCrop(
                            ImageDecoder.Decode(bytes, "fuzz.img", ImageDecoder.DefaultMaxPixels, null, ImageNetTransform.SourceWindow)));
                    }
                    finally
                    {
                        ImageNetTransform.FromBytes(bytes, "fuzz.img");
                    }
                }
            },
            "weights" => bytes => StateDict.Load(new MemoryStream(bytes), "fuzz.pth"),
            "npy" => bytes => Npy.Parse(bytes, "fuzz.npy"),
            _ => throw new ArgumentException("usage: ResNet.Fuzz image|weights|npy"),
        };
        Fuzzer.OutOfProcess.Run(stream =>
        {
            var ms = new MemoryStream();
            stream.CopyTo(ms);
            try
            {
                target(ms.ToArray());
            }
            catch (ResNetException)
            {
            }
        });
    }
}
