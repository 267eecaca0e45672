/* Part of loader.c (included there, after the raw entry points): the hardened mode and the exported C API.
 *
 * BUDDY_MALLOC_HARDEN=1 puts a layer over the same heap (the raw_* entry points above, so the engine still owns and
 * accounts for every block). Each block is asked of the heap 32 bytes larger than requested and laid out as
 *     [front redzone: size and alignment, canary][the program's bytes][back redzone: 16 bytes of 0xBD]
 * with the canary a hash of the address and a per-process secret (Scudo's checksummed header, simplified). A free checks
 * both redzones, turns the canary into its "freed" form with one compare-exchange (so of two racing frees one wins and
 * the other is a double free), poisons the bytes with 0xDF and parks the block in a bounded quarantine; a block leaving
 * the quarantine, just before the heap may hand it out again, has its poison checked, and so does every block still in
 * the quarantine at exit. A free of an address that is not a block's start, or that no allocator of this process handed
 * out, is reported. Every finding is one line naming the call, the address, the block and its size, and what was
 * overwritten at which offset; then abort(). Blocks keep the heap's exactness underneath: a block leaves the quarantine
 * through the ordinary free. */

#define H_FRONT 16
#define H_BACK 16
#define H_BACK_BYTE 0xBD
#define H_POISON_BYTE 0xDF
#define H_POISON_MAX 4096                   /* bytes poisoned and checked per freed block */
#define H_SCAN_BYTES 64                     /* bytes of one waiting block's poison each free checks */
#define H_LOCAL 256                         /* blocks in a thread's quarantine */
#define H_LOCAL_BYTES (4u << 20)            /* bytes of program data in a thread's quarantine */
#define H_QUARANTINE 1024                   /* blocks of exited threads, shared */
#define H_SIZE_MASK ((1ull << 56) - 1)

struct h_header { uint64_t size_shift; uint64_t canary; };   /* size | log2(front) << 56 */

static inline uint64_t h_canary(const void *user, int live) {
    uint64_t x = ((uint64_t)(uintptr_t)user ^ h_secret) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 31;
    return live ? x : ~x;
}

static pthread_mutex_t h_lock = PTHREAD_MUTEX_INITIALIZER;
static void *h_ring[H_QUARANTINE];
static size_t h_head, h_count;

static void harden_fork_prepare(void) { pthread_mutex_lock(&foreign_lock); pthread_mutex_lock(&h_lock); }
static void harden_fork_done(void) { pthread_mutex_unlock(&h_lock); pthread_mutex_unlock(&foreign_lock); }

static inline size_t h_size(const struct h_header *h) { return (size_t)(h->size_shift & H_SIZE_MASK); }
static inline size_t h_front(const struct h_header *h) { return (size_t)1 << (h->size_shift >> 56); }

static void *h_alloc(size_t size, size_t align, int zero) {
    size_t front = align <= H_FRONT ? H_FRONT : align, total;
    if (size > H_SIZE_MASK || __builtin_add_overflow(size, front + H_BACK, &total)) { errno = ENOMEM; return NULL; }
    void *block;
    if (front == H_FRONT) {
        block = raw_malloc(total);
        if (!block) return NULL;
    } else {
        int error = aligned(1, align, total, &block);
        if (error) { errno = error; return NULL; }
    }
    if (UNLIKELY(!ours(block) && !in_boot(block))) {
        /* glibc's (while the runtime starts): recorded as a foreign block, handed out without redzones. */
        return zero ? memset(block, 0, size) : block;
    }
    if (front != H_FRONT) {
        /* An aligned block's first word says how far its program bytes start (checked when its header is overwritten). */
        *(uint64_t *)block = h_canary(block, 1) ^ front;
    }
    uint8_t *user = (uint8_t *)block + front;
    struct h_header *h = (struct h_header *)(user - H_FRONT);
    h->size_shift = size | ((uint64_t)__builtin_ctzl(front) << 56);
    __atomic_store_n(&h->canary, h_canary(user, 1), __ATOMIC_RELEASE);
    memset(user + size, H_BACK_BYTE, H_BACK);
    if (zero) memset(user, 0, size);
    return user;
}

