/*
 * The session view cache: each session's reply JSON, rendered once per
 * change and shared by GET /debug-sessions/{name}, the list and the replies
 * of actions. A view is immutable: the loaded struct sess (for the caller's
 * visibility check and can* flags, which differ per caller and per moment)
 * and the JSON of everything else, without its closing brace.
 *
 * Entries are dropped by the store's SQLite update hook (store.c), so no
 * code path that writes a row a view reads can forget to: a sessions row
 * drops its own entry; agents, approvals and participants rows drop them all
 * (those writes are rare: registrations, decisions, joins), and so does a
 * rollback. A reader that loaded a view from the database inserts it only if
 * nothing was dropped since it began reading (viewcache_gen), so a view
 * read before a commit can never outlive that commit. Readers load views
 * outside any transaction, holding app->lock (which writers hold from BEGIN
 * to COMMIT), so a view never holds uncommitted rows.
 *
 * Thread-safe: one mutex guards the table; views are reference counted and
 * read without it.
 */
#ifndef AIRLOCK_VIEWCACHE_H
#define AIRLOCK_VIEWCACHE_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct sess;
struct viewcache;

struct sess_view {
    struct sess *s; /* immutable once published */
    char *json;     /* "{...": the reply without can* flags and closing brace */
    size_t len;
    /* private to viewcache.c */
    atomic_uint refs;
    int cached; /* in the tables (under the cache's mutex) */
    struct sess_view *next_name, *next_rowid, *older, *newer;
};

/* A cache of at most max views (oldest dropped first). */
struct viewcache *viewcache_new(size_t max);
/* Frees the cache and its references; views still held elsewhere stay valid. NULL is fine. */
void viewcache_free(struct viewcache *vc);

/* Takes s and json (malloc'd); the new view holds one reference. */
struct sess_view *sess_view_new(struct sess *s, char *json, size_t len);
void sess_view_ref(struct sess_view *v);
/* Drops a reference; the last one frees the view and its session. NULL is fine. */
void sess_view_unref(struct sess_view *v);

/* The drop counter: read it before loading a view from the database. */
uint64_t viewcache_gen(struct viewcache *vc);
/* The cached view of session name (or rowid) with a new reference, or NULL. */
struct sess_view *viewcache_get(struct viewcache *vc, const char *name);
struct sess_view *viewcache_get_rowid(struct viewcache *vc, int64_t rowid);
/*
 * Caches v (taking a new reference) unless something was dropped since gen;
 * replaces an older view of the same session. Returns 1 if cached.
 */
int viewcache_put(struct viewcache *vc, struct sess_view *v, uint64_t gen);
void viewcache_drop_rowid(struct viewcache *vc, int64_t rowid);
void viewcache_drop_all(struct viewcache *vc);
/* Views cached now (for /metrics and tests). */
size_t viewcache_count(struct viewcache *vc);

#endif
