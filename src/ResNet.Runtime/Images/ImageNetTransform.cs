using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResNet.Runtime.Images;

/// <summary>
/// torchvision's ImageNet evaluation transform, exactly: Resize(256) (shorter side to 256, longer side
/// int(256·long/short), PIL bilinear), CenterCrop(224) (offsets int(round((h − 224)/2)), Python's
/// round-half-to-even), ToTensor (/255) and Normalize, in float32 in torchvision's order of operations.
/// </summary>
public static class ImageNetTransform
{
    /// <summary>Shorter side after Resize.</summary>
    public const int ResizeTo = 256;

    /// <summary>Crop size.</summary>
    public const int CropTo = 224;

    private static readonly float[] Mean = [0.485f, 0.456f, 0.406f];
    private static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    /// <summary>
    /// Decodes <paramref name="path"/> and returns the 3×224×224 CHW tensor. Where the tensor is made top to bottom
    /// while the image decodes (a large enough JPEG or PNG, with a thread lent: <see cref="LendThreadUntil"/>),
    /// <paramref name="rows"/> hears of its rows as they are final, on the thread making it; it may hear nothing.
    /// </summary>
    public static float[] FromFile(string path, long maxPixels = ImageDecoder.DefaultMaxPixels, ITensorRows? rows = null) =>
        Transform(path, rows, (rowsStarting, window) => ImageDecoder.Load(path, maxPixels, rowsStarting, window));

    /// <summary>
    /// <see cref="FromFile"/> for an image already in memory (PNG, JPEG, BMP, GIF, TIFF, WebP or Netpbm bytes, read from a pipe for example);
    /// <paramref name="name"/> names it in errors. The same tensor as from a file of these bytes.
    /// </summary>
    public static float[] FromBytes(byte[] bytes, string name, long maxPixels = ImageDecoder.DefaultMaxPixels, ITensorRows? rows = null) =>
        Transform(name, rows, (rowsStarting, window) => ImageDecoder.Decode(bytes, name, maxPixels, rowsStarting, window));

    private static float[] Transform(string name, ITensorRows? rows, Func<Func<RgbImage, bool>, Func<int, int, PixelWindow>, RgbImage> decode)
    {
        // A JPEG's rows can be converted and resized behind its scan: offered to a lent thread (the CLI's main
        // thread, done loading the weights), which then does most of that while this one decodes.
        Task<float[]>? behind = null;
        RgbImage image;
        try
        {
            image = decode(streamed => (behind = ImageParallel.Offer(() => TensorInOrder(streamed, rows) ?? ToTensor(ResizeAndCrop(streamed)))) != null,
                SourceWindow);
        }
        catch
        {
            if (behind != null) ImageParallel.Withdraw(behind);
            throw;
        }
        try
        {
            float[] tensor = behind != null ? ImageParallel.Collect(behind) : ToTensor(ResizeAndCrop(image));
            image.ReleaseScratch(); // its kept buffers, if any, serve the next image (nothing else has seen them)
            return tensor;
        }
        catch (InputException e) when (!e.Message.StartsWith(name + ": ", StringComparison.Ordinal))
        {
            // A streamed PNG's rows are unfiltered by the transform, so its decoder's errors (which name the file) come here too.
            throw new InputException($"{name}: {e.Message}");
        }
    }

    /// <summary>
    /// Lends the calling thread to image decoding and preprocessing running on other threads until
    /// <paramref name="task"/> completes: their row loops (color conversion, both resize passes) are then split
    /// with it even for images too small to repay starting thread-pool work. For a thread that would otherwise
    /// block waiting for an image (the task that decodes it). The results are the same bytes.
    /// </summary>
    public static void LendThreadUntil(Task task) => ImageParallel.Lend(task);

    /// <summary>The size torchvision's Resize(256) gives: shorter side 256, longer side int(256 · long / short).</summary>
    public static (int Width, int Height) ResizedSize(int width, int height)
    {
        if (TooElongated(width, height))
            throw new InputException($"a {width}×{height} image is too elongated to resize to {ResizeTo} on its short side");
        int newLong = (int)NewLongSide(width, height);
        return width <= height ? (ResizeTo, newLong) : (newLong, ResizeTo);
    }

    /// <summary>Resize(256)'s long side: int(256 · long / short).</summary>
    private static double NewLongSide(int width, int height) => Math.Floor((double)ResizeTo * Math.Max(width, height) / Math.Min(width, height));

    /// <summary>Whether Resize(256) would make the long side too large to resample (<see cref="ResizedSize"/> refuses it).</summary>
    private static bool TooElongated(int width, int height) => NewLongSide(width, height) > int.MaxValue / 4;

    /// <summary>
    /// Resize(256) then CenterCrop(224): the 8-bit image ToTensor sees. Only the crop window of the resized
    /// image is computed (identical to resizing everything and cropping).
    /// </summary>
    public static RgbImage ResizeAndCrop(RgbImage image)
    {
        var (w, h, left, top) = CropWindow(image);
        return PilResize.BilinearRegion(image, w, h, left, top, CropTo, CropTo);
    }

