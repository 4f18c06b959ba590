/*
 * PURE: per-client token buckets (DESIGN.md 3 `limits.requestsPerSecond`,
 * `limits.burst`). Each client address has a bucket of `burst` tokens that
 * refills at `rate` tokens a second; a request takes one token or is refused
 * with the time until one is back. The table holds at most `max` addresses:
 * when a new one arrives at a full table, every bucket that has refilled
 * completely is dropped (it is the same as a new one), and when none has, the
 * one idle longest goes. Time is passed in (milliseconds, any monotonic
 * origin). Not thread-safe: the caller serialises.
 */
#ifndef AIRLOCK_RATELIMIT_H
#define AIRLOCK_RATELIMIT_H
#include <stddef.h>
#include <stdint.h>

#include "clientaddr.h"

struct ratelimit;

/*
 * New table: rate tokens a second (0 = no limit: every take succeeds), burst
 * tokens at most (at least 1), max addresses (at least 1). Never NULL.
 */
struct ratelimit *ratelimit_new(double rate, double burst, size_t max);
/* Frees rl and every bucket. NULL is a no-op. */
void ratelimit_free(struct ratelimit *rl);
/*
 * Takes one token for a at now_ms. 0 when allowed; ERR_TOO_MANY when the
 * bucket is empty, with *retry_ms (may be NULL) set to the milliseconds until
 * a token is back (at least 1).
 */
int ratelimit_take(struct ratelimit *rl, const struct caddr *a, int64_t now_ms, int64_t *retry_ms);
/* Addresses in the table. */
size_t ratelimit_count(const struct ratelimit *rl);
/* Addresses dropped to make room since the table was made. */
uint64_t ratelimit_evictions(const struct ratelimit *rl);

#endif
