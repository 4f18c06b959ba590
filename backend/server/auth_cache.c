/*
 * The verified-token cache: a 4-way set-associative table keyed by the
 * SHA-256 of the token, so that repeated requests with the same bearer skip
 * the public-key operation. An entry never outlives its token's exp, is
 * checked against nbf on every hit, and is dropped when its issuer's keys
 * change. Guarded by a->cache_mu.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "auth_int.h"
#include "claims.h"
#include "err.h"

static struct cache_entry *
cache_set(struct auth *a, const char *hash)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 3; i++) {
        int c = hash[i];

        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return a->cache[v % CACHE_SETS];
}

/*
 * Copies the cached identity for hash into id if the entry is still good at
 * now: before exp (an entry never outlives its token) and past nbf - leeway.
 * Returns 0 on a hit, ERR_NOT_FOUND otherwise. An entry that failed the time
 * check is dropped, so the full path decides and reports the reason.
 */
int
auth_cache_get(struct auth *a, const char *hash, int64_t now, struct identity *id)
{
    struct cache_entry *set = NULL;
    int w, r = ERR_NOT_FOUND;

    pthread_mutex_lock(&a->cache_mu);
    set = cache_set(a, hash);
    for (w = 0; w < CACHE_WAYS; w++) {
        struct cache_entry *e = &set[w];

        if (!e->used || memcmp(e->hash, hash, 64) != 0)
            continue;
        if (now < e->exp && e->nbf <= now + CLAIMS_LEEWAY_S) {
            identity_copy(id, &e->id);
            r = 0;
        } else {
            identity_cleanup(&e->id);
            e->used = 0;
        }
        break;
    }
    pthread_mutex_unlock(&a->cache_mu);
    return r;
}

void
auth_cache_put(struct auth *a, const char *hash, size_t issuer, int64_t exp, int64_t nbf,
               const struct identity *id, int64_t now)
{
    struct cache_entry *set = NULL, *e = NULL;
    int w;

    if (now >= exp) /* accepted only thanks to the leeway: not worth keeping */
        return;
    pthread_mutex_lock(&a->cache_mu);
    set = cache_set(a, hash);
    for (w = 0; w < CACHE_WAYS && e == NULL; w++) {
        if (!set[w].used || set[w].exp <= now || memcmp(set[w].hash, hash, 64) == 0)
            e = &set[w];
    }
    if (e == NULL)
        e = &set[a->cache_clock++ % CACHE_WAYS];
    identity_cleanup(&e->id);
    memcpy(e->hash, hash, sizeof(e->hash));
    e->issuer = issuer;
    e->exp = exp;
    e->nbf = nbf;
    identity_copy(&e->id, id);
    e->used = 1;
    pthread_mutex_unlock(&a->cache_mu);
}

/* Forgets every token of one issuer, after its key set was replaced. */
void
auth_cache_drop_issuer(struct auth *a, size_t issuer)
{
    size_t i;
    int w;

    pthread_mutex_lock(&a->cache_mu);
    for (i = 0; i < CACHE_SETS; i++) {
        for (w = 0; w < CACHE_WAYS; w++) {
            struct cache_entry *e = &a->cache[i][w];

            if (e->used && e->issuer == issuer) {
                identity_cleanup(&e->id);
                e->used = 0;
            }
        }
    }
    pthread_mutex_unlock(&a->cache_mu);
}
