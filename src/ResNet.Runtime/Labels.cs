namespace ResNet.Runtime;

/// <summary>The 1000 ImageNet-1k class names in torchvision's order (ResNet18_Weights.IMAGENET1K_V1.meta["categories"]).</summary>
public static class ImageNetLabels
{
    private static readonly Lazy<string[]> Names = new(() =>
    {
        using var stream = typeof(ImageNetLabels).Assembly.GetManifestResourceStream("imagenet_classes.txt")
            ?? throw new InvalidOperationException("imagenet_classes.txt is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    });

    /// <summary>All names, index = class.</summary>
    public static IReadOnlyList<string> All => Names.Value;
}
