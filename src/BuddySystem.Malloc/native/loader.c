/* libbuddymalloc.so: routes the C allocation API to the buddy heap in buddymalloc.so (NativeAOT, exports bm_*).
 * The heap's policy lives in C# (ProcessHeap.cs, Exports.cs). This file decides *whether* a call may enter managed code:
 * the runtime itself calls malloc (start-up, thread attach), and such calls must not re-enter it. They, calls made while
 * the runtime starts, and pointers outside the heap's reserved range go to glibc. Small requests (the size classes, up
 * to 8 KiB) are objects of the heap's size-class tier, served from per-thread caches of class objects here, refilled
 * and flushed through C# in batches.
 *
 * The runtime starts lazily: a process whose first requests are small (up to 32 KiB, 1 MiB in all) is served from the
 * start-up arena below without starting it, so /bin/true and `sh -c true` do not pay the runtime's start (its thread,
 * its GC reservation, the cgroup and /sys files it reads), nor even map buddymalloc.so. The first request the arena
 * cannot serve opens buddymalloc.so and starts the runtime; bm_init then hands the arena to ProcessHeap, which accounts
 * for its blocks from then on.
 *
 * Layers, in this translation unit: this file (arena, caches, raw entry points), foreign.h (glibc's blocks, the hardened
 * switch), harden.h (the hardened mode and the exported C API). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x) __builtin_expect(!!(x), 1)

/* The layout of LoaderShared.cs and of BuddyHeap.OrderCache: written by C#, which owns every value in them. */
#define MAX_REGIONS 40
#define MAX_CLASSES 64
#define CLASS_GRANULES 520
struct loader_shared {
    uint64_t reserve_start, reserve_end;
    int32_t class_count, class_max_size, min_shift, page_shift;
    uint8_t state_allocated, order_mask, outside_cached, reserved;
    int32_t region_count;
    uint64_t region_start[MAX_REGIONS], region_end[MAX_REGIONS], region_states[MAX_REGIONS];
    uint64_t region_objects[MAX_REGIONS], region_pages[MAX_REGIONS], region_marks[MAX_REGIONS];
    uint32_t class_sizes[MAX_CLASSES];
    uint8_t class_of_granules[CLASS_GRANULES];
    int32_t slab_owner_offset, slab_thread_free_offset, slab_full_offset;
};
struct object_cache { void *head; int32_t count, capacity, batch_shift; };

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

/* The start-up arena: the layout of BootArena.cs. Blocks of 16 B to 32 KiB, each aligned to its size (cut from chunks
 * of one order each, 4 KiB or one block), one state byte per 16-byte granule: BOOT_ALLOCATED | order at a live block's start,
 * BOOT_FREED | order once freed. Freed blocks are reused only before the runtime starts; after, they stay freed (a
 * second free is still caught) and the heap serves every new request. */
#define BOOT_SIZE (1024 * 1024)
#define BOOT_CHUNK 4096
#define BOOT_MAX_ORDER 11
enum { BOOT_ALLOCATED = 0x80, BOOT_FREED = 0x40, BOOT_ORDER = 0x0f };
struct boot_arena {
    uint64_t start, size;
    int64_t live_blocks, live_bytes, allocations;
    uint64_t states;
};
static struct boot_arena boot;
static uint8_t boot_states[BOOT_SIZE >> 4];
static pthread_mutex_t boot_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t boot_bump;                                /* next unused chunk, from boot.start */
static struct { void *free; uint64_t next, end; } boot_orders[BOOT_MAX_ORDER + 1];

/* buddymalloc.so's exports, found with dlsym when the runtime starts: the library (1.3 MB, with libm) is not even mapped
 * by a process that never outgrows the start-up arena. */
static struct {
    int (*init)(struct loader_shared **shared, struct boot_arena *arena);
    intptr_t (*thread_caches)(struct object_cache *caches);
    void (*revive)(void *slab);
    int (*refill)(int class_index, struct object_cache *cache);
    void (*flush)(int class_index, struct object_cache *cache);
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    size_t (*usable_size)(void *);
    int (*memalign)(int kind, size_t align, size_t size, void **result);
    void (*fork_prepare)(void);
    void (*fork_done)(void);
    int (*wants_report)(void);
    void (*report)(void);
    int (*wants_map)(void);
    void (*write_map)(void);
} bm;