/* Whether a heap or arena block starts at block and is allocated (the engine's side table or the arena's). */
static int raw_live_start(uint64_t block) {
    if (in_boot((void *)(uintptr_t)block)) {
        uint64_t off = block - boot.start;
        return !(off & 15) && (boot_states[off >> 4] & BOOT_ALLOCATED);
    }
    if (!ours((void *)(uintptr_t)block) || atomic_load_explicit(&state, memory_order_acquire) != READY || (block & 15)) return 0;
    /* In a slab (its page-map entry is a descriptor: not 0, not odd) a live object has a class state; elsewhere a buddy
     * block starts here when the core's state says "allocated" (a slab's own block does too, hence the page map first). */
    int i = region_of(block);
    if (i < 0) return 0;
    uint64_t off = block - shared->region_start[i];
    int64_t page = ((const int64_t *)(uintptr_t)shared->region_pages[i])[off >> shared->page_shift];
    if (page != 0 && !(page & 1)) return live_object(((const uint8_t *)(uintptr_t)shared->region_objects[i])[off >> shared->min_shift]);
    uint8_t v = ((const uint8_t *)(uintptr_t)shared->region_states[i])[off >> shared->min_shift];
    return (uint8_t)(v & ~shared->order_mask) == shared->state_allocated;
}

/* The first byte of [p, p + n) that is not value, or -1. */
static long h_changed(const uint8_t *p, size_t n, uint8_t value) {
    uint64_t pattern = 0x0101010101010101ull * value;
    size_t i = 0;
    /* Eight bytes at a time (OR-ing four words per step), then the byte that differs. */
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, sizeof w);
        if (((w[0] ^ pattern) | (w[1] ^ pattern) | (w[2] ^ pattern) | (w[3] ^ pattern)) != 0) break;
    }
    for (; i < n; i++) if (p[i] != value) return (long)i;
    return -1;
}

/* The header of the live block at user (a heap or arena address), or a finding: not a block's start, a double free,
 * or a front redzone overwritten. */
static struct h_header *h_header_of(const char *call, uint8_t *user) {
    uint64_t u = (uint64_t)(uintptr_t)user;
    /* The common case first: a live canary names this very address (a 64-bit keyed hash of it), so no other address can
     * show one, and the side table is not read. */
    if (LIKELY(!(u & 15)) && LIKELY(ours(user - H_FRONT) || in_boot(user - H_FRONT))) {
        struct h_header *h = (struct h_header *)(user - H_FRONT);
        if (LIKELY(__atomic_load_n(&h->canary, __ATOMIC_ACQUIRE) == h_canary(user, 1))) return h;
    }
    if (u & 15 || !raw_live_start(u - H_FRONT)) {
        /* An aligned block starts further back; it says so in its first word. */
        int aligned_block = 0;
        for (uint64_t front = 2 * H_FRONT; !(u & 15) && front < u && !(u & (front - 1)); front <<= 1)
            if (raw_live_start(u - front) && *(uint64_t *)(uintptr_t)(u - front) == (h_canary((void *)(uintptr_t)(u - front), 1) ^ front)) { aligned_block = 1; break; }
        if (!aligned_block)
            finding("buddymalloc: %s(): Cannot free %p: it is not the start of a block of this heap (an interior or never-allocated address).", call, (void *)user);
    }
    struct h_header *h = (struct h_header *)(user - H_FRONT);
    uint64_t canary = __atomic_load_n(&h->canary, __ATOMIC_ACQUIRE);
    if (LIKELY(canary == h_canary(user, 1))) return h;
    if (canary == h_canary(user, 0))
        finding("buddymalloc: %s(): Cannot free %p: the block of %zu bytes there is not allocated (a double free, or a free block never handed out).", call, (void *)user, h_size(h));
    uint64_t expected = h_canary(user, 1);
    int at = 0;
    while (at < 8 && ((canary >> (8 * at)) & 0xff) == ((expected >> (8 * at)) & 0xff)) at++;
    finding("buddymalloc: %s(): heap underflow at %p: the front redzone of the block at %p was overwritten (offset %d holds 0x%02x, not 0x%02x): a write before the block's start.",
        call, (void *)(user - 8 + at), (void *)user, at - 8, (unsigned)((canary >> (8 * at)) & 0xff), (unsigned)((expected >> (8 * at)) & 0xff));
}

