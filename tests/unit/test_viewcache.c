/*
 * viewcache.c on its own: lookups by name and rowid, the drop counter that
 * refuses a view read before a drop, replacement, drops, eviction and the
 * reference counts that keep a view readable for whoever holds it. Views are
 * built from bare struct sess values (name and rowid only, heap-allocated the
 * way sess_free expects); ASan checks that nothing is freed early or leaked.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "viewcache.h"
#include "xmalloc.h"

/* A view of session name/rowid whose JSON names both, so readers can check they got the right one. */
static struct sess_view *
mkview(const char *name, int64_t rowid)
{
    struct sess *s = xcalloc(1, sizeof(*s));
    char *json;

    s->name = xstrdup(name);
    s->rowid = rowid;
    json = xasprintf("{\"name\":\"%s\",\"rowid\":%lld", name, (long long)rowid);
    return sess_view_new(s, json, strlen(json));
}

/* Checks that v is the view mkview(name, rowid) made (ASan: and that it is still allocated). */
static void
assert_view(const struct sess_view *v, const char *name, int64_t rowid)
{
    char want[128];

    assert_non_null(v);
    snprintf(want, sizeof(want), "{\"name\":\"%s\",\"rowid\":%lld", name, (long long)rowid);
    assert_string_equal(v->s->name, name);
    assert_int_equal(v->s->rowid, rowid);
    assert_string_equal(v->json, want);
    assert_int_equal(v->len, strlen(want));
}

/* Puts a new view with the current gen; the cache keeps the only reference. */
static void
put_new(struct viewcache *vc, const char *name, int64_t rowid)
{
    struct sess_view *v = mkview(name, rowid);

    assert_int_equal(viewcache_put(vc, v, viewcache_gen(vc)), 1);
    sess_view_unref(v);
}

/* 1 if name is cached and is the view of rowid (by both keys), 0 if cached under neither. */
static int
cached(struct viewcache *vc, const char *name, int64_t rowid)
{
    struct sess_view *a = viewcache_get(vc, name), *b = viewcache_get_rowid(vc, rowid);
    int r;

    if (a == NULL && b == NULL)
        return 0;
    if (a == NULL || b == NULL || a != b)
        fail_msg("%s/%lld: by name %p, by rowid %p", name, (long long)rowid, (void *)a, (void *)b);
    assert_view(a, name, rowid);
    r = 1;
    sess_view_unref(a);
    sess_view_unref(b);
    return r;
}

static void
test_viewcache_get_after_put(void **state)
{
    struct viewcache *vc = viewcache_new(16);
    struct sess_view *v = mkview("ds-a", 7), *got;
    (void)state;

    assert_int_equal(viewcache_count(vc), 0);
    assert_null(viewcache_get(vc, "ds-a"));
    assert_null(viewcache_get_rowid(vc, 7));
    assert_int_equal(viewcache_put(vc, v, viewcache_gen(vc)), 1);
    assert_int_equal(viewcache_count(vc), 1);

    got = viewcache_get(vc, "ds-a");
    assert_ptr_equal(got, v);
    assert_view(got, "ds-a", 7);
    sess_view_unref(got);
    got = viewcache_get_rowid(vc, 7);
    assert_ptr_equal(got, v);
    sess_view_unref(got);

    /* unknown keys, including near misses */
    assert_null(viewcache_get(vc, "ds-b"));
    assert_null(viewcache_get(vc, "ds-"));
    assert_null(viewcache_get(vc, "ds-aa"));
    assert_null(viewcache_get(vc, ""));
    assert_null(viewcache_get_rowid(vc, 8));
    assert_null(viewcache_get_rowid(vc, 0));
    assert_null(viewcache_get_rowid(vc, -7));

    /* putting the same view again is refused and changes nothing */
    assert_int_equal(viewcache_put(vc, v, viewcache_gen(vc)), 0);
    assert_int_equal(viewcache_count(vc), 1);
    assert_int_equal(cached(vc, "ds-a", 7), 1);

    sess_view_unref(v);
    assert_int_equal(cached(vc, "ds-a", 7), 1); /* the cache's own reference keeps it */
    viewcache_free(vc);
    viewcache_free(NULL);
    sess_view_unref(NULL);
}

