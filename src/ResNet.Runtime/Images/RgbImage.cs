namespace ResNet.Runtime.Images;

/// <summary>An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.</summary>
public sealed class RgbImage(int width, int height, byte[] pixels)
{
    /// <summary>Width in pixels.</summary>
    public int Width { get; } = width;
    /// <summary>Height in pixels.</summary>
    public int Height { get; } = height;
    /// <summary>Width × height × 3 bytes.</summary>
    public byte[] Pixels { get; } = pixels.Length == (long)width * height * 3 ? pixels : throw new ArgumentException("pixel buffer size does not match the dimensions");
}
