/*
 * Opening the database and applying migrations. Migrations are the files
 * migrations/NNNN_name.sql, embedded at build time by
 * scripts/embed-migrations into store_migrations[]. Entry N (1-based) moves
 * the schema from PRAGMA user_version N-1 to N, each in its own
 * BEGIN IMMEDIATE ... COMMIT. A database newer than the binary is refused.
 *
 * Only airlockd opens the file, so it holds it in EXCLUSIVE locking mode:
 * SQLite then takes its file locks once instead of around every statement
 * (two fcntl calls per read were visible in profiles of the API benchmark).
 * A second airlockd on the same data dir fails to start instead of sharing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "tmpl.h"
#include "viewcache.h"
#include "xmalloc.h"

extern const char *const store_migrations[];
extern const size_t store_n_migrations;

static int
exec_sql(sqlite3 *db, const char *sql, char *err, size_t err_len)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, err_len, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return ERR_DB;
    }
    return 0;
}

static int
user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *stmt = NULL;
    int r = ERR_DB;

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        *v = sqlite3_column_int(stmt, 0);
        r = 0;
    }
    sqlite3_finalize(stmt);
    return r;
}

static int
migrate(sqlite3 *db, char *err, size_t err_len)
{
    char sql[64];
    int v, r;
    size_t i;

    if ((r = user_version(db, &v)) != 0) {
        snprintf(err, err_len, "cannot read schema version: %s", sqlite3_errmsg(db));
        return r;
    }
    if (v < 0 || (size_t)v > store_n_migrations) {
        snprintf(err, err_len,
                 "database schema version %d is newer than this airlockd (%zu); refusing to start",
                 v, store_n_migrations);
        return ERR_INVALID;
    }
    for (i = (size_t)v; i < store_n_migrations; i++) {
        if ((r = exec_sql(db, "BEGIN IMMEDIATE", err, err_len)) != 0)
            return r;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %zu", i + 1);
        if ((r = exec_sql(db, store_migrations[i], err, err_len)) != 0 ||
            (r = exec_sql(db, sql, err, err_len)) != 0 ||
            (r = exec_sql(db, "COMMIT", err, err_len)) != 0) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
        log_info("applied migration %04zu", i + 1);
    }
    return 0;
}

/*
 * SQLite calls this for every row a statement inserts, updates or deletes
 * (foreign-key cascades included), so the view cache hears of every write
 * whatever code made it. A sessions row drops its view; the other tables a
 * view reads drop them all (agents rows are replaced on re-registration, so
 * their rowids do not name a view). Tables no view reads are ignored, and so
 * is session_invites: it mirrors sessions.invited, whose row changes with it.
 */
static void
update_hook(void *arg, int op, const char *db, const char *table, sqlite3_int64 rowid)
{
    struct store *st = arg;

    (void)op;
    (void)db;
    /* A recordings row's id is its session's rowid (migration 0008). */
    if (strcmp(table, "sessions") == 0 || strcmp(table, "recordings") == 0)
        viewcache_drop_rowid(st->views, rowid);
    else if (strcmp(table, "agents") == 0 || strcmp(table, "approvals") == 0 ||
             strcmp(table, "participants") == 0)
        viewcache_drop_all(st->views);
}

/*
 * Views are loaded outside transactions (under app->lock, which writers hold
 * from BEGIN to COMMIT), so none can hold uncommitted rows. Should one ever
 * be loaded inside a transaction that then rolls back, this drops it anyway.
 */
static void
rollback_hook(void *arg)
{
    struct store *st = arg;

    viewcache_drop_all(st->views);
}

/*
 * Creates the database file 0600 when it does not exist yet. SQLite would
 * create it 0644 (less the umask), and it gives the WAL file the mode of the
 * database file, so this one mode covers both. An existing file keeps its
 * mode (airlockd warns at start when it is readable by others).
 */
static int
create_private(const char *path, char *err, size_t err_len)
{
    int fd;

    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return 0;
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return ERR_SYSTEM;
    }
    close(fd);
    return 0;
}

int
store_open(const char *path, struct store **stp, char *err, size_t err_len)
{
    struct store *st = NULL;
    sqlite3 *db = NULL;
    int r = ERR_DB;

    *stp = NULL;
    if ((r = create_private(path, err, err_len)) != 0)
        goto out;
    r = ERR_DB;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, err_len, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    if ((r = exec_sql(
             db,
             "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
             " PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456;",
             err, err_len)) != 0)
        goto out;
    if ((r = migrate(db, err, err_len)) != 0)
        goto out;
    st = xcalloc(1, sizeof(*st));
    st->db = db;
    st->views = viewcache_new(STORE_VIEWS);
    sqlite3_update_hook(st->db, update_hook, st);
    sqlite3_rollback_hook(st->db, rollback_hook, st);
    db = NULL;
    *stp = st;
    r = 0;
out:
    sqlite3_close(db);
    return r;
}

void
store_close(struct store *st)
{
    size_t i;

    if (st == NULL)
        return;
    viewcache_free(st->views); /* first: views point at the template snapshots below */
    for (i = 0; i < STORE_STMT_CACHE; i++)
        sqlite3_finalize(st->cache[i].stmt);
    for (i = 0; i < STORE_DYN_CACHE; i++) {
        sqlite3_finalize(st->dyn[i].stmt);
        free(st->dyn[i].sql);
    }
    for (i = 0; i < st->n_tmpls; i++) {
        free(st->tmpls[i].text);
        tmpl_cleanup(&st->tmpls[i].tmpl);
    }
    sqlite3_close(st->db);
    free(st);
}

