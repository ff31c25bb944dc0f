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
        // "no such file" of a name the user can see in a listing.
        if (info.LinkTarget is { } target && FinalTarget(info) is { Exists: false }) return $"is a broken symbolic link to '{target}'";
        return info.Length > maxBytes ? $"{info.Length} bytes is too large for {what} (at most {maxBytes})" : null;
    }

    /// <summary>
    /// "no such file", but for a name .NET could not have opened: a file name is bytes, .NET decodes it as UTF-8 (in
    /// the command line and in a directory's listing alike) with U+FFFD for what is not, and cannot encode that back.
    /// </summary>
    private static string NoSuchFile(string path) => path.Contains('\uFFFD')
        ? "no such file by this name: it is not valid UTF-8 (shown with U+FFFD), which this program cannot open by name; rename the file"
        : "no such file";

    /// <summary>Where a chain of links ends, or null when it cannot be followed (a loop: opening the file says so).</summary>
    private static FileSystemInfo? FinalTarget(FileInfo link)
    {
        try { return link.ResolveLinkTarget(returnFinalTarget: true); }
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
