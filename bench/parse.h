/*
 * Number arguments for the benchmark helpers: strtol with end and range
 * checks (STYLE.md bans atoi, which turns "12x" into 12 and "x" into 0).
 */
#ifndef AIRLOCK_BENCH_PARSE_H
#define AIRLOCK_BENCH_PARSE_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* *out = s as a decimal in [min, max]. Returns 0, or -1 (naming what in a message) if it is not. */
static inline int
parse_long(const char *what, const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "%s: '%s' is not a number from %ld to %ld\n", what, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

#endif
