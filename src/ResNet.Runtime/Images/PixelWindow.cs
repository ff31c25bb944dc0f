namespace ResNet.Runtime.Images;

/// <summary>
/// The pixels [<see cref="X0"/>, <see cref="X1"/>) × [<see cref="Y0"/>, <see cref="Y1"/>) of an image that its
/// consumer reads. A decoder told it may leave the others undecoded, their bytes then unspecified: the ImageNet
/// transform's center crop of a resized photo reads about 60% of it (<see cref="ImageNetTransform.SourceWindow"/>).
/// </summary>
internal readonly record struct PixelWindow(int X0, int X1, int Y0, int Y1);
