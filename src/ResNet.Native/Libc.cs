namespace ResNet.Native;

/// <summary>The C library the command's own P/Invokes (exec, the cached image's files) bind to.</summary>
internal static class Libc
{
    /// <summary>
    /// glibc's exact soname: a plain "libc", resolved at run time, sends the runtime probing ~170 names and paths
    /// ("libc.so", a linker script it then rejects, "liblibc.so" down every search directory, ...); the published
    /// builds bind it when linking anyway (Native.props). The library (ResNet.Runtime) keeps "libc": programs
    /// embedding it may run on a C library with another soname (musl's).
    /// </summary>
    public const string Name = "libc.so.6";
}
