/* Workload P's launcher (buddy bench --programs): rusage RESULT PRELOAD PROGRAM ARGS...
 * Forks, sets LD_PRELOAD in the child only (PRELOAD "-" for none) and execs PROGRAM; waits with wait4 and writes
 * "exit_code max_rss_kib wall_ns cpu_ns" to RESULT (cpu: user + system time of the program and the
 * children it waited for, which a loaded machine inflates far less than wall time). It exists because a child that .NET spawns starts inside the runtime's
 * address space (posix_spawn uses CLONE_VM), and Linux carries that address space's peak RSS into the child's ru_maxrss:
 * every program would seem to use as much memory as the bench itself. This process is small, so a child forked from it
 * starts from a floor of a few hundred KiB. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: rusage RESULT PRELOAD|- PROGRAM ARGS...\n"); return 2; }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t pid = fork();
    if (pid < 0) { perror("rusage: fork"); return 2; }
    if (pid == 0) {
        if (argv[2][0] != '-' || argv[2][1] != 0) setenv("LD_PRELOAD", argv[2], 1);
        execvp(argv[3], argv + 3);
        perror("rusage: exec");
        _exit(127);
    }
    int status;
    struct rusage usage;
    while (wait4(pid, &status, 0, &usage) < 0) {
        if (errno != EINTR) { perror("rusage: wait4"); return 2; }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    long long wall = (long long)(end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
    FILE *result = fopen(argv[1], "w");
    if (!result) { perror("rusage: result file"); return 2; }
    long long cpu = (long long)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000000LL
                  + (long long)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000LL;
    fprintf(result, "%d %ld %lld %lld\n", code, usage.ru_maxrss, wall, cpu);
    return fclose(result) == 0 ? 0 : 2;
}
