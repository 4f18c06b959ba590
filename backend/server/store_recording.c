/* Recordings and their chunks (store_recording.h, migration 0008). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "store_int.h"
#include "store_recording.h"
#include "xmalloc.h"

static void
copy_col(sqlite3_stmt *stmt, int i, char *out, size_t out_len)
{
    const char *s = (const char *)sqlite3_column_text(stmt, i);

    snprintf(out, out_len, "%s", s ? s : "");
}

int
store_rec_get(struct store *st, const char *session, struct rec_row *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc, r;

    memset(out, 0, sizeof(*out));
    if ((r = store_prepare(st, &stmt,
                           "SELECT state, bytes, chunks, chain, integrity, reason, started_at,"
                           " finished_at FROM recordings WHERE session = ?1")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    if ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        copy_col(stmt, 0, out->state, sizeof(out->state));
        out->bytes = sqlite3_column_int64(stmt, 1);
        out->chunks = sqlite3_column_int64(stmt, 2);
        copy_col(stmt, 3, out->chain, sizeof(out->chain));
        copy_col(stmt, 4, out->integrity, sizeof(out->integrity));
        out->reason = store_col_text(stmt, 5);
        out->started_at = sqlite3_column_int64(stmt, 6);
        out->finished_at = sqlite3_column_int64(stmt, 7);
        r = 0;
    } else {
        r = rc == SQLITE_DONE ? ERR_NOT_FOUND : ERR_DB;
    }
    store_finish(st, stmt);
    return r;
}

int
store_rec_create(struct store *st, const char *session, int64_t now)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    /* The session's rowid as the id: the update hook drops that session's view. */
    if ((r = store_prepare(st, &stmt,
                           "INSERT INTO recordings (id, session, state, started_at)"
                           " SELECT rowid, name, 'recording', ?2 FROM sessions WHERE name = ?1")) !=
        0)
        return r;
    store_bind_text(stmt, 1, session);
    sqlite3_bind_int64(stmt, 2, now);
    r = store_step_done(st, stmt);
    if (r == 0 && sqlite3_changes(store_db(st)) == 0)
        r = ERR_NOT_FOUND;
    store_finish(st, stmt);
    return r;
}

int
store_rec_chunk_add(struct store *st, const char *session, int64_t seq, const struct rec_chunk *c,
                    int64_t now)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "INSERT INTO recording_chunks (session, seq, offset, len, sha256, chain,"
                           " at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    sqlite3_bind_int64(stmt, 2, seq);
    sqlite3_bind_int64(stmt, 3, c->offset);
    sqlite3_bind_int64(stmt, 4, c->len);
    store_bind_text(stmt, 5, c->sha256);
    store_bind_text(stmt, 6, c->chain);
    sqlite3_bind_int64(stmt, 7, now);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    if (r != 0)
        return r;
    if ((r = store_prepare(st, &stmt,
                           "UPDATE recordings SET bytes = ?2, chunks = ?3, chain = ?4"
                           " WHERE session = ?1")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    sqlite3_bind_int64(stmt, 2, c->offset + c->len);
    sqlite3_bind_int64(stmt, 3, seq + 1);
    store_bind_text(stmt, 4, c->chain);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

static void
chunk_from(sqlite3_stmt *stmt, struct rec_chunk *c)
{
    c->offset = sqlite3_column_int64(stmt, 0);
    c->len = sqlite3_column_int64(stmt, 1);
    copy_col(stmt, 2, c->sha256, sizeof(c->sha256));
    copy_col(stmt, 3, c->chain, sizeof(c->chain));
}

int
store_rec_chunk_get(struct store *st, const char *session, int64_t seq, struct rec_chunk *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc, r;

    memset(out, 0, sizeof(*out));
    if ((r = store_prepare(st, &stmt,
                           "SELECT offset, len, sha256, chain FROM recording_chunks"
                           " WHERE session = ?1 AND seq = ?2")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    sqlite3_bind_int64(stmt, 2, seq);
    if ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        chunk_from(stmt, out);
        r = 0;
    } else {
        r = rc == SQLITE_DONE ? ERR_NOT_FOUND : ERR_DB;
    }
    store_finish(st, stmt);
    return r;
}

int
store_rec_chunks(struct store *st, const char *session, struct rec_chunk **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    struct rec_chunk *v = NULL;
    size_t cap = 0, k = 0;
    int rc, r;

    *out = NULL;
    *n = 0;
    if ((r = store_prepare(st, &stmt,
                           "SELECT offset, len, sha256, chain FROM recording_chunks"
                           " WHERE session = ?1 ORDER BY seq")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (k == cap) {
            cap = cap ? cap * 2 : 64;
            v = xrealloc(v, cap * sizeof(*v));
        }
        chunk_from(stmt, &v[k++]);
    }
    store_finish(st, stmt);
    if (rc != SQLITE_DONE) {
        free(v);
        return ERR_DB;
    }
    *out = v;
    *n = k;
    return 0;
}

int
store_rec_end(struct store *st, const char *session, const char *state, const char *reason,
              int64_t now)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "UPDATE recordings SET state = ?2, reason = ?3, finished_at = ?4"
                           " WHERE session = ?1")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    store_bind_text(stmt, 2, state);
    store_bind_text(stmt, 3, reason);
    sqlite3_bind_int64(stmt, 4, now);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

int
store_rec_set_integrity(struct store *st, const char *session, const char *integrity)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "UPDATE recordings SET integrity = ?2"
                           " WHERE session = ?1 AND integrity <> ?2")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    store_bind_text(stmt, 2, integrity);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

int
store_rec_names_ended_before(struct store *st, int64_t t, int open, char ***names, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    char **v = NULL;
    size_t cap = 0, k = 0;
    int rc, r;

    *names = NULL;
    *n = 0;
    if ((r = store_prepare(st, &stmt,
                           "SELECT recordings.session FROM recordings JOIN sessions"
                           " ON sessions.name = recordings.session"
                           " WHERE sessions.ended_at IS NOT NULL AND sessions.ended_at < ?1"
                           " AND (?2 = 0 OR recordings.state = 'recording')")) != 0)
        return r;
    sqlite3_bind_int64(stmt, 1, t);
    sqlite3_bind_int(stmt, 2, open);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (k == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[k++] = store_col_text(stmt, 0);
    }
    store_finish(st, stmt);
    if (rc != SQLITE_DONE) {
        while (k > 0)
            free(v[--k]);
        free(v);
        return ERR_DB;
    }
    *names = v;
    *n = k;
    return 0;
}

json_t *
store_rec_status_json(struct store *st, const char *session)
{
    struct rec_row row;
    json_t *j;

    if (store_rec_get(st, session, &row) != 0)
        return NULL;
    j = json_pack("{s:s, s:I, s:I, s:s?, s:s, s:s?}", "state", row.state, "bytes",
                  (json_int_t)row.bytes, "chunks", (json_int_t)row.chunks, "sha256",
                  row.chain[0] ? row.chain : NULL, "integrity", row.integrity, "reason",
                  row.reason);
    free(row.reason);
    return j;
}
