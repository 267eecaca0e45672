/* A multi-threaded program for MallocTests: 8 threads build and check linked lists, passing blocks between them. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; size_t size; unsigned char data[]; };
static struct node *shared[8];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *work(void *arg) {
    long id = (long)arg;
    unsigned long sum = 0;
    unsigned seed = (unsigned)id * 7919u + 1;
    for (int round = 0; round < 200; round++) {
        struct node *head = NULL;
        for (int i = 0; i < 200; i++) {
            size_t size = (rand_r(&seed) % 2000) + 1;
            struct node *n = malloc(sizeof *n + size);
            n->size = size;
            memset(n->data, (int)(size & 0xFF), size);
            n->next = head;
            head = n;
        }
        pthread_mutex_lock(&lock);
        struct node *theirs = shared[(id + 1) % 8];
        shared[(id + 1) % 8] = head;
        pthread_mutex_unlock(&lock);
        while (theirs) {
            struct node *next = theirs->next;
            for (size_t j = 0; j < theirs->size; j++) sum += theirs->data[j] == (theirs->size & 0xFF);
            free(theirs);
            theirs = next;
        }
    }
    return (void *)sum;
}

int main(void) {
    pthread_t threads[8];
    for (long i = 0; i < 8; i++) pthread_create(&threads[i], NULL, work, (void *)i);
    unsigned long total = 0;
    for (int i = 0; i < 8; i++) { void *r; pthread_join(threads[i], &r); total += (unsigned long)r; }
    for (int i = 0; i < 8; i++) while (shared[i]) { struct node *n = shared[i]->next; free(shared[i]); shared[i] = n; }
    printf("checked %lu bytes\n", total);
    return 0;
}
