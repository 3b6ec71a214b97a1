/* bench/tools/rusage.c -- run a command and report what it cost, measured by a process small
 * enough not to inflate it.
 *
 *   rusage OUTFILE CMD [ARGS...]
 *
 * Forks, execs CMD (stdin/stdout/stderr inherited), waits with wait4() and writes one line to
 * OUTFILE: "<wait status> <wall us> <user us> <sys us> <maxrss KiB>".  CPU time and peak RSS
 * include the children CMD waited for (wait4 semantics).
 *
 * Why not Python's os.wait4 directly: on Linux a child forked (or vforked) from a big process
 * inherits that process's RSS high-water mark until exec, so ru_maxrss of a child of the
 * Python harness reports the harness's own size.  This launcher is a few hundred KiB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>

static long long us(struct timeval t) { return (long long)t.tv_sec * 1000000LL + t.tv_usec; }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: rusage OUTFILE CMD [ARGS...]\n");
        return 125;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 125; }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 125; }
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long wall = (long long)(b.tv_sec - a.tv_sec) * 1000000LL + (b.tv_nsec - a.tv_nsec) / 1000;
    FILE *f = fopen(argv[1], "w");
    if (!f) { perror(argv[1]); return 125; }
    fprintf(f, "%d %lld %lld %lld %ld\n", status, wall, us(ru.ru_utime), us(ru.ru_stime), ru.ru_maxrss);
    fclose(f);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