/*
 * The race guard: a reader reads gen, loads a view from the database, and
 * puts it. If any drop happened in between (a writer committed), the view may
 * predate that write and must not be cached.
 */
static void
test_viewcache_put_refused_when_gen_stale(void **state)
{
    struct viewcache *vc = viewcache_new(16);
    struct sess_view *v;
    uint64_t g0, g1, g2;
    (void)state;

    put_new(vc, "ds-other", 2);
    g0 = viewcache_gen(vc);
    assert_int_equal(viewcache_gen(vc), g0); /* reading it changes nothing */
    assert_int_equal(viewcache_count(vc), 1);

    /* a drop of an unrelated (even uncached) rowid after the read: refused */
    viewcache_drop_rowid(vc, 999);
    g1 = viewcache_gen(vc);
    assert_true(g1 != g0);
    v = mkview("ds-a", 1);
    assert_int_equal(viewcache_put(vc, v, g0), 0);
    assert_null(viewcache_get(vc, "ds-a"));
    assert_null(viewcache_get_rowid(vc, 1));
    assert_int_equal(viewcache_count(vc), 1);
    assert_int_equal(cached(vc, "ds-other", 2), 1); /* a refused put leaves the rest alone */
    /* the refused view is the caller's, intact */
    assert_view(v, "ds-a", 1);

    /* with the gen read after the drop it goes in */
    assert_int_equal(viewcache_put(vc, v, g1), 1);
    assert_int_equal(cached(vc, "ds-a", 1), 1);
    sess_view_unref(v);

    /* drop_all after the read: refused too */
    v = mkview("ds-b", 3);
    viewcache_drop_all(vc);
    g2 = viewcache_gen(vc);
    assert_true(g2 != g1);
    assert_int_equal(viewcache_put(vc, v, g1), 0);
    assert_int_equal(viewcache_count(vc), 0);
    /* dropping the rowid of the very view being loaded: refused */
    viewcache_drop_rowid(vc, 3);
    assert_int_equal(viewcache_put(vc, v, g2), 0);
    assert_null(viewcache_get(vc, "ds-b"));
    /* several drops: still refused with any older gen */
    viewcache_drop_rowid(vc, 3);
    assert_int_equal(viewcache_put(vc, v, g0), 0);
    assert_int_equal(viewcache_put(vc, v, g1), 0);
    assert_int_equal(viewcache_put(vc, v, viewcache_gen(vc) + 1), 0); /* nor a gen not yet reached */
    assert_int_equal(viewcache_count(vc), 0);
    assert_int_equal(viewcache_put(vc, v, viewcache_gen(vc)), 1);
    assert_int_equal(cached(vc, "ds-b", 3), 1);
    sess_view_unref(v);

    /* gets, puts and evictions are not drops: a gen read before them still holds */
    g0 = viewcache_gen(vc);
    {
        struct viewcache *small = viewcache_new(1);
        uint64_t gs = viewcache_gen(small);

        put_new(small, "ds-x", 10);
        put_new(small, "ds-y", 11); /* evicts ds-x */
        v = mkview("ds-z", 12);
        assert_int_equal(viewcache_put(small, v, gs), 1);
        sess_view_unref(v);
        assert_int_equal(viewcache_count(small), 1);
        assert_int_equal(cached(small, "ds-z", 12), 1);
        viewcache_free(small);
    }
    put_new(vc, "ds-c", 4);
    assert_int_equal(cached(vc, "ds-c", 4), 1);
    v = mkview("ds-d", 5);
    assert_int_equal(viewcache_put(vc, v, g0), 1);
    sess_view_unref(v);
    assert_int_equal(viewcache_count(vc), 3);
    viewcache_free(vc);
}