/* Opens buddymalloc.so from this library's own folder and finds every export; false if anything is missing. */
static int bm_open(void) {
    Dl_info self;
    char path[4096];
    if (!dladdr((void *)&bm_open, &self) || !self.dli_fname) return 0;
    const char *slash = strrchr(self.dli_fname, '/');
    size_t folder = slash ? (size_t)(slash - self.dli_fname) + 1 : 0;
    if (folder + sizeof "buddymalloc.so" > sizeof path) return 0;
    memcpy(path, self.dli_fname, folder);
    memcpy(path + folder, "buddymalloc.so", sizeof "buddymalloc.so");
    /* RTLD_GLOBAL: bm_* stay visible to dlsym(RTLD_DEFAULT), as when the library was linked (bench/malloc-cost). */
    void *library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!library) return 0;
#define BM_FIND(field) if (!(*(void **)&bm.field = dlsym(library, "bm_" #field))) return 0
    BM_FIND(init); BM_FIND(thread_caches); BM_FIND(refill); BM_FIND(flush); BM_FIND(malloc); BM_FIND(calloc);
    BM_FIND(realloc); BM_FIND(free); BM_FIND(usable_size); BM_FIND(memalign); BM_FIND(fork_prepare); BM_FIND(fork_done);
    BM_FIND(wants_report); BM_FIND(report); BM_FIND(wants_map); BM_FIND(write_map); BM_FIND(revive);
#undef BM_FIND
    return 1;
}

enum { NOT_STARTED, STARTING, READY, OFF };
static _Atomic int state = NOT_STARTED;
static uint64_t heap_start, heap_end;          /* written once before state becomes READY */
static const struct loader_shared *shared;     /* idem */
static size_t cached_limit;                    /* class_max_size + 1 once READY; 0 before: no cache (not even malloc(0)) */
static __thread int inside;                    /* this thread is in managed code: serve it from glibc */
static size_t (*libc_usable_size)(void *);

/* This thread's caches of class objects (one stack per size class, bounds set by C#), the id its slabs name as their
 * owner, and the region it used last (its object state bytes, remote marks and page map). To the heap the objects on
 * these stacks are live (state "cached": their class | outside_cached). A free caches only an object of this thread's
 * own slabs, whose state only this thread writes (plain stores, as the tier's owner does); any other goes to the tier,
 * whose free from another thread claims the object's remote mark. */
static __thread struct {
    struct object_cache caches[MAX_CLASSES];
    uint64_t hot_start, hot_length;
    uint8_t *hot_objects, *hot_marks;
    const intptr_t *hot_pages;
    intptr_t owner;
    int started;
} tc;

/* Caches of exited threads (a key destructor cannot enter the runtime): the next refill of the class adopts them. */
static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;
static struct object_cache orphans[MAX_CLASSES];
static pthread_key_t exit_key;

/* Calls into the heap, counted per thread stripe, so that fork_prepare can wait until none is in progress. A child of
 * fork has only the forking thread: a call another thread had in progress at the fork (its lock-free window on its
 * caches or slabs, or a transition of the runtime's wait subsystem) would stay half done in the child and hang its
 * first pause of the heap. fork_prepare sets `forking`, then waits for every stripe to reach 0; a thread that finds
 * `forking` set on entry steps back out and waits for fork_done. (Dekker: each side writes its flag with a sequentially
 * consistent operation, then reads the other's.) */
#define RUNTIME_STRIPES 64
static struct { _Atomic long calls; char pad[56]; } in_runtime[RUNTIME_STRIPES] __attribute__((aligned(64)));
static _Atomic int forking;
static _Atomic unsigned next_stripe;
static __thread unsigned stripe;   /* 1 + this thread's stripe; 0 until its first call */

static inline void runtime_in(void) {
    inside = 1;
    if (UNLIKELY(!stripe)) stripe = atomic_fetch_add(&next_stripe, 1) % RUNTIME_STRIPES + 1;
    _Atomic long *calls = &in_runtime[stripe - 1].calls;
    for (;;) {
        atomic_fetch_add(calls, 1);
        if (LIKELY(!atomic_load(&forking))) return;
        atomic_fetch_sub(calls, 1);
        while (atomic_load(&forking)) sched_yield();
    }
}

static inline void runtime_out(void) {
    atomic_fetch_sub(&in_runtime[stripe - 1].calls, 1);
    inside = 0;
}

static void report(void) {
    runtime_in();
    bm.report();
    runtime_out();
}

static void write_map(void) {
    runtime_in();
    bm.write_map();
    runtime_out();
}

static void fork_prepare(void) {
    pthread_mutex_lock(&orphans_lock);
    atomic_store(&forking, 1);
    for (int i = 0; i < RUNTIME_STRIPES; i++)
        while (atomic_load(&in_runtime[i].calls) != 0) sched_yield();
    inside = 1;
    bm.fork_prepare();
    inside = 0;
}

static void fork_done(void) {
    inside = 1;
    bm.fork_done();
    inside = 0;
    atomic_store(&forking, 0);
    pthread_mutex_unlock(&orphans_lock);
}

