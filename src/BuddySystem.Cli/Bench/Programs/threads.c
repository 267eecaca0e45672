/* Workload P's multi-threaded program (buddy bench --programs): THREADS threads build lists of blocks of mixed sizes,
 * hand them to the next thread, which checks and frees them (frees from another thread than the one that allocated),
 * and reallocate a buffer as they go. Prints a checksum that does not depend on the allocator or the scheduling. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
struct node { struct node *next; size_t size; unsigned char data[]; };
static struct node *slot[THREADS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int rounds;

static void *work(void *arg) {
    long id = (long)arg;
    unsigned long checked = 0;
    unsigned seed = (unsigned)id * 7919u + 1;
    size_t grown = 16;
    char *buffer = malloc(grown);
    for (int round = 0; round < rounds; round++) {
        struct node *head = NULL;
        for (int i = 0; i < 300; i++) {
            unsigned r = (unsigned)rand_r(&seed);
            size_t size = r % 16 == 0 ? 4096 + r % 60000 : 8 + r % 500;
            struct node *n = malloc(sizeof *n + size);
            n->size = size;
            memset(n->data, (int)(size & 0xFF), size);
            n->next = head;
            head = n;
        }
        grown = grown > (1 << 20) ? 16 : grown * 2;
        buffer = realloc(buffer, grown);
        buffer[grown - 1] = 1;
        pthread_mutex_lock(&lock);
        struct node *theirs = slot[id];
        slot[id] = head;
        pthread_mutex_unlock(&lock);
        /* Blocks left by the thread before this one (or this one's own, the first time): checked and freed here. */
        while (theirs) {
            struct node *next = theirs->next;
            for (size_t j = 0; j < theirs->size; j += 64) checked += theirs->data[j] == (theirs->size & 0xFF);
            free(theirs);
            theirs = next;
        }
        id = (id + 1) % THREADS;
    }
    free(buffer);
    return (void *)checked;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atoi(argv[1]) : 200;
    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, work, (void *)i);
    unsigned long total = 0;
    for (int i = 0; i < THREADS; i++) { void *r; pthread_join(threads[i], &r); total += (unsigned long)r; }
    for (int i = 0; i < THREADS; i++) {
        while (slot[i]) {
            struct node *n = slot[i]->next;
            for (size_t j = 0; j < slot[i]->size; j += 64) total += slot[i]->data[j] == (slot[i]->size & 0xFF);
            free(slot[i]);
            slot[i] = n;
        }
    }
    /* Every block is checked once, whichever thread frees it: the sum is the same on every run. */
    printf("%d threads, %d rounds: %lu samples checked\n", THREADS, rounds, total);
    return 0;
}