/* A new view of the same session replaces the old one, which stays valid for its holders. */
static void
test_viewcache_put_replaces(void **state)
{
    struct viewcache *vc = viewcache_new(16);
    struct sess_view *v1 = mkview("ds-a", 1), *v2 = mkview("ds-a", 1), *held, *got;
    (void)state;

    free(v2->json);
    v2->json = xstrdup("{\"name\":\"ds-a\",\"v\":2");
    v2->len = strlen(v2->json);
    assert_int_equal(viewcache_put(vc, v1, viewcache_gen(vc)), 1);
    held = viewcache_get(vc, "ds-a"); /* a reader holds it ... */
    assert_ptr_equal(held, v1);
    sess_view_unref(v1);              /* ... and is its only holder besides the cache */

    assert_int_equal(viewcache_put(vc, v2, viewcache_gen(vc)), 1);
    assert_int_equal(viewcache_count(vc), 1);
    got = viewcache_get(vc, "ds-a");
    assert_ptr_equal(got, v2);
    assert_string_equal(got->json, "{\"name\":\"ds-a\",\"v\":2");
    sess_view_unref(got);
    got = viewcache_get_rowid(vc, 1);
    assert_ptr_equal(got, v2);
    sess_view_unref(got);
    /* the replaced view: out of the cache, still whole for the reader */
    assert_view(held, "ds-a", 1);
    sess_view_unref(held);             /* the last reference: freed here */
    sess_view_unref(v2);

    /* same name, new rowid (the session deleted and created again): replaced under both keys */
    put_new(vc, "ds-a", 9);
    assert_int_equal(viewcache_count(vc), 1);
    assert_null(viewcache_get_rowid(vc, 1));
    assert_int_equal(cached(vc, "ds-a", 9), 1);

    /* same rowid, new name (a rowid reused): the old name goes too */
    put_new(vc, "ds-b", 9);
    assert_int_equal(viewcache_count(vc), 1);
    assert_null(viewcache_get(vc, "ds-a"));
    assert_int_equal(cached(vc, "ds-b", 9), 1);

    /* a view matching two different entries (one by name, one by rowid) replaces both */
    put_new(vc, "ds-c", 3);
    assert_int_equal(viewcache_count(vc), 2);
    put_new(vc, "ds-c", 9);
    assert_int_equal(viewcache_count(vc), 1);
    assert_null(viewcache_get(vc, "ds-b"));
    assert_null(viewcache_get_rowid(vc, 3));
    assert_int_equal(cached(vc, "ds-c", 9), 1);
    viewcache_free(vc);
}

static void
test_viewcache_drop_rowid(void **state)
{
    struct viewcache *vc = viewcache_new(64);
    char name[32];
    int64_t i;
    (void)state;

    /* more entries than buckets, so chains are long and drops unlink from their middles */
    for (i = 1; i <= 40; i++) {
        snprintf(name, sizeof(name), "ds-%03lld", (long long)i);
        put_new(vc, name, i);
    }
    assert_int_equal(viewcache_count(vc), 40);
    viewcache_drop_rowid(vc, 17);
    assert_int_equal(viewcache_count(vc), 39);
    assert_null(viewcache_get(vc, "ds-017"));
    assert_null(viewcache_get_rowid(vc, 17));
    for (i = 1; i <= 40; i++) {
        snprintf(name, sizeof(name), "ds-%03lld", (long long)i);
        assert_int_equal(cached(vc, name, i), i != 17);
    }
    /* an unknown rowid, or one already dropped: nothing else goes */
    viewcache_drop_rowid(vc, 17);
    viewcache_drop_rowid(vc, 1000);
    viewcache_drop_rowid(vc, 0);
    assert_int_equal(viewcache_count(vc), 39);
    /* drop every third, oldest and newest included */
    for (i = 1; i <= 40; i += 3)
        viewcache_drop_rowid(vc, i);
    viewcache_drop_rowid(vc, 40);
    for (i = 1; i <= 40; i++) {
        snprintf(name, sizeof(name), "ds-%03lld", (long long)i);
        assert_int_equal(cached(vc, name, i), i != 17 && i % 3 != 1 && i != 40);
    }
    assert_int_equal(viewcache_count(vc), 40 - 1 - 14); /* 1, 4, ..., 40 and 17 */
    /* the age list survived the unlinks: filling up evicts the oldest left, never a dropped one */
    for (i = 41; i <= 79; i++) {
        snprintf(name, sizeof(name), "ds-%03lld", (long long)i);
        put_new(vc, name, i);
    }
    assert_int_equal(viewcache_count(vc), 64);
    put_new(vc, "ds-082", 82);
    assert_int_equal(viewcache_count(vc), 64);
    assert_int_equal(cached(vc, "ds-002", 2), 0);
    assert_int_equal(cached(vc, "ds-003", 3), 1);
    assert_int_equal(cached(vc, "ds-082", 82), 1);
    viewcache_free(vc);
}

