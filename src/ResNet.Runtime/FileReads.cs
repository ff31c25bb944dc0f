using Microsoft.Win32.SafeHandles;

namespace ResNet.Runtime;

/// <summary>Positional reads of a whole range, past the short reads a single call may return.</summary>
internal static unsafe class FileReads
{
    /// <summary>
    /// Reads <paramref name="bytes"/> bytes at <paramref name="offset"/> into <paramref name="p"/>; false if the file
    /// ends first.
    /// </summary>
    public static bool ReadExactly(SafeFileHandle handle, byte* p, long bytes, long offset)
    {
        while (bytes > 0)
        {
            int chunk = (int)Math.Min(bytes, 1 << 30);
            int n = RandomAccess.Read(handle, new Span<byte>(p, chunk), offset);
            if (n <= 0) return false;
            p += n;
            bytes -= n;
            offset += n;
        }
        return true;
    }

    /// <inheritdoc cref="ReadExactly(SafeFileHandle, byte*, long, long)"/>
    public static bool ReadExactly(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer) return ReadExactly(handle, p, buffer.Length, offset);
    }
}
