namespace ResNet.Native;

/// <summary>A file's first bytes, to tell its format before its reader runs (the reader reports any error itself).</summary>
internal static class FileHead
{
    /// <summary>Fills <paramref name="head"/> from the start of <paramref name="file"/>; the bytes read, 0 if it cannot be read.</summary>
    public static int Read(string file, Span<byte> head)
    {
        try
        {
            using var f = File.OpenRead(file);
            return f.Read(head);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>Whether <paramref name="head"/> starts like a NumPy .npy file.</summary>
    public static bool IsNpy(ReadOnlySpan<byte> head) => head.Length >= 6 && head[0] == 0x93 && head[1..6].SequenceEqual("NUMPY"u8);
}
