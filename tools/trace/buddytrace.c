// buddytrace: an LD_PRELOAD interposer that records a program's malloc calls in the replay format of DESIGN.md §5
// (a <id> <size> <align> | f <id> | r <id> <newsize>), for `buddy replay`, `buddy map` and `buddy explore`.
//
//   gcc -O2 -shared -fPIC -o buddytrace.so tools/trace/buddytrace.c
//   BUDDY_TRACE=/tmp/python LD_PRELOAD=./buddytrace.so python3 script.py   # writes /tmp/python.<pid> per process
//
// Ids are sequential, so an id never collides even when realloc moves a block and its old address is reused; a
// pointer-to-id table (linear probing with backward-shift deletion, in its own mapping) keeps them. Every call is
// served by glibc's own entry points (__libc_malloc and friends), so the tracer never recurses into itself.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define TABLE_BITS 24
#define TABLE_SIZE (1UL << TABLE_BITS)

typedef struct { uintptr_t ptr; uint64_t id; } entry;

static entry *table;
static uint64_t next_id;
static int out_fd = -1;
static pid_t traced_pid;
static char buffer[1 << 16];
static size_t buffered;
static volatile int lock_word;
static __thread int inside;

static void lock(void) { while (__atomic_exchange_n(&lock_word, 1, __ATOMIC_ACQUIRE)) { } }
static void unlock(void) { __atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE); }

static void flush(void)
{
    size_t done = 0;
    while (done < buffered) {
        ssize_t n = write(out_fd, buffer + done, buffered - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    buffered = 0;
}

static void emit(const char *line, size_t length)
{
    if (buffered + length > sizeof buffer) flush();
    memcpy(buffer + buffered, line, length);
    buffered += length;
}

// Formats "op a [b [c]]\n" without stdio, which may allocate.
static void record(char op, uint64_t a, int count, uint64_t b, uint64_t c)
{
    char line[80];
    size_t n = 0;
    uint64_t values[3] = { a, b, c };
    line[n++] = op;
    for (int i = 0; i < count; i++) {
        char digits[24];
        int d = 0;
        uint64_t v = values[i];
        do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v);
        line[n++] = ' ';
        while (d) line[n++] = digits[--d];
    }
    line[n++] = '\n';
    emit(line, n);
}

static size_t slot_of(uintptr_t ptr) { return (size_t)((ptr >> 4) * 0x9E3779B97F4A7C15ULL >> (64 - TABLE_BITS)); }

static void put(uintptr_t ptr, uint64_t id)
{
    size_t i = slot_of(ptr);
    while (table[i].ptr) i = (i + 1) & (TABLE_SIZE - 1);
    table[i].ptr = ptr;
    table[i].id = id;
}

// Removes ptr and returns its id, or returns UINT64_MAX when ptr is not live (not ours to trace).
static uint64_t take(uintptr_t ptr)
{
    size_t i = slot_of(ptr);
    while (table[i].ptr && table[i].ptr != ptr) i = (i + 1) & (TABLE_SIZE - 1);
    if (!table[i].ptr) return UINT64_MAX;
    uint64_t id = table[i].id;
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & (TABLE_SIZE - 1);
        if (!table[j].ptr) break;
        size_t home = slot_of(table[j].ptr);
        if (((j - home) & (TABLE_SIZE - 1)) >= ((j - hole) & (TABLE_SIZE - 1))) {
            table[hole] = table[j];
            hole = j;
        }
    }
    table[hole].ptr = 0;
    return id;
}

static int tracing(void)
{
    return out_fd >= 0 && !inside && getpid() == traced_pid;
}

__attribute__((constructor)) static void start(void)
{
    const char *base = getenv("BUDDY_TRACE");
    if (!base) return;
    table = mmap(NULL, TABLE_SIZE * sizeof(entry), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (table == MAP_FAILED) return;
    char path[4096];
    snprintf(path, sizeof path, "%s.%d", base, (int)getpid());
    out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    traced_pid = getpid();
    static const char header[] = "# buddy trace v1: a <id> <size> <align> | f <id> | r <id> <newsize>\n";
    emit(header, sizeof header - 1);
}

__attribute__((destructor)) static void stop(void)
{
    if (out_fd < 0 || getpid() != traced_pid) return;
    lock();
    flush();
    close(out_fd);
    out_fd = -1;
    unlock();
}

static void *traced_alloc(void *p, size_t size, size_t align)
{
    if (p && tracing()) {
        lock();
        uint64_t id = next_id++;
        put((uintptr_t)p, id);
        record('a', id, 3, size, align);
        unlock();
    }
    return p;
}

void *malloc(size_t size) { return traced_alloc(__libc_malloc(size), size, 16); }

void *calloc(size_t n, size_t size)
{
    void *p = __libc_calloc(n, size);
    return traced_alloc(p, p ? n * size : 0, 16);
}

void *memalign(size_t align, size_t size) { return traced_alloc(__libc_memalign(align, size), size, align < 16 ? 16 : align); }
void *aligned_alloc(size_t align, size_t size) { return memalign(align, size); }
void *valloc(size_t size) { return memalign(4096, size); }

int posix_memalign(void **out, size_t align, size_t size)
{
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = memalign(align, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p)
{
    if (p && tracing()) {
        lock();
        uint64_t id = take((uintptr_t)p);
        if (id != UINT64_MAX) record('f', id, 1, 0, 0);
        unlock();
    }
    __libc_free(p);
}

void *realloc(void *p, size_t size)
{
    if (!p) return malloc(size);
    if (size == 0) { free(p); return NULL; }
    if (!tracing()) return __libc_realloc(p, size);
    lock();
    inside = 1; // glibc's realloc may call malloc internally; those calls are part of this one
    void *q = __libc_realloc(p, size);
    inside = 0;
    if (q) {
        uint64_t id = take((uintptr_t)p);
        if (id != UINT64_MAX) {
            put((uintptr_t)q, id);
            record('r', id, 2, size, 0);
        }
    }
    unlock();
    return q;
}
