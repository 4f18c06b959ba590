/*
 * drain BYTES [IDLE_S [MAX_S]]: reads stdin until BYTES bytes arrived (or EOF,
 * or nothing came for IDLE_S seconds, default 30, or MAX_S seconds passed since
 * the first byte, default no limit), then prints
 *   DRAIN <bytes> <seconds from first byte to the last> <MB/s> [stalled|capped]
 * and exits, which closes the pipe so that the writer (ssh ... 'cat /dev/zero')
 * stops. BYTES takes a K/M/G suffix (binary: 1G = 2^30), like head -c.
 * Timing starts at the first byte, so connection set-up and authentication
 * are not part of the throughput.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    static char buf[1 << 18];
    uint64_t want, got = 0;
    double t0 = 0, t1;
    int idle_ms = 30000, stalled = 0, capped = 0;
    double max_s = 0;
    char *end;
    long idle_s;

    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: drain BYTES [IDLE_S [MAX_S]]\n");
        return 2;
    }
    if (argc >= 3) {
        if (parse_long("IDLE_S", argv[2], 0, 86400, &idle_s) != 0)
            return 2;
        idle_ms = (int)idle_s * 1000;
    }
    if (argc == 4)
        max_s = atof(argv[3]);
    want = strtoull(argv[1], &end, 10);
    switch (*end) {
    case 'K': case 'k': want <<= 10; break;
    case 'M': case 'm': want <<= 20; break;
    case 'G': case 'g': want <<= 30; break;
    default: break;
    }
    while (got < want) {
        size_t n = want - got < sizeof(buf) ? (size_t)(want - got) : sizeof(buf);
        struct pollfd p = {0, POLLIN, 0};
        ssize_t r;

        if (poll(&p, 1, idle_ms) == 0) {
            stalled = 1;
            break;
        }
        r = read(0, buf, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (got == 0)
            t0 = now_s();
        got += (uint64_t)r;
        if (max_s > 0 && got < want && now_s() - t0 >= max_s) {
            capped = 1;
            break;
        }
    }
    t1 = now_s();
    if (got == 0) {
        printf("DRAIN 0 0 0%s\n", stalled ? " stalled" : "");
        return 1;
    }
    if (stalled)
        t1 -= idle_ms / 1000.0;
    printf("DRAIN %llu %.3f %.1f%s\n", (unsigned long long)got, t1 - t0,
           t1 > t0 ? (double)got / (1 << 20) / (t1 - t0) : 0.0,
           stalled ? " stalled" : capped ? " capped" : "");
    return got == want ? 0 : 1;
}