static void h_check_back(const char *call, uint8_t *user, size_t size) {
    long at = h_changed(user + size, H_BACK, H_BACK_BYTE);
    if (UNLIKELY(at >= 0))
        finding("buddymalloc: %s(): heap overflow at %p: the block at %p of %zu bytes was written past its end (offset %zu holds 0x%02x, not 0x%02x).",
            call, (void *)(user + size + at), (void *)user, size, size + (size_t)at, user[size + at], H_BACK_BYTE);
}

/* The first `limit` bytes of a freed block's poison must be intact. */
static void h_check_poison(const char *call, uint8_t *user, size_t limit) {
    size_t size = h_size((struct h_header *)(user - H_FRONT)), checked = size < limit ? size : limit;
    long at = h_changed(user, checked, H_POISON_BYTE);
    if (UNLIKELY(at >= 0))
        finding("buddymalloc: %s(): write after free at %p: the freed block at %p of %zu bytes was written (offset %ld holds 0x%02x, not 0x%02x).",
            call, (void *)(user + at), (void *)user, size, at, user[at], H_POISON_BYTE);
}

/* A block leaving the quarantine (or still in it at exit): its poison must be intact. Then, unless at exit, the heap takes it back. */
static void h_release(uint8_t *user, int give_back) {
    h_check_poison("malloc", user, H_POISON_MAX);
    if (give_back) raw_free(user - h_front((struct h_header *)(user - H_FRONT)));
}

/* A thread's own quarantine: frees park and release blocks with no lock. An exiting thread hands its blocks to the
 * shared ring, which the next frees of any thread drain. */
struct h_local {
    void *ring[H_LOCAL];
    uint32_t head, count, scan;
    size_t bytes;
    struct h_local *next, *prev;
    int registered;
};
static __thread struct h_local h_mine;
static struct h_local *h_threads;          /* every thread's quarantine, for the exit check (h_lock) */
static size_t h_shared_count;              /* blocks in the shared ring (read without the lock as a hint) */

static void h_register(void) {
    pthread_mutex_lock(&h_lock);
    h_mine.next = h_threads;
    if (h_threads) h_threads->prev = &h_mine;
    h_threads = &h_mine;
    h_mine.registered = 1;
    pthread_mutex_unlock(&h_lock);
    pthread_setspecific(h_key, &h_mine);
}

/* A pthread key destructor (the runtime may be gone for this thread: no call into it): the thread's blocks move to the
 * shared ring with their poison checked; past its bound they stay out of the heap (a bounded loss at thread exit). */
static void h_thread_exit(void *mine) {
    struct h_local *local = mine;
    pthread_mutex_lock(&h_lock);
    if (local->prev) local->prev->next = local->next; else h_threads = local->next;
    if (local->next) local->next->prev = local->prev;
    for (uint32_t i = 0; i < local->count; i++) {
        uint8_t *user = local->ring[(local->head + i) % H_LOCAL];
        h_release(user, 0);
        if (h_count < H_QUARANTINE) {
            h_ring[(h_head + h_count) % H_QUARANTINE] = user;
            h_count++;
        }
    }
    local->count = 0;
    local->registered = 2;   /* frees after this go straight back (glibc's own teardown) */
    __atomic_store_n(&h_shared_count, h_count, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&h_lock);
}

