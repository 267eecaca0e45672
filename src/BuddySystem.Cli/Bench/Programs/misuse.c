/* The heap-misuse battery of buddy bench --misuse (docs/benchmarks.md, issue 22): misuse CASE runs one case under whatever
 * malloc LD_PRELOAD gives it. It prints the address it misuses ("address 0x...") first, so the bench can tell whether
 * an allocator's message names it, and "survived" last if the process lived through the misuse. An alarm ends a case
 * that hangs. Every case is undefined behaviour in C: the point is which allocator notices. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void say(const char *what, const void *p) {
    char line[96];
    int n = snprintf(line, sizeof line, "%s %p\n", what, p);
    if (write(1, line, (size_t)n) < 0) _exit(3);
}

/* The compiler must not see through the misuse (it may drop a malloc/free pair or warn it away). */
static void *(*volatile do_malloc)(size_t) = malloc;
static void (*volatile do_free)(void *) = free;
static void *(*volatile do_realloc)(void *, size_t) = realloc;

static pthread_barrier_t barrier;
static void *volatile shared_block;

static void *free_at_once(void *unused) {
    (void)unused;
    pthread_barrier_wait(&barrier);
    do_free(shared_block);
    return NULL;
}

static void double_free(size_t size) {
    void *p = do_malloc(size);
    say("address", p);
    do_free(p);
    do_free(p);
}

int main(int argc, char **argv) {
    if (argc != 2) { fputs("usage: misuse CASE\n", stderr); return 2; }
    alarm(10);
    const char *c = argv[1];
    if (!strcmp(c, "double-free-32")) double_free(32);
    else if (!strcmp(c, "double-free-48-after-16")) {
        void *p = do_malloc(48), *others[16];
        for (int i = 0; i < 16; i++) others[i] = do_malloc(48);
        say("address", p);
        do_free(p);
        for (int i = 0; i < 16; i++) do_free(others[i]);
        do_free(p);
    }
    else if (!strcmp(c, "double-free-5000")) double_free(5000);
    else if (!strcmp(c, "double-free-1mib")) double_free(1 << 20);
    else if (!strcmp(c, "interior-free")) {
        char *p = do_malloc(64);
        say("address", p + 16);
        do_free(p + 16);
    }
    else if (!strcmp(c, "misaligned-free")) {
        char *p = do_malloc(64);
        say("address", p + 1);
        do_free(p + 1);
    }
    else if (!strcmp(c, "interior-free-1mib")) {
        char *p = do_malloc(1 << 20);
        say("address", p + 65536);
        do_free(p + 65536);
    }
    else if (!strcmp(c, "stack-free")) {
        char on_stack[64];
        memset(on_stack, 1, sizeof on_stack);
        say("address", on_stack);
        do_free(on_stack);
    }
    else if (!strcmp(c, "foreign-mmap-free")) {
        void *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        say("address", q);
        do_free(q);
    }
    else if (!strcmp(c, "realloc-freed")) {
        void *p = do_malloc(64);
        say("address", p);
        do_free(p);
        p = do_realloc(p, 200);
        say("realloc gave", p);
    }
    else if (!strcmp(c, "racing-free")) {
        /* Two threads free one block at the same moment, 200 times over (fresh blocks each time). */
        for (int round = 0; round < 200; round++) {
            shared_block = do_malloc(64);
            if (round == 0) say("address", shared_block);
            pthread_barrier_init(&barrier, NULL, 2);
            pthread_t other;
            pthread_create(&other, NULL, free_at_once, NULL);
            free_at_once(NULL);
            pthread_join(other, NULL);
            pthread_barrier_destroy(&barrier);
        }
    }
    else if (!strcmp(c, "write-after-free")) {
        /* The freed block is written over, then the program goes on allocating and freeing that size. */
        char *p = do_malloc(64);
        say("address", p);
        do_free(p);
        memset(p, 0x41, 64);
        void *blocks[64];
        for (int i = 0; i < 64; i++) blocks[i] = do_malloc(64);
        for (int i = 0; i < 64; i++) do_free(blocks[i]);
    }
    else if (!strcmp(c, "write-after-free-exit")) {
        /* The freed block is written over; a few other blocks are freed; the program ends with _exit, so no exit handler
         * or destructor looks at the heap: only a check made by a later call can find the write. */
        char *p = do_malloc(64);
        void *others[8];
        for (int i = 0; i < 8; i++) others[i] = do_malloc(64);
        say("address", p);
        do_free(p);
        memset(p, 0x41, 64);
        for (int i = 0; i < 8; i++) do_free(others[i]);
        if (write(1, "survived\n", 9) < 0) _exit(3);
        _exit(0);
    }
    else if (!strcmp(c, "overflow-16")) {
        /* 16 bytes past the end of a 64-byte request, with a neighbour allocated after it; then both are freed. */
        char *p = do_malloc(64), *neighbour = do_malloc(64);
        say("address", p);
        memset(p + 64, 0x41, 16);
        do_free(p);
        do_free(neighbour);
    }
    else if (!strcmp(c, "underflow-16")) {
        /* 16 bytes before the start of a 64-byte block, allocated after a neighbour; then it is freed. */
        char *neighbour = do_malloc(64), *p = do_malloc(64);
        say("address", p);
        memset(p - 16, 0x41, 16);
        do_free(p);
        do_free(neighbour);
    }
    else { fprintf(stderr, "misuse: unknown case %s\n", c); return 2; }
    if (write(1, "survived\n", 9) < 0) return 3;
    return 0;
}
