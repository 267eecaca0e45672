/* Part of loader.c (included there): the blocks glibc serves on this library's behalf, and the hardened mode's switch.
 *
 * Calls made inside the runtime, before the heap is ready, or while it starts go to glibc. Every such block is recorded
 * here, in both modes, so that a free of an address that no allocator of this process handed out (a stack array, a page
 * from mmap, a static) is reported instead of being passed to glibc, which may crash on it. Such calls are few (the
 * runtime's own, and a start-up arena that ran out), so the record costs the common paths nothing. A library whose
 * runtime could not start serves everything from glibc and keeps no record. */

/* -1 until read from BUDDY_MALLOC_HARDEN (at the first call, which may come before the constructor); then 0 or 1. */
static int harden_mode = -1;
static pthread_mutex_t foreign_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *foreign_slots;      /* open addressing: 0 empty, 1 deleted, else an address */
static size_t foreign_capacity, foreign_used, foreign_count;
static uint64_t h_secret;

static void harden_fork_prepare(void);
static void harden_fork_done(void);
static void h_thread_exit(void *mine);
static pthread_key_t h_key;

static __attribute__((noinline)) int hardened_slow(void) {
    int mode = __atomic_load_n(&harden_mode, __ATOMIC_ACQUIRE);
    if (mode >= 0) return mode;
    const char *value = getenv("BUDDY_MALLOC_HARDEN");
    mode = value && *value && strcmp(value, "0") != 0;
    if (mode) {
        /* The canaries depend on a secret the program cannot predict: the kernel's 16 random bytes for this process. */
        const uint64_t *random = (const uint64_t *)getauxval(AT_RANDOM);
        h_secret = (random ? random[0] ^ random[1] : 0) | 1;
        pthread_atfork(harden_fork_prepare, harden_fork_done, harden_fork_done);
        pthread_key_create(&h_key, h_thread_exit);
    }
    int expected = -1;
    if (!__atomic_compare_exchange_n(&harden_mode, &expected, mode, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return expected;
    return mode;
}

/* fork holds the record's lock across the fork, so that a child never inherits it taken. In hardened mode its own
 * handlers take it (before the hardened layer's lock, their order); otherwise these do. */
static void foreign_fork_prepare(void) {
    if (__atomic_load_n(&harden_mode, __ATOMIC_ACQUIRE) != 1) pthread_mutex_lock(&foreign_lock);
}

static void foreign_fork_done(void) {
    if (__atomic_load_n(&harden_mode, __ATOMIC_ACQUIRE) != 1) pthread_mutex_unlock(&foreign_lock);
}

/* One load and a compare in the default mode. */
static inline int hardened(void) { return UNLIKELY(__atomic_load_n(&harden_mode, __ATOMIC_RELAXED) != 0) && hardened_slow(); }

/* One line naming the call, the address and what is wrong, then SIGABRT: a hardened-mode finding. */
static __attribute__((noreturn, noinline, format(printf, 1, 2))) void finding(const char *format, ...) {
    char line[320];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line, sizeof line - 1, format, args);
    va_end(args);
    if (n < 0) n = 0;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(2, line, (size_t)n) < 0) { /* aborting anyway */ }
    abort();
}

static inline size_t foreign_slot(uintptr_t p, size_t capacity) { return (size_t)(((uint64_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 20) & (capacity - 1); }

/* Rehashes into a table twice as large (or as large, when most used slots are deleted ones). Called with the lock held. */
static int foreign_grow(void) {
    size_t capacity = foreign_capacity == 0 ? 1024 : foreign_count * 4 < foreign_capacity ? foreign_capacity : foreign_capacity * 2;
    uintptr_t *slots = mmap(NULL, capacity * sizeof *slots, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slots == MAP_FAILED) return 0;
    for (size_t i = 0; i < foreign_capacity; i++) {
        uintptr_t p = foreign_slots[i];
        if (p <= 1) continue;
        size_t j = foreign_slot(p, capacity);
        while (slots[j]) j = (j + 1) & (capacity - 1);
        slots[j] = p;
    }
    if (foreign_slots) munmap(foreign_slots, foreign_capacity * sizeof *slots);
    foreign_slots = slots;
    foreign_capacity = capacity;
    foreign_used = foreign_count;
    return 1;
}

/* Whether glibc serves everything: the runtime could not start (nothing is recorded then). */
static inline int glibc_only(void);

/* Records a block glibc handed out; returns it. */
static void *foreign_note(void *p) {
    if (!p || glibc_only()) return p;
    pthread_mutex_lock(&foreign_lock);
    if ((foreign_used + 1) * 2 > foreign_capacity && !foreign_grow()) {
        pthread_mutex_unlock(&foreign_lock);
        return p;   /* no memory for the record: the block works, a free of it will be reported (the process is dying) */
    }
    size_t j = foreign_slot((uintptr_t)p, foreign_capacity);
    while (foreign_slots[j] > 1) j = (j + 1) & (foreign_capacity - 1);
    if (foreign_slots[j] == 0) foreign_used++;
    foreign_slots[j] = (uintptr_t)p;
    foreign_count++;
    pthread_mutex_unlock(&foreign_lock);
    return p;
}

/* Removes a recorded block; false when glibc never handed it out through this library. */
static int foreign_take(void *p) {
    pthread_mutex_lock(&foreign_lock);
    int found = 0;
    if (foreign_capacity) {
        size_t j = foreign_slot((uintptr_t)p, foreign_capacity);
        while (foreign_slots[j]) {
            if (foreign_slots[j] == (uintptr_t)p) { foreign_slots[j] = 1; foreign_count--; found = 1; break; }
            j = (j + 1) & (foreign_capacity - 1);
        }
    }
    pthread_mutex_unlock(&foreign_lock);
    return found;
}

static __attribute__((noreturn)) void not_ours(const char *call, void *p) {
    finding("buddymalloc: %s(): Cannot free %p: no allocator of this process handed it out (a stack, static or foreign address).", call, p);
}

/* free of an address outside the heap and the start-up arena. */
static void foreign_free(const char *call, void *p) {
    if (!glibc_only() && !foreign_take(p)) not_ours(call, p);
    __libc_free(p);
}

static void *foreign_realloc(void *p, size_t size) {
    if (glibc_only()) return __libc_realloc(p, size);
    if (!foreign_take(p)) not_ours("realloc", p);
    void *q = __libc_realloc(p, size);
    foreign_note(q ? q : size ? p : NULL);   /* a failed growth leaves the old block live */
    return q;
}
