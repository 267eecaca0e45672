/* The per-call cost of libbuddymalloc.so, piece by piece (docs/benchmarks.md, issue 17):
 *   cost MODE [PAIRS]     MODE: malloc   malloc(16)/free pairs through whatever malloc is linked or preloaded
 *                               glibc    __libc_malloc/__libc_free (glibc's own, under any preload)
 *                               export   an empty NativeAOT export (bm_probe: one C-to-managed transition)
 *                               entry    bm_malloc/bm_free: the managed heap without the loader's guards
 * Prints ns per pair (per call for export). Run under LD_PRELOAD=artifacts/malloc/libbuddymalloc.so for export/entry. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "malloc";
    long pairs = argc > 2 ? atol(argv[2]) : 10000000;
    void *(*volatile alloc)(size_t) = malloc;
    void (*volatile release)(void *) = free;
    if (!strcmp(mode, "glibc")) { alloc = __libc_malloc; release = __libc_free; }
    if (!strcmp(mode, "entry") || !strcmp(mode, "export")) {
        /* libbuddymalloc.so opens buddymalloc.so (and its bm_* exports) when the runtime starts: a large block starts it. */
        void *volatile large = malloc(1 << 20);
        free(large);
        alloc = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "bm_malloc");
        release = (void (*)(void *))dlsym(RTLD_DEFAULT, "bm_free");
        if (!alloc || !release) { fprintf(stderr, "cost: bm_* not found: preload libbuddymalloc.so\n"); return 2; }
    }
    if (!strcmp(mode, "export")) {
        long (*probe)(long) = (long (*)(long))dlsym(RTLD_DEFAULT, "bm_probe");
        if (!probe) { fprintf(stderr, "cost: bm_probe not found\n"); return 2; }
        long x = 0;
        for (long i = 0; i < pairs / 10; i++) x = probe(x);
        double start = now();
        for (long i = 0; i < pairs; i++) x = probe(x);
        double ns = (now() - start) / pairs;
        printf("%s %.1f ns/call (%ld)\n", mode, ns, x);
        return 0;
    }
    for (long i = 0; i < pairs / 10; i++) release(alloc(16));
    double start = now();
    for (long i = 0; i < pairs; i++) {
        void *p = alloc(16);
        *(volatile char *)p = 1;
        release(p);
    }
    printf("%s %.1f ns/pair\n", mode, (now() - start) / pairs);
    return 0;
}