/* Moves this thread's cached objects to the orphans (they stay "cached" in their state bytes: nothing else changes). */
static void thread_exit(void *unused) {
    (void)unused;
    pthread_mutex_lock(&orphans_lock);
    for (int k = 0; k < shared->class_count; k++) {
        struct object_cache *c = &tc.caches[k];
        while (c->head) {
            void *p = c->head;
            c->head = *(void **)p;
            *(void **)p = orphans[k].head;
            orphans[k].head = p;
            orphans[k].count++;
        }
        c->count = 0;
    }
    tc.started = 2;   /* frees after this (glibc's own, at thread teardown) take the ordinary path */
    pthread_mutex_unlock(&orphans_lock);
}

static void start(void) {
    int expected = NOT_STARTED;
    if (!atomic_compare_exchange_strong(&state, &expected, STARTING)) return;
    inside = 1;
    struct loader_shared *given = NULL;
    size_t cache_size = 0;
    int opened = bm_open();
    if (!opened) {
        static const char line[] = "buddymalloc: cannot load buddymalloc.so from libbuddymalloc.so's folder: using glibc's malloc\n";
        if (write(2, line, sizeof line - 1) < 0) { /* glibc serves anyway */ }
    }
    int ok = opened && bm.init(&given, &boot);
    if (ok) {
        shared = given;
        heap_start = given->reserve_start;
        heap_end = given->reserve_end;
        if (given->class_count > 0 && given->class_count < MAX_CLASSES && given->class_count < given->outside_cached
            && (given->class_max_size >> given->min_shift) < CLASS_GRANULES && pthread_key_create(&exit_key, thread_exit) == 0)
            cache_size = (size_t)given->class_max_size + 1;
        libc_usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
        pthread_atfork(fork_prepare, fork_done, fork_done);
        if (bm.wants_report()) atexit(report);
        if (bm.wants_map()) atexit(write_map);
    }
    inside = 0;
    atomic_store(&state, ok ? READY : OFF);
    /* Last: a thread that sees the caches on sees everything above. */
    __atomic_store_n(&cached_limit, cache_size, __ATOMIC_RELEASE);
}

/* No pthread key destructor returns a thread's caches: the runtime detaches the thread first, and entering managed code
 * from a later destructor fails fast. The caches of exited threads go back when a new thread first allocates, on an
 * allocation that would fail, and on the --stats report (ConcurrentHeap reclaims them). */

static void foreign_fork_prepare(void);
static void foreign_fork_done(void);
static void boot_fork_prepare(void) { pthread_mutex_lock(&boot_lock); }
static void boot_fork_done(void) { pthread_mutex_unlock(&boot_lock); }

/* Runs after buddymalloc.so's own initialisers (it is a dependency), so the runtime may start. It starts here only when
 * the exit report or map is asked for (both need it at exit); otherwise at the first request the start-up arena cannot
 * serve. The arena is address space only until touched (a process that never allocates pays one mmap). */
static int constructed;      /* the constructor ran: the runtime may start (its own initialisers have run) */
static int boot_map_failed;

/* Maps the start-up arena (a malloc may come before the constructor, from another library's initialiser). Called with
 * boot_lock held, or from the constructor. */
static void boot_map(void) {
    if (boot.start || boot_map_failed) return;
    size_t largest = (size_t)16 << BOOT_MAX_ORDER;
    void *arena = mmap(NULL, BOOT_SIZE + largest, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED) { boot_map_failed = 1; return; }
    boot.size = BOOT_SIZE;
    boot.states = (uint64_t)(uintptr_t)boot_states;
    __atomic_store_n(&boot.start, ((uint64_t)(uintptr_t)arena + largest - 1) & ~(uint64_t)(largest - 1), __ATOMIC_RELEASE);
}

/* The BUDDY_MALLOC_* values the library would otherwise take without a word: one line each on stderr at load. The library
 * cannot refuse them (`buddy run` does, exit 2, before it starts the program); it says what it does instead. No snprintf
 * here: the line is built by hand, so nothing allocates inside the constructor. */
static void warn_variable(const char *name, const char *value, const char *consequence) {
    char line[256];
    size_t n = 0;
    const char *parts[] = { "buddymalloc: ", name, "=", value, consequence, "\n" };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t length = strlen(parts[i]);
        if (i == 3 && length > 64) length = 64; /* the value, cut */
        if (length > sizeof line - 1 - n) length = sizeof line - 1 - n;
        memcpy(line + n, parts[i], length);
        n += length;
    }
    if (write(2, line, n) < 0) { /* nothing else to do */ }
}