static void
test_viewcache_drop_all(void **state)
{
    struct viewcache *vc = viewcache_new(8);
    (void)state;

    viewcache_drop_all(vc); /* empty: fine */
    put_new(vc, "ds-a", 1);
    put_new(vc, "ds-b", 2);
    put_new(vc, "ds-c", 3);
    assert_int_equal(viewcache_count(vc), 3);
    viewcache_drop_all(vc);
    assert_int_equal(viewcache_count(vc), 0);
    assert_int_equal(cached(vc, "ds-a", 1), 0);
    assert_int_equal(cached(vc, "ds-b", 2), 0);
    assert_int_equal(cached(vc, "ds-c", 3), 0);
    /* usable afterwards */
    put_new(vc, "ds-b", 2);
    assert_int_equal(viewcache_count(vc), 1);
    assert_int_equal(cached(vc, "ds-b", 2), 1);
    viewcache_free(vc);
}

/* At most max views: the oldest goes first. */
static void
test_viewcache_eviction(void **state)
{
    struct viewcache *vc = viewcache_new(3);
    (void)state;

    put_new(vc, "ds-1", 1);
    put_new(vc, "ds-2", 2);
    put_new(vc, "ds-3", 3);
    assert_int_equal(viewcache_count(vc), 3);
    put_new(vc, "ds-4", 4);
    assert_int_equal(viewcache_count(vc), 3);
    assert_int_equal(cached(vc, "ds-1", 1), 0);
    assert_int_equal(cached(vc, "ds-2", 2), 1);
    assert_int_equal(cached(vc, "ds-3", 3), 1);
    assert_int_equal(cached(vc, "ds-4", 4), 1);

    /* a replacement makes room itself: nothing else is evicted */
    put_new(vc, "ds-2", 2);
    assert_int_equal(viewcache_count(vc), 3);
    assert_int_equal(cached(vc, "ds-3", 3), 1);
    assert_int_equal(cached(vc, "ds-4", 4), 1);
    /* and the replaced view is the newest now: ds-3 is the oldest */
    put_new(vc, "ds-5", 5);
    assert_int_equal(cached(vc, "ds-3", 3), 0);
    assert_int_equal(cached(vc, "ds-4", 4), 1);
    assert_int_equal(cached(vc, "ds-2", 2), 1);
    assert_int_equal(cached(vc, "ds-5", 5), 1);

    /* a dropped entry leaves the age list: the next eviction takes the right one */
    viewcache_drop_rowid(vc, 2);
    put_new(vc, "ds-6", 6);
    assert_int_equal(viewcache_count(vc), 3);
    put_new(vc, "ds-7", 7);
    assert_int_equal(viewcache_count(vc), 3);
    assert_int_equal(cached(vc, "ds-4", 4), 0);
    assert_int_equal(cached(vc, "ds-5", 5), 1);
    assert_int_equal(cached(vc, "ds-6", 6), 1);
    assert_int_equal(cached(vc, "ds-7", 7), 1);
    viewcache_free(vc);

    /* max 0 still caches one */
    vc = viewcache_new(0);
    put_new(vc, "ds-1", 1);
    assert_int_equal(viewcache_count(vc), 1);
    put_new(vc, "ds-2", 2);
    assert_int_equal(viewcache_count(vc), 1);
    assert_int_equal(cached(vc, "ds-2", 2), 1);
    viewcache_free(vc);

    /* a large cache, filled past max */
    vc = viewcache_new(100);
    {
        char name[32];
        int64_t i;

        for (i = 1; i <= 250; i++) {
            snprintf(name, sizeof(name), "ds-%lld", (long long)i);
            put_new(vc, name, i);
        }
        assert_int_equal(viewcache_count(vc), 100);
        for (i = 1; i <= 250; i++) {
            snprintf(name, sizeof(name), "ds-%lld", (long long)i);
            assert_int_equal(cached(vc, name, i), i > 150);
        }
    }
    viewcache_free(vc);
}

