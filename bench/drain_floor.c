/*
 * Drain floor for bench_spool.py: the system calls any spooler must make per task file of a
 * file-per-task queue with uWSGI's protocol, and nothing else (no handler, no language runtime):
 * open by name (O_RDWR, for the write lock), take the lock, fstat, read the file, unlink it, close.
 *
 *     drain_floor DIR PROCS
 *
 * Lists DIR once, then PROCS forked processes take every PROCS-th name each (a perfect split: no
 * two processes ever touch the same file). Prints one JSON line: {"files", "procs", "tasks_per_s"}.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int drain_share(int dir, char **names, size_t n, size_t first, size_t step) {
    static char buf[1 << 16];
    for (size_t i = first; i < n; i += step) {
        int fd = openat(dir, names[i], O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOATIME);
        if (fd < 0) {
            fprintf(stderr, "drain_floor: open %s: %s\n", names[i], strerror(errno));
            return 1;
        }
        struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        struct stat st;
        if (fcntl(fd, F_OFD_SETLK, &lock) < 0 || fstat(fd, &st) < 0 || read(fd, buf, sizeof buf) < 0 ||
            unlinkat(dir, names[i], 0) < 0) {
            fprintf(stderr, "drain_floor: %s: %s\n", names[i], strerror(errno));
            return 1;
        }
        close(fd);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3 || atoi(argv[2]) < 1) {
        fprintf(stderr, "usage: drain_floor DIR PROCS\n");
        return 2;
    }
    int procs = atoi(argv[2]);
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *listing = dir < 0 ? NULL : fdopendir(dup(dir));
    if (listing == NULL) {
        fprintf(stderr, "drain_floor: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    size_t n = 0, cap = 1024;
    char **names = malloc(cap * sizeof *names);
    for (struct dirent *e; (e = readdir(listing)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap)
            names = realloc(names, (cap *= 2) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(listing);
    double start = seconds();
    for (int p = 0; p < procs; p++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(drain_share(dir, names, n, (size_t)p, (size_t)procs));
        if (pid < 0) {
            perror("drain_floor: fork");
            return 1;
        }
    }
    int failed = 0;
    for (int status; wait(&status) > 0;)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    double took = seconds() - start;
    if (failed)
        return 1;
    printf("{\"files\": %zu, \"procs\": %d, \"tasks_per_s\": %.1f}\n", n, procs, (double)n / took);
    return 0;
}
