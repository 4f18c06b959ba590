/*
 * PURE: open connections and per-address counts (see conntab.h). The
 * records form one list (the sweep walks it: at most the daemon's connection
 * limit, a few thousand, twice a second); the counts are a chained hash of
 * addresses with at least one capped connection, an entry freed when its
 * count drops to zero.
 */
#include <stdlib.h>

#include "conntab.h"
#include "xmalloc.h"

#define N_CHAINS 1024

struct count {
    struct caddr a;
    unsigned n;
    struct count *next;
};

struct conntab {
    struct conn_rec *head;
    size_t n;
    struct count *chains[N_CHAINS];
};

static struct count **find(struct conntab *t, const struct caddr *a);

struct conntab *
conntab_new(void)
{
    return xcalloc(1, sizeof(struct conntab));
}

void
conntab_free(struct conntab *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < N_CHAINS; i++) {
        struct count *c = t->chains[i], *next;

        for (; c != NULL; c = next) {
            next = c->next;
            free(c);
        }
    }
    free(t);
}

unsigned
conntab_count(const struct conntab *t, const struct caddr *a)
{
    struct count **pp = find((struct conntab *)t, a);

    return *pp ? (*pp)->n : 0;
}

void
conntab_add(struct conntab *t, struct conn_rec *rec)
{
    rec->prev = NULL;
    rec->next = t->head;
    if (t->head != NULL)
        t->head->prev = rec;
    t->head = rec;
    t->n++;
    if (rec->capped) {
        struct count **pp = find(t, &rec->key);

        if (*pp == NULL) {
            *pp = xcalloc(1, sizeof(**pp));
            (*pp)->a = rec->key;
        }
        (*pp)->n++;
    }
}

void
conntab_del(struct conntab *t, struct conn_rec *rec)
{
    if (rec->prev != NULL)
        rec->prev->next = rec->next;
    else
        t->head = rec->next;
    if (rec->next != NULL)
        rec->next->prev = rec->prev;
    rec->prev = rec->next = NULL;
    t->n--;
    if (rec->capped) {
        struct count **pp = find(t, &rec->key), *c = *pp;

        if (c == NULL || c->n == 0)
            return; /* never counted: cannot happen, and must not go negative */
        if (--c->n == 0) {
            *pp = c->next;
            free(c);
        }
    }
}

void
conntab_phase(struct conn_rec *rec, enum conn_phase phase, int64_t now_ms)
{
    rec->phase = phase;
    rec->since_ms = now_ms;
}

size_t
conntab_sweep(struct conntab *t, int64_t now_ms, int64_t deadline_ms, int64_t idle_ms,
              void (*fn)(struct conn_rec *rec, void *arg), void *arg)
{
    struct conn_rec *rec;
    size_t n = 0;

    for (rec = t->head; rec != NULL; rec = rec->next) {
        int64_t limit = rec->phase == CONN_RECEIVING ? deadline_ms
                        : rec->phase == CONN_IDLE    ? idle_ms
                                                     : 0;

        if (rec->swept || limit <= 0 || now_ms - rec->since_ms <= limit)
            continue;
        rec->swept = 1;
        fn(rec, arg);
        n++;
    }
    return n;
}

size_t
conntab_size(const struct conntab *t)
{
    return t->n;
}

/* ------------------------------------------------------------------------ */

/* The link that holds a's count, or the NULL link at the end of its chain. */
static struct count **
find(struct conntab *t, const struct caddr *a)
{
    struct count **pp = &t->chains[clientaddr_hash(a) % N_CHAINS];

    while (*pp != NULL && !clientaddr_eq(&(*pp)->a, a))
        pp = &(*pp)->next;
    return pp;
}