/* A view a reader holds outlives its entry, any drop and the cache itself. */
static void
test_viewcache_refcounts(void **state)
{
    struct viewcache *vc = viewcache_new(4);
    struct sess_view *a, *b, *c, *c2, *mine;
    (void)state;

    put_new(vc, "ds-a", 1);
    put_new(vc, "ds-b", 2);
    put_new(vc, "ds-c", 3);
    a = viewcache_get(vc, "ds-a");
    b = viewcache_get_rowid(vc, 2);
    c = viewcache_get(vc, "ds-c");
    c2 = viewcache_get_rowid(vc, 3); /* two references to one view */
    assert_ptr_equal(c, c2);

    viewcache_drop_rowid(vc, 1);
    assert_view(a, "ds-a", 1);
    viewcache_drop_all(vc);
    assert_int_equal(viewcache_count(vc), 0);
    assert_view(a, "ds-a", 1);
    assert_view(b, "ds-b", 2);
    assert_view(c, "ds-c", 3);
    sess_view_unref(a);

    /* cached again after a drop, then the cache is freed under its readers */
    assert_int_equal(viewcache_put(vc, b, viewcache_gen(vc)), 1);
    mine = mkview("ds-d", 4);
    assert_int_equal(viewcache_put(vc, mine, viewcache_gen(vc)), 1);
    viewcache_free(vc);
    assert_view(b, "ds-b", 2);
    assert_view(c, "ds-c", 3);
    assert_view(mine, "ds-d", 4);
    sess_view_unref(b);
    sess_view_unref(c);
    assert_view(c2, "ds-c", 3);
    sess_view_unref(c2);
    sess_view_unref(mine);

    /* explicit refs: the view lives until the last unref */
    mine = mkview("ds-e", 5);
    sess_view_ref(mine);
    sess_view_ref(mine);
    sess_view_unref(mine);
    sess_view_unref(mine);
    assert_view(mine, "ds-e", 5);
    sess_view_unref(mine);
}

