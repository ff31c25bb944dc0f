namespace ResNet.Native;

/// <summary>
/// Where results go. A write that fails (standard output closed, a full disk) ends the command with one line on
/// standard error and exit code 1, not a runtime abort with a stack trace (<see cref="Failed"/>, caught in Main).
/// A reader that has gone (`| head -1`) is not a failure: .NET ignores EPIPE on the console, as a shell pipeline expects.
/// </summary>
internal static class StandardOutput
{
    public static void WriteLine(string line) => Write(line + "\n");

    public static void Write(string text)
    {
        try
        {
            Console.Out.Write(text);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Failed(e);
        }
    }

    /// <summary>A write to standard output failed; <see cref="Reason"/> is the system's word for why.</summary>
    public sealed class Failed(Exception inner) : Exception("cannot write to standard output", inner)
    {
        /// <summary>The innermost message: .NET wraps EBADF ("Bad file descriptor") in an access-denied exception.</summary>
        public string Reason => (InnerException!.InnerException ?? InnerException).Message;
    }
}
