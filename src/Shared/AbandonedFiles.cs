namespace ResNet.Runtime;

/// <summary>
/// Temporary files of writers killed mid-write (Ctrl-C, a timeout's SIGTERM: no finally block runs), which nothing
/// else would ever remove: the packed cache's copies (~97 MB), the weights' downloads (~46 MB) and the command's
/// extracted x86-64-v3 build (~10 MB). Each such name carries its writer's process id. Compiled into the runtime and
/// the command, as <c>FileFailures</c> is.
/// </summary>
internal static class AbandonedFiles
{
    /// <summary>The process id in a name "….PID.tmp", as the packed cache and the extracted build name their temporary files.</summary>
    public static string PidBeforeExtension(string name) => Path.GetExtension(Path.GetFileNameWithoutExtension(name)).TrimStart('.');

    /// <summary>
    /// Removes the files in <paramref name="directory"/> matching <paramref name="pattern"/> whose writer, the process
    /// <paramref name="writer"/> reads from the name (null: not named as ours, left), is gone (Linux), or that were
    /// last written <paramref name="abandoned"/> before <paramref name="now"/>, whatever process has that number now.
    /// One that cannot be removed is left for the next time.
    /// </summary>
    public static void Remove(string directory, string pattern, Func<string, string?> writer, DateTime now, TimeSpan abandoned)
    {
        try
        {
            foreach (var f in new DirectoryInfo(directory).EnumerateFiles(pattern))
            {
                if (writer(f.Name) is not { Length: > 0 } pid || !pid.All(char.IsAsciiDigit)) continue;
                bool gone = OperatingSystem.IsLinux() && !Directory.Exists($"/proc/{pid}");
                if (!gone && f.LastWriteTimeUtc >= now - abandoned) continue;
                try { f.Delete(); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // An unlistable directory: its writes fail too, and say so.
        }
    }
}
