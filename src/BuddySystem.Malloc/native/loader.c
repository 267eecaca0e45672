/* libbuddymalloc.so: routes the C allocation API to the buddy heap in buddymalloc.so (NativeAOT, exports bm_*).
 * Every policy lives in C# (ProcessHeap.cs, Exports.cs). This file only decides *whether* a call may enter managed code:
 * the runtime itself calls malloc (start-up, thread attach), and such calls must not re-enter it. They, calls before
 * the heap is ready, and pointers outside the heap's reserved range go to glibc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

extern int bm_init(uint64_t *start, uint64_t *end);
extern void *bm_malloc(size_t);
extern void *bm_calloc(size_t, size_t);
extern void *bm_realloc(void *, size_t);
extern void bm_free(void *);
extern size_t bm_usable_size(void *);
extern int bm_memalign(int kind, size_t align, size_t size, void **result);
extern void bm_fork_prepare(void);
extern void bm_fork_done(void);
extern int bm_wants_report(void);
extern void bm_report(void);

enum { NOT_STARTED, STARTING, READY, OFF };
static _Atomic int state = NOT_STARTED;
static uint64_t heap_start, heap_end;          /* written once before state becomes READY */
static __thread int inside;                    /* this thread is in managed code: serve it from glibc */
static size_t (*libc_usable_size)(void *);

static void report(void) {
    inside = 1;
    bm_report();
    inside = 0;
}

static void fork_prepare(void) { inside = 1; bm_fork_prepare(); inside = 0; }
static void fork_done(void) { inside = 1; bm_fork_done(); inside = 0; }

static void start(void) {
    int expected = NOT_STARTED;
    if (!atomic_compare_exchange_strong(&state, &expected, STARTING)) return;
    inside = 1;
    int ok = bm_init(&heap_start, &heap_end);
    if (ok) {
        libc_usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
        pthread_atfork(fork_prepare, fork_done, fork_done);
        if (bm_wants_report()) atexit(report);
    }
    inside = 0;
    atomic_store(&state, ok ? READY : OFF);
}

/* No pthread key destructor returns a thread's caches: the runtime detaches the thread first, and entering managed code
 * from a later destructor fails fast. The caches of exited threads go back when a new thread first allocates, on an
 * allocation that would fail, and on the --stats report (ConcurrentHeap reclaims them). */

/* Runs after buddymalloc.so's own initialisers (it is a dependency), so the runtime may start. */
__attribute__((constructor)) static void construct(void) { start(); }

/* True when this call may enter the heap; marks the thread as inside until leave(). */
static inline int enter(void) {
    if (UNLIKELY(inside) || UNLIKELY(atomic_load_explicit(&state, memory_order_acquire) != READY)) return 0;
    inside = 1;
    return 1;
}

static inline void leave(void) { inside = 0; }

static inline int ours(const void *p) { return (uint64_t)(uintptr_t)p - heap_start < heap_end - heap_start; }

EXPORT void *malloc(size_t size) {
    if (!enter()) return __libc_malloc(size);
    void *p = bm_malloc(size);
    leave();
    if (UNLIKELY(!p)) errno = ENOMEM;
    return p;
}

EXPORT void free(void *p) {
    if (!p) return;
    if (!ours(p)) { __libc_free(p); return; }
    /* A heap block freed while this thread is inside the runtime cannot re-enter it: it stays allocated (never seen). */
    if (!enter()) return;
    bm_free(p);
    leave();
}

EXPORT void *calloc(size_t count, size_t size) {
    if (!enter()) return __libc_calloc(count, size);
    void *p = bm_calloc(count, size);
    leave();
    if (UNLIKELY(!p)) errno = ENOMEM;
    return p;
}

EXPORT void *realloc(void *p, size_t size) {
    if (!p) return malloc(size);
    if (!ours(p)) return __libc_realloc(p, size);
    if (!enter()) return NULL;
    void *q = bm_realloc(p, size);
    leave();
    if (UNLIKELY(!q && size)) errno = ENOMEM;
    return q;
}

EXPORT void *reallocarray(void *p, size_t count, size_t size) {
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) { errno = ENOMEM; return NULL; }
    return realloc(p, bytes);
}

static int aligned(int kind, size_t align, size_t size, void **result) {
    if (!enter()) {
        size_t a = kind >= 2 ? 4096 : align;
        if (kind == 0 && (a == 0 || (a & (a - 1)) || a % sizeof(void *))) return EINVAL;
        *result = __libc_memalign(a, kind == 3 ? ((size ? size : 1) + 4095) & ~(size_t)4095 : size);
        return *result ? 0 : ENOMEM;
    }
    int error = bm_memalign(kind, align, size, result);
    leave();
    return error;
}

EXPORT int posix_memalign(void **result, size_t align, size_t size) {
    void *p;
    int error = aligned(0, align, size, &p);
    if (!error) *result = p;
    return error;
}

static void *aligned_or_errno(int kind, size_t align, size_t size) {
    void *p;
    int error = aligned(kind, align, size, &p);
    if (error) { errno = error; return NULL; }
    return p;
}

EXPORT void *aligned_alloc(size_t align, size_t size) { return aligned_or_errno(1, align, size); }
EXPORT void *memalign(size_t align, size_t size) { return aligned_or_errno(1, align, size); }
EXPORT void *valloc(size_t size) { return aligned_or_errno(2, 4096, size); }
EXPORT void *pvalloc(size_t size) { return aligned_or_errno(3, 4096, size); }

EXPORT size_t malloc_usable_size(void *p) {
    if (!p) return 0;
    if (!ours(p)) return libc_usable_size ? libc_usable_size(p) : 0;
    if (!enter()) return 0;
    size_t size = bm_usable_size(p);
    leave();
    return size;
}

/* C23: the size and alignment are not needed (the side table knows the block). */
EXPORT void free_sized(void *p, size_t size) { (void)size; free(p); }
EXPORT void free_aligned_sized(void *p, size_t align, size_t size) { (void)align; (void)size; free(p); }