/* What ByteSize.TryParse (the engine's reader of BUDDY_MALLOC_LIMIT) reads, and not 0: digits, then optionally B, K/KB/KiB,
 * M/MB/MiB, G/GB/GiB or T/TB/TiB, any case, blanks around; the engine takes anything else as no limit (64 GiB). */
static int limit_readable(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    if (*s < '0' || *s > '9') return 0;
    uint64_t number = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (number > (UINT64_MAX - digit) / 10) return 0;
        number = number * 10 + digit;
    }
    while (*s == ' ' || *s == '\t') s++;
    char unit[4] = { 0 };
    size_t length = 0;
    for (; *s && *s != ' ' && *s != '\t'; s++) {
        if (length == 3) return 0;
        unit[length++] = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
    }
    while (*s == ' ' || *s == '\t') s++;
    if (*s) return 0;
    int shift = -1;
    static const char *const units[] = { "", "b", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib", "t", "tb", "tib" };
    static const int shifts[] = { 0, 0, 10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40 };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(unit, units[i]) == 0) shift = shifts[i];
    return shift >= 0 && number != 0 && number <= UINT64_MAX >> shift;
}

static void check_variables(void) {
    const char *limit = getenv("BUDDY_MALLOC_LIMIT");
    if (limit && *limit && !limit_readable(limit))
        warn_variable("BUDDY_MALLOC_LIMIT", limit, " is not a limit such as 2GiB: the heap takes the default, 64 GiB");
    static const char *const flags[] = { "BUDDY_MALLOC_HARDEN", "BUDDY_MALLOC_STATS" };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const char *value = getenv(flags[i]);
        if (value && *value && strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
            warn_variable(flags[i], value, " is not 1 or 0: taken as 1 (on)");
    }
}

__attribute__((constructor)) static void construct(void) {
    check_variables();
    pthread_mutex_lock(&boot_lock);
    boot_map();
    pthread_mutex_unlock(&boot_lock);
    pthread_atfork(foreign_fork_prepare, foreign_fork_done, foreign_fork_done);
    pthread_atfork(boot_fork_prepare, boot_fork_done, boot_fork_done);
    __atomic_store_n(&constructed, 1, __ATOMIC_RELEASE);
    const char *stats = getenv("BUDDY_MALLOC_STATS"), *map = getenv("BUDDY_MALLOC_MAP");
    if (!boot.start || (stats && *stats && strcmp(stats, "0") != 0) || (map && *map)) start();
}

/* True when this call may enter the heap; marks the thread as inside until leave(). */
static inline int enter(void) {
    if (UNLIKELY(inside) || UNLIKELY(atomic_load_explicit(&state, memory_order_acquire) != READY)) return 0;
    runtime_in();
    return 1;
}

static inline void leave(void) { runtime_out(); }

static inline int glibc_only(void) { return atomic_load_explicit(&state, memory_order_relaxed) == OFF; }

static inline int ours(const void *p) { return (uint64_t)(uintptr_t)p - heap_start < heap_end - heap_start; }

