using ResNet.Runtime;
using ResNet.Runtime.Images;

namespace ResNet.Native;

/// <summary>
/// The input named "-": standard input, read whole the first time it is needed and kept, since a pipe can be read
/// only once (every "-" on the command line is then the same image). A file called "-" is still reachable as "./-".
/// </summary>
internal static class StandardInput
{
    public const string Name = "-";

    /// <summary>
    /// Far more than a photo (an 89-megapixel JPEG is tens of MB), and held once while it arrives (twice only for the
    /// final copy), so that an endless stream costs a bounded 256 MiB; a larger image can still be read as a file.
    /// </summary>
    private const int MaxBytes = 256 << 20;

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

    private const int PieceBytes = 1 << 20;

    /// <summary>Enough of the start to tell PNG (8 bytes of magic), JPEG (3) and .npy (6).</summary>
    private const int HeadBytes = 8;

    private static bool Readable(ReadOnlySpan<byte> head) => ImageDecoder.Format(head) != null || FileHead.IsNpy(head);

    private static byte[] Read()
    {
        if (!Redirected) throw new InputException($"{Name}: standard input is a terminal; pipe an image or .npy tensor into it");
        try
        {
            using var stdin = Console.OpenStandardInput();
            // In pieces, copied once at the end: a growing array would hold its old and new copies at once.
            var pieces = new List<byte[]>();
            var piece = new byte[PieceBytes];
            int filled = 0;
            long total = 0;
            int n;
            while ((n = stdin.Read(piece.AsSpan(filled))) > 0)
            {
                total += n;
                if (total > MaxBytes) throw new InputException($"{Name}: more than {MaxBytes >> 20} MiB on standard input; pass an image this large as a file");
                bool headNow = total - n < HeadBytes && total >= HeadBytes;
                filled += n;
                // Bytes that start like nothing readable are refused by their reader from these alone: the rest of an
                // endless or huge stream (`yes | resnet18 -`) is not read first.
                if (headNow && !Readable((pieces.Count > 0 ? pieces[0] : piece).AsSpan(0, HeadBytes))) break;
                if (filled == piece.Length)
                {
                    pieces.Add(piece);
                    piece = new byte[PieceBytes];
                    filled = 0;
                }
            }
            var bytes = new byte[total];
            int at = 0;
            foreach (var p in pieces)
            {
                p.CopyTo(bytes, at);
                at += p.Length;
            }
            piece.AsSpan(0, filled).CopyTo(bytes.AsSpan(at));
            return bytes;
        }
        catch (IOException e)
        {
            throw new InputException($"{Name}: cannot read standard input ({e.Message})");
        }
    }
}
