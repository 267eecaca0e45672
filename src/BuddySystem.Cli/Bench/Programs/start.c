/* The process-start rows of workload P (buddy bench --programs): start N PROGRAM ARGS... forks and execs PROGRAM N
 * times, one after the other, waiting for each; the allocator comes from the LD_PRELOAD it inherits. It allocates
 * nothing itself, so its time is the N starts (the wall time divided by N is the time of one process start). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fputs("usage: start N PROGRAM ARGS...\n", stderr); return 2; }
    long n = strtol(argv[1], NULL, 10);
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) { perror("start: fork"); return 2; }
        if (pid == 0) {
            execvp(argv[2], argv + 2);
            _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) { perror("start: waitpid"); return 2; }
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "start: %s failed (%d)\n", argv[2], status); return 1; }
    }
    printf("%ld starts of %s\n", n, argv[2]);
    return 0;
}
