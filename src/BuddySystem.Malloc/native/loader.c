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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x) __builtin_expect(!!(x), 1)

/* The layout of LoaderShared.cs and of BuddyHeap.OrderCache: written by C#, which owns every value in them. */
#define MAX_REGIONS 40
#define MAX_CACHED_ORDERS 16
struct loader_shared {
    uint64_t reserve_start, reserve_end;
    int32_t max_order, min_shift;
    uint8_t state_allocated, state_cached, order_mask, reserved;
    int32_t region_count;
    uint64_t region_start[MAX_REGIONS], region_end[MAX_REGIONS], region_states[MAX_REGIONS];
};
struct order_cache { void *head; int32_t count, capacity, batch_shift; };

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

extern int bm_init(struct loader_shared **shared);
extern void bm_thread_caches(struct order_cache *caches);
extern int bm_refill(int order, struct order_cache *cache, int64_t live_delta);
extern void bm_flush(int order, struct order_cache *cache, int64_t live_delta);
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
extern int bm_wants_map(void);
extern void bm_write_map(void);

enum { NOT_STARTED, STARTING, READY, OFF };
static _Atomic int state = NOT_STARTED;
static uint64_t heap_start, heap_end;          /* written once before state becomes READY */
static const struct loader_shared *shared;     /* idem */
static size_t cached_max_size;                 /* 16 << max_order once READY; 0 before: no cache */
static __thread int inside;                    /* this thread is in managed code: serve it from glibc */
static size_t (*libc_usable_size)(void *);

/* This thread's caches of small blocks (one stack per order, bounds set by C#), the region it used last, and the blocks
 * it handed out minus those it took back since its last call into C# (for the engine's counters). */
static __thread struct {
    struct order_cache caches[MAX_CACHED_ORDERS];
    uint64_t hot_start, hot_length;
    uint8_t *hot_states;
    int64_t live_delta;
    int started;
} tc;

/* Caches of exited threads (a key destructor cannot enter the runtime): the next refill of the order adopts them. */
static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;
static struct order_cache orphans[MAX_CACHED_ORDERS];
static int64_t orphans_live_delta;
static pthread_key_t exit_key;

static void report(void) {
    inside = 1;
    bm_report();
    inside = 0;
}

static void write_map(void) {
    inside = 1;
    bm_write_map();
    inside = 0;
}

static void fork_prepare(void) { pthread_mutex_lock(&orphans_lock); inside = 1; bm_fork_prepare(); inside = 0; }
static void fork_done(void) { inside = 1; bm_fork_done(); inside = 0; pthread_mutex_unlock(&orphans_lock); }

/* Moves this thread's cached blocks to the orphans (they stay "cached" in the side table: nothing else changes). */
static void thread_exit(void *unused) {
    (void)unused;
    pthread_mutex_lock(&orphans_lock);
    for (int k = 0; k <= shared->max_order; k++) {
        struct order_cache *c = &tc.caches[k];
        while (c->head) {
            void *p = c->head;
            c->head = *(void **)p;
            *(void **)p = orphans[k].head;
            orphans[k].head = p;
            orphans[k].count++;
        }
        c->count = 0;
    }
    orphans_live_delta += tc.live_delta;
    tc.live_delta = 0;
    tc.started = 2;   /* frees after this (glibc's own, at thread teardown) take the ordinary path */
    pthread_mutex_unlock(&orphans_lock);
}

