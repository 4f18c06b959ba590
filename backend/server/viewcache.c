/*
 * The session view cache (see viewcache.h): two chained hash tables over the
 * same entries, by name (GET) and by rowid (the list's page ids), and a list
 * from oldest to newest for eviction.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "viewcache.h"
#include "xmalloc.h"

struct viewcache {
    pthread_mutex_t mu;
    struct sess_view **by_name, **by_rowid;
    size_t mask; /* buckets - 1 (a power of two) */
    size_t n, max;
    struct sess_view *oldest, *newest;
    uint64_t gen; /* bumped by every drop */
};

static size_t
name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static size_t
rowid_hash(int64_t rowid)
{
    return (size_t)(((uint64_t)rowid * 0x9E3779B97F4A7C15ULL) >> 17);
}

struct viewcache *
viewcache_new(size_t max)
{
    struct viewcache *vc = xcalloc(1, sizeof(*vc));
    size_t buckets = 16;

    while (buckets < max)
        buckets <<= 1;
    pthread_mutex_init(&vc->mu, NULL);
    vc->by_name = xcalloc(buckets, sizeof(*vc->by_name));
    vc->by_rowid = xcalloc(buckets, sizeof(*vc->by_rowid));
    vc->mask = buckets - 1;
    vc->max = max > 0 ? max : 1;
    return vc;
}

struct sess_view *
sess_view_new(struct sess *s, char *json, size_t len)
{
    struct sess_view *v = xcalloc(1, sizeof(*v));

    v->s = s;
    v->json = json;
    v->len = len;
    atomic_init(&v->refs, 1);
    return v;
}

void
sess_view_ref(struct sess_view *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

void
sess_view_unref(struct sess_view *v)
{
    if (v == NULL || atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
        return;
    sess_free(v->s);
    free(v->json);
    free(v);
}

/* Unlinks v from both chains and the age list, and drops the cache's reference. */
static void
unlink_view(struct viewcache *vc, struct sess_view *v)
{
    struct sess_view **pp;

    for (pp = &vc->by_name[name_hash(v->s->name) & vc->mask]; *pp != v; pp = &(*pp)->next_name)
        ;
    *pp = v->next_name;
    for (pp = &vc->by_rowid[rowid_hash(v->s->rowid) & vc->mask]; *pp != v; pp = &(*pp)->next_rowid)
        ;
    *pp = v->next_rowid;
    if (v->older)
        v->older->newer = v->newer;
    else
        vc->oldest = v->newer;
    if (v->newer)
        v->newer->older = v->older;
    else
        vc->newest = v->older;
    v->next_name = v->next_rowid = v->older = v->newer = NULL;
    v->cached = 0;
    vc->n--;
    sess_view_unref(v);
}

static struct sess_view *
find_name(struct viewcache *vc, const char *name)
{
    struct sess_view *v;

    for (v = vc->by_name[name_hash(name) & vc->mask]; v; v = v->next_name)
        if (strcmp(v->s->name, name) == 0)
            return v;
    return NULL;
}

static struct sess_view *
find_rowid(struct viewcache *vc, int64_t rowid)
{
    struct sess_view *v;

    for (v = vc->by_rowid[rowid_hash(rowid) & vc->mask]; v; v = v->next_rowid)
        if (v->s->rowid == rowid)
            return v;
    return NULL;
}

void
viewcache_free(struct viewcache *vc)
{
    if (vc == NULL)
        return;
    while (vc->oldest)
        unlink_view(vc, vc->oldest);
    free(vc->by_name);
    free(vc->by_rowid);
    pthread_mutex_destroy(&vc->mu);
    free(vc);
}

uint64_t
viewcache_gen(struct viewcache *vc)
{
    uint64_t g;

    pthread_mutex_lock(&vc->mu);
    g = vc->gen;
    pthread_mutex_unlock(&vc->mu);
    return g;
}

static struct sess_view *
ref_or_null(struct sess_view *v)
{
    if (v != NULL)
        sess_view_ref(v);
    return v;
}

struct sess_view *
viewcache_get(struct viewcache *vc, const char *name)
{
    struct sess_view *v;

    pthread_mutex_lock(&vc->mu);
    v = ref_or_null(find_name(vc, name));
    pthread_mutex_unlock(&vc->mu);
    return v;
}

struct sess_view *
viewcache_get_rowid(struct viewcache *vc, int64_t rowid)
{
    struct sess_view *v;

    pthread_mutex_lock(&vc->mu);
    v = ref_or_null(find_rowid(vc, rowid));
    pthread_mutex_unlock(&vc->mu);
    return v;
}

int
viewcache_put(struct viewcache *vc, struct sess_view *v, uint64_t gen)
{
    struct sess_view *old, **head;

    pthread_mutex_lock(&vc->mu);
    if (vc->gen != gen || v->cached) {
        pthread_mutex_unlock(&vc->mu);
        return 0;
    }
    if ((old = find_name(vc, v->s->name)) != NULL)
        unlink_view(vc, old);
    if ((old = find_rowid(vc, v->s->rowid)) != NULL)
        unlink_view(vc, old);
    while (vc->n >= vc->max)
        unlink_view(vc, vc->oldest);
    sess_view_ref(v);
    head = &vc->by_name[name_hash(v->s->name) & vc->mask];
    v->next_name = *head;
    *head = v;
    head = &vc->by_rowid[rowid_hash(v->s->rowid) & vc->mask];
    v->next_rowid = *head;
    *head = v;
    v->older = vc->newest;
    if (vc->newest)
        vc->newest->newer = v;
    else
        vc->oldest = v;
    vc->newest = v;
    v->cached = 1;
    vc->n++;
    pthread_mutex_unlock(&vc->mu);
    return 1;
}

void
viewcache_drop_rowid(struct viewcache *vc, int64_t rowid)
{
    struct sess_view *v;

    pthread_mutex_lock(&vc->mu);
    vc->gen++;
    if ((v = find_rowid(vc, rowid)) != NULL)
        unlink_view(vc, v);
    pthread_mutex_unlock(&vc->mu);
}

void
viewcache_drop_all(struct viewcache *vc)
{
    pthread_mutex_lock(&vc->mu);
    vc->gen++;
    while (vc->oldest)
        unlink_view(vc, vc->oldest);
    pthread_mutex_unlock(&vc->mu);
}

size_t
viewcache_count(struct viewcache *vc)
{
    size_t n;

    pthread_mutex_lock(&vc->mu);
    n = vc->n;
    pthread_mutex_unlock(&vc->mu);
    return n;
}
