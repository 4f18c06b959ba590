/*
 * Browser terminal tickets: a fixed table of SHA-256 digests under a mutex
 * (term_ticket.h). Lookups compare every live slot's digest with
 * CRYPTO_memcmp and keep going after a match, so the time taken does not
 * depend on how much of a guess was right, nor on where it sits.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "err.h"
#include "term_ticket.h"
#include "util.h"
#include "xmalloc.h"

struct slot {
    int used;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char *session;
    struct identity id;
    int read_only;
    int64_t expires_at;
};

struct term_tickets {
    pthread_mutex_t mu;
    struct slot slots[TERM_TICKET_MAX];
};

static void
slot_clear(struct slot *s)
{
    free(s->session);
    identity_cleanup(&s->id);
    memset(s, 0, sizeof(*s));
}

struct term_tickets *
term_tickets_new(void)
{
    struct term_tickets *tt = xcalloc(1, sizeof(*tt));

    pthread_mutex_init(&tt->mu, NULL);
    return tt;
}

void
term_tickets_free(struct term_tickets *tt)
{
    if (tt == NULL)
        return;
    for (size_t i = 0; i < TERM_TICKET_MAX; i++)
        if (tt->slots[i].used)
            slot_clear(&tt->slots[i]);
    pthread_mutex_destroy(&tt->mu);
    free(tt);
}

int
term_ticket_issue(struct term_tickets *tt, const char *session, const struct identity *id,
                  int read_only, int64_t now, char **ticket)
{
    struct slot *free_slot = NULL;
    char *t;

    *ticket = NULL;
    pthread_mutex_lock(&tt->mu);
    for (size_t i = 0; i < TERM_TICKET_MAX; i++) {
        struct slot *s = &tt->slots[i];

        if (s->used && s->expires_at <= now)
            slot_clear(s);
        if (!s->used && free_slot == NULL)
            free_slot = s;
    }
    if (free_slot == NULL) {
        pthread_mutex_unlock(&tt->mu);
        return ERR_TOO_MANY;
    }
    t = random_token(32);
    SHA256((const unsigned char *)t, strlen(t), free_slot->digest);
    free_slot->used = 1;
    free_slot->session = xstrdup(session);
    identity_copy(&free_slot->id, id);
    free_slot->read_only = read_only;
    free_slot->expires_at = now + TERM_TICKET_TTL_S;
    pthread_mutex_unlock(&tt->mu);
    *ticket = t;
    return 0;
}

int
term_ticket_take(struct term_tickets *tt, const char *ticket, const char *session, int64_t now,
                 struct identity *id, int *read_only)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    struct slot *hit = NULL;
    int r = ERR_NOT_FOUND;

    memset(id, 0, sizeof(*id));
    *read_only = 1;
    SHA256((const unsigned char *)ticket, strlen(ticket), d);
    pthread_mutex_lock(&tt->mu);
    for (size_t i = 0; i < TERM_TICKET_MAX; i++) {
        struct slot *s = &tt->slots[i];

        if (s->used && CRYPTO_memcmp(s->digest, d, sizeof(d)) == 0)
            hit = s;
    }
    if (hit != NULL) {
        if (hit->expires_at > now && strcmp(hit->session, session) == 0) {
            *id = hit->id; /* moved out: slot_clear must not free it */
            memset(&hit->id, 0, sizeof(hit->id));
            *read_only = hit->read_only;
            r = 0;
        }
        slot_clear(hit);
    }
    pthread_mutex_unlock(&tt->mu);
    return r;
}