struct viewcache *
store_views(struct store *st)
{
    return st->views;
}

sqlite3 *
store_db(struct store *st)
{
    return st->db;
}

int
store_begin(struct store *st)
{
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        log_warn("begin: %s", sqlite3_errmsg(st->db));
        return ERR_DB;
    }
    return 0;
}

int
store_commit(struct store *st)
{
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        log_warn("commit: %s", sqlite3_errmsg(st->db));
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return ERR_DB;
    }
    return 0;
}

void
store_rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int
store_check_writable(struct store *st)
{
    int r = store_begin(st);

    if (r == 0)
        store_rollback(st);
    return r;
}

int
store_prepare_once(struct store *st, sqlite3_stmt **stmt, const char *sql)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK) {
        log_warn("prepare: %s: %s", sqlite3_errmsg(st->db), sql);
        return ERR_DB;
    }
    return 0;
}

int
store_prepare(struct store *st, sqlite3_stmt **stmt, const char *sql)
{
    struct stmt_slot *free_slot = NULL;
    size_t i;

    for (i = 0; i < STORE_STMT_CACHE; i++) {
        struct stmt_slot *sl = &st->cache[i];

        if (sl->sql == sql && !sl->in_use) {
            sl->in_use = 1;
            *stmt = sl->stmt;
            return 0;
        }
        if (sl->sql == NULL && free_slot == NULL)
            free_slot = sl;
    }
    if (sqlite3_prepare_v3(st->db, sql, -1, free_slot ? SQLITE_PREPARE_PERSISTENT : 0, stmt,
                           NULL) != SQLITE_OK) {
        log_warn("prepare: %s: %s", sqlite3_errmsg(st->db), sql);
        return ERR_DB;
    }
    if (free_slot != NULL) {
        free_slot->sql = sql;
        free_slot->stmt = *stmt;
        free_slot->in_use = 1;
    }
    return 0;
}

int
store_prepare_text(struct store *st, sqlite3_stmt **stmt, const char *sql)
{
    struct dyn_slot *sl = NULL;
    size_t i;

    for (i = 0; i < STORE_DYN_CACHE; i++) {
        if (st->dyn[i].sql != NULL && !st->dyn[i].in_use && strcmp(st->dyn[i].sql, sql) == 0) {
            st->dyn[i].in_use = 1;
            *stmt = st->dyn[i].stmt;
            return 0;
        }
    }
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) != SQLITE_OK) {
        log_warn("prepare: %s: %s", sqlite3_errmsg(st->db), sql);
        return ERR_DB;
    }
    for (i = 0; i < STORE_DYN_CACHE && sl == NULL; i++) {
        struct dyn_slot *c = &st->dyn[st->dyn_next++ % STORE_DYN_CACHE];

        if (!c->in_use)
            sl = c;
    }
    if (sl != NULL) { /* else every slot is in use: this one is finalized after use */
        sqlite3_finalize(sl->stmt);
        free(sl->sql);
        sl->sql = xstrdup(sql);
        sl->stmt = *stmt;
        sl->in_use = 1;
    }
    return 0;
}

void
store_finish(struct store *st, sqlite3_stmt *stmt)
{
    size_t i;

    if (stmt == NULL)
        return;
    for (i = 0; i < STORE_STMT_CACHE; i++) {
        if (st->cache[i].stmt == stmt) {
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            st->cache[i].in_use = 0;
            return;
        }
    }
    for (i = 0; i < STORE_DYN_CACHE; i++) {
        if (st->dyn[i].stmt == stmt) {
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            st->dyn[i].in_use = 0;
            return;
        }
    }
    sqlite3_finalize(stmt);
}

int
store_step_done(struct store *st, sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);

    if (rc == SQLITE_DONE)
        return 0;
    if (rc == SQLITE_CONSTRAINT)
        return ERR_CONFLICT;
    log_warn("step: %s", sqlite3_errmsg(st->db));
    return ERR_DB;
}

void
store_bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
    if (s == NULL)
        sqlite3_bind_null(stmt, i);
    else
        sqlite3_bind_text(stmt, i, s, -1, SQLITE_TRANSIENT);
}

void
store_bind_json(sqlite3_stmt *stmt, int i, const json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    if (s == NULL)
        sqlite3_bind_null(stmt, i);
    else
        sqlite3_bind_text(stmt, i, s, -1, free);
}

void
store_bind_time(sqlite3_stmt *stmt, int i, int64_t t)
{
    if (t == 0)
        sqlite3_bind_null(stmt, i);
    else
        sqlite3_bind_int64(stmt, i, t);
}

char *
store_col_text(sqlite3_stmt *stmt, int i)
{
    const unsigned char *s = sqlite3_column_text(stmt, i);

    return s ? xstrdup((const char *)s) : NULL;
}

json_t *
store_col_json(sqlite3_stmt *stmt, int i, json_t *dflt)
{
    const char *s = (const char *)sqlite3_column_text(stmt, i);
    json_t *j = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;

    if (j == NULL)
        return dflt;
    json_decref(dflt);
    return j;
}
