using System.Runtime.InteropServices;
using ResNet.Runtime;

namespace ResNet.Native;

/// <summary>
/// The embedded x86-64-v3 build, kept as an executable file in the cache directory so that later runs on
/// AVX2-only CPUs start it straight away instead of copying its 10 MB into a memfd first (~6 ms a run). This is what
/// .NET's own single-file host does with the native libraries it bundles ($HOME/.net). The file is named by the
/// SHA-256 of the image (computed when resnet18 is published), created mode 0500 under a temporary name and
/// renamed into place once complete and synced; IsaGate.c execs it through the descriptor it checked: a directory
/// or file that another user owns or can write is not used, and a symlink is never followed.
/// </summary>
internal static unsafe partial class ExtractedImage
{
    /// <summary>The cached file's name before its id; IsaGate.c opens the same name.</summary>
    public const string Prefix = "resnet18-avx2-";

    /// <summary>A descriptor of the cached image ready for fexecve, extracting it first if needed; -1 if the cache cannot be used.</summary>
    public static int Open(string directory, string id, ReadOnlySpan<byte> image)
    {
        string name = $"{Prefix}{id}";
        int dir = OpenTrustedDirectory(directory);
        if (dir < 0) return -1;
        try
        {
            int fd = OpenTrustedFile(dir, name, image.Length);
            if (fd >= 0) return fd;
            if (!Extract(dir, name, image)) return -1;
            RemoveStaleVersions(directory, name);
            return OpenTrustedFile(dir, name, image.Length);
        }
        finally
        {
            Close(dir);
        }
    }

    private static int OpenTrustedDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux()) return -1;
        try
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return -1;
        }
        int dir = OpenAt(AtFdcwd, directory, ORdonly | ODirectory | ONofollow | OCloexec, 0);
        if (dir < 0) return -1;
        if (!Trusted(dir, DirectoryType, -1))
        {
            Close(dir);
            return -1;
        }
        return dir;
    }

    private static int OpenTrustedFile(int dir, string name, long size)
    {
        int fd = OpenAt(dir, name, ORdonly | ONofollow | OCloexec, 0);
        if (fd < 0) return -1;
        if (Trusted(fd, RegularType, size)) return fd;
        Close(fd);
        return -1;
    }

    /// <summary>Ours (owner is this user), of the expected type (and size), and writable by nobody else.</summary>
    private static bool Trusted(int fd, uint type, long size)
    {
        KernelStat st;
        if (Syscall(SysFstat, fd, &st) != 0) return false;
        return (st.Mode & TypeMask) == type && st.Uid == GetUid() && (st.Mode & GroupOrOtherWrite) == 0 && (size < 0 || st.Size == size);
    }

    private static bool Extract(int dir, string name, ReadOnlySpan<byte> image)
    {
        string temp = $".{name}.{Environment.ProcessId}.tmp";
        int fd = OpenAt(dir, temp, OWronly | OCreat | OExcl | OCloexec, OwnerReadExecute);
        if (fd < 0) return false;
        bool ok;
        fixed (byte* p = image) ok = WriteAll(fd, p, image.Length) && Fsync(fd) == 0;
        ok &= Close(fd) == 0;
        if (ok && RenameAt(dir, temp, dir, name) == 0) return true;
        UnlinkAt(dir, temp, 0);
        return false;
    }

    /// <summary>
    /// An upgrade leaves the previous version's image behind: remove images nobody has run for a week (exec
    /// refreshes the access time at least daily under relatime; a running process keeps its copy), and beyond the
    /// <see cref="KeptVersions"/> most recently run, however recent (a day of rebuilding the project left 260 here,
    /// 5 GB). Removing every other version at once would make two installed versions, used in turn, extract on
    /// every run. Earlier builds kept the x86-64-v4 build there instead (resnet18-avx512-*): those go the same way.
    /// </summary>
    private static void RemoveStaleVersions(string directory, string keep)
    {
        try
        {
            var exact = new EnumerationOptions { MatchCasing = MatchCasing.CaseSensitive }; // not the ResNet18-avx512-*.packed weights
            var stale = DateTime.UtcNow - TimeSpan.FromDays(7);
            var others = Directory.EnumerateFiles(directory, "resnet18-avx*-*", exact)
                .Where(f => Path.GetFileName(f) != keep)
                .Select(f => (File: f, Run: File.GetLastAccessTimeUtc(f)))
                .OrderByDescending(f => f.Run)
                .ToList();
            for (int i = 0; i < others.Count; i++)
                if (i >= KeptVersions || others[i].Run < stale) File.Delete(others[i].File);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Stale images only cost disk space.
        }
        // Extract's ".name.PID.tmp" of a run killed while it wrote (~10 MB, for ever otherwise).
        AbandonedFiles.Remove(directory, $".{Prefix}*.*.tmp",
            AbandonedFiles.PidBeforeExtension, DateTime.UtcNow, TimeSpan.FromHours(1));
    }

    /// <summary>Other versions' images kept beside the current one (if run within the week): installed versions used in turn.</summary>
    internal const int KeptVersions = 4;

    /// <summary>A descriptor for fexecve of the program at <paramref name="path"/>; -1 if it cannot be opened.</summary>
    public static int OpenExecutable(string path) => OpenAt(AtFdcwd, path, ORdonly | OCloexec, 0);

    private static bool WriteAll(int fd, byte* p, long bytes)
    {
        for (long done = 0; done < bytes;)
        {
            nint w = Write(fd, p + done, (nint)Math.Min(bytes - done, 1 << 30));
            if (w <= 0) return false;
            done += w;
        }
        return true;
    }

    /// <summary>The image's identity as IsaGate.c passes it on (16 hex digits of its SHA-256), or null if it is not one.</summary>
    public static string? Id(string? marker) =>
        marker is { Length: 16 } && marker.All(char.IsAsciiHexDigit) ? marker.ToLowerInvariant() : null;

    /// <summary>struct stat as the x86-64 Linux kernel fills it (fstat, syscall 5); only the fields read here are named.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 144)]
    private struct KernelStat
    {
        [FieldOffset(24)] public uint Mode;
        [FieldOffset(28)] public uint Uid;
        [FieldOffset(48)] public long Size;
    }

    private const uint TypeMask = 0xF000, RegularType = 0x8000, DirectoryType = 0x4000, GroupOrOtherWrite = 0x12 /* 0022 */, OwnerReadExecute = 0x140 /* 0500 */;
    private const int AtFdcwd = -100, SysFstat = 5;
    private const int ORdonly = 0, OWronly = 1, OCreat = 0x40, OExcl = 0x80, ODirectory = 0x10000, ONofollow = 0x20000, OCloexec = 0x80000;

    [LibraryImport(Libc.Name, EntryPoint = "openat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAt(int dir, string path, int flags, uint mode);

    [LibraryImport(Libc.Name, EntryPoint = "renameat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt(int fromDir, string from, int toDir, string to);

    [LibraryImport(Libc.Name, EntryPoint = "unlinkat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkAt(int dir, string path, int flags);

    [LibraryImport(Libc.Name, EntryPoint = "syscall")]
    private static partial long Syscall(long number, int fd, KernelStat* st);

    [LibraryImport(Libc.Name, EntryPoint = "getuid")]
    private static partial uint GetUid();

    [LibraryImport(Libc.Name, EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport(Libc.Name, EntryPoint = "write")]
    private static partial nint Write(int fd, byte* buffer, nint count);

    [LibraryImport(Libc.Name, EntryPoint = "close")]
    public static partial int Close(int fd);
}
