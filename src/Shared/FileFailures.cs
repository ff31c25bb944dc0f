namespace ResNet.Runtime;

/// <summary>
/// The reason, in the words every one-line error uses, why a file named on the command line cannot be read: the
/// images, input tensors and weights the library reads and the labels file the command reads. Compiled into both,
/// as the runtime's internals are not the command's to call.
/// </summary>
internal static class FileFailures
{
    /// <summary>
    /// Why <paramref name="path"/> is not worth opening (a directory, no file, more than <paramref name="maxBytes"/>
    /// bytes for <paramref name="what"/>), or null. Opening a directory fails as access denied, which would name
    /// the wrong reason, so it is asked first.
    /// </summary>
    public static string? BeforeOpening(string path, long maxBytes = long.MaxValue, string what = "")
    {
        if (Directory.Exists(path)) return "is a directory";
        var info = new FileInfo(path);
        if (!info.Exists) return NoSuchFile(path);
        // A link whose target is gone "exists" (.NET falls back to the link itself), and opening it would say only
        // "no such file" of a name the user can see in a listing; a link's Length is its own, not its file's.
        if (info.LinkTarget is { } target)
        {
            if (TargetIsGone(info)) return $"is a broken symbolic link to '{target}'";
            if (FinalTarget(info) is { Exists: true } file) info = file; // the size is the file's, not the link's
        }
        return info.Length > maxBytes ? $"{info.Length} bytes is too large for {what} (at most {maxBytes})" : null;
    }

    /// <summary>
    /// "no such file", but for a name .NET could not have opened: a file name is bytes, .NET decodes it as UTF-8 (in
    /// the command line and in a directory's listing alike) with U+FFFD for what is not, and cannot encode that back.
    /// </summary>
    private static string NoSuchFile(string path) => path.Contains('\uFFFD')
        ? "no such file by this name: it is not valid UTF-8 (shown with U+FFFD), which this program cannot open by name; rename the file"
        : "no such file";

    /// <summary>
    /// Whether following the links from <paramref name="link"/> ends at nothing. The system is asked first, not only
    /// the links' text: /dev/fd/63 (a shell's <c>&lt;(…)</c>) links to "pipe:[…]", no such name, yet it opens. .NET
    /// reports a loop as not found too, so the links are then followed by their text, which tells a loop (left to
    /// opening, which names it) from a missing end.
    /// </summary>
    private static bool TargetIsGone(FileInfo link)
    {
        try
        {
            if (!OperatingSystem.IsWindows())
            {
                File.GetUnixFileMode(link.FullName); // stat(2), which follows the links
                return false;
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        return FinalTarget(link) is { Exists: false };
    }

    /// <summary>The file at the end of <paramref name="link"/>'s links, or null for a loop (opening it says so).</summary>
    internal static FileInfo? FinalTarget(FileInfo link)
    {
        try { return link.ResolveLinkTarget(returnFinalTarget: true) as FileInfo; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// The reason for an exception from opening or reading a file, or null when it is not the file system's (so an
    /// exception filter lets it pass). A file removed after <see cref="BeforeOpening"/> is still "no such file".
    /// </summary>
    public static string? Of(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "no such file",
        UnauthorizedAccessException => "permission denied",
        IOException io => $"cannot read ({io.Message.ReplaceLineEndings(" ")})",
        _ => null,
    };
}
