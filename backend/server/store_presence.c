/*
 * Presence (migration 0007): the live SSH connections of a session as its
 * agent last reported them (live_conns), and each participant's first
 * connection and last input. core_activity.c decides what changed; the
 * session JSON counts the rows per participant (store_sessions.c).
 */
#include <stdlib.h>

#include <sqlite3.h>

#include "err.h"
#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

void
live_conns_free(struct live_conn *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i].conn);
        free(v[i].user);
        free(v[i].role);
    }
    free(v);
}

int
store_live_conns_get(struct store *st, const char *session, struct live_conn **v, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    size_t cap = 0;
    int rc, r;

    *v = NULL;
    *n = 0;
    if ((r = store_prepare(st, &stmt,
                           "SELECT conn, user, role, since FROM live_conns WHERE session = ?1"
                           " ORDER BY since, conn")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct live_conn *c;

        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *v = xrealloc(*v, cap * sizeof(**v));
        }
        c = &(*v)[(*n)++];
        c->conn = store_col_text(stmt, 0);
        c->user = store_col_text(stmt, 1);
        c->role = store_col_text(stmt, 2);
        c->since = sqlite3_column_int64(stmt, 3);
    }
    store_finish(st, stmt);
    if (rc != SQLITE_DONE) {
        live_conns_free(*v, *n);
        *v = NULL;
        *n = 0;
        return ERR_DB;
    }
    return 0;
}

int
store_live_conns_put(struct store *st, const char *session, const struct live_conn *v, size_t n)
{
    sqlite3_stmt *stmt = NULL;
    size_t i;
    int r;

    if ((r = store_prepare(st, &stmt, "DELETE FROM live_conns WHERE session = ?1")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    for (i = 0; r == 0 && i < n; i++) {
        if ((r = store_prepare(
                 st, &stmt,
                 "INSERT OR REPLACE INTO live_conns (session, conn, user, role, since)"
                 " VALUES (?1, ?2, ?3, ?4, ?5)")) != 0)
            return r;
        store_bind_text(stmt, 1, session);
        store_bind_text(stmt, 2, v[i].conn);
        store_bind_text(stmt, 3, v[i].user);
        store_bind_text(stmt, 4, v[i].role);
        sqlite3_bind_int64(stmt, 5, v[i].since);
        r = store_step_done(st, stmt);
        store_finish(st, stmt);
    }
    return r;
}

int
store_participant_presence(struct store *st, const char *session, const char *user,
                           int64_t first_connected_at, int64_t last_input_at)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "UPDATE participants SET"
                           " first_connected_at = coalesce(first_connected_at, ?3),"
                           " last_input_at = max(coalesce(last_input_at, 0), coalesce(?4, 0))"
                           " WHERE session = ?1 AND user = ?2")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    store_bind_text(stmt, 2, user);
    store_bind_time(stmt, 3, first_connected_at);
    store_bind_time(stmt, 4, last_input_at);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}
