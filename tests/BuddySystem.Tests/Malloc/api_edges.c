/* The C API's edges under libbuddymalloc.so (MallocTests). Prints one line per check; exits 1 on the first failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond, what) do { if (!(cond)) { printf("FAIL %s (line %d)\n", what, __LINE__); return 1; } printf("ok %s\n", what); } while (0)

static long rss_pages(void) {
    long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2) return -1;
    fclose(f);
    return resident;
}

static void *frees_from_other_thread(void *arg) {
    void **blocks = arg;
    for (int i = 0; i < 1000; i++) free(blocks[i]);
    return NULL;
}

static int limit_test(void) {
    /* BUDDY_MALLOC_LIMIT=64MiB: a 100 MiB request fails with ENOMEM, the program goes on. */
    errno = 0;
    void *big = malloc(100u << 20);
    CHECK(big == NULL && errno == ENOMEM, "malloc past the limit: NULL + ENOMEM");
    void *small = malloc(1000);
    CHECK(small != NULL, "the program goes on after ENOMEM");
    free(small);
    return 0;
}

int main(int argc, char **argv) {
    /* "--after-start": one large block first, so the runtime starts and the small blocks below come from the loader's
     * caches; without it they come from the loader's start-up arena (until printf's buffer starts the runtime). */
    if (argc > 2 && strcmp(argv[2], "--after-start") == 0) {
        void *volatile large = malloc(1u << 20);   /* volatile: the compiler may not drop the pair */
        free(large);
    }
    if (argc > 1 && strcmp(argv[1], "write-after-free-early") == 0) {
        /* Before the runtime starts (no printf: its buffer would start it): the start-up arena's reuse list. */
        void **p = malloc(64);
        char line[64];
        int n = snprintf(line, sizeof line, "%p\n", (void *)p);
        if (write(1, line, (size_t)n) < 0) return 2;
        free(p);
        *p = (void *)0x10;
        void *q = malloc(64), *r = malloc(64);
        n = snprintf(line, sizeof line, "%p %p\n", q, r);
        return write(1, line, (size_t)n) < 0 ? 2 : 0;
    }
    if (argc > 1 && strcmp(argv[1], "double-free") == 0) {
        void *p = malloc(64);
        printf("%p\n", p);
        fflush(stdout);
        free(p);
        free(p);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "limit") == 0) return limit_test();
    /* Misuse of small blocks, which the loader's per-thread caches serve: each prints the address concerned, then errs. */
    if (argc > 1 && strcmp(argv[1], "double-free-deep") == 0) {
        /* The block is under others on the cache's stack. */
        void *p = malloc(48), *q = malloc(48), *r = malloc(48);
        printf("%p\n", p);
        fflush(stdout);
        free(p); free(q); free(r);
        free(p);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "double-free-many") == 0) {
        /* 400 frees of the order between the two: the cache flushes to the heap on the way. */
        void *p = malloc(100), *many[400];
        for (int i = 0; i < 400; i++) many[i] = malloc(100);
        printf("%p\n", p);
        fflush(stdout);
        free(p);
        for (int i = 0; i < 400; i++) free(many[i]);
        free(p);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "interior-free") == 0) {
        char *p = malloc(64);
        printf("%p\n", (void *)(p + 16));
        fflush(stdout);
        free(p + 16);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "realloc-freed") == 0) {
        void *p = malloc(64);
        printf("%p\n", p);
        fflush(stdout);
        free(p);
        p = realloc(p, 200);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "write-after-free") == 0) {
        /* The freed block's first word links the cache's stack: overwritten, the next malloc of the order finds it. */
        void **p = malloc(64);
        printf("%p\n", (void *)p);
        fflush(stdout);
        free(p);
        *p = (void *)0x10;
        void *q = malloc(64), *r = malloc(64);
        printf("%p %p\n", q, r);
        return 0;
    }

    void *a = malloc(0), *b = malloc(0);
    CHECK(a && b && a != b, "malloc(0) unique non-NULL");
    free(a); free(b);

    errno = 0;
    CHECK(calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM, "calloc overflow: NULL + ENOMEM");
    unsigned char *z = calloc(1000, 10);
    int zero = 1;
    for (int i = 0; i < 10000; i++) zero &= z[i] == 0;
    CHECK(zero, "calloc zeroes");
    memset(z, 0xAB, 10000); free(z);
    z = calloc(1000, 10); zero = 1;
    for (int i = 0; i < 10000; i++) zero &= z[i] == 0;
    CHECK(zero, "calloc zeroes a reused block");
    free(z);

    void *p = (void *)1;
    CHECK(posix_memalign(&p, 24, 10) == EINVAL && p == (void *)1, "posix_memalign EINVAL for 24");
    CHECK(posix_memalign(&p, 4, 10) == EINVAL, "posix_memalign EINVAL for 4 (< sizeof(void*))");
    for (size_t align = 8; align <= (1u << 20); align <<= 1) {
        CHECK(posix_memalign(&p, align, 100) == 0 && ((uintptr_t)p & (align - 1)) == 0, "posix_memalign alignment");
        free(p);
    }
    p = aligned_alloc(4096, 5000);
    CHECK(p && ((uintptr_t)p & 4095) == 0, "aligned_alloc(4096)");
    free(p);
    p = memalign(64, 1);
    CHECK(p && ((uintptr_t)p & 63) == 0, "memalign(64)");
    free(p);
    p = valloc(10);
    CHECK(p && ((uintptr_t)p & 4095) == 0, "valloc page-aligned");
    free(p);
    p = pvalloc(5000);
    CHECK(p && ((uintptr_t)p & 4095) == 0 && malloc_usable_size(p) >= 8192, "pvalloc rounds to pages");
    free(p);

    char *r = malloc(10);
    strcpy(r, "abcdefghi");
    for (size_t n = 16; n <= (4u << 20); n *= 2) {
        r = realloc(r, n);
        CHECK(r && strcmp(r, "abcdefghi") == 0, "realloc growth keeps contents");
    }
    r = realloc(r, 5);
    CHECK(r && memcmp(r, "abcde", 5) == 0, "realloc shrink keeps contents");

    /* Between the size classes (the loader's own realloc): the bytes up to the smaller size stay; a size the object
     * still holds and uses more than half of keeps the object (not in hardened mode, whose usable size is the request). */
    int hardened = getenv("BUDDY_MALLOC_HARDEN") && strcmp(getenv("BUDDY_MALLOC_HARDEN"), "1") == 0;
    unsigned char *o = malloc(100);
    size_t have = 100;
    for (size_t i = 0; i < have; i++) o[i] = (unsigned char)(i * 7);
    size_t steps[] = {112, 60, 700, 8000, 7900, 3000, 33, 17, 4096, 8192, 1, 48};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        size_t n = steps[k], usable = malloc_usable_size(o);
        unsigned char *before = o;
        o = realloc(o, n);
        CHECK(o != NULL, "realloc between classes gives a block");
        int kept = 1;
        for (size_t i = 0; i < (have < n ? have : n); i++) kept &= o[i] == (unsigned char)(i * 7);
        CHECK(kept, "realloc between classes keeps the bytes");
        CHECK(hardened || !(n <= usable && n > usable / 2) || o == before, "realloc within the object keeps it");
        for (size_t i = 0; i < n; i++) o[i] = (unsigned char)(i * 7);
        have = n;
    }
    free(o);
    CHECK(realloc(r, 0) == NULL, "realloc(p, 0) frees, returns NULL");
    r = realloc(NULL, 40);
    CHECK(r != NULL, "realloc(NULL, n) allocates");
    errno = 0;
    CHECK(reallocarray(r, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM, "reallocarray overflow: NULL + ENOMEM, block kept");
    free(r);

    for (size_t n = 1; n < 100000; n = n * 3 + 1) {
        void *q = malloc(n);
        CHECK(malloc_usable_size(q) >= n, "malloc_usable_size >= request");
        memset(q, 1, malloc_usable_size(q));
        free(q);
    }
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) == 0");

    void *blocks[1000];
    for (int i = 0; i < 1000; i++) { blocks[i] = malloc(16 + i); memset(blocks[i], i, 16 + i); }
    pthread_t t;
    pthread_create(&t, NULL, frees_from_other_thread, blocks);
    pthread_join(t, NULL);
    CHECK(1, "frees from another thread");

    long before = rss_pages();
    size_t large = 256u << 20;
    char *huge = malloc(large);
    memset(huge, 7, large);
    long touched = rss_pages();
    free(huge);
    long after = rss_pages();
    printf("rss pages before %ld touched %ld after %ld\n", before, touched, after);
    CHECK(touched - before > 50000 && touched - after > 50000, "RSS falls after a large free");
    return 0;
}
