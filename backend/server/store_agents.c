/* Registered agents. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

#define AGENT_COLS                                                                                 \
    "name, labels, host_keys, version, registered_by, registered_at, last_seen_at,"                \
    " credential_hash, online, offline_since"

void
agent_rec_free(struct agent_rec *a)
{
    if (a == NULL)
        return;
    free(a->name);
    json_decref(a->labels);
    json_decref(a->host_keys);
    free(a->version);
    free(a->registered_by);
    free(a->credential_hash);
    free(a);
}

void
agent_list_free(struct agent_rec **list, size_t n)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < n; i++)
        agent_rec_free(list[i]);
    free(list);
}

static struct agent_rec *
row_to_agent(sqlite3_stmt *stmt)
{
    struct agent_rec *a = xcalloc(1, sizeof(*a));

    a->name = store_col_text(stmt, 0);
    a->labels = store_col_json(stmt, 1, json_object());
    a->host_keys = store_col_json(stmt, 2, json_array());
    a->version = store_col_text(stmt, 3);
    a->registered_by = store_col_text(stmt, 4);
    a->registered_at = sqlite3_column_int64(stmt, 5);
    a->last_seen_at = sqlite3_column_int64(stmt, 6);
    a->credential_hash = store_col_text(stmt, 7);
    a->online = sqlite3_column_int(stmt, 8);
    a->offline_since = sqlite3_column_int64(stmt, 9);
    return a;
}

int
store_agent_get(struct store *st, const char *name, struct agent_rec **ap)
{
    sqlite3_stmt *stmt = NULL;
    int rc, r;

    *ap = NULL;
    if ((r = store_prepare(st, &stmt, "SELECT " AGENT_COLS " FROM agents WHERE name = ?1")) != 0)
        return r;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *ap = row_to_agent(stmt);
    r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? ERR_NOT_FOUND : ERR_DB;
    store_finish(st, stmt);
    return r;
}

int
store_agent_put(struct store *st, const struct agent_rec *a)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "INSERT OR REPLACE INTO agents (" AGENT_COLS ") VALUES (?1, ?2, ?3, ?4,"
                           " ?5, ?6, ?7, ?8, ?9, ?10)")) != 0)
        return r;
    store_bind_text(stmt, 1, a->name);
    store_bind_json(stmt, 2, a->labels);
    store_bind_json(stmt, 3, a->host_keys);
    store_bind_text(stmt, 4, a->version);
    store_bind_text(stmt, 5, a->registered_by);
    sqlite3_bind_int64(stmt, 6, a->registered_at);
    store_bind_time(stmt, 7, a->last_seen_at);
    store_bind_text(stmt, 8, a->credential_hash);
    sqlite3_bind_int(stmt, 9, a->online);
    store_bind_time(stmt, 10, a->offline_since);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

int
store_agent_set_online(struct store *st, const char *name, int online, int64_t now)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           online ? "UPDATE agents SET online = 1, offline_since = NULL,"
                                    " last_seen_at = ?2 WHERE name = ?1"
                                  : "UPDATE agents SET online = 0, offline_since = ?2,"
                                    " last_seen_at = ?2 WHERE name = ?1")) != 0)
        return r;
    store_bind_text(stmt, 1, name);
    sqlite3_bind_int64(stmt, 2, now);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

int
store_agents_all_offline(struct store *st, int64_t now)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    /* After a restart nobody is connected; the grace period starts now. */
    if ((r = store_prepare(st, &stmt,
                           "UPDATE agents SET online = 0, offline_since ="
                           " coalesce(offline_since, ?1)")) != 0)
        return r;
    sqlite3_bind_int64(stmt, 1, now);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

int
store_agent_list(struct store *st, struct agent_rec ***list, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    struct agent_rec **out = NULL;
    size_t cnt = 0, cap = 0;
    int rc, r;

    *list = NULL;
    *n = 0;
    if ((r = store_prepare(st, &stmt, "SELECT " AGENT_COLS " FROM agents ORDER BY name")) != 0)
        return r;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            out = xrealloc(out, cap * sizeof(*out));
        }
        out[cnt++] = row_to_agent(stmt);
    }
    store_finish(st, stmt);
    if (rc != SQLITE_DONE) {
        agent_list_free(out, cnt);
        return ERR_DB;
    }
    *list = out;
    *n = cnt;
    return 0;
}
