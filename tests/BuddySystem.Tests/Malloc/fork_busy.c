/* Forks while other threads allocate and free in the heap's lock-free paths, then makes each child take a path that
 * pauses every thread's share of the heap (an allocation the heap cannot serve). A child copies only the forking
 * thread: a share left "busy" by another thread at the fork would hold that pause forever. Prints "ok N" when every
 * child exited within its time, else names the child that hung. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;

static void *churn(void *arg) {
    size_t base = (size_t)(long)arg;
    void *held[16] = {0};
    for (unsigned i = 0; !stop; i++) {
        unsigned k = i % 16;
        free(held[k]);
        /* Sizes past the loader's caches (managed thread caches) and within them (class objects). */
        held[k] = malloc((i & 1) ? base + (i % 7) * 4096 : 24 + (i % 50) * 16);
        if (held[k]) memset(held[k], 1, 16);
    }
    for (int k = 0; k < 16; k++) free(held[k]);
    return NULL;
}

int main(int argc, char **argv) {
    int forks = argc > 1 ? atoi(argv[1]) : 200;
    pthread_t threads[2];
    for (int t = 0; t < 2; t++) pthread_create(&threads[t], NULL, churn, (void *)(long)(12288 + t * 8192));
    for (int n = 0; n < forks; n++) {
        pid_t child = fork();
        if (child == 0) {
            void *huge = malloc((size_t)1 << 40);   /* fails: the heap returns every thread's caches first */
            void *small = malloc(100);
            _exit(huge == NULL && small != NULL ? 0 : 1);
        }
        struct timespec begin, now;
        clock_gettime(CLOCK_MONOTONIC, &begin);
        int status = 0;
        while (waitpid(child, &status, WNOHANG) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - begin.tv_sec > 10) {
                kill(child, SIGKILL);
                waitpid(child, &status, 0);
                printf("child %d of %d hung after fork\n", n, forks);
                stop = 1;
                return 1;
            }
            usleep(1000);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("child %d of %d failed (status 0x%x)\n", n, forks, status);
            stop = 1;
            return 1;
        }
    }
    stop = 1;
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    printf("ok %d\n", forks);
    return 0;
}
