namespace ResNet.Runtime;

/// <summary>
/// A problem with a file the user gave (weights, tensor, image): the message is one line naming the file and
/// the reason, fit to print as is.
/// </summary>
public class ResNetException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A weights file that cannot be used: not a torch.save zip, a refused pickle, a missing or mis-shaped key.</summary>
public sealed class WeightsException(string message, Exception? inner = null) : ResNetException(message, inner);

/// <summary>An input tensor or image that cannot be used.</summary>
public sealed class InputException(string message, Exception? inner = null) : ResNetException(message, inner);
