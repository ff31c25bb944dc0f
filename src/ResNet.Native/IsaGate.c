/*
 * `resnet18` is the x86-64-v4 (AVX-512) build, and NativeAOT's start-up check stops such a build on a CPU
 * without AVX-512 before any C# runs. This ELF constructor runs earlier (after the dynamic loader, before main):
 * when that build cannot or should not run, it execs the x86-64-v3 (AVX2) build of the same program, which is
 * linked into this binary below. On an AVX-512 CPU it returns at once and nothing else happens; the v3 build
 * used to be the outer program and exec'd this one, which cost a runtime start (~3 ms of a ~20 ms run) and then,
 * from a constructor like this one, the loader's relocation of that larger binary (~1.4 ms).
 *
 * The v3 build runs from the cache directory once extracted there ($XDG_CACHE_HOME/resnet18 or
 * ~/.cache/resnet18, named by its SHA-256), used only if the directory and file are the user's own and nobody
 * else can write them, never through a symlink. Otherwise (the first run, --no-cache, an untrusted directory)
 * it runs from a copy in memory (memfd) and, unless --no-cache, writes itself into the cache for the next run
 * with ExtractedImage (C#, temporary name, fsync, rename): the extraction's rules live there, the checks here
 * are ExtractedImage.Trusted's; keep them in step.
 *
 * It runs the v3 build when: the CPU or kernel lacks AVX-512; RESNET18_ISA is avx2 or portable; or
 * RESNET18_DOWNLOAD=avx2-build, set by this program when the weights must be downloaded (the v4 build carries no
 * HTTPS stack; the v3 build downloads and execs this binary again with RESNET18_DOWNLOAD=done).
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(RESNET18_AVX2_ID) || !defined(RESNET18_AVX2_SIZE) || !defined(RESNET18_AVX2_PATH)
#error "RESNET18_AVX2_ID, _SIZE and _PATH (the v3 build's id, size in bytes and file) are set by the build"
#endif

/* The v3 build's executable, as bytes of this one (read-only data, paged in only when used). */
__asm__(".section .rodata.resnet18_avx2,\"a\",@progbits\n"
        ".balign 4096\n"
        "resnet18_avx2_image:\n"
        ".incbin \"" RESNET18_AVX2_PATH "\"\n"
        ".previous\n");
extern const unsigned char resnet18_avx2_image[] __asm__("resnet18_avx2_image");

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
    else return 0; /* .NET would ask the password database; the copy in memory does without */
    return n > 0 && (size_t)n < size;
}

static int cached_image(void)
{
    char directory[PATH_MAX];
    if (!cache_directory(directory, sizeof directory)) return -1;
    int dir = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) return -1;
    int image = -1;
    if (trusted(dir, S_IFDIR, -1))
    {
        image = openat(dir, "resnet18-avx2-" RESNET18_AVX2_ID, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (image >= 0 && !trusted(image, S_IFREG, RESNET18_AVX2_SIZE))
        {
            close(image);
            image = -1;
        }
    }
    close(dir);
    return image;
}

static int copy_in_memory(void)
{
    int fd = memfd_create("resnet18-avx2", MFD_CLOEXEC);
    if (fd < 0) return -1;
    for (long long done = 0; done < RESNET18_AVX2_SIZE;)
    {
        ssize_t w = write(fd, resnet18_avx2_image + done, (size_t)(RESNET18_AVX2_SIZE - done));
        if (w <= 0)
        {
            close(fd);
            return -1;
        }
        done += w;
    }
    return fd;
}

static int wants_avx2_build(void)
{
    const char *isa = getenv("RESNET18_ISA"), *download = getenv("RESNET18_DOWNLOAD");
    if (isa && (strcasecmp(isa, "avx2") == 0 || strcasecmp(isa, "portable") == 0)) return 1;
    if (download && strcmp(download, "avx2-build") == 0) return 1;
    return !cpu_has_avx512();
}

/* Priority 101: before the runtime's own C++ static constructors, which would be wasted work before an exec. */
__attribute__((constructor(101))) static void resnet18_isa_gate(int argc, char **argv, char **envp)
{
    (void)envp;
    if (!wants_avx2_build()) return;
    int no_cache = 0;
    for (int i = 1; i < argc; i++) no_cache |= strcmp(argv[i], "--no-cache") == 0;
    char self[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length > 0)
    {
        self[length] = 0;
        int image = no_cache ? -1 : cached_image();
        int in_memory = image < 0;
        if (in_memory) image = copy_in_memory();
        /* RESNET18_LAUNCHED_FROM: this binary, for --version and the exec back after a download;
           RESNET18_EXTRACT: the id under which the copy in memory writes itself into the cache. */
        if (image >= 0 && setenv("RESNET18_LAUNCHED_FROM", self, 1) == 0
            && (!in_memory || no_cache || setenv("RESNET18_EXTRACT", RESNET18_AVX2_ID, 1) == 0))
            fexecve(image, argv, environ);
        unsetenv("RESNET18_LAUNCHED_FROM");
        unsetenv("RESNET18_EXTRACT");
        if (image >= 0) close(image);
    }
    if (cpu_has_avx512()) return; /* asked for AVX2: this build runs AVX2 kernels too */
    fprintf(stderr, "resnet18: this CPU has no AVX-512 and the x86-64-v3 build inside %s could not be started\n",
            length > 0 ? self : "this binary");
    _exit(1);
}
