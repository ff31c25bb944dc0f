/*
 * Faults in, with one system call, the pages NativeAOT's start-up is about to write page by page: the zero-filled
 * end of this executable's writable segments, where ILC's dehydrated runtime data (type descriptors, dispatch maps,
 * ~660 KB; ~1.4 MB in the x86-64-v3 build) is expanded at every start (".hydrated", after .bss). Expanded page by
 * page that is ~160 faults, each a trap into the kernel: ~1 µs on most machines, ~12 µs on a VM that runs with
 * page-table isolation and traps its faults (measured here, session 19), where MADV_POPULATE_WRITE maps pages at
 * ~0.7 µs each.
 *
 * On that VM a populated small page still costs ~5 µs at its first store from user mode (the host backs it only
 * then; session 20), so ".hydrated" is also given a huge page of its own: a one-byte piece of that section, aligned
 * to 2 MiB, raises the whole section's alignment (a section is as aligned as its most aligned piece), so the
 * linker starts it on a 2 MiB boundary, in a segment of its own whose p_align tells the kernel to load the
 * executable at a 2 MiB-aligned address (Linux 5.17 and later honour it). The section then spans a whole 2 MiB
 * block, which is advised for a huge page before being populated: one fault instead of ~160, one first store on
 * the host instead of ~160. Where the load address is not so aligned nothing is advised, and the pages are
 * populated small as before (the piece makes the zero-filled range ~2 MiB long, all of it populated then).
 *
 * The data is dehydrated (ILC's default) rather than stored expanded because expanded it is pointers the dynamic
 * loader must relocate (~30,600 of them in a position-independent executable), and the loader writes those pages
 * before any code of ours can run: expanded after our constructors run, the same pages can be populated first.
 *
 * Fresh pages for the C library's allocator too: glibc gives each thread that calls malloc an arena of its own (a
 * 64 MB reservation, whose header and first chunks are fresh pages), and the runtime's finalizer thread and the
 * network's worker each get one. With a single arena they take chunks from the main one, mostly pages already
 * touched: a one-image run 21.74 → 20.73 ms and 22.73 → 21.68 (session 21, alternating, 32 rounds each). The
 * command's threads malloc little (their memory is the GC's and the network's own mappings), so they do not
 * queue for the one arena. The library, embedded elsewhere, leaves the allocator as its host set it.
 *
 * Linked into both instruction-set builds. Runs after IsaGate.c's constructor (101), so a build about to exec
 * the other one does not populate first. Failure (kernels before 5.14) changes nothing: the pages fault as before.
 *
 * With RESNET18_TIMING=1 it also notes when it ran (CLOCK_MONOTONIC, in RESNET18_STARTED_NS) for the timing
 * report's times since the start: the runtime's Process.StartTime counts in the kernel's 10 ms clock ticks and put
 * a 20 ms run at ~40. Never overwritten, so a process that execs another build (IsaGate.c, the download's hop)
 * keeps the first one's start.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* The 2 MiB-aligned piece of ".hydrated" (one byte: an empty piece may be dropped). It lands after ILC's data,
 * so the section spans [2 MiB boundary, + 2 MiB + 1 byte). */
__asm__(".section .hydrated,\"aw\",@nobits\n.balign 2097152\nresnet18_hydrated_pad:\n.skip 1\n.previous");
extern char resnet18_hydrated_pad[];

__attribute__((constructor(102))) static void resnet18_start_pages(void)
{
    /* Referenced, so that the linker's garbage collection of unreferenced sections keeps the piece. */
    __asm__ volatile("" : : "r"(resnet18_hydrated_pad));
    struct timespec now;
    if (getenv("RESNET18_TIMING") && clock_gettime(CLOCK_MONOTONIC, &now) == 0)
    {
        char ns[24];
        snprintf(ns, sizeof ns, "%lld", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
        setenv("RESNET18_STARTED_NS", ns, 0);
    }
    mallopt(M_ARENA_MAX, 1); /* before the runtime starts any thread (see the top of the file) */
    const ElfW(Phdr) *headers = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    size_t count = getauxval(AT_PHNUM);
    long page = sysconf(_SC_PAGESIZE);
    if (!headers || count == 0 || page <= 0) return;
    /* The load bias: where PT_PHDR says the headers are against where the kernel mapped them. */
    uintptr_t bias = 0;
    for (size_t i = 0; i < count; i++)
        if (headers[i].p_type == PT_PHDR) bias = (uintptr_t)headers - headers[i].p_vaddr;
    for (size_t i = 0; i < count; i++)
    {
        const ElfW(Phdr) *h = &headers[i];
        if (h->p_type != PT_LOAD || !(h->p_flags & PF_W) || h->p_memsz <= h->p_filesz) continue;
        uintptr_t start = (bias + h->p_vaddr + h->p_filesz + page - 1) & ~(uintptr_t)(page - 1);
        uintptr_t end = (bias + h->p_vaddr + h->p_memsz + page - 1) & ~(uintptr_t)(page - 1);
        if (end <= start) continue;
        /* The 2 MiB blocks wholly inside: huge pages, each one fault on the host instead of 512. */
        const uintptr_t huge = 2u << 20;
        uintptr_t from = (start + huge - 1) & ~(huge - 1), to = end & ~(huge - 1);
        if (to > from) madvise((void *)from, to - from, MADV_HUGEPAGE);
        madvise((void *)start, end - start, MADV_POPULATE_WRITE);
    }
}