/* The published region holding address a, or -1. */
static int region_of(uint64_t a) {
    int n = __atomic_load_n(&shared->region_count, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        if (a - shared->region_start[i] < shared->region_end[i] - shared->region_start[i]) return i;
    return -1;
}

/* The object state byte (the size-class tier's) of a granule in a published region, or NULL; the region becomes the
 * thread's hot one. */
static __attribute__((noinline)) uint8_t *object_state_of_cold(uint64_t a) {
    int i = region_of(a);
    if (i < 0) return NULL;
    tc.hot_start = shared->region_start[i];
    tc.hot_length = shared->region_end[i] - shared->region_start[i];
    tc.hot_objects = (uint8_t *)(uintptr_t)shared->region_objects[i];
    tc.hot_marks = (uint8_t *)(uintptr_t)shared->region_marks[i];
    tc.hot_pages = (const intptr_t *)(uintptr_t)shared->region_pages[i];
    return tc.hot_objects + ((a - tc.hot_start) >> shared->min_shift);
}

/* Whether object state v is a live object handed out (1 + its class; 0 is none, and a cached one has outside_cached). */
static inline int live_object(uint8_t v) { return v != 0 && v <= shared->class_count; }

/* realloc's rule for keeping a block of old bytes for a new size (ProcessHeap.Reallocate's): it fits, and uses more than
 * half of the block or the block is the smallest. */
static inline int realloc_keeps(size_t old, size_t size) { return size <= old && (size > old / 2 || old == 16); }

static inline uint8_t *object_state_of(const void *p) {
    uint64_t off = (uint64_t)(uintptr_t)p - tc.hot_start;
    return LIKELY(off < tc.hot_length) ? tc.hot_objects + (off >> shared->min_shift) : object_state_of_cold((uint64_t)(uintptr_t)p);
}

/* The remote mark of the object whose state byte s object_state_of just returned (that made its region the hot one). */
static inline uint8_t *mark_of(const uint8_t *s) { return tc.hot_marks + (s - tc.hot_objects); }

/* The slab descriptor of the live object p, whose state byte object_state_of just returned (its region is the hot one). */
static inline char *slab_of(const void *p) {
    return (char *)tc.hot_pages[((uint64_t)(uintptr_t)p - tc.hot_start) >> shared->page_shift];
}

/* Whether the live object p (its region the hot one) lies in a slab this thread owns. */
static inline int in_own_slab(const void *p) {
    return *(const intptr_t *)(slab_of(p) + shared->slab_owner_offset) == tc.owner;
}

/* Whether the live object p, whose state byte s object_state_of just returned, lies in a slab of this thread's with no
 * free of another thread in flight: only then is its state this thread's to write. */
static inline int own_object(const void *p, const uint8_t *s) {
    return in_own_slab(p) && __atomic_load_n(mark_of(s), __ATOMIC_RELAXED) == 0;
}

/* Two threads freed one object at once: found when this thread's cache was about to hand it out again. */
static __attribute__((noreturn, noinline)) void racing_free(void *p) {
    char line[200];
    int n = snprintf(line, sizeof line, "buddymalloc: free(): Cannot free %p: it was freed twice by two threads at once (a racing double free)\n", p);
    if (write(2, line, (size_t)n) < 0) { /* aborting anyway */ }
    abort();
}

/* free of a live object v of another thread's slab, outside the runtime: the tier's free from another thread
 * (SlabTier.RemoteFree.cs), in C. Claims the object's remote mark, reads its state again (the claim is a full fence) and
 * pushes it on the slab's thread-free list through its second word; the first push into a full slab revives the slab
 * in C#. 0: the ordinary path, which names the misuse (the mark was claimed already, or the object is not live). The
 * requested-bytes counter of the heap's statistics does not see these frees (libbuddymalloc never reports it). */
static __attribute__((noinline)) int push_remote(void *p, uint8_t *s, uint8_t v) {
    uint8_t *m = mark_of(s);
    uint8_t expected = 0;
    if (!__atomic_compare_exchange_n(m, &expected, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return 0;
    if (__atomic_load_n(s, __ATOMIC_SEQ_CST) != v) {
        expected = 1;
        if (__atomic_compare_exchange_n(m, &expected, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return 0;
        racing_free(p);   /* its owner's allocation saw this claim on the freed object and waits: a racing double free */
    }
    char *slab = slab_of(p);
    intptr_t *list = (intptr_t *)(slab + shared->slab_thread_free_offset);
    intptr_t head = __atomic_load_n(list, __ATOMIC_RELAXED);
    do {
        ((intptr_t *)p)[1] = head;
    } while (!__atomic_compare_exchange_n(list, &head, (intptr_t)p, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    if (head == 0 && __atomic_load_n((const int32_t *)(slab + shared->slab_full_offset), __ATOMIC_SEQ_CST) == 1) {
        runtime_in();
        bm.revive(slab);
        runtime_out();
    }
    return 1;
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
    runtime_in();
    tc.owner = bm.thread_caches(tc.caches);
    runtime_out();
    tc.started = 1;
    pthread_setspecific(exit_key, (void *)1);
}

static __attribute__((noinline)) void *refill_and_pop(int k);

/* Pops an object of class k from this thread's cache (refilled through C# when empty). The caller checked that this
 * thread is not inside the runtime. NULL: ENOMEM, or the thread has exited, and the caller takes the ordinary path. */
static inline void *pop(int k) {
    struct object_cache *c = &tc.caches[k];
    void *p = c->head;
    if (UNLIKELY(!p)) return refill_and_pop(k);
    uint8_t *s = object_state_of(p);
    uint8_t cached = (uint8_t)(shared->outside_cached | (k + 1));
    if (UNLIKELY(!s || *s != cached)) corrupt(p, s ? *s : 0);
    if (UNLIKELY(__atomic_load_n(mark_of(s), __ATOMIC_RELAXED) != 0)) racing_free(p);
    c->head = *(void **)p;
    c->count--;
    *s = (uint8_t)(k + 1);   /* the object is on this thread's stack: no one else changes its state */
    return p;
}

static __attribute__((noinline)) void *refill_and_pop(int k) {
    if (tc.started == 0) start_thread_caches();
    if (tc.started != 1) return NULL;
    struct object_cache *c = &tc.caches[k];
    if (__atomic_load_n(&orphans[k].head, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&orphans_lock);
        c->head = orphans[k].head;
        c->count = orphans[k].count;
        orphans[k].head = NULL;
        orphans[k].count = 0;
        pthread_mutex_unlock(&orphans_lock);
    }
    if (!c->head) {
        runtime_in();
        int ok = bm.refill(k, c);
        runtime_out();
        if (!ok) return NULL;
    }
    return pop(k);
}

/* free of a live class object of this thread's own slabs, outside the runtime: "live, class k" becomes "cached" with a
 * plain store, as the tier's owner frees (its remote mark clear: no other thread is freeing it); anything else (another
 * thread's object, a buddy block, a double free, an interior pointer) goes to C#, which frees it or names the misuse.
 * Returns 0 for the ordinary path. */
static inline int push(void *p) {
    if (UNLIKELY(((uintptr_t)p & 15) != 0)) return 0;
    uint8_t *s = object_state_of(p);
    if (UNLIKELY(!s)) return 0;
    uint8_t v = *s;
    if (UNLIKELY(!live_object(v))) return 0;
    int k = v - 1;
    if (UNLIKELY(tc.started != 1)) {
        if (tc.started != 0) return 0;   /* after this thread's exit destructor: the ordinary path */
        start_thread_caches();
    }
    if (UNLIKELY(!in_own_slab(p))) return push_remote(p, s, v);
    if (UNLIKELY(__atomic_load_n(mark_of(s), __ATOMIC_RELAXED) != 0)) return 0;
    struct object_cache *c = &tc.caches[k];
    if (UNLIKELY(c->count >= c->capacity)) {
        runtime_in();
        bm.flush(k, c);
        runtime_out();
        s = object_state_of(p);   /* the flush may have moved the hot region */
    }
    *s = (uint8_t)(shared->outside_cached | v);
    *(void **)p = c->head;
    c->head = p;
    c->count++;
    return 1;
}

/* realloc of a live class object to a size the classes serve (not 0), outside the runtime, with the managed path's rule
 * (ProcessHeap.Reallocate): the object stays while the new size fits it and uses more than half of it; else an object of
 * the new size's class comes from this thread's cache, the bytes are copied and the old object is freed into the cache.
 * NULL: the ordinary path (any other state, which it names, or no object to be had). */
static __attribute__((noinline)) void *realloc_object(void *p, size_t size) {
    if (UNLIKELY(((uintptr_t)p & 15) != 0)) return NULL;
    uint8_t *s = object_state_of(p);
    if (UNLIKELY(!s)) return NULL;
    uint8_t v = __atomic_load_n(s, __ATOMIC_RELAXED);
    if (UNLIKELY(!live_object(v))) return NULL;
    size_t old = shared->class_sizes[v - 1];
    if (realloc_keeps(old, size)) return p;
    if (tc.started != 1 || !own_object(p, s)) return NULL;   /* the ordinary path moves another thread's object */
    void *q = pop(shared->class_of_granules[(size + 15) >> 4]);
    if (UNLIKELY(!q)) return NULL;
    memcpy(q, p, old < size ? old : size);
    if (LIKELY(push(p))) return q;
    /* p was freed meanwhile by another thread (or this thread's caches are gone): q goes back, and the ordinary path
     * names the misuse or moves p itself. */
    if (!push(q) && enter()) {
        bm.free(q);
        leave();
    }
    return NULL;
}

static inline int in_boot(const void *p) { return (uint64_t)(uintptr_t)p - boot.start < boot.size; }

/* One line naming the call, the address and the problem (the engine's words), then SIGABRT. */
static __attribute__((noreturn, noinline)) void boot_misuse(const char *call, const void *p, const char *problem, size_t size) {
    char line[256];
    int n = size
        ? snprintf(line, sizeof line, "buddymalloc: %s(): Cannot free %p: the block of %zu bytes there %s\n", call, p, size, problem)
        : snprintf(line, sizeof line, "buddymalloc: %s(): Cannot free %p: %s\n", call, p, problem);
    if (write(2, line, (size_t)n) < 0) { /* aborting anyway */ }
    abort();
}

/* A block of order k from the start-up arena, or NULL when it has no room (the caller then starts the runtime). */
static __attribute__((noinline)) void *boot_alloc(int k) {
    uint64_t size = (uint64_t)16 << k;
    pthread_mutex_lock(&boot_lock);
    boot_map();
    if (!boot.start) { pthread_mutex_unlock(&boot_lock); return NULL; }
    void *p = boot_orders[k].free;
    if (p) {
        uint8_t *s = &boot_states[((uint64_t)(uintptr_t)p - boot.start) >> 4];
        void *next = *(void **)p;
        /* The freed block's first word links the list: a write after free that broke it is caught here. */
        if (*s != (BOOT_FREED | k) || (next && (!in_boot(next) || boot_states[((uint64_t)(uintptr_t)next - boot.start) >> 4] != (BOOT_FREED | k))))
            corrupt(p, *s);
        boot_orders[k].free = next;
        *s = (uint8_t)(BOOT_ALLOCATED | k);
    } else {
        if (boot_orders[k].next == boot_orders[k].end) {
            uint64_t chunk = size > BOOT_CHUNK ? size : BOOT_CHUNK;
            uint64_t at = (boot_bump + chunk - 1) & ~(chunk - 1);   /* the arena's start is aligned to the largest block */
            if (at + chunk > BOOT_SIZE) { pthread_mutex_unlock(&boot_lock); return NULL; }
            boot_orders[k].next = boot.start + at;
            boot_orders[k].end = boot_orders[k].next + chunk;
            boot_bump = at + chunk;
        }
        p = (void *)(uintptr_t)boot_orders[k].next;
        boot_orders[k].next += size;
        boot_states[((uint64_t)(uintptr_t)p - boot.start) >> 4] = (uint8_t)(BOOT_ALLOCATED | k);
    }
    boot.live_blocks++;
    boot.live_bytes += (int64_t)size;
    boot.allocations++;
    pthread_mutex_unlock(&boot_lock);
    return p;
}

/* The block's size, or a misuse report naming the call: not the start of a block, or not allocated. */
static size_t boot_size(const char *call, void *p) {
    uint64_t off = (uint64_t)(uintptr_t)p - boot.start;
    uint8_t v = (off & 15) ? 0 : __atomic_load_n(&boot_states[off >> 4], __ATOMIC_ACQUIRE);
    if (!(v & (BOOT_ALLOCATED | BOOT_FREED)))
        boot_misuse(call, p, "it is not the start of a block of this heap (an interior or never-allocated address).", 0);
    if (v & BOOT_FREED)
        boot_misuse(call, p, "is not allocated (a double free, or a free block never handed out).", (size_t)16 << (v & BOOT_ORDER));
    return (size_t)16 << (v & BOOT_ORDER);
}

/* free of a start-up arena block: "allocated" becomes "freed" in one compare-exchange (of two racing frees exactly one
 * wins; the other is reported). Before the runtime starts the block goes on its order's list for reuse. */
static __attribute__((noinline)) void boot_free(const char *call, void *p) {
    size_t size = boot_size(call, p);
    int k = order_of(size);
    uint8_t *s = &boot_states[((uint64_t)(uintptr_t)p - boot.start) >> 4];
    uint8_t v = (uint8_t)(BOOT_ALLOCATED | k);
    if (!__atomic_compare_exchange_n(s, &v, (uint8_t)(BOOT_FREED | k), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        boot_misuse(call, p, "is not allocated (a double free, or a free block never handed out).", size);
    pthread_mutex_lock(&boot_lock);
    if (atomic_load_explicit(&state, memory_order_acquire) == NOT_STARTED) {
        *(void **)p = boot_orders[k].free;
        boot_orders[k].free = p;
    }
    boot.live_blocks--;
    boot.live_bytes -= (int64_t)size;
    pthread_mutex_unlock(&boot_lock);
}

/* Before the runtime starts: serves a small request from the start-up arena, else starts the runtime (NULL). */
static inline void *before_start(size_t size) {
    if (atomic_load_explicit(&state, memory_order_acquire) != NOT_STARTED || inside) return NULL;
    if (size <= ((size_t)16 << BOOT_MAX_ORDER)) {
        void *p = boot_alloc(order_of(size));
        if (p) return p;
    }
    /* Before the constructor, buddymalloc.so's initialisers may not have run: glibc serves (as it did before the heap). */
    if (__atomic_load_n(&constructed, __ATOMIC_ACQUIRE)) start();
    return NULL;
}

/* glibc's pthread_getattr_np reallocates a CPU set while it holds the thread's own lock, and the .NET runtime calls it
 * when it attaches a thread. A thread the runtime itself attaches (its finalizer thread) would reach the heap from that
 * realloc, whose refill enters the runtime, which attaches the same thread again and waits for that lock forever (a hang
 * seen under fork_busy.c, where fork then waited for the stuck call). Inside this call glibc serves the thread. */
EXPORT int pthread_getattr_np(pthread_t thread, pthread_attr_t *attr) {
    static int (*real)(pthread_t, pthread_attr_t *);
    int was_inside = inside;
    inside = 1;
    if (UNLIKELY(!real)) *(void **)&real = dlsym(RTLD_NEXT, "pthread_getattr_np");
    int result = real ? real(thread, attr) : ENOSYS;
    inside = was_inside;
    return result;
}

#include "foreign.h"

static inline __attribute__((always_inline)) void *raw_malloc(size_t size) {
    if (LIKELY(size < __atomic_load_n(&cached_limit, __ATOMIC_ACQUIRE)) && LIKELY(!inside)) {
        void *p = pop(shared->class_of_granules[(size + 15) >> 4]);
        if (LIKELY(p != NULL)) return p;
    }
    if (UNLIKELY(atomic_load_explicit(&state, memory_order_relaxed) == NOT_STARTED)) {
        void *p = before_start(size);
        if (p) return p;
    }
    if (!enter()) return foreign_note(__libc_malloc(size));
    void *p = bm.malloc(size);
    leave();
    if (UNLIKELY(!p)) errno = ENOMEM;
    return p;
}

static inline __attribute__((always_inline)) void raw_free(void *p) {
    if (!p) return;
    if (!ours(p)) {
        if (UNLIKELY(in_boot(p))) boot_free("free", p);
        else foreign_free("free", p);
        return;
    }
    if (LIKELY(__atomic_load_n(&cached_limit, __ATOMIC_ACQUIRE) != 0) && LIKELY(!inside) && LIKELY(push(p))) return;
    /* A heap block freed while this thread is inside the runtime cannot re-enter it: it stays allocated (never seen). */
    if (!enter()) return;
    bm.free(p);
    leave();
}

static inline __attribute__((always_inline)) void *raw_calloc(size_t count, size_t size) {
    size_t bytes;
    if (!__builtin_mul_overflow(count, size, &bytes) && LIKELY(bytes < __atomic_load_n(&cached_limit, __ATOMIC_ACQUIRE)) && LIKELY(!inside)) {
        void *p = pop(shared->class_of_granules[(bytes + 15) >> 4]);
        if (LIKELY(p != NULL)) return memset(p, 0, bytes);
    }
    if (UNLIKELY(atomic_load_explicit(&state, memory_order_relaxed) == NOT_STARTED) && !__builtin_mul_overflow(count, size, &bytes)) {
        void *p = before_start(bytes);
        if (p) return memset(p, 0, bytes);   /* a reused block holds old bytes */
    }
    if (!enter()) return foreign_note(__libc_calloc(count, size));
    void *p = bm.calloc(count, size);
    leave();
    if (UNLIKELY(!p)) errno = ENOMEM;
    return p;
}

static inline __attribute__((always_inline)) void *raw_realloc(void *p, size_t size) {
    if (!p) return raw_malloc(size);
    if (UNLIKELY(in_boot(p))) {
        /* Moves out of the start-up arena (or within it, before the runtime starts); glibc's rules for size 0. */
        size_t old = boot_size("realloc", p);
        if (size == 0) { boot_free("realloc", p); return NULL; }
        if (realloc_keeps(old, size)) return p;
        void *q = raw_malloc(size);
        if (!q) return NULL;
        memcpy(q, p, old < size ? old : size);
        boot_free("realloc", p);
        return q;
    }
    if (!ours(p)) return foreign_realloc(p, size);
    if (size != 0 && size < __atomic_load_n(&cached_limit, __ATOMIC_ACQUIRE) && LIKELY(!inside)) {
        void *q = realloc_object(p, size);
        if (LIKELY(q != NULL)) return q;
    }
    if (!enter()) return NULL;
    void *q = bm.realloc(p, size);
    leave();
    if (UNLIKELY(!q && size)) errno = ENOMEM;
    return q;
}


static int aligned(int kind, size_t align, size_t size, void **result) {
    if (UNLIKELY(atomic_load_explicit(&state, memory_order_relaxed) == NOT_STARTED) && !inside && __atomic_load_n(&constructed, __ATOMIC_ACQUIRE)) start();
    if (!enter()) {
        size_t a = kind >= 2 ? 4096 : align;
        if (kind == 0 && (a == 0 || (a & (a - 1)) || a % sizeof(void *))) return EINVAL;
        *result = foreign_note(__libc_memalign(a, kind == 3 ? ((size ? size : 1) + 4095) & ~(size_t)4095 : size));
        return *result ? 0 : ENOMEM;
    }
    int error = bm.memalign(kind, align, size, result);
    leave();
    return error;
}

static size_t raw_usable_size(void *p) {
    if (!p) return 0;
    if (UNLIKELY(in_boot(p))) return boot_size("malloc_usable_size", p);
    if (!ours(p)) return libc_usable_size ? libc_usable_size(p) : 0;
    if (!enter()) return 0;
    size_t size = bm.usable_size(p);
    leave();
    return size;
}

#include "harden.h"
