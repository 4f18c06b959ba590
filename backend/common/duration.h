/*
 * PURE. Durations as written in config and API bodies: "90s", "30m",
 * "1h30m", "2d", "1d12h". Units in order d, h, m, s, each at most once;
 * zero, negative and more than 365d are invalid.
 */
#ifndef AIRLOCK_DURATION_H
#define AIRLOCK_DURATION_H
#include <stddef.h>
#include <stdint.h>

#define DURATION_MAX_S (365LL * 86400)

/* Parses s into seconds. Returns 0 or ERR_INVALID. */
int duration_parse(const char *s, int64_t *secs);
/* Formats secs (> 0) canonically ("1h30m", "2d", "45s") into out. */
void duration_format(int64_t secs, char *out, size_t out_len);

#endif
