using System.Runtime.InteropServices;
using ResNet.Runtime;
using ResNet.Runtime.Images;

namespace ResNet.Native;

/// <summary>
/// Inputs that are streams, not regular files: "-" (standard input) and paths to a named pipe, a shell's `&lt;(…)`,
/// `/dev/stdin` on a pipe, a character device. Such an input can be read only once, so it is read whole the first time
/// it is needed and kept: telling its format and then decoding it from the file would open it twice (a pipe then loses
/// its first bytes, a named pipe waits for a second writer forever), and every mention of it is the same image.
/// </summary>
internal static partial class StreamInput
{
    /// <summary>Standard input's name on the command line (a file called "-" is "./-").</summary>
    public const string StandardInput = "-";

    /// <summary>
    /// Far more than a photo (an 89-megapixel JPEG is tens of MB), and held once while it arrives (twice only for the
    /// final copy), so that an endless stream costs a bounded 256 MiB; a larger image can still be read as a file.
    /// </summary>
    private const int MaxBytes = 256 << 20;

    private const int PieceBytes = 1 << 20;

    /// <summary>Enough of the start to tell PNG (8 bytes of magic), JPEG (3), BMP (2), GIF (6), Netpbm (3), TIFF (4) and .npy (6).</summary>
    private const int HeadBytes = 8;

    /// <summary>Each stream's bytes, or the reason it has none (Lazy keeps a factory's exception too), by name.</summary>
    private static readonly Dictionary<string, Lazy<byte[]>> Kept = [];

    /// <summary>
    /// Whether <paramref name="input"/> is read through this class: "-", or a path that is neither a regular file nor
    /// a directory (a stat; nothing is opened).
    /// </summary>
    public static unsafe bool Is(string input)
    {
        if (input == StandardInput) return true;
        // struct stat as the x86-64 ABI lays it out (the command is built for linux-x64 only): st_mode at byte 24.
        byte* status = stackalloc byte[256];
        if (Stat(input, status) != 0) return false; // missing or unreadable: its reader says so
        uint type = *(uint*)(status + 24) & 0xF000;
        return type is not (0x8000 or 0x4000); // S_IFREG, S_IFDIR
    }

    [LibraryImport(Libc.Name, EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Stat(string path, byte* status);

    /// <summary>Whether standard input has something to read: not a terminal, where reading would wait for typing.</summary>
    public static bool StandardInputRedirected => Console.IsInputRedirected;

    /// <summary>
    /// Whether descriptor 0 is open for reading: a closed one was opened write-only on /dev/null before the runtime
    /// started (StandardFds.c), so that it is not some other file by the time "-" is read.
    /// </summary>
    private static bool StandardInputReadable => (Fcntl(0, FGetFl) & OAccMode) is not OWronly;

    private const int FGetFl = 3, OAccMode = 3, OWronly = 1;

    // fcntl is variadic; F_GETFL reads no third argument.
    [LibraryImport(Libc.Name, EntryPoint = "fcntl")]
    private static partial int Fcntl(int fd, int command);

    /// <summary>Everything <paramref name="input"/> held, or the reason there is nothing to decode (the same each time).</summary>
    public static byte[] Bytes(string input)
    {
        Lazy<byte[]>? bytes;
        lock (Kept)
            if (!Kept.TryGetValue(input, out bytes)) Kept[input] = bytes = new(() => ReadWhole(input));
        // Read outside the lock: one slow pipe does not hold up another input's decoding.
        return bytes.Value;
    }

    private static bool Readable(ReadOnlySpan<byte> head) => ImageDecoder.Format(head) != null || FileHead.IsNpy(head);

    private static byte[] ReadWhole(string input)
    {
        bool stdin = input == StandardInput;
        if (stdin && !StandardInputReadable) throw new InputException($"{input}: standard input is closed (or open only for writing)");
        if (stdin && !StandardInputRedirected) throw new InputException($"{input}: standard input is a terminal; pipe an image or .npy tensor into it");
        try
        {
            using var stream = stdin ? Console.OpenStandardInput() : File.OpenRead(input);
            // In pieces, copied once at the end: a growing array would hold its old and new copies at once.
            var pieces = new List<byte[]>();
            var piece = new byte[PieceBytes];
            int filled = 0;
            long total = 0;
            int n;
            while ((n = stream.Read(piece.AsSpan(filled))) > 0)
            {
                total += n;
                if (total > MaxBytes)
                    throw new InputException($"{input}: more than {MaxBytes >> 20} MiB {(stdin ? "on standard input" : "from a stream")}; pass an image this large as a regular file");
                bool headNow = total - n < HeadBytes && total >= HeadBytes;
                filled += n;
                // Bytes that start like nothing readable are refused by their reader from these alone: the rest of an
                // endless or huge stream (`yes | resnet18 -`, /dev/zero) is not read first.
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
        catch (UnauthorizedAccessException)
        {
            throw new InputException($"{input}: permission denied");
        }
        catch (IOException e)
        {
            throw new InputException($"{input}: cannot read ({e.Message})");
        }
    }
}