static void start(void) {
    int expected = NOT_STARTED;
    if (!atomic_compare_exchange_strong(&state, &expected, STARTING)) return;
    inside = 1;
    struct loader_shared *given = NULL;
    size_t cache_size = 0;
    int ok = bm_init(&given);
    if (ok) {
        shared = given;
        heap_start = given->reserve_start;
        heap_end = given->reserve_end;
        if (given->max_order >= 0 && given->max_order < MAX_CACHED_ORDERS && pthread_key_create(&exit_key, thread_exit) == 0)
            cache_size = (size_t)1 << (given->min_shift + given->max_order);
        libc_usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
        pthread_atfork(fork_prepare, fork_done, fork_done);
        if (bm_wants_report()) atexit(report);
        if (bm_wants_map()) atexit(write_map);
    }
    inside = 0;
    atomic_store(&state, ok ? READY : OFF);
    /* Last: a thread that sees the caches on sees everything above. */
    __atomic_store_n(&cached_max_size, cache_size, __ATOMIC_RELEASE);
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

/* The side-table byte of a granule in a published region, or NULL. */
static __attribute__((noinline)) uint8_t *state_of_cold(uint64_t a) {
    int n = __atomic_load_n(&shared->region_count, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        if (a - shared->region_start[i] < shared->region_end[i] - shared->region_start[i]) {
            tc.hot_start = shared->region_start[i];
            tc.hot_length = shared->region_end[i] - shared->region_start[i];
            tc.hot_states = (uint8_t *)(uintptr_t)shared->region_states[i];
            return tc.hot_states + ((a - tc.hot_start) >> shared->min_shift);
        }
    }
    return NULL;
}

static inline uint8_t *state_of(const void *p) {
    uint64_t off = (uint64_t)(uintptr_t)p - tc.hot_start;
    return LIKELY(off < tc.hot_length) ? tc.hot_states + (off >> shared->min_shift) : state_of_cold((uint64_t)(uintptr_t)p);
}

static inline int order_of(size_t size) { return size <= 16 ? 0 : 60 - __builtin_clzl(size - 1); }

static void corrupt(void *p, unsigned state) {
    char line[160];
    int n = snprintf(line, sizeof line, "buddymalloc: malloc(): heap corruption: the cached block %p has state 0x%02x (its list was overwritten after free?)\n", p, state);
    if (write(2, line, (size_t)n) < 0) { /* aborting anyway */ }
    abort();
}

/* Sets the bounds of this thread's caches (C# decides them) and registers the destructor that gives them up at exit. */
static __attribute__((noinline)) void start_thread_caches(void) {
    inside = 1;
    bm_thread_caches(tc.caches);
    inside = 0;
    tc.started = 1;
    pthread_setspecific(exit_key, (void *)1);
}

static __attribute__((noinline)) void *refill_and_pop(int k);

/* Pops a block of order k from this thread's cache (refilled through C# when empty). The caller checked that this thread
 * is not inside the runtime. NULL: ENOMEM, or the thread has exited, and the caller takes the ordinary path. */
static inline void *pop(int k) {
    struct order_cache *c = &tc.caches[k];
    void *p = c->head;
    if (UNLIKELY(!p)) return refill_and_pop(k);
    uint8_t *s = state_of(p);
    uint8_t cached = (uint8_t)(shared->state_cached | k);
    if (UNLIKELY(!s || *s != cached)) corrupt(p, s ? *s : 0);
    c->head = *(void **)p;
    c->count--;
    *s = (uint8_t)(shared->state_allocated | k);   /* the block is on this thread's stack: no one else changes it */
    tc.live_delta++;
    return p;
}

static __attribute__((noinline)) void *refill_and_pop(int k) {
    if (tc.started == 0) start_thread_caches();
    if (tc.started != 1) return NULL;
    struct order_cache *c = &tc.caches[k];
    if (__atomic_load_n(&orphans[k].head, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&orphans_lock);
        c->head = orphans[k].head;
        c->count = orphans[k].count;
        orphans[k].head = NULL;
        orphans[k].count = 0;
        tc.live_delta += orphans_live_delta;
        orphans_live_delta = 0;
        pthread_mutex_unlock(&orphans_lock);
    }
    if (!c->head) {
        inside = 1;
        int ok = bm_refill(k, c, tc.live_delta);
        inside = 0;
        tc.live_delta = 0;
        if (!ok) return NULL;
    }
    return pop(k);
}

/* free of a small allocated block, outside the runtime: "allocated, order k" becomes "cached" in one compare-exchange (as
 * in ConcurrentHeap, so of two frees of one block exactly one gets here); any other state goes to C#, which names the
 * misuse. Returns 0 for the ordinary path. */
static inline int push(void *p) {
    if (UNLIKELY(((uintptr_t)p & 15) != 0)) return 0;
    uint8_t *s = state_of(p);
    if (UNLIKELY(!s)) return 0;
    uint8_t v = *s;
    int k = v & shared->order_mask;
    if (UNLIKELY((uint8_t)(v & ~shared->order_mask) != shared->state_allocated) || k > shared->max_order) return 0;
    if (UNLIKELY(tc.started != 1)) {
        if (tc.started != 0) return 0;   /* after this thread's exit destructor: the ordinary path */
        start_thread_caches();
    }
    struct order_cache *c = &tc.caches[k];
    if (UNLIKELY(c->count >= c->capacity)) {
        inside = 1;
        bm_flush(k, c, tc.live_delta);
        inside = 0;
        tc.live_delta = 0;
    }
    if (UNLIKELY(!__atomic_compare_exchange_n(s, &v, (uint8_t)(shared->state_cached | k), 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))) return 0;
    *(void **)p = c->head;
    c->head = p;
    c->count++;
    tc.live_delta--;
    return 1;
}

EXPORT void *malloc(size_t size) {
    if (LIKELY(size <= __atomic_load_n(&cached_max_size, __ATOMIC_ACQUIRE)) && LIKELY(!inside)) {
        void *p = pop(order_of(size));
        if (LIKELY(p != NULL)) return p;
    }
    if (!enter()) return __libc_malloc(size);
    void *p = bm_malloc(size);
    leave();
    if (UNLIKELY(!p)) errno = ENOMEM;
    return p;
}

EXPORT void free(void *p) {
    if (!p) return;
    if (!ours(p)) { __libc_free(p); return; }
    if (LIKELY(__atomic_load_n(&cached_max_size, __ATOMIC_ACQUIRE) != 0) && LIKELY(!inside) && LIKELY(push(p))) return;
    /* A heap block freed while this thread is inside the runtime cannot re-enter it: it stays allocated (never seen). */
    if (!enter()) return;
    bm_free(p);
    leave();
}

EXPORT void *calloc(size_t count, size_t size) {
    size_t bytes;
    if (!__builtin_mul_overflow(count, size, &bytes) && LIKELY(bytes <= __atomic_load_n(&cached_max_size, __ATOMIC_ACQUIRE)) && LIKELY(!inside)) {
        void *p = pop(order_of(bytes));
        if (LIKELY(p != NULL)) return memset(p, 0, bytes);
    }
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
