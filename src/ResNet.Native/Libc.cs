namespace ResNet.Native;

/// <summary>The C library the launcher's P/Invokes bind to.</summary>
internal static class Libc
{
    /// <summary>
    /// glibc's exact soname: a plain "libc" sends the runtime probing ~170 names and paths ("libc.so", a linker
    /// script it then rejects, "liblibc.so" down every search directory, ...) before the process can exec the
    /// AVX-512 image; by soname, dlopen finds the already loaded library at once (`--version` 5.94 → 5.44 ms median,
    /// 24 alternations; a one-image run did not move beyond this host's noise). The library (ResNet.Runtime) keeps
    /// "libc": programs embedding it may run on a C library with another soname (musl's).
    /// </summary>
    public const string Name = "libc.so.6";
}
