/*
 * The launcher's fast path, linked into the x86-64-v3 build only (ResNet.Native.csproj). An ELF constructor runs
 * after the dynamic loader and before main, so before the launcher's .NET runtime starts: on a CPU with AVX-512,
 * with the x86-64-v4 image already extracted in the cache directory, it execs that image at once. Going through
 * the launcher's runtime first cost ~3 ms of a ~20 ms one-image run; this hop costs ~1.3 (mostly the loader
 * relocating the launcher, which no constructor precedes).
 *
 * It decides nothing new: whenever anything differs from the plain case (no cached image yet, --no-cache, a
 * RESNET18_ISA request, a directory or file that fails the checks, a download the image asked the launcher to
 * do) it returns, and IsaLauncher (C#) does what it always did: extract, copy into memory, download, or carry on
 * with AVX2. The rules below are IsaLauncher.WillHandOver's and ExtractedImage's, which the C# side keeps for
 * those cases; keep them in step.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef RESNET18_AVX512_ID
#error "RESNET18_AVX512_ID (the image's id, as IsaLauncher reads it from its .sha256 resource) is set by the build"
#endif
#ifndef RESNET18_AVX512_SIZE
#error "RESNET18_AVX512_SIZE (the image's size in bytes) is set by the build"
#endif

extern char **environ;

/* AVX-512 F/DQ/CD/BW/VL (x86-64-v4) in CPUID, and their register state enabled by the kernel in XCR0. */
static int cpu_has_avx512(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; /* OSXSAVE: XGETBV is usable */
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned needed = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);
    if ((b & needed) != needed) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xE6) == 0xE6; /* SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM */
}

/* Ours, of the expected type (and size, when given), writable by nobody else: ExtractedImage.Trusted. */
static int trusted(int fd, mode_t type, long long size)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    return (st.st_mode & S_IFMT) == type && st.st_uid == getuid() && (st.st_mode & 022) == 0
        && (size < 0 || (long long)st.st_size == size);
}

/* WeightsResolver.PackedCacheDirectory: $XDG_CACHE_HOME/resnet18 if absolute, else $HOME/.cache/resnet18. */
static int cache_directory(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/') n = snprintf(out, size, "%s/resnet18", xdg);
    else if (home && home[0] == '/') n = snprintf(out, size, "%s/.cache/resnet18", home);
    else return 0; /* .NET would ask the password database: leave that case to the launcher */
    return n > 0 && (size_t)n < size;
}

static int wants_launcher(int argc, char **argv)
{
    if (getenv("RESNET18_LAUNCHED_FROM") || getenv("RESNET18_DOWNLOAD_IN_LAUNCHER")) return 1;
    const char *isa = getenv("RESNET18_ISA");
    if (isa && (strcasecmp(isa, "avx2") == 0 || strcasecmp(isa, "portable") == 0)) return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--no-cache") == 0) return 1; /* the image then runs from a copy in memory */
    return 0;
}

/* Priority 101: before the runtime's own C++ static constructors, which would be wasted work before an exec. */
__attribute__((constructor(101))) static void resnet18_early_hand_over(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc < 1 || wants_launcher(argc, argv) || !cpu_has_avx512()) return;
    char directory[PATH_MAX], self[PATH_MAX];
    if (!cache_directory(directory, sizeof directory)) return;
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length <= 0) return;
    self[length] = 0;
    int dir = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) return;
    int image = -1;
    if (trusted(dir, S_IFDIR, -1))
    {
        image = openat(dir, "resnet18-avx512-" RESNET18_AVX512_ID, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (image >= 0 && !trusted(image, S_IFREG, RESNET18_AVX512_SIZE))
        {
            close(image);
            image = -1;
        }
    }
    close(dir);
    if (image < 0) return;
    if (setenv("RESNET18_LAUNCHED_FROM", self, 1) == 0 && setenv("RESNET18_LAUNCHED_EARLY", "1", 1) == 0)
        fexecve(image, argv, environ);
    /* fexecve returned: it failed (a noexec mount, say); the launcher tries again its own way */
    unsetenv("RESNET18_LAUNCHED_FROM");
    unsetenv("RESNET18_LAUNCHED_EARLY");
    close(image);
}
