/*
 * echo-latency N -- COMMAND [ARG...]: runs COMMAND (an interactive ssh into
 * the session's tmux) on a pseudo-terminal, waits for the shell to settle,
 * then types N keystrokes one at a time and times each from the write to
 * the read that brings its echo back (the path: ssh -> hop -> agent ->
 * tmux -> shell's tty echo -> tmux redraw -> back). Prints
 *   ECHO <n> <p50 us> <p99 us> <mean us> <max us>
 * Characters cycle through "zyxwv" (letters that are not the final byte of
 * the escape sequences tmux emits), and every 40 keystrokes the line is
 * cleared with ^U and the output allowed to settle, untimed. 20 untimed
 * keystrokes warm the path up first. With ECHO_DUMP=FILE set, every sample
 * (microseconds, in the order typed) is also written to FILE.
 */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Reads and drops output until none came for quiet_ms (at most max_ms). Returns bytes read. */
static size_t
settle(int fd, int quiet_ms, int max_ms)
{
    int64_t end = now_us() + (int64_t)max_ms * 1000;
    size_t total = 0;
    char buf[8192];

    while (now_us() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;

        if (poll(&p, 1, quiet_ms) <= 0)
            break;
        r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        total += (size_t)r;
    }
    return total;
}

/* Types c and waits for it to come back; returns microseconds or -1. */
static int64_t
key(int fd, char c, int timeout_ms)
{
    int64_t t0 = now_us(), deadline = t0 + (int64_t)timeout_ms * 1000;
    char buf[8192];

    if (write(fd, &c, 1) != 1)
        return -1;
    for (;;) {
        int64_t left = deadline - now_us();
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;

        if (left <= 0 || poll(&p, 1, (int)(left / 1000) + 1) <= 0)
            return -1;
        r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            return -1;
        if (memchr(buf, c, (size_t)r) != NULL)
            return now_us() - t0;
    }
}

static int
cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    static const char chars[] = "zyxwv";
    struct winsize ws = {.ws_row = 40, .ws_col = 120};
    int64_t *lat, sum = 0;
    int n, fd, i, status, rc = 0;
    long n_arg;
    size_t got;
    pid_t pid;

    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: echo-latency N -- COMMAND [ARG...]\n");
        return 2;
    }
    if (parse_long("N", argv[1], 1, 1000000, &n_arg) != 0)
        return 2;
    n = (int)n_arg;
    lat = calloc((size_t)n, sizeof(*lat));
    pid = forkpty(&fd, NULL, NULL, &ws);
    if (pid < 0) {
        perror("forkpty");
        return 1;
    }
    if (pid == 0) {
        setenv("TERM", "xterm-256color", 1);
        execvp(argv[3], argv + 3);
        perror(argv[3]);
        _exit(127);
    }
    /* the shell is ready once output came and then stopped for 700 ms */
    {
        struct pollfd p = {fd, POLLIN, 0};

        got = poll(&p, 1, 15000) == 1 ? settle(fd, 700, 15000) : 0;
    }
    if (got == 0) {
        fprintf(stderr, "echo-latency: no output from the command\n");
        rc = 1;
        goto out;
    }
    for (i = 0; i < 20; i++) {
        if (key(fd, chars[i % 5], 5000) < 0) {
            fprintf(stderr, "echo-latency: warm-up keystroke %d was not echoed\n", i);
            rc = 1;
            goto out;
        }
    }
    (void)!write(fd, "\025", 1);
    settle(fd, 50, 2000);
    for (i = 0; i < n; i++) {
        lat[i] = key(fd, chars[i % 5], 5000);
        if (lat[i] < 0) {
            fprintf(stderr, "echo-latency: keystroke %d was not echoed within 5 s\n", i);
            rc = 1;
            goto out;
        }
        sum += lat[i];
        if (i % 40 == 39) {
            (void)!write(fd, "\025", 1);
            settle(fd, 30, 2000);
        }
    }
    if (getenv("ECHO_DUMP") != NULL) {
        FILE *f = fopen(getenv("ECHO_DUMP"), "w");

        for (i = 0; f != NULL && i < n; i++)
            fprintf(f, "%lld\n", (long long)lat[i]);
        if (f != NULL)
            fclose(f);
    }
    qsort(lat, (size_t)n, sizeof(*lat), cmp64);
    printf("ECHO %d %lld %lld %lld %lld\n", n, (long long)lat[(n - 1) / 2],
           (long long)lat[(n * 99 + 99) / 100 - 1], (long long)(sum / n), (long long)lat[n - 1]);
out:
    (void)!write(fd, "\025", 1);
    settle(fd, 200, 1000);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    free(lat);
    return rc;
}