static void
test_viewcache_count(void **state)
{
    struct viewcache *vc = viewcache_new(5);
    struct sess_view *v;
    (void)state;

    assert_int_equal(viewcache_count(vc), 0);
    put_new(vc, "ds-a", 1);
    put_new(vc, "ds-b", 2);
    assert_int_equal(viewcache_count(vc), 2);
    put_new(vc, "ds-a", 1);           /* replacement */
    assert_int_equal(viewcache_count(vc), 2);
    v = mkview("ds-c", 3);
    viewcache_drop_rowid(vc, 99);
    assert_int_equal(viewcache_put(vc, v, viewcache_gen(vc) - 1), 0); /* refused */
    assert_int_equal(viewcache_count(vc), 2);
    sess_view_unref(v);
    viewcache_drop_rowid(vc, 99);     /* not cached */
    assert_int_equal(viewcache_count(vc), 2);
    viewcache_drop_rowid(vc, 2);
    assert_int_equal(viewcache_count(vc), 1);
    v = viewcache_get(vc, "ds-a");    /* gets do not count */
    assert_int_equal(viewcache_count(vc), 1);
    sess_view_unref(v);
    put_new(vc, "ds-b", 2);
    put_new(vc, "ds-c", 3);
    put_new(vc, "ds-d", 4);
    put_new(vc, "ds-e", 5);
    put_new(vc, "ds-f", 6);
    assert_int_equal(viewcache_count(vc), 5); /* max */
    viewcache_drop_all(vc);
    assert_int_equal(viewcache_count(vc), 0);
    viewcache_free(vc);
}

/*
 * Readers, writers and droppers at once (the cache is shared by the HTTP
 * threads): every view a reader gets is whole and is the one it asked for,
 * and the count never exceeds max. ASan catches a view freed under a reader.
 */
#define RACE_THREADS 4
#define RACE_ITERS 20000
#define RACE_KEYS 24

struct race {
    struct viewcache *vc;
    unsigned seed;
    int bad;
};

static void *
race_thread(void *arg)
{
    struct race *r = arg;
    unsigned x = r->seed;
    int i;

    for (i = 0; i < RACE_ITERS; i++) {
        int64_t k;
        char name[32];
        struct sess_view *v;

        x = x * 1103515245u + 12345u;
        k = (int64_t)((x >> 8) % RACE_KEYS) + 1;
        snprintf(name, sizeof(name), "ds-%lld", (long long)k);
        switch ((x >> 20) % 8) {
        case 0: case 1: case 2:
            if ((v = viewcache_get(r->vc, name)) != NULL) {
                if (v->s->rowid != k || strcmp(v->s->name, name) != 0 || v->json[0] != '{')
                    r->bad++;
                sess_view_unref(v);
            }
            break;
        case 3: case 4:
            if ((v = viewcache_get_rowid(r->vc, k)) != NULL) {
                if (v->s->rowid != k || strcmp(v->s->name, name) != 0)
                    r->bad++;
                sess_view_unref(v);
            }
            break;
        case 5: case 6: {
            uint64_t g = viewcache_gen(r->vc);

            v = mkview(name, k);
            (void)viewcache_put(r->vc, v, g);
            sess_view_unref(v);
            break;
        }
        default:
            if ((x >> 4) % 16 == 0)
                viewcache_drop_all(r->vc);
            else
                viewcache_drop_rowid(r->vc, k);
        }
        if (viewcache_count(r->vc) > 16)
            r->bad++;
    }
    return NULL;
}

static void
test_viewcache_threads(void **state)
{
    struct viewcache *vc = viewcache_new(16);
    struct race r[RACE_THREADS];
    pthread_t t[RACE_THREADS];
    int i;
    (void)state;

    for (i = 0; i < RACE_THREADS; i++) {
        r[i].vc = vc;
        r[i].seed = 7919u * (unsigned)(i + 1);
        r[i].bad = 0;
        assert_int_equal(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
    }
    for (i = 0; i < RACE_THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(r[i].bad, 0);
    }
    assert_true(viewcache_count(vc) <= 16);
    viewcache_free(vc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_viewcache_get_after_put),
        cmocka_unit_test(test_viewcache_put_refused_when_gen_stale),
        cmocka_unit_test(test_viewcache_put_replaces),
        cmocka_unit_test(test_viewcache_drop_rowid),
        cmocka_unit_test(test_viewcache_drop_all),
        cmocka_unit_test(test_viewcache_eviction),
        cmocka_unit_test(test_viewcache_refcounts),
        cmocka_unit_test(test_viewcache_count),
        cmocka_unit_test(test_viewcache_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
