/*
 * Faults in, with one system call, the pages NativeAOT's start-up is about to write page by page: the zero-filled
 * end of this executable's writable segment, where ILC's dehydrated runtime data (type descriptors, dispatch maps,
 * ~660 KB) is expanded at every start (".hydrated", after .bss). Expanded page by page that is ~160 faults, each
 * a trap into the kernel: ~1 µs on most machines, ~12 µs on a VM that runs with page-table isolation and traps its
 * faults (measured here, session 19), where MADV_POPULATE_WRITE maps pages at ~0.7 µs each.
 *
 * The data is dehydrated (ILC's default) rather than stored expanded because expanded it is pointers the dynamic
 * loader must relocate (~30,600 of them in a position-independent executable), and the loader writes those pages
 * before any code of ours can run: expanded after our constructors run, the same pages can be populated first.
 *
 * Linked into both instruction-set builds. Runs after IsaGate.c's constructor (101), so a build about to exec
 * the other one does not populate first. Failure (kernels before 5.14) changes nothing: the pages fault as before.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

__attribute__((constructor(102))) static void resnet18_start_pages(void)
{
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
        if (end > start) madvise((void *)start, end - start, MADV_POPULATE_WRITE);
    }
}
