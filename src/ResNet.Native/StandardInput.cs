using ResNet.Runtime;

namespace ResNet.Native;

/// <summary>
/// The input named "-": standard input, read whole the first time it is needed and kept, since a pipe can be read
/// only once (every "-" on the command line is then the same image). A file called "-" is still reachable as "./-".
/// </summary>
internal static class StandardInput
{
    public const string Name = "-";

    /// <summary>As for an image file (ImageDecoder's limit): more is not a picture but a mistake.</summary>
    private const int MaxBytes = 1 << 30;

    private static readonly Lock Gate = new();
    private static byte[]? _bytes;
    private static InputException? _error;

    /// <summary>Whether there is something to read: not a terminal, where reading would wait for typing.</summary>
    public static bool Redirected => Console.IsInputRedirected;

    /// <summary>Everything on standard input, or the reason there is nothing to decode (the same each time).</summary>
    public static byte[] Bytes()
    {
        lock (Gate)
        {
            if (_bytes == null && _error == null)
            {
                try
                {
                    _bytes = Read();
                }
                catch (InputException e)
                {
                    _error = e;
                }
            }
            return _bytes ?? throw _error!;
        }
    }

    private static byte[] Read()
    {
        if (!Redirected) throw new InputException($"{Name}: standard input is a terminal; pipe an image or .npy tensor into it");
        try
        {
            using var stdin = Console.OpenStandardInput();
            using var copy = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = stdin.Read(buffer)) > 0)
            {
                if (copy.Length + n > MaxBytes) throw new InputException($"{Name}: more than {MaxBytes >> 20} MiB on standard input is too large for an image");
                copy.Write(buffer, 0, n);
            }
            return copy.ToArray();
        }
        catch (IOException e)
        {
            throw new InputException($"{Name}: cannot read standard input ({e.Message})");
        }
    }
}
