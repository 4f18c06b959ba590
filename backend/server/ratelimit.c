/*
 * PURE: token buckets keyed by client address (see ratelimit.h). A chained
 * hash table with a fixed number of chains; entries are allocated one by one
 * and there are at most rl->max of them. Eviction walks the whole table, but
 * only when a new address meets a full table, and it usually frees many
 * entries at once (every bucket that refilled), so its cost is spread over
 * the inserts that follow.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ratelimit.h"
#include "xmalloc.h"

struct bucket {
    struct caddr a;
    double tokens;
    int64_t last_ms;     /* when tokens was last brought up to date */
    int64_t seen_ms;     /* the address's last request, for eviction */
    struct bucket *next; /* chain */
};

struct ratelimit {
    double rate, burst;
    size_t max, n, n_chains;
    uint64_t evictions;
    struct bucket **chains;
};

static void refill(const struct ratelimit *rl, struct bucket *b, int64_t now_ms);
static void evict(struct ratelimit *rl, int64_t now_ms);

struct ratelimit *
ratelimit_new(double rate, double burst, size_t max)
{
    struct ratelimit *rl = xcalloc(1, sizeof(*rl));

    rl->rate = rate > 0 ? rate : 0;
    rl->burst = burst >= 1 ? burst : 1;
    rl->max = max > 0 ? max : 1;
    rl->n_chains = rl->max < 64 ? 64 : rl->max;
    rl->chains = xcalloc(rl->n_chains, sizeof(*rl->chains));
    return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
    size_t i;

    if (rl == NULL)
        return;
    for (i = 0; i < rl->n_chains; i++) {
        struct bucket *b = rl->chains[i], *next;

        for (; b != NULL; b = next) {
            next = b->next;
            free(b);
        }
    }
    free(rl->chains);
    free(rl);
}

int
ratelimit_take(struct ratelimit *rl, const struct caddr *a, int64_t now_ms, int64_t *retry_ms)
{
    size_t i = clientaddr_hash(a) % rl->n_chains;
    struct bucket *b;

    if (retry_ms != NULL)
        *retry_ms = 0;
    if (rl->rate == 0)
        return 0;
    for (b = rl->chains[i]; b != NULL && !clientaddr_eq(&b->a, a); b = b->next)
        ;
    if (b == NULL) {
        if (rl->n >= rl->max)
            evict(rl, now_ms);
        b = xcalloc(1, sizeof(*b));
        b->a = *a;
        b->tokens = rl->burst;
        b->last_ms = now_ms;
        b->next = rl->chains[i];
        rl->chains[i] = b;
        rl->n++;
    }
    refill(rl, b, now_ms);
    b->seen_ms = now_ms;
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 0;
    }
    if (retry_ms != NULL) {
        int64_t ms = (int64_t)((1 - b->tokens) * 1000 / rl->rate) + 1;

        *retry_ms = ms > 0 ? ms : 1;
    }
    return ERR_TOO_MANY;
}

size_t
ratelimit_count(const struct ratelimit *rl)
{
    return rl->n;
}

uint64_t
ratelimit_evictions(const struct ratelimit *rl)
{
    return rl->evictions;
}

/* ------------------------------------------------------------------------ */

static void
refill(const struct ratelimit *rl, struct bucket *b, int64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rl->rate / 1000;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
        b->last_ms = now_ms;
    }
}

/* Drops every full bucket; when there is none, the one idle longest. */
static void
evict(struct ratelimit *rl, int64_t now_ms)
{
    struct bucket **oldest = NULL, *victim;
    size_t i, before = rl->n;

    for (i = 0; i < rl->n_chains; i++) {
        struct bucket **pp = &rl->chains[i];

        while (*pp != NULL) {
            struct bucket *b = *pp;

            refill(rl, b, now_ms);
            if (b->tokens >= rl->burst) {
                *pp = b->next;
                free(b);
                rl->n--;
                continue;
            }
            if (oldest == NULL || b->seen_ms < (*oldest)->seen_ms)
                oldest = pp;
            pp = &b->next;
        }
    }
    if (rl->n == before && oldest != NULL) {
        victim = *oldest;
        *oldest = victim->next;
        free(victim);
        rl->n--;
    }
    rl->evictions += before - rl->n;
}