    /// <summary>Resize(256)'s size and where CenterCrop(224) cuts it: offsets int(round((size − 224)/2)), rounding half to even.</summary>
    private static (int Width, int Height, int Left, int Top) CropWindow(RgbImage image) => CropWindow(image.Width, image.Height);

    private static (int Width, int Height, int Left, int Top) CropWindow(int width, int height)
    {
        var (w, h) = ResizedSize(width, height);
        return (w, h, (int)Math.Round((w - CropTo) / 2.0, MidpointRounding.ToEven), (int)Math.Round((h - CropTo) / 2.0, MidpointRounding.ToEven));
    }

    /// <summary>
    /// The pixels of a <paramref name="width"/>×<paramref name="height"/> image that Resize(256) and CenterCrop(224)
    /// read: the resize's taps for the crop's first and last output pixel on each axis. An image decoded for the
    /// transform skips the rest where it can (a 4:3 photo: ~42% of its pixels): a JPEG's inverse DCTs, upsampling and
    /// color conversion, a PNG's unfiltering right of and below the window and its conversion.
    /// </summary>
    internal static PixelWindow SourceWindow(int width, int height)
    {
        // Too elongated to resize: decoded whole, and the resize's own error names the file as before.
        if (TooElongated(width, height)) return new PixelWindow(0, width, 0, height);
        var (w, h, left, top) = CropWindow(width, height);
        var (x0, x1) = PilResize.SourceRange(width, w, left, CropTo);
        var (y0, y1) = PilResize.SourceRange(height, h, top, CropTo);
        return new PixelWindow(x0, x1, y0, y1);
    }

    /// <summary>
    /// The tensor of an image whose rows are still being decoded, a row at a time as the rows it reads arrive
    /// (<see cref="PilResize.BilinearRegionInOrder"/>): converted to floats while the rest decodes, so the decoder's
    /// last rows leave only the last few output rows to do. Null where that path does not apply.
    /// </summary>
    private static unsafe float[]? TensorInOrder(RgbImage image, ITensorRows? rows)
    {
        var (w, h, left, top) = CropWindow(image);
        var t = GC.AllocateUninitializedArray<float>(3 * CropTo * CropTo); // every element is written
        FreshPages.Populate(t, 0, t.Length);
        var waiting = RowProgress.WhileWaiting;
        if (rows != null) RowProgress.WhileWaiting = rows.WhileWaiting;
        try
        {
            fixed (float* tp = t)
            {
                float* dst = tp;
                return PilResize.BilinearRegionInOrder(image, w, h, left, top, CropTo, CropTo, (row, pixels) =>
                {
                    ToTensor(pixels, dst + row * CropTo, CropTo * CropTo, CropTo);
                    rows?.Ready(t, row + 1);
                }) ? t : null;
            }
        }
        finally
        {
            RowProgress.WhileWaiting = waiting;
        }
    }

    /// <summary>
    /// ToTensor + Normalize: CHW float32, (v / 255 − mean) / std per channel. In row chunks, which a lent thread
    /// shares (<see cref="LendThreadUntil"/>): ~0.25 ms of a one-image run's critical path alone.
    /// </summary>
    public static unsafe float[] ToTensor(RgbImage image)
    {
        int width = image.Width;
        var t = GC.AllocateUninitializedArray<float>(checked(3 * width * image.Height)); // every element is written
        var pixels = image.Pixels;
        int plane = image.Width * image.Height;
        ImageParallel.ForRows(image.Height, 3L * width, (from, to) =>
        {
            fixed (byte* px = pixels)
            fixed (float* dst = t)
                ToTensor(px + 3L * from * width, dst + (long)from * width, plane, (to - from) * width);
        });
        return t;
    }

    /// <summary>
    /// <paramref name="count"/> pixels from <paramref name="pixels"/> into a CHW tensor of <paramref name="plane"/>
    /// pixels per channel, channel 0's first at <paramref name="dst"/>.
    /// </summary>
    private static unsafe void ToTensor(byte* pixels, float* dst, int plane, int count)
    {
        int i0 = 0;
        if (Vector512.IsHardwareAccelerated && Ssse3.IsSupported)
        {
            // 16 pixels at a time: the channels separated by byte shuffles, then the same float operations per lane.
            var m = RgbShuffles.Deinterleave;
            for (; i0 + 16 <= count; i0 += 16)
            {
                byte* p = pixels + 3 * i0;
                Vector128<byte> a = Vector128.Load(p), b = Vector128.Load(p + 16), d = Vector128.Load(p + 32);
                for (int c = 0; c < 3; c++)
                {
                    var bytes = Ssse3.Shuffle(a, m[3 * c]) | Ssse3.Shuffle(b, m[3 * c + 1]) | Ssse3.Shuffle(d, m[3 * c + 2]);
                    var x = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(bytes));
                    ((x / 255f - Vector512.Create(Mean[c])) / Vector512.Create(Std[c])).Store(dst + c * plane + i0);
                }
            }
        }
        for (int c = 0; c < 3; c++)
        {
            float mean = Mean[c], std = Std[c];
            for (int i = i0; i < count; i++) dst[c * plane + i] = ((float)pixels[i * 3 + c] / 255f - mean) / std;
        }
    }
}