static void h_free(const char *call, void *p) {
    if (!p) return;
    if (!ours(p) && !in_boot(p)) { foreign_free(call, p); return; }
    uint8_t *user = p;
    struct h_header *h = h_header_of(call, user);
    size_t size = h_size(h);
    h_check_back(call, user, size);
    uint64_t live = h_canary(user, 1);
    if (!__atomic_compare_exchange_n(&h->canary, &live, h_canary(user, 0), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        h_header_of(call, user);   /* another thread freed it first: reported as the double free it is */
    memset(user, H_POISON_BYTE, size < H_POISON_MAX ? size : H_POISON_MAX);
    if (size > H_LOCAL_BYTES / 2 || h_mine.registered == 2) {
        /* Too large to park (or this thread is past its exit): back to the heap at once (a large block's pages are
         * dropped; a second free finds no block there). */
        raw_free(user - h_front(h));
        return;
    }
    if (UNLIKELY(!h_mine.registered)) h_register();
    h_mine.ring[(h_mine.head + h_mine.count) % H_LOCAL] = user;
    h_mine.count++;
    h_mine.bytes += size;
    while (h_mine.count > H_LOCAL - 1 || h_mine.bytes > H_LOCAL_BYTES) {
        uint8_t *old = h_mine.ring[h_mine.head];
        h_mine.head = (h_mine.head + 1) % H_LOCAL;
        h_mine.count--;
        h_mine.bytes -= h_size((struct h_header *)(old - H_FRONT));
        h_release(old, 1);
    }
    /* A few bytes of the poison of two waiting blocks, the one parked before this and one further round the quarantine:
     * a write after free is found while the block waits, by a later free, not only when it leaves (a program that ends
     * with _exit runs no exit check). */
    if (h_mine.count > 1) h_check_poison(call, h_mine.ring[(h_mine.head + h_mine.count - 2) % H_LOCAL], H_SCAN_BYTES);
    h_check_poison(call, h_mine.ring[(h_mine.head + h_mine.scan++ % h_mine.count) % H_LOCAL], H_SCAN_BYTES);
    if (UNLIKELY(__atomic_load_n(&h_shared_count, __ATOMIC_RELAXED) != 0)) {
        /* Blocks of exited threads: two at a time leave the shared ring. */
        void *leaving[2];
        int n = 0;
        pthread_mutex_lock(&h_lock);
        while (n < 2 && h_count) {
            leaving[n++] = h_ring[h_head];
            h_head = (h_head + 1) % H_QUARANTINE;
            h_count--;
        }
        __atomic_store_n(&h_shared_count, h_count, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&h_lock);
        for (int i = 0; i < n; i++) h_release(leaving[i], 1);
    }
}

static void *h_realloc(void *p, size_t size) {
    if (!p) return h_alloc(size, H_FRONT, 0);
    if (!ours(p) && !in_boot(p)) return foreign_realloc(p, size);
    struct h_header *h = h_header_of("realloc", p);
    size_t old = h_size(h);
    h_check_back("realloc", p, old);
    if (size == 0) { h_free("realloc", p); return NULL; }
    void *q = h_alloc(size, H_FRONT, 0);
    if (!q) return NULL;
    memcpy(q, p, old < size ? old : size);
    h_free("realloc", p);
    return q;
}

/* At exit (a destructor: after the program's atexit handlers): the poison of every block still in the quarantine. */
__attribute__((destructor)) static void h_exit_check(void) {
    if (__atomic_load_n(&harden_mode, __ATOMIC_RELAXED) != 1) return;
    pthread_mutex_lock(&h_lock);
    for (size_t i = 0; i < h_count; i++) h_release(h_ring[(h_head + i) % H_QUARANTINE], 0);
    for (struct h_local *local = h_threads; local; local = local->next)
        for (uint32_t i = 0; i < local->count; i++) h_release(local->ring[(local->head + i) % H_LOCAL], 0);
    pthread_mutex_unlock(&h_lock);
}

/* The aligned allocations' rules (glibc's, as bm_memalign applies them): 0 or an errno value. */
static int h_memalign(int kind, size_t align, size_t size, void **result) {
    switch (kind) {
    case 0:
        if (align == 0 || (align & (align - 1)) || align % sizeof(void *)) return EINVAL;
        break;
    case 1:
        if (align > ((size_t)1 << 62)) return EINVAL;
        align = align <= 1 ? 1 : (align & (align - 1)) ? (size_t)1 << (64 - __builtin_clzl(align)) : align;
        break;
    case 2:
        align = 4096;
        break;
    default:
        align = 4096;
        if (size > ((size_t)1 << 62)) return ENOMEM;
        size = size == 0 ? 4096 : (size + 4095) & ~(size_t)4095;
    }
    int saved = errno;
    void *p = h_alloc(size, align, 0);
    if (!p) { int error = errno; errno = saved; return error ? error : ENOMEM; }
    *result = p;
    return 0;
}

/* The exported C API: the raw entry points, or the hardened layer over them. Allocations from inside the runtime take
 * the raw path (glibc); a heap or arena block is always a hardened one, whoever frees it (glibc's dlerror frees inside
 * the runtime's start a string the program's side allocated). */
#define HARDENED() (UNLIKELY(hardened()) && !inside)
#define HARDENED_BLOCK(p) (UNLIKELY(hardened()) && (!inside || ours(p) || in_boot(p)))

EXPORT void *malloc(size_t size) { return HARDENED() ? h_alloc(size, H_FRONT, 0) : raw_malloc(size); }
EXPORT void free(void *p) { if (HARDENED_BLOCK(p)) h_free("free", p); else raw_free(p); }
EXPORT void *calloc(size_t count, size_t size) {
    size_t bytes;
    if (HARDENED()) {
        if (__builtin_mul_overflow(count, size, &bytes)) { errno = ENOMEM; return NULL; }
        return h_alloc(bytes, H_FRONT, 1);
    }
    return raw_calloc(count, size);
}
EXPORT void *realloc(void *p, size_t size) { return (p ? HARDENED_BLOCK(p) : HARDENED()) ? h_realloc(p, size) : raw_realloc(p, size); }

EXPORT void *reallocarray(void *p, size_t count, size_t size) {
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) { errno = ENOMEM; return NULL; }
    return realloc(p, bytes);
}

EXPORT int posix_memalign(void **result, size_t align, size_t size) {
    void *p;
    int error = HARDENED() ? h_memalign(0, align, size, &p) : aligned(0, align, size, &p);
    if (!error) *result = p;
    return error;
}

static void *aligned_or_errno(int kind, size_t align, size_t size) {
    void *p;
    int error = HARDENED() ? h_memalign(kind, align, size, &p) : aligned(kind, align, size, &p);
    if (error) { errno = error; return NULL; }
    return p;
}

EXPORT void *aligned_alloc(size_t align, size_t size) { return aligned_or_errno(1, align, size); }
EXPORT void *memalign(size_t align, size_t size) { return aligned_or_errno(1, align, size); }
EXPORT void *valloc(size_t size) { return aligned_or_errno(2, 4096, size); }
EXPORT void *pvalloc(size_t size) { return aligned_or_errno(3, 4096, size); }

EXPORT size_t malloc_usable_size(void *p) {
    if (!p) return 0;
    if (UNLIKELY(hardened()) && (ours(p) || in_boot(p))) return h_size(h_header_of("malloc_usable_size", p));
    return raw_usable_size(p);
}

/* C23: the size and alignment are not needed (the side table knows the block). */
EXPORT void free_sized(void *p, size_t size) { (void)size; free(p); }
EXPORT void free_aligned_sized(void *p, size_t align, size_t size) { (void)align; (void)size; free(p); }
