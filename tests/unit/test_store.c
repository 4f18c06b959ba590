/*
 * store*.c against a real SQLite file: every test opens a fresh database in
 * its own mkdtemp() directory (store_open applies the migrations) and removes
 * it afterwards. Times are explicit; boundaries are tested on both sides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "config.h"
#include "err.h"
#include "policy.h"
#include "session.h"
#include "store.h"
#include "tmpl.h"
#include "viewcache.h"
#include "xmalloc.h"

extern const size_t store_n_migrations;

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define T0 1800000000LL
#define HOUR 3600LL
#define DAY 86400LL

struct fx {
    char dir[64];
    char path[128];
    struct store *st;
};

/* ---- fixture ---------------------------------------------------------------- */

static void
remove_db(struct fx *f)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    size_t i;

    for (i = 0; i < N(suffixes); i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
}

static int
setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    char err[256] = "";

    snprintf(f->dir, sizeof(f->dir), "/tmp/airlock-test-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/airlock.db", f->dir);
    if (store_open(f->path, &f->st, err, sizeof(err)) != 0) {
        print_error("store_open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->st);
    remove_db(f);
    free(f);
    return 0;
}

static struct store *
ST(void **state)
{
    return ((struct fx *)*state)->st;
}

/* One integer from a SQL query on the store's connection. */
static int64_t
q_int(struct store *st, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    int64_t v = -1;

    assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

static int more; /* store_sess_list's has_more, unused by most tests */

/*
 * One page of f loaded whole (a new array), as the list handler sees it:
 * store_sess_page's ids, then each row. Tests check filters through it.
 */
static int
store_sess_list(struct store *st, const struct sess_filter *f, struct sess ***list, size_t *n,
                int64_t *total, int *has_more)
{
    int64_t *ids = xcalloc((size_t)f->limit + 1, sizeof(*ids));
    struct sess **out = NULL;
    size_t n_ids = 0, cnt = 0, k;
    int r;

    *list = NULL;
    *n = 0;
    if ((r = store_sess_page(st, f, ids, &n_ids, total, has_more)) != 0)
        goto out;
    out = xcalloc(n_ids + 1, sizeof(*out));
    for (k = 0; k < n_ids; k++) {
        if ((r = store_sess_get_rowid(st, ids[k], &out[cnt])) == ERR_NOT_FOUND)
            continue;
        if (r != 0)
            goto out;
        cnt++;
    }
    *list = out;
    *n = cnt;
    out = NULL;
    r = 0;
out:
    sess_list_free(out, cnt);
    free(ids);
    return r;
}


/* A template snapshot as the API stores it (JSON text). */
static char *
tmpl_snapshot(const char *name, int64_t max_s, int max_renewals)
{
    static char *groups[] = {"sre-leads"};
    static char *agents[] = {"gh/acme/*"};
    struct tmpl_cfg t;

    memset(&t, 0, sizeof(t));
    t.name = (char *)name;
    t.display_name = "Display";
    t.description = "desc";
    t.approvers.groups = (struct strlist){groups, 1};
    t.allowed.agents = (struct strlist){agents, 1};
    t.max_duration_s = max_s;
    t.default_duration_s = HOUR;
    t.allow_renewal = 1;
    t.max_renewals = max_renewals;
    t.sharing_enabled = 1;
    t.max_participants = 5;
    t.op_shell = 1;
    {
        json_t *j = tmpl_to_json(&t);
        char *txt = json_dumps(j, JSON_COMPACT);

        json_decref(j);
        return txt;
    }
}

static struct sess *
mksess(const char *name, const char *tmpl, const char *agent, const char *by, const char *email,
       enum session_state st, int64_t created)
{
    struct sess *s = xcalloc(1, sizeof(*s));

    s->name = xstrdup(name);
    s->template_name = xstrdup(tmpl);
    s->agent = xstrdup(agent);
    s->requested_by = xstrdup(by);
    s->requested_by_email = email ? xstrdup(email) : NULL;
    s->requester_groups = json_array();
    s->requested_duration_s = HOUR;
    s->state = st;
    s->created_at = created;
    s->tmpl_text = tmpl_snapshot(tmpl, 4 * HOUR, 3);
    return s;
}

static void
add_invite(struct sess *s, const char *who, enum policy_role role)
{
    s->invited = xrealloc(s->invited, (s->n_invited + 1) * sizeof(*s->invited));
    s->invited[s->n_invited].who = xstrdup(who);
    s->invited[s->n_invited++].role = role;
}

static void
insert(struct store *st, struct sess *s)
{
    int r = store_sess_insert(st, s);

    if (r != 0)
        fail_msg("insert %s: %d", s->name, r);
    sess_free(s);
}

static void
join(struct store *st, const char *session, const char *user, const char *email,
     enum policy_role role, int64_t at)
{
    struct sess_participant p;

    memset(&p, 0, sizeof(p));
    p.user = (char *)user;
    p.email = (char *)email;
    p.display_name = (char *)user;
    p.role = role;
    p.joined_at = at;
    p.ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey";
    assert_int_equal(store_participant_upsert(st, session, &p), 0);
}

static struct agent_rec *
mkagent(const char *name, int online, int64_t offline_since)
{
    struct agent_rec *a = xcalloc(1, sizeof(*a));

    a->name = xstrdup(name);
    a->labels = json_pack("{s:s}", "repo", "acme/web");
    a->host_keys = json_pack("[s]", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost");
    a->version = xstrdup("1.2.0");
    a->registered_by = xstrdup("ops-bot");
    a->registered_at = T0;
    a->last_seen_at = T0 + 10;
    a->credential_hash = xstrdup("0123456789abcdef");
    a->online = online;
    a->offline_since = offline_since;
    return a;
}

static void
put_agent(struct store *st, const char *name, int online, int64_t offline_since)
{
    struct agent_rec *a = mkagent(name, online, offline_since);

    assert_int_equal(store_agent_put(st, a), 0);
    agent_rec_free(a);
}

/* Names as one comma-separated string, for compact comparisons. */
static void
names_of(struct sess **list, size_t n, char *out, size_t len)
{
    size_t i, o = 0;

    out[0] = '\0';
    for (i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%s", i ? "," : "", list[i]->name);
}

static void
strv_join(char **v, size_t n, char *out, size_t len)
{
    size_t i, j, o = 0;

    /* sorted, so the comparison does not depend on row order */
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *tmp = v[j];

            v[j] = v[j - 1];
            v[j - 1] = tmp;
        }
    out[0] = '\0';
    for (i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%s", i ? "," : "", v[i]);
}

static void
strv_free(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- migrations --------------------------------------------------------------- */

static void
test_store_migrations_applied(void **state)
{
    struct store *st = ST(state);
    static const char *const tables[] = {"sessions", "approvals",    "participants", "renewals",
                                         "agents",   "join_tickets", "events",       "outbox"};
    size_t i;

    assert_true(store_n_migrations >= 1);
    assert_int_equal(q_int(st, "PRAGMA user_version"), (int64_t)store_n_migrations);
    assert_int_equal(q_int(st, "PRAGMA foreign_keys"), 1);
    assert_int_equal(q_int(st, "PRAGMA synchronous"), 2); /* FULL */
    for (i = 0; i < N(tables); i++) {
        char sql[160];

        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'",
                 tables[i]);
        if (q_int(st, sql) != 1)
            fail_msg("table %s missing", tables[i]);
    }
    {
        sqlite3_stmt *stmt = NULL;

        assert_int_equal(sqlite3_prepare_v2(store_db(st), "PRAGMA journal_mode", -1, &stmt, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
        sqlite3_finalize(stmt);
    }
    assert_int_equal(store_check_writable(st), 0);
}

/* The database and its WAL are created 0600 even under umask 022 (SQLite alone: 0644). */
static void
test_store_files_private(void **state)
{
    struct fx *f = *state;
    struct fx g;
    struct store *st = NULL;
    struct stat sb;
    char err[256] = "", wal[160];
    mode_t old = umask(022);

    (void)f;
    snprintf(g.dir, sizeof(g.dir), "/tmp/airlock-test-mode-XXXXXX");
    assert_non_null(mkdtemp(g.dir));
    snprintf(g.path, sizeof(g.path), "%s/airlock.db", g.dir);
    assert_int_equal(store_open(g.path, &st, err, sizeof(err)), 0);
    umask(old);
    assert_int_equal(stat(g.path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(wal, sizeof(wal), "%s-wal", g.path);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    store_close(st);
    remove_db(&g);
}

static void
test_store_reopen_is_noop(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    struct sess *s = NULL;
    int i;

    insert(f->st, mksess("ds-reopen0001", "ci-debug", "gh/acme/web/1-1", "alice", NULL,
                         SESSION_PENDING, T0));
    for (i = 0; i < 2; i++) {
        store_close(f->st);
        f->st = NULL;
        assert_int_equal(store_open(f->path, &f->st, err, sizeof(err)), 0);
        assert_int_equal(q_int(f->st, "PRAGMA user_version"), (int64_t)store_n_migrations);
        assert_int_equal(q_int(f->st, "SELECT count(*) FROM sessions"), 1);
    }
    assert_int_equal(store_sess_get(f->st, "ds-reopen0001", &s), 0);
    assert_string_equal(s->requested_by, "alice");
    sess_free(s);
}

static void
test_store_refuses_newer_schema(void **state)
{
    struct fx *f = *state;
    char err[256] = "", want_ver[32], sql[64];
    struct store *st2 = (struct store *)&err; /* poison: must become NULL */
    sqlite3 *db = NULL;
    int r;

    store_close(f->st);
    f->st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %zu", store_n_migrations + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    r = store_open(f->path, &st2, err, sizeof(err));
    assert_int_not_equal(r, 0);
    assert_null(st2);
    /* the message says what is wrong and with which versions */
    assert_non_null(strstr(err, "newer"));
    snprintf(want_ver, sizeof(want_ver), "%zu", store_n_migrations + 1);
    assert_non_null(strstr(err, want_ver));
    /* and leaves the database alone */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    {
        sqlite3_stmt *stmt = NULL;

        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(stmt, 0), (int)store_n_migrations + 1);
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);

    /* reset so that teardown has a store to close */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %zu", store_n_migrations);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(f->path, &f->st, err, sizeof(err)), 0);
}

static void
test_store_open_bad_path(void **state)
{
    char err[256] = "";
    struct store *st2 = NULL;
    (void)state;

    assert_int_not_equal(store_open("/nonexistent-dir/airlock/x.db", &st2, err, sizeof(err)), 0);
    assert_null(st2);
    assert_true(strlen(err) > 0);
}

/* ---- sessions --------------------------------------------------------------------- */

static void
test_store_session_round_trip(void **state)
{
    struct store *st = ST(state);
    struct sess *s = mksess("ds-4k9x2mq7ab", "ci-debug", "gh/acme/web/42-1", "alice",
                            "alice@example.com", SESSION_ACTIVE, T0);
    struct sess *got = NULL;

    free(s->requested_by_email);
    s->requested_by_email = xstrdup("Alice@Example.com");
    s->requested_by_name = xstrdup("Alice \xc3\x85ngstr\xc3\xb6m");
    json_array_append_new(s->requester_groups, json_string("developers"));
    json_array_append_new(s->requester_groups, json_string("sre"));
    s->reason = xstrdup("build 42 fails on 'make check' \"only\" in CI");
    s->requested_duration_s = 90 * 60;
    add_invite(s, "bob", ROLE_PARTICIPANT);
    add_invite(s, "Carol@Example.com", ROLE_VIEWER);
    s->message = xstrdup("waiting for agent");
    s->starts_at = T0 + 60;
    s->expires_at = T0 + 60 + 90 * 60;
    s->ended_at = 0;
    s->renewal_count = 2;
    s->approval_required = 1;
    free(s->tmpl_text);
    s->tmpl_text = tmpl_snapshot("ci-debug", 8 * HOUR, 0);
    assert_int_equal(store_sess_insert(st, s), 0);

    assert_int_equal(store_sess_get(st, "ds-4k9x2mq7ab", &got), 0);
    assert_non_null(got);
    assert_string_equal(got->name, "ds-4k9x2mq7ab");
    assert_string_equal(got->template_name, "ci-debug");
    assert_string_equal(got->agent, "gh/acme/web/42-1");
    assert_string_equal(got->requested_by, "alice");
    assert_string_equal(got->requested_by_email, "Alice@Example.com");
    assert_string_equal(got->requested_by_name, s->requested_by_name);
    assert_true(json_equal(got->requester_groups, s->requester_groups));
    assert_string_equal(got->reason, s->reason);
    assert_int_equal(got->requested_duration_s, 90 * 60);
    assert_int_equal(got->n_invited, 2);
    assert_string_equal(got->invited[0].who, "bob");
    assert_int_equal(got->invited[0].role, ROLE_PARTICIPANT);
    assert_string_equal(got->invited[1].who, "Carol@Example.com");
    assert_int_equal(got->invited[1].role, ROLE_VIEWER);
    assert_int_equal(got->state, SESSION_ACTIVE);
    assert_string_equal(got->message, "waiting for agent");
    assert_int_equal(got->created_at, T0);
    assert_int_equal(got->starts_at, T0 + 60);
    assert_int_equal(got->expires_at, T0 + 60 + 90 * 60);
    assert_int_equal(got->ended_at, 0);
    assert_int_equal(got->renewal_count, 2);
    assert_int_equal(got->approval_required, 1);
    assert_int_equal(got->version, 1);
    /* the template snapshot: parsed, it renders back to the JSON that was stored */
    assert_non_null(got->tmpl);
    {
        json_t *again = tmpl_to_json(got->tmpl);
        json_t *stored = json_loads(s->tmpl_text, 0, NULL);

        assert_true(json_equal(again, stored));
        json_decref(again);
        json_decref(stored);
    }
    assert_string_equal(got->tmpl->name, "ci-debug");
    assert_int_equal(got->tmpl->max_duration_s, 8 * HOUR);
    assert_int_equal(got->tmpl->max_renewals, 0);
    assert_int_equal(got->tmpl->allow_renewal, 1);
    assert_int_equal(got->tmpl->max_participants, 5);
    assert_int_equal(got->tmpl->approvers.groups.n, 1);
    assert_string_equal(got->tmpl->approvers.groups.v[0], "sre-leads");
    assert_string_equal(got->tmpl->allowed.agents.v[0], "gh/acme/*");
    /* nothing decided, nobody joined */
    assert_null(got->decision);
    assert_null(got->decided_by);
    assert_int_equal(got->n_parts, 0);
    sess_free(got);
    sess_free(s);
}

/* Optional fields left out come back empty. */
static void
test_store_session_minimal(void **state)
{
    struct store *st = ST(state);
    struct sess *got = NULL;

    insert(st, mksess("ds-minimal0001", "ci-debug", "host/a", "bob", NULL, SESSION_PENDING_APPROVAL,
                      T0));
    assert_int_equal(store_sess_get(st, "ds-minimal0001", &got), 0);
    assert_null(got->requested_by_email);
    assert_null(got->requested_by_name);
    assert_null(got->reason);
    assert_null(got->message);
    assert_int_equal(got->n_invited, 0);
    assert_int_equal(got->starts_at, 0);
    assert_int_equal(got->expires_at, 0);
    assert_int_equal(got->ended_at, 0);
    assert_int_equal(got->state, SESSION_PENDING_APPROVAL);
    assert_true(json_is_array(got->requester_groups));
    assert_int_equal(json_array_size(got->requester_groups), 0);
    sess_free(got);
}

/* Every state is stored by name and read back. */
static void
test_store_session_states(void **state)
{
    struct store *st = ST(state);
    int i;

    for (i = 0; i < SESSION__COUNT; i++) {
        char name[32];
        struct sess *got = NULL;

        snprintf(name, sizeof(name), "ds-state%06d", i);
        insert(st, mksess(name, "t", "a", "u", NULL, (enum session_state)i, T0 + i));
        assert_int_equal(store_sess_get(st, name, &got), 0);
        assert_int_equal(got->state, i);
        sess_free(got);
    }
    assert_int_equal(q_int(st, "SELECT count(*) FROM sessions WHERE state = 'PendingApproval'"), 1);
}

static void
test_store_session_not_found_and_duplicate(void **state)
{
    struct store *st = ST(state);
    struct sess *got = (struct sess *)&got, *dup;

    assert_int_equal(store_sess_get(st, "ds-nothere000", &got), ERR_NOT_FOUND);
    assert_null(got);
    insert(st, mksess("ds-dup0000001", "t", "a", "alice", NULL, SESSION_PENDING, T0));
    dup = mksess("ds-dup0000001", "t2", "b", "bob", NULL, SESSION_ACTIVE, T0 + 1);
    assert_int_equal(store_sess_insert(st, dup), ERR_CONFLICT);
    sess_free(dup);
    assert_int_equal(store_sess_get(st, "ds-dup0000001", &got), 0);
    assert_string_equal(got->requested_by, "alice"); /* the first one stays */
    sess_free(got);
}

static void
test_store_session_update_optimistic(void **state)
{
    struct store *st = ST(state);
    struct sess *a = NULL, *b = NULL, *got = NULL;

    insert(st, mksess("ds-update00001", "t", "agent/1", "alice", NULL, SESSION_PENDING, T0));
    assert_int_equal(store_sess_get(st, "ds-update00001", &a), 0);
    assert_int_equal(store_sess_get(st, "ds-update00001", &b), 0);
    assert_int_equal(a->version, 1);

    a->state = SESSION_ACTIVE;
    free(a->message);
    a->message = xstrdup("activated");
    a->starts_at = T0 + 5;
    a->expires_at = T0 + 5 + HOUR;
    a->renewal_count = 1;
    add_invite(a, "dave", ROLE_VIEWER);
    assert_int_equal(store_sess_update(st, a), 0);
    assert_int_equal(a->version, 2);

    assert_int_equal(store_sess_get(st, "ds-update00001", &got), 0);
    assert_int_equal(got->version, 2);
    assert_int_equal(got->state, SESSION_ACTIVE);
    assert_string_equal(got->message, "activated");
    assert_int_equal(got->starts_at, T0 + 5);
    assert_int_equal(got->expires_at, T0 + 5 + HOUR);
    assert_int_equal(got->renewal_count, 1);
    assert_int_equal(got->n_invited, 1);
    assert_string_equal(got->invited[0].who, "dave");
    assert_int_equal(got->invited[0].role, ROLE_VIEWER);
    sess_free(got);

    /* b still holds version 1: its write loses and changes nothing */
    b->state = SESSION_TERMINATED;
    b->ended_at = T0 + 6;
    assert_int_equal(store_sess_update(st, b), ERR_CONFLICT);
    assert_int_equal(b->version, 1);
    assert_int_equal(store_sess_get(st, "ds-update00001", &got), 0);
    assert_int_equal(got->state, SESSION_ACTIVE);
    assert_int_equal(got->ended_at, 0);
    assert_int_equal(got->version, 2);
    sess_free(got);

    /* a second update from the fresh copy goes through */
    a->state = SESSION_EXPIRED;
    a->ended_at = T0 + HOUR;
    assert_int_equal(store_sess_update(st, a), 0);
    assert_int_equal(a->version, 3);
    assert_int_equal(store_sess_get(st, "ds-update00001", &got), 0);
    assert_int_equal(got->state, SESSION_EXPIRED);
    assert_int_equal(got->ended_at, T0 + HOUR);
    sess_free(got);

    /* an update of a session that does not exist is a conflict, not a success */
    free(b->name);
    b->name = xstrdup("ds-gone0000001");
    assert_int_equal(store_sess_update(st, b), ERR_CONFLICT);
    sess_free(a);
    sess_free(b);
}

static void
test_store_transactions(void **state)
{
    struct store *st = ST(state);
    struct sess *got = NULL;

    assert_int_equal(store_begin(st), 0);
    insert(st, mksess("ds-rollback001", "t", "a", "u", NULL, SESSION_PENDING, T0));
    assert_int_equal(store_event_add(st, "ds-rollback001", T0, "u", "created", NULL, NULL), 0);
    store_rollback(st);
    assert_int_equal(store_sess_get(st, "ds-rollback001", &got), ERR_NOT_FOUND);
    assert_int_equal(q_int(st, "SELECT count(*) FROM events"), 0);
    store_rollback(st); /* harmless outside a transaction */

    assert_int_equal(store_begin(st), 0);
    insert(st, mksess("ds-commit00001", "t", "a", "u", NULL, SESSION_PENDING, T0));
    assert_int_equal(store_event_add(st, "ds-commit00001", T0, "u", "created", NULL, NULL), 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(store_sess_get(st, "ds-commit00001", &got), 0);
    sess_free(got);
    assert_int_equal(q_int(st, "SELECT count(*) FROM events"), 1);
}

/*
 * Template snapshots: sessions of one template name created under different
 * configs keep their own rules, also past the store's cache of parsed
 * snapshots (70 distinct ones here).
 */
static void
test_store_template_snapshots(void **state)
{
    struct store *st = ST(state);
    struct sess_filter f = {.admin = 1, .limit = 500};
    struct sess **list = NULL;
    size_t n = 0, i;
    int64_t total = 0;
    int k;

    for (k = 0; k < 70; k++) {
        char name[32];
        struct sess *s;

        snprintf(name, sizeof(name), "ds-snap%07d", k);
        s = mksess(name, "ci-debug", "a", "alice", NULL, SESSION_ACTIVE, T0 + k);
        free(s->tmpl_text);
        s->tmpl_text = tmpl_snapshot("ci-debug", HOUR + k * 60, k % 4);
        insert(st, s);
    }
    /* twice: the second pass reads through whatever the first one cached */
    for (k = 0; k < 2; k++) {
        assert_int_equal(store_sess_list(st, &f, &list, &n, &total, &more), 0);
        assert_int_equal(n, 70);
        for (i = 0; i < n; i++) {
            int idx = (int)strtol(list[i]->name + 7, NULL, 10);

            assert_non_null(list[i]->tmpl);
            assert_string_equal(list[i]->tmpl->name, "ci-debug");
            if (list[i]->tmpl->max_duration_s != HOUR + idx * 60 ||
                list[i]->tmpl->max_renewals != idx % 4)
                fail_msg("%s: snapshot maxDuration %lld maxRenewals %d, want %lld %d",
                         list[i]->name, (long long)list[i]->tmpl->max_duration_s,
                         list[i]->tmpl->max_renewals, (long long)(HOUR + idx * 60), idx % 4);
        }
        sess_list_free(list, n);
    }
    for (k = 0; k < 70; k += 23) {
        char name[32];
        struct sess *got = NULL;

        snprintf(name, sizeof(name), "ds-snap%07d", k);
        assert_int_equal(store_sess_get(st, name, &got), 0);
        assert_int_equal(got->tmpl->max_duration_s, HOUR + k * 60);
        sess_free(got);
    }
}

/* A session read carries its agent's online flag and host keys. */
static void
test_store_session_agent_info(void **state)
{
    struct store *st = ST(state);
    struct sess *got = NULL;

    put_agent(st, "gh/acme/web/7-1", 1, 0);
    insert(st, mksess("ds-agentinfo01", "t", "gh/acme/web/7-1", "alice", NULL, SESSION_ACTIVE, T0));
    insert(st, mksess("ds-agentinfo02", "t", "gone/agent", "alice", NULL, SESSION_ACTIVE, T0));
    assert_int_equal(store_sess_get(st, "ds-agentinfo01", &got), 0);
    assert_int_equal(got->agent_online, 1);
    assert_int_equal(json_array_size(got->agent_host_keys), 1);
    assert_string_equal(json_string_value(json_array_get(got->agent_host_keys, 0)),
                        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost");
    sess_free(got);
    assert_int_equal(store_agent_set_online(st, "gh/acme/web/7-1", 0, T0 + 5), 0);
    assert_int_equal(store_sess_get(st, "ds-agentinfo01", &got), 0);
    assert_int_equal(got->agent_online, 0);
    sess_free(got);
    assert_int_equal(store_sess_get(st, "ds-agentinfo02", &got), 0);
    assert_int_equal(got->agent_online, 0);
    assert_true(json_is_array(got->agent_host_keys));
    assert_int_equal(json_array_size(got->agent_host_keys), 0);
    sess_free(got);
}

/* ---- approvals, participants, renewals, events ------------------------------------- */

static void
test_store_approvals_unique(void **state)
{
    struct store *st = ST(state);
    struct sess *got = NULL;

    insert(st, mksess("ds-approve0001", "t", "a", "alice", NULL, SESSION_PENDING_APPROVAL, T0));
    assert_int_equal(
        store_approval_insert(st, "ds-approve0001", "approve", "carol", NULL, T0 + 10, "looks fine"), 0);
    /* a second decision, of either kind, by anyone, is refused */
    assert_int_equal(store_approval_insert(st, "ds-approve0001", "reject", "bob", NULL, T0 + 11, NULL),
                     ERR_CONFLICT);
    assert_int_equal(store_approval_insert(st, "ds-approve0001", "approve", "carol", NULL, T0 + 12, NULL),
                     ERR_CONFLICT);
    assert_int_equal(store_sess_get(st, "ds-approve0001", &got), 0);
    assert_string_equal(got->decision, "approve");
    assert_string_equal(got->decided_by, "carol");
    assert_int_equal(got->decided_at, T0 + 10);
    assert_string_equal(got->decision_reason, "looks fine");
    sess_free(got);

    /* a rejection without a reason */
    insert(st, mksess("ds-reject00001", "t", "a", "alice", NULL, SESSION_PENDING_APPROVAL, T0));
    assert_int_equal(store_approval_insert(st, "ds-reject00001", "reject", "bob", NULL, T0 + 20, NULL),
                     0);
    assert_int_equal(store_sess_get(st, "ds-reject00001", &got), 0);
    assert_string_equal(got->decision, "reject");
    assert_null(got->decision_reason);
    sess_free(got);

    /* only approve/reject, only for sessions that exist */
    insert(st, mksess("ds-badvalue001", "t", "a", "alice", NULL, SESSION_PENDING_APPROVAL, T0));
    assert_int_not_equal(store_approval_insert(st, "ds-badvalue001", "maybe", "bob", NULL, T0, NULL), 0);
    assert_int_not_equal(store_approval_insert(st, "ds-nothere0001", "approve", "bob", NULL, T0, NULL),
                         0);
}

static void
test_store_participants(void **state)
{
    struct store *st = ST(state);
    struct sess *got = NULL;
    struct policy_session v;
    struct policy_participant parts[4];
    struct policy_invite invs[1];

    insert(st, mksess("ds-parts000001", "t", "a", "alice", NULL, SESSION_ACTIVE, T0));
    join(st, "ds-parts000001", "alice", "alice@example.com", ROLE_OWNER, T0 + 1);
    join(st, "ds-parts000001", "bob", NULL, ROLE_VIEWER, T0 + 2);
    assert_int_equal(store_sess_get(st, "ds-parts000001", &got), 0);
    assert_int_equal(got->n_parts, 2);
    assert_string_equal(got->parts[0].user, "alice");
    assert_string_equal(got->parts[0].email, "alice@example.com");
    assert_string_equal(got->parts[0].display_name, "alice");
    assert_int_equal(got->parts[0].role, ROLE_OWNER);
    assert_int_equal(got->parts[0].joined_at, T0 + 1);
    assert_int_equal(got->parts[0].left_at, 0);
    assert_string_equal(got->parts[0].ssh_public_key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey");
    assert_string_equal(got->parts[1].user, "bob");
    assert_null(got->parts[1].email);
    assert_int_equal(got->parts[1].role, ROLE_VIEWER);
    sess_free(got);

    /* leave: left_at set once; leaving again changes nothing */
    assert_int_equal(store_participant_leave(st, "ds-parts000001", "bob", T0 + 30), 0);
    (void)store_participant_leave(st, "ds-parts000001", "bob", T0 + 40);
    (void)store_participant_leave(st, "ds-parts000001", "nobody", T0 + 40);
    assert_int_equal(store_sess_get(st, "ds-parts000001", &got), 0);
    assert_int_equal(got->parts[1].left_at, T0 + 30);
    assert_int_equal(got->parts[0].left_at, 0);
    sess_policy_view(got, &v, parts, invs);
    assert_int_equal(v.n_participants, 2);
    assert_int_equal(parts[0].active, 1);
    assert_int_equal(parts[1].active, 0);
    assert_int_equal(v.state, SESSION_ACTIVE);
    assert_string_equal(v.requested_by, "alice");
    assert_ptr_equal(v.tmpl, got->tmpl);
    sess_free(got);

    /* re-joining (upsert) clears left_at and takes the new role, key and time */
    {
        struct sess_participant p;

        memset(&p, 0, sizeof(p));
        p.user = "bob";
        p.email = "bob@example.com";
        p.display_name = "Bob B";
        p.role = ROLE_PARTICIPANT;
        p.joined_at = T0 + 50;
        p.ssh_public_key = "ssh-ed25519 AAAAnewkey";
        assert_int_equal(store_participant_upsert(st, "ds-parts000001", &p), 0);
    }
    assert_int_equal(store_sess_get(st, "ds-parts000001", &got), 0);
    assert_int_equal(got->n_parts, 2);
    assert_string_equal(got->parts[1].user, "bob");
    assert_int_equal(got->parts[1].left_at, 0);
    assert_int_equal(got->parts[1].joined_at, T0 + 50);
    assert_int_equal(got->parts[1].role, ROLE_PARTICIPANT);
    assert_string_equal(got->parts[1].email, "bob@example.com");
    assert_string_equal(got->parts[1].display_name, "Bob B");
    assert_string_equal(got->parts[1].ssh_public_key, "ssh-ed25519 AAAAnewkey");
    sess_free(got);
    assert_int_equal(q_int(st, "SELECT count(*) FROM participants"), 2);

    /* no participant without a session */
    {
        struct sess_participant p;

        memset(&p, 0, sizeof(p));
        p.user = "x";
        p.role = ROLE_VIEWER;
        p.joined_at = T0;
        p.ssh_public_key = "k";
        assert_int_not_equal(store_participant_upsert(st, "ds-nothere0001", &p), 0);
    }
}

static void
test_store_renewals(void **state)
{
    struct store *st = ST(state);

    insert(st, mksess("ds-renew000001", "t", "a", "alice", NULL, SESSION_ACTIVE, T0));
    assert_int_equal(store_renewal_insert(st, "ds-renew000001", "alice", T0 + 10, 1800, T0 + HOUR,
                                          T0 + HOUR + 1800),
                     0);
    assert_int_equal(store_renewal_insert(st, "ds-renew000001", "bob", T0 + 20, 600,
                                          T0 + HOUR + 1800, T0 + HOUR + 2400),
                     0);
    assert_int_equal(q_int(st, "SELECT count(*) FROM renewals WHERE session = 'ds-renew000001'"),
                     2);
    assert_int_equal(q_int(st, "SELECT sum(extend_by_s) FROM renewals"), 2400);
    assert_int_not_equal(store_renewal_insert(st, "ds-nothere0001", "x", T0, 1, 1, 2), 0);
}

static void
test_store_events_order(void **state)
{
    struct store *st = ST(state);
    static const char *const types[] = {"created", "approval_required", "approved", "activated",
                                        "joined"};
    json_t *out = NULL, *arr, *data;
    int64_t ids[N(types)];
    size_t i;

    insert(st, mksess("ds-events00001", "t", "a", "alice", NULL, SESSION_ACTIVE, T0));
    insert(st, mksess("ds-events00002", "t", "a", "bob", NULL, SESSION_ACTIVE, T0));
    for (i = 0; i < N(types); i++) {
        /* the same second for all: order is insertion order */
        data = i == 2 ? json_pack("{s:s}", "reason", "ok") : NULL;
        assert_int_equal(store_event_add(st, "ds-events00001", T0 + 7, i % 2 ? "carol" : "alice",
                                         types[i], data, &ids[i]),
                         0);
        json_decref(data);
        if (i > 0)
            assert_true(ids[i] > ids[i - 1]);
        /* another session's events interleave */
        assert_int_equal(store_event_add(st, "ds-events00002", T0, "bob", "created", NULL, NULL),
                         0);
    }
    assert_int_equal(store_events_json(st, "ds-events00001", &out), 0);
    arr = json_object_get(out, "events");
    assert_int_equal(json_array_size(arr), N(types));
    for (i = 0; i < N(types); i++) {
        json_t *e = json_array_get(arr, i);

        assert_string_equal(json_string_value(json_object_get(e, "type")), types[i]);
        assert_string_equal(json_string_value(json_object_get(e, "at")), "2027-01-15T08:00:07Z");
        assert_string_equal(json_string_value(json_object_get(e, "actor")),
                            i % 2 ? "carol" : "alice");
        assert_true(json_is_object(json_object_get(e, "data")));
    }
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(arr, 2), "data"), "reason")),
                        "ok");
    assert_int_equal(json_object_size(json_object_get(json_array_get(arr, 0), "data")), 0);
    json_decref(out);

    /* no events: an empty list, not an error */
    assert_int_equal(store_events_json(st, "ds-nothere0001", &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "events")), 0);
    json_decref(out);
}

/* ---- tickets -------------------------------------------------------------------------- */

static void
test_store_tickets(void **state)
{
    struct store *st = ST(state);
    char *session = (char *)"x", *user = (char *)"x";

    insert(st, mksess("ds-ticket00001", "t", "a", "alice", NULL, SESSION_ACTIVE, T0));
    assert_int_equal(store_ticket_insert(st, "hash-a1", "ds-ticket00001", "alice", T0 + 30), 0);
    assert_int_equal(store_ticket_insert(st, "hash-a2", "ds-ticket00001", "alice", T0 + 30), 0);
    assert_int_equal(store_ticket_insert(st, "hash-b1", "ds-ticket00001", "bob", T0 + 30), 0);
    /* the hash is the key */
    assert_int_equal(store_ticket_insert(st, "hash-a1", "ds-ticket00001", "bob", T0 + 60),
                     ERR_CONFLICT);
    /* a ticket needs its session */
    assert_int_not_equal(store_ticket_insert(st, "hash-x", "ds-nothere0001", "bob", T0 + 60), 0);

    /* valid while now < expires_at */
    assert_int_equal(store_ticket_get(st, "hash-a1", T0, &session, &user), 0);
    assert_string_equal(session, "ds-ticket00001");
    assert_string_equal(user, "alice");
    free(session);
    free(user);
    assert_int_equal(store_ticket_get(st, "hash-a1", T0 + 29, &session, &user), 0);
    free(session);
    free(user);
    assert_int_equal(store_ticket_get(st, "hash-a1", T0 + 30, &session, &user), ERR_NOT_FOUND);
    assert_null(session);
    assert_null(user);
    assert_int_equal(store_ticket_get(st, "hash-a1", T0 + 31, &session, &user), ERR_NOT_FOUND);
    assert_int_equal(store_ticket_get(st, "hash-none", T0, &session, &user), ERR_NOT_FOUND);
    assert_null(session);

    /* delete one user's tickets, then the whole session's */
    assert_int_equal(store_tickets_delete(st, "ds-ticket00001", "alice"), 0);
    assert_int_equal(store_ticket_get(st, "hash-a1", T0, &session, &user), ERR_NOT_FOUND);
    assert_int_equal(store_ticket_get(st, "hash-a2", T0, &session, &user), ERR_NOT_FOUND);
    assert_int_equal(store_ticket_get(st, "hash-b1", T0, &session, &user), 0);
    free(session);
    free(user);
    assert_int_equal(store_tickets_delete(st, "ds-ticket00001", NULL), 0);
    assert_int_equal(store_ticket_get(st, "hash-b1", T0, &session, &user), ERR_NOT_FOUND);
    assert_int_equal(q_int(st, "SELECT count(*) FROM join_tickets"), 0);
}

/* ---- open-session counts (limits.sessionsPerUser) ----------------------------------------- */

/* A person is their username in their domain: another issuer's alice does not use up hers. */
static void
test_store_count_open_domains(void **state)
{
    struct store *st = ST(state);
    struct sess *s;
    int64_t n = -1;

    s = mksess("ds-q1", "t", "a", "alice", NULL, SESSION_ACTIVE, T0);
    s->requested_by_domain = xstrdup("corp");
    insert(st, s);
    s = mksess("ds-q2", "u", "a", "ALICE", NULL, SESSION_PENDING, T0);
    s->requested_by_domain = xstrdup("partner");
    insert(st, s);
    insert(st, mksess("ds-q3", "t", "a", "alice", NULL, SESSION_EXPIRED, T0)); /* closed */
    insert(st, mksess("ds-q4", "t", "a", "alice", NULL, SESSION_PENDING, T0)); /* no domain */
    assert_int_equal(store_sess_count_open(st, "Alice", "corp", NULL, &n), 0);
    assert_int_equal(n, 2); /* q1, and q4 recorded without a domain */
    assert_int_equal(store_sess_count_open(st, "alice", "partner", NULL, &n), 0);
    assert_int_equal(n, 2); /* q2, q4 */
    assert_int_equal(store_sess_count_open(st, "alice", "partner", "t", &n), 0);
    assert_int_equal(n, 1); /* q4 */
    assert_int_equal(store_sess_count_open(st, "alice", NULL, NULL, &n), 0);
    assert_int_equal(n, 3); /* a caller without a domain: any */
}

/* ---- list ------------------------------------------------------------------------------ */

/*
 * s1 alice      ci-debug  gh/acme/web/1-1  Active           t=100
 * s2 bob        ci-debug  host/db-1        PendingApproval  t=200  invited alice@example.com
 * s3 carol      other     gh/acme/web/1-1  Expired          t=300  participant dave
 * s4 Bob        other     host/db-1        Terminated       t=400  rejected by erin (of "corp")
 * s5 frank      prod      host/db-2        Pending          t=500  invited Gina
 * s6 frank      prod      host/db-2        Pending          t=500  (same second: name breaks the
 * tie)
 */
static void
seed_list(struct store *st)
{
    struct sess *s;

    s = mksess("ds-s1", "ci-debug", "gh/acme/web/1-1", "alice", "alice@example.com", SESSION_ACTIVE,
               100);
    insert(st, s);
    s = mksess("ds-s2", "ci-debug", "host/db-1", "bob", "bob@example.com", SESSION_PENDING_APPROVAL,
               200);
    add_invite(s, "alice@example.com", ROLE_PARTICIPANT);
    insert(st, s);
    s = mksess("ds-s3", "other", "gh/acme/web/1-1", "carol", NULL, SESSION_EXPIRED, 300);
    insert(st, s);
    join(st, "ds-s3", "dave", "dave@example.com", ROLE_PARTICIPANT, 310);
    s = mksess("ds-s4", "other", "host/db-1", "Bob", NULL, SESSION_TERMINATED, 400);
    insert(st, s);
    assert_int_equal(store_approval_insert(st, "ds-s4", "reject", "erin", "corp", 410, "no"), 0);
    s = mksess("ds-s5", "prod", "host/db-2", "frank", NULL, SESSION_PENDING, 500);
    add_invite(s, "Gina", ROLE_VIEWER);
    insert(st, s);
    s = mksess("ds-s6", "prod", "host/db-2", "frank", NULL, SESSION_PENDING, 500);
    insert(st, s);
}

static void
test_store_list_filters(void **state)
{
    struct store *st = ST(state);
    static char *tmpl_ci[] = {"ci-debug"};
    static char *tmpl_other[] = {"other"};
    static char *tmpl_both[] = {"ci-debug", "prod"};
    const struct {
        const char *name;
        struct sess_filter f;
        const char *want; /* names, newest first */
    } cases[] = {
        {"admin, everything", {.admin = 1, .limit = 50}, "ds-s6,ds-s5,ds-s4,ds-s3,ds-s2,ds-s1"},
        {"state Active|Expired",
         {.admin = 1, .limit = 50, .state_mask = 1u << SESSION_ACTIVE | 1u << SESSION_EXPIRED},
         "ds-s3,ds-s1"},
        {"state Pending",
         {.admin = 1, .limit = 50, .state_mask = 1u << SESSION_PENDING},
         "ds-s6,ds-s5"},
        {"state Failed (none)", {.admin = 1, .limit = 50, .state_mask = 1u << SESSION_FAILED}, ""},
        {"agent with '/'", {.admin = 1, .limit = 50, .agent = "gh/acme/web/1-1"}, "ds-s3,ds-s1"},
        {"agent", {.admin = 1, .limit = 50, .agent = "host/db-1"}, "ds-s4,ds-s2"},
        {"agent is exact", {.admin = 1, .limit = 50, .agent = "host/db"}, ""},
        {"user, any case", {.admin = 1, .limit = 50, .user = "BOB"}, "ds-s4,ds-s2"},
        {"user and state",
         {.admin = 1, .limit = 50, .user = "bob", .state_mask = 1u << SESSION_TERMINATED},
         "ds-s4"},
        {"agent and user", {.admin = 1, .limit = 50, .agent = "host/db-1", .user = "carol"}, ""},
        /* mine: requested, participating or invited */
        {"mine: alice (requested + invited by email)",
         {.admin = 1, .limit = 50, .mine = 1, .me_user = "alice", .me_email = "alice@example.com"},
         "ds-s2,ds-s1"},
        {"mine: alice by email only",
         {.admin = 1, .limit = 50, .mine = 1, .me_user = "asmith", .me_email = "ALICE@example.com"},
         "ds-s2,ds-s1"},
        {"mine: dave (participant)",
         {.admin = 1, .limit = 50, .mine = 1, .me_user = "DAVE", .me_email = NULL},
         "ds-s3"},
        {"mine: gina (invited, other case)",
         {.admin = 1, .limit = 50, .mine = 1, .me_user = "gina", .me_email = NULL},
         "ds-s5"},
        {"mine: bob, any case",
         {.admin = 1, .limit = 50, .mine = 1, .me_user = "bob"},
         "ds-s4,ds-s2"},
        {"mine: stranger", {.admin = 1, .limit = 50, .mine = 1, .me_user = "zed"}, ""},
        /* visibility for non-admins */
        {"visible: alice",
         {.limit = 50, .me_user = "alice", .me_email = "alice@example.com"},
         "ds-s2,ds-s1"},
        {"visible: alice by email, other username",
         {.limit = 50, .me_user = "asmith", .me_email = "alice@example.com"},
         "ds-s2,ds-s1"},
        {"visible: dave",
         {.limit = 50, .me_user = "dave", .me_email = "dave@example.com"},
         "ds-s3"},
        {"visible: decider", {.limit = 50, .me_user = "Erin"}, "ds-s4"},
        {"visible: decider in her domain",
         {.limit = 50, .me_user = "erin", .me_domain = "CORP"},
         "ds-s4"},
        /* a same-named approver of another issuer does not borrow erin's decisions */
        {"visible: same name, other domain",
         {.limit = 50, .me_user = "erin", .me_domain = "partner"},
         ""},
        {"visible: same name, other domain, approver of ci-debug",
         {.limit = 50,
          .me_user = "erin",
          .me_domain = "partner",
          .approver_templates = tmpl_ci,
          .n_approver_templates = 1},
         "ds-s2,ds-s1"},
        {"visible: approver of ci-debug",
         {.limit = 50, .me_user = "zed", .approver_templates = tmpl_ci, .n_approver_templates = 1},
         "ds-s2,ds-s1"},
        {"visible: approver of two templates",
         {.limit = 50,
          .me_user = "zed",
          .approver_templates = tmpl_both,
          .n_approver_templates = 2},
         "ds-s6,ds-s5,ds-s2,ds-s1"},
        {"visible: decider + approver of ci-debug",
         {.limit = 50, .me_user = "erin", .approver_templates = tmpl_ci, .n_approver_templates = 1},
         "ds-s4,ds-s2,ds-s1"},
        {"visible: approver, state filter",
         {.limit = 50,
          .me_user = "zed",
          .approver_templates = tmpl_other,
          .n_approver_templates = 1,
          .state_mask = 1u << SESSION_EXPIRED},
         "ds-s3"},
        {"visible: stranger", {.limit = 50, .me_user = "zed", .me_email = "zed@example.com"}, ""},
        {"visible: admin templates ignored for admins",
         {.admin = 1, .limit = 50, .approver_templates = tmpl_ci, .n_approver_templates = 1},
         "ds-s6,ds-s5,ds-s4,ds-s3,ds-s2,ds-s1"},
        {"visible + mine: approver sees only own with mine",
         {.limit = 50,
          .mine = 1,
          .me_user = "carol",
          .approver_templates = tmpl_ci,
          .n_approver_templates = 1},
         "ds-s3"},
    };
    size_t i;
    int n_bad = 0;

    seed_list(st);
    for (i = 0; i < N(cases); i++) {
        struct sess **list = NULL;
        size_t n = 0;
        int64_t total = -1;
        char got[256];
        int r = store_sess_list(st, &cases[i].f, &list, &n, &total, &more);

        if (r != 0) {
            print_error("list: %s: error %d\n", cases[i].name, r);
            n_bad++;
            continue;
        }
        names_of(list, n, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0 || total != (int64_t)n) {
            print_error("list: %s: want [%s], got [%s] total %lld\n", cases[i].name, cases[i].want,
                        got, (long long)total);
            n_bad++;
        }
        sess_list_free(list, n);
    }
    assert_int_equal(n_bad, 0);
}

/* The loaded rows are whole: approval and participants come along. */
static void
test_store_list_loads_related(void **state)
{
    struct store *st = ST(state);
    struct sess_filter f = {.admin = 1, .limit = 50, .agent = "host/db-1"};
    struct sess **list = NULL;
    size_t n = 0;
    int64_t total = 0;

    seed_list(st);
    assert_int_equal(store_sess_list(st, &f, &list, &n, &total, &more), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->name, "ds-s4");
    assert_string_equal(list[0]->decided_by, "erin");
    assert_string_equal(list[0]->decision, "reject");
    assert_string_equal(list[1]->name, "ds-s2");
    assert_int_equal(list[1]->n_invited, 1);
    assert_string_equal(list[1]->tmpl->name, "ci-debug");
    sess_list_free(list, n);

    f.agent = "gh/acme/web/1-1";
    assert_int_equal(store_sess_list(st, &f, &list, &n, &total, &more), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0]->n_parts, 1);
    assert_string_equal(list[0]->parts[0].user, "dave");
    sess_list_free(list, n);
}

static void
test_store_list_paging(void **state)
{
    struct store *st = ST(state);
    static const struct {
        int limit;
        const char *want_pages; /* pages separated by '|' */
    } cases[] = {
        {1, "ds-s6|ds-s5|ds-s4|ds-s3|ds-s2|ds-s1|"}, {2, "ds-s6,ds-s5|ds-s4,ds-s3|ds-s2,ds-s1|"},
        {4, "ds-s6,ds-s5,ds-s4,ds-s3|ds-s2,ds-s1"},  {5, "ds-s6,ds-s5,ds-s4,ds-s3,ds-s2|ds-s1"},
        {6, "ds-s6,ds-s5,ds-s4,ds-s3,ds-s2,ds-s1|"}, {500, "ds-s6,ds-s5,ds-s4,ds-s3,ds-s2,ds-s1"},
    };
    size_t i;

    seed_list(st);
    for (i = 0; i < N(cases); i++) {
        struct sess_filter f = {.admin = 1, .limit = cases[i].limit};
        char pages[512] = "";
        size_t o = 0;
        int guard = 0;

        for (;;) {
            struct sess **list = NULL;
            size_t n = 0;
            int64_t total = 0;
            char got[256];

            assert_int_equal(store_sess_list(st, &f, &list, &n, &total, &more), 0);
            assert_int_equal(total, 6); /* the whole filtered set, whatever the page */
            assert_true(n <= (size_t)cases[i].limit);
            names_of(list, n, got, sizeof(got));
            o += (size_t)snprintf(pages + o, sizeof(pages) - o, "%s%s", o ? "|" : "", got);
            if (n < (size_t)cases[i].limit) {
                sess_list_free(list, n);
                break;
            }
            f.cursor_rowid = list[n - 1]->rowid; /* store.h: rowid of the page's last row */
            sess_list_free(list, n);
            assert_true(++guard < 10);
        }
        if (strcmp(pages, cases[i].want_pages) != 0)
            fail_msg("limit %d: pages [%s], want [%s]", cases[i].limit, pages, cases[i].want_pages);
    }
}

/* Paging keeps the filter: a cursor inside a filtered listing. */
static void
test_store_list_paging_filtered(void **state)
{
    struct store *st = ST(state);
    struct sess_filter f = {.limit = 1, .me_user = "alice", .me_email = "alice@example.com"};
    struct sess **list = NULL;
    size_t n = 0;
    int64_t total = 0;

    seed_list(st);
    assert_int_equal(store_sess_list(st, &f, &list, &n, &total, &more), 0);
    assert_int_equal(total, 2);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->name, "ds-s2");
    f.cursor_rowid = list[0]->rowid;
    sess_list_free(list, n);
    assert_int_equal(store_sess_list(st, &f, &list, &n, &total, &more), 0);
    assert_int_equal(total, 2);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->name, "ds-s1");
    f.cursor_rowid = list[0]->rowid;
    sess_list_free(list, n);
    assert_int_equal(store_sess_list(st, &f, &list, &n, &total, &more), 0);
    assert_int_equal(n, 0);
    assert_int_equal(total, 2);
    sess_list_free(list, n);
}

static void
test_store_sess_by_agent(void **state)
{
    struct store *st = ST(state);
    struct sess **list = NULL;
    size_t n = 0;
    char got[256];

    seed_list(st);
    /* 0: the sessions that have not ended, oldest first */
    assert_int_equal(store_sess_by_agent(st, "host/db-1", 0, &list, &n), 0);
    names_of(list, n, got, sizeof(got));
    assert_string_equal(got, "ds-s2");
    sess_list_free(list, n);
    assert_int_equal(store_sess_by_agent(st, "host/db-2", 0, &list, &n), 0);
    names_of(list, n, got, sizeof(got));
    assert_string_equal(got, "ds-s5,ds-s6");
    sess_list_free(list, n);
    assert_int_equal(store_sess_by_agent(st, "host/db-1", (1u << SESSION__COUNT) - 1, &list, &n),
                     0);
    names_of(list, n, got, sizeof(got));
    assert_string_equal(got, "ds-s2,ds-s4");
    sess_list_free(list, n);
    assert_int_equal(store_sess_by_agent(st, "gh/acme/web/1-1", 1u << SESSION_EXPIRED, &list, &n),
                     0);
    names_of(list, n, got, sizeof(got));
    assert_string_equal(got, "ds-s3");
    assert_int_equal(list[0]->n_parts, 1);
    sess_list_free(list, n);
    assert_int_equal(store_sess_by_agent(st, "nobody/here", 0, &list, &n), 0);
    assert_int_equal(n, 0);
    sess_list_free(list, n);
}

/* ---- reaper queries ---------------------------------------------------------------------- */

static void
test_store_names_due(void **state)
{
    struct store *st = ST(state);
    struct sess *s;
    const struct {
        const char *name;
        const char *kind;
        int64_t now, arg;
        const char *want; /* sorted names */
    } cases[] = {
        /* expire: Active and expires_at <= now */
        {"expire, a second early", "expire", T0 + HOUR - 1, 0, ""},
        {"expire, at expiresAt", "expire", T0 + HOUR, 0, "ds-active"},
        {"expire, later", "expire", T0 + 2 * HOUR, 0, "ds-active,ds-active2"},
        /* approval-timeout: PendingApproval and created_at + timeout <= now */
        {"approval timeout, a second early", "approval-timeout", T0 + DAY - 1, DAY, ""},
        {"approval timeout, at the limit", "approval-timeout", T0 + DAY, DAY, "ds-pendappr"},
        {"approval timeout, shorter setting", "approval-timeout", T0 + HOUR, HOUR, "ds-pendappr"},
        /* agent-gone: Active, agent offline since + grace <= now */
        {"agent gone, a second early", "agent-gone", T0 + 100 + 299, 300, ""},
        {"agent gone, at the grace", "agent-gone", T0 + 100 + 300, 300, "ds-active2"},
        {"agent gone, long after", "agent-gone", T0 + DAY, 300, "ds-active2"},
        /* expiring: Active and expires_at - lead <= now, once */
        {"expiring, early", "expiring", T0 + HOUR - 301, 300, ""},
        {"expiring, at the lead", "expiring", T0 + HOUR - 300, 300, "ds-active"},
    };
    size_t i;
    int n_bad = 0;
    char **names = NULL;
    size_t n = 0;

    /* ds-active on an online agent, ds-active2 on an agent offline since T0+100 */
    put_agent(st, "agent/on", 1, 0);
    put_agent(st, "agent/off", 1, 0);
    assert_int_equal(store_agent_set_online(st, "agent/off", 0, T0 + 100), 0);
    s = mksess("ds-active", "t", "agent/on", "alice", NULL, SESSION_ACTIVE, T0);
    s->starts_at = T0;
    s->expires_at = T0 + HOUR;
    insert(st, s);
    s = mksess("ds-active2", "t", "agent/off", "alice", NULL, SESSION_ACTIVE, T0);
    s->starts_at = T0;
    s->expires_at = T0 + 2 * HOUR;
    insert(st, s);
    /* not Active: never due for expire or agent-gone, even with times in the past */
    s = mksess("ds-pending", "t", "agent/off", "alice", NULL, SESSION_PENDING, T0 - DAY);
    insert(st, s);
    s = mksess("ds-ended", "t", "agent/off", "alice", NULL, SESSION_EXPIRED, T0 - DAY);
    s->starts_at = T0 - DAY;
    s->expires_at = T0 - DAY + HOUR;
    s->ended_at = T0 - DAY + HOUR;
    insert(st, s);
    s = mksess("ds-pendappr", "t", "agent/on", "bob", NULL, SESSION_PENDING_APPROVAL, T0);
    insert(st, s);

    for (i = 0; i < N(cases); i++) {
        char got[256];
        int r = store_sess_names_due(st, cases[i].kind, cases[i].now, cases[i].arg, &names, &n);

        if (r != 0) {
            print_error("names_due: %s: error %d\n", cases[i].name, r);
            n_bad++;
            continue;
        }
        strv_join(names, n, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0) {
            print_error("names_due: %s: want [%s], got [%s]\n", cases[i].name, cases[i].want, got);
            n_bad++;
        }
        strv_free(names, n);
    }
    assert_int_equal(n_bad, 0);

    /* expiring fires once: after the event it is no longer due */
    assert_int_equal(
        store_event_add(st, "ds-active", T0 + HOUR - 300, "airlock", "expiring", NULL, NULL), 0);
    assert_int_equal(store_sess_names_due(st, "expiring", T0 + HOUR - 200, 300, &names, &n), 0);
    assert_int_equal(n, 0);
    strv_free(names, n);

    /* the agent comes back: not gone any more */
    assert_int_equal(store_agent_set_online(st, "agent/off", 1, T0 + 1000), 0);
    assert_int_equal(store_sess_names_due(st, "agent-gone", T0 + DAY, 300, &names, &n), 0);
    assert_int_equal(n, 0);
    strv_free(names, n);

    assert_int_equal(store_sess_names_due(st, "nonsense", T0, 0, &names, &n), ERR_INVALID);
    assert_null(names);
    assert_int_equal(n, 0);
}

static void
test_store_delete_ended_before(void **state)
{
    struct store *st = ST(state);
    struct sess *s, *got = NULL;
    int n_deleted = -1;

    s = mksess("ds-old", "t", "a", "alice", NULL, SESSION_EXPIRED, T0 - 10 * DAY);
    s->ended_at = T0 - 9 * DAY;
    insert(st, s);
    s = mksess("ds-edge", "t", "a", "alice", NULL, SESSION_TERMINATED, T0 - 10 * DAY);
    s->ended_at = T0 - 7 * DAY;
    insert(st, s);
    s = mksess("ds-live", "t", "a", "alice", NULL, SESSION_ACTIVE, T0 - 10 * DAY);
    insert(st, s);
    /* the old session's dependents go with it */
    join(st, "ds-old", "alice", NULL, ROLE_OWNER, T0 - 10 * DAY);
    assert_int_equal(store_approval_insert(st, "ds-old", "approve", "carol", NULL, T0 - 10 * DAY, NULL),
                     0);
    assert_int_equal(store_event_add(st, "ds-old", T0 - 10 * DAY, "alice", "created", NULL, NULL),
                     0);
    assert_int_equal(store_event_add(st, "ds-live", T0 - 10 * DAY, "alice", "created", NULL, NULL),
                     0);
    assert_int_equal(store_ticket_insert(st, "h-old", "ds-old", "alice", T0 + DAY), 0);
    assert_int_equal(store_renewal_insert(st, "ds-old", "alice", T0 - 10 * DAY, 60, 1, 61), 0);

    /* ended_at < t: equal is kept */
    assert_int_equal(store_sess_delete_ended_before(st, T0 - 9 * DAY, &n_deleted), 0);
    assert_int_equal(n_deleted, 0);
    assert_int_equal(store_sess_delete_ended_before(st, T0 - 9 * DAY + 1, &n_deleted), 0);
    assert_int_equal(n_deleted, 1);
    assert_int_equal(store_sess_get(st, "ds-old", &got), ERR_NOT_FOUND);
    assert_int_equal(q_int(st, "SELECT count(*) FROM events WHERE session = 'ds-old'"), 0);
    assert_int_equal(q_int(st, "SELECT count(*) FROM participants WHERE session = 'ds-old'"), 0);
    assert_int_equal(q_int(st, "SELECT count(*) FROM approvals WHERE session = 'ds-old'"), 0);
    assert_int_equal(q_int(st, "SELECT count(*) FROM join_tickets WHERE session = 'ds-old'"), 0);
    assert_int_equal(q_int(st, "SELECT count(*) FROM renewals WHERE session = 'ds-old'"), 0);
    assert_int_equal(q_int(st, "SELECT count(*) FROM events"), 1);

    /* a session that has not ended is never deleted */
    assert_int_equal(store_sess_delete_ended_before(st, T0 + 100 * DAY, &n_deleted), 0);
    assert_int_equal(n_deleted, 1);
    assert_int_equal(store_sess_get(st, "ds-edge", &got), ERR_NOT_FOUND);
    assert_int_equal(store_sess_get(st, "ds-live", &got), 0);
    sess_free(got);
}

/* ---- agents ------------------------------------------------------------------------------- */

static void
test_store_agents(void **state)
{
    struct store *st = ST(state);
    struct agent_rec *a = mkagent("gh/acme/web/42-1", 1, 0), *got = NULL;
    struct agent_rec **list = NULL;
    size_t n = 0;

    assert_int_equal(store_agent_get(st, "gh/acme/web/42-1", &got), ERR_NOT_FOUND);
    assert_null(got);
    assert_int_equal(store_agent_put(st, a), 0);
    assert_int_equal(store_agent_get(st, "gh/acme/web/42-1", &got), 0);
    assert_string_equal(got->name, "gh/acme/web/42-1");
    assert_true(json_equal(got->labels, a->labels));
    assert_true(json_equal(got->host_keys, a->host_keys));
    assert_string_equal(got->version, "1.2.0");
    assert_string_equal(got->registered_by, "ops-bot");
    assert_int_equal(got->registered_at, T0);
    assert_int_equal(got->last_seen_at, T0 + 10);
    assert_string_equal(got->credential_hash, "0123456789abcdef");
    assert_int_equal(got->online, 1);
    assert_int_equal(got->offline_since, 0);
    agent_rec_free(got);

    /* names are exact */
    assert_int_equal(store_agent_get(st, "GH/acme/web/42-1", &got), ERR_NOT_FOUND);
    assert_int_equal(store_agent_get(st, "gh/acme/web", &got), ERR_NOT_FOUND);

    /* offline: online 0, offline_since and last_seen_at now */
    assert_int_equal(store_agent_set_online(st, "gh/acme/web/42-1", 0, T0 + 500), 0);
    assert_int_equal(store_agent_get(st, "gh/acme/web/42-1", &got), 0);
    assert_int_equal(got->online, 0);
    assert_int_equal(got->offline_since, T0 + 500);
    assert_int_equal(got->last_seen_at, T0 + 500);
    agent_rec_free(got);
    /* online again: offline_since cleared */
    assert_int_equal(store_agent_set_online(st, "gh/acme/web/42-1", 1, T0 + 600), 0);
    assert_int_equal(store_agent_get(st, "gh/acme/web/42-1", &got), 0);
    assert_int_equal(got->online, 1);
    assert_int_equal(got->offline_since, 0);
    assert_int_equal(got->last_seen_at, T0 + 600);
    agent_rec_free(got);

    /* re-registering replaces the record (new credential) */
    free(a->credential_hash);
    a->credential_hash = xstrdup("fedcba9876543210");
    json_decref(a->labels);
    a->labels = json_pack("{s:s, s:s}", "repo", "acme/web", "os", "debian");
    a->online = 0;
    a->offline_since = T0 + 700;
    assert_int_equal(store_agent_put(st, a), 0);
    assert_int_equal(store_agent_get(st, "gh/acme/web/42-1", &got), 0);
    assert_string_equal(got->credential_hash, "fedcba9876543210");
    assert_true(json_equal(got->labels, a->labels));
    assert_int_equal(got->online, 0);
    assert_int_equal(got->offline_since, T0 + 700);
    agent_rec_free(got);
    assert_int_equal(q_int(st, "SELECT count(*) FROM agents"), 1);
    agent_rec_free(a);

    /* list: ordered by name */
    put_agent(st, "host/zeta", 1, 0);
    put_agent(st, "host/alpha", 1, 0);
    assert_int_equal(store_agent_list(st, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0]->name, "gh/acme/web/42-1");
    assert_string_equal(list[1]->name, "host/alpha");
    assert_string_equal(list[2]->name, "host/zeta");
    assert_int_equal(list[1]->online, 1);
    agent_list_free(list, n);

    /* after a restart nobody is online; an agent already offline keeps its time */
    assert_int_equal(store_agents_all_offline(st, T0 + 900), 0);
    assert_int_equal(store_agent_list(st, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0]->online, 0);
    assert_int_equal(list[0]->offline_since, T0 + 700);
    assert_int_equal(list[1]->online, 0);
    assert_int_equal(list[1]->offline_since, T0 + 900);
    assert_int_equal(list[2]->online, 0);
    assert_int_equal(list[2]->offline_since, T0 + 900);
    agent_list_free(list, n);

    /* setting an unknown agent online creates nothing */
    (void)store_agent_set_online(st, "nobody/here", 1, T0);
    assert_int_equal(store_agent_get(st, "nobody/here", &got), ERR_NOT_FOUND);
}

static void
test_store_agent_list_empty(void **state)
{
    struct store *st = ST(state);
    struct agent_rec **list = (struct agent_rec **)&list;
    size_t n = 7;

    assert_int_equal(store_agent_list(st, &list, &n), 0);
    assert_int_equal(n, 0);
    agent_list_free(list, n);
}

static void
test_store_outbox(void **state)
{
    struct store *st = ST(state);
    int64_t id = 0;

    insert(st, mksess("ds-outbox00001", "t", "a", "alice", NULL, SESSION_ACTIVE, T0));
    assert_int_equal(store_event_add(st, "ds-outbox00001", T0, "alice", "created", NULL, &id), 0);
    assert_true(id > 0);
    assert_int_equal(
        store_outbox_add(st, id, "https://hooks.example.com/a", "{\"type\":\"created\"}", T0), 0);
    assert_int_equal(q_int(st, "SELECT count(*) FROM outbox"), 1);
    assert_int_equal(q_int(st, "SELECT attempts FROM outbox"), 0);
}

/* ---- the view cache and the update hook ------------------------------------------------- */

/*
 * Caches a view of session name the way the server does: the gen first, then
 * the load, then the put (which must be accepted: nothing was written between).
 */
static void
cache_view(struct store *st, const char *name)
{
    struct viewcache *vc = store_views(st);
    uint64_t gen = viewcache_gen(vc);
    struct sess *s = NULL;
    struct sess_view *v;

    if (store_sess_get(st, name, &s) != 0)
        fail_msg("cache_view: %s not found", name);
    v = sess_view_new(s, xstrdup("{}"), 2);
    assert_int_equal(viewcache_put(vc, v, gen), 1);
    sess_view_unref(v);
}

/* 1 if session name has a cached view (by name, and the same one by its rowid), else 0. */
static int
is_cached(struct store *st, const char *name)
{
    struct sess_view *v = viewcache_get(store_views(st), name), *w;
    int r = v != NULL;

    if (v != NULL) {
        assert_string_equal(v->s->name, name);
        w = viewcache_get_rowid(store_views(st), v->s->rowid);
        assert_ptr_equal(w, v);
        sess_view_unref(w);
    }
    sess_view_unref(v);
    return r;
}

/* A sessions row drops its own view, and only its own. */
static void
test_store_views_session_write(void **state)
{
    struct store *st = ST(state);
    struct sess *a = NULL, *b = NULL;

    insert(st, mksess("ds-view-a", "t", "agent/1", "alice", NULL, SESSION_PENDING, T0));
    insert(st, mksess("ds-view-b", "t", "agent/1", "bob", NULL, SESSION_PENDING, T0 + 1));
    assert_int_equal(viewcache_count(store_views(st)), 0);
    assert_int_equal(is_cached(st, "ds-view-a"), 0);
    cache_view(st, "ds-view-a");
    cache_view(st, "ds-view-b");
    assert_int_equal(is_cached(st, "ds-view-a"), 1);
    assert_int_equal(is_cached(st, "ds-view-b"), 1);
    assert_int_equal(viewcache_count(store_views(st)), 2);

    /* (a) updating a session drops its view */
    assert_int_equal(store_sess_get(st, "ds-view-a", &a), 0);
    a->state = SESSION_ACTIVE;
    a->starts_at = T0 + 5;
    a->expires_at = T0 + 5 + HOUR;
    assert_int_equal(store_sess_update(st, a), 0);
    assert_int_equal(is_cached(st, "ds-view-a"), 0);
    /* (b) ... and not the other session's */
    assert_int_equal(is_cached(st, "ds-view-b"), 1);
    assert_int_equal(viewcache_count(store_views(st)), 1);

    /* the other way round, inside a committed transaction */
    cache_view(st, "ds-view-a");
    assert_int_equal(store_sess_get(st, "ds-view-b", &b), 0);
    b->state = SESSION_TERMINATED;
    b->ended_at = T0 + 10;
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_sess_update(st, b), 0);
    assert_int_equal(is_cached(st, "ds-view-b"), 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(is_cached(st, "ds-view-b"), 0);
    assert_int_equal(is_cached(st, "ds-view-a"), 1);

    /* a raw write to the row (whatever code makes it) drops it too */
    assert_int_equal(sqlite3_exec(store_db(st),
                                  "UPDATE sessions SET message = 'x' WHERE name = 'ds-view-a'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(is_cached(st, "ds-view-a"), 0);

    /* a new session's row does not drop the others' */
    cache_view(st, "ds-view-a");
    insert(st, mksess("ds-view-c", "t", "agent/1", "carol", NULL, SESSION_PENDING, T0 + 2));
    assert_int_equal(is_cached(st, "ds-view-a"), 1);

    /* a refused (conflicting) update writes nothing; the reloaded view reflects the row */
    b->state = SESSION_EXPIRED;
    b->version = 1;
    assert_int_equal(store_sess_update(st, b), ERR_CONFLICT);
    cache_view(st, "ds-view-b");
    {
        struct sess_view *v = viewcache_get(store_views(st), "ds-view-b");

        assert_non_null(v);
        assert_int_equal(v->s->state, SESSION_TERMINATED);
        sess_view_unref(v);
    }
    sess_free(a);
    sess_free(b);
}

/*
 * A view read before a write and put after it is refused: the reader's gen
 * predates the drop (the race the gen guards against, with a real write).
 */
static void
test_store_views_stale_put_refused(void **state)
{
    struct store *st = ST(state);
    struct viewcache *vc = store_views(st);
    struct sess *s = NULL, *w = NULL;
    struct sess_view *v;
    uint64_t gen;

    insert(st, mksess("ds-stale", "t", "agent/1", "alice", NULL, SESSION_PENDING, T0));
    insert(st, mksess("ds-other", "t", "agent/1", "alice", NULL, SESSION_PENDING, T0));
    /* the reader: gen, load */
    gen = viewcache_gen(vc);
    assert_int_equal(store_sess_get(st, "ds-stale", &s), 0);
    /* a writer commits meanwhile */
    assert_int_equal(store_sess_get(st, "ds-stale", &w), 0);
    w->state = SESSION_ACTIVE;
    assert_int_equal(store_sess_update(st, w), 0);
    sess_free(w);
    /* the reader's view (state Pending) must not be cached */
    v = sess_view_new(s, xstrdup("{}"), 2);
    assert_int_equal(viewcache_put(vc, v, gen), 0);
    assert_int_equal(is_cached(st, "ds-stale"), 0);
    sess_view_unref(v);

    /* the same with a write to another session's row: conservatively refused as well */
    gen = viewcache_gen(vc);
    assert_int_equal(store_sess_get(st, "ds-stale", &s), 0);
    assert_int_equal(sqlite3_exec(store_db(st),
                                  "UPDATE sessions SET message = 'm' WHERE name = 'ds-other'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    v = sess_view_new(s, xstrdup("{}"), 2);
    assert_int_equal(viewcache_put(vc, v, gen), 0);
    sess_view_unref(v);

    /* a write to a table no view reads is no drop: the view goes in */
    gen = viewcache_gen(vc);
    assert_int_equal(store_sess_get(st, "ds-stale", &s), 0);
    assert_int_equal(store_event_add(st, "ds-stale", T0, "alice", "created", NULL, NULL), 0);
    v = sess_view_new(s, xstrdup("{}"), 2);
    assert_int_equal(viewcache_put(vc, v, gen), 1);
    assert_int_equal(v->s->state, SESSION_ACTIVE);
    sess_view_unref(v);
    assert_int_equal(is_cached(st, "ds-stale"), 1);
}

/* (c) Writes to participants, approvals and agents drop every view. */
static void
test_store_views_related_tables(void **state)
{
    struct store *st = ST(state);
    struct sess_participant p;
    struct agent_rec *a;

    put_agent(st, "agent/1", 1, 0);
    insert(st, mksess("ds-rel-a", "t", "agent/1", "alice", NULL, SESSION_PENDING_APPROVAL, T0));
    insert(st, mksess("ds-rel-b", "t", "agent/2", "bob", NULL, SESSION_ACTIVE, T0));

    /* participants: a join (insert), a re-join (upsert's update), a leave */
    cache_view(st, "ds-rel-a");
    cache_view(st, "ds-rel-b");
    join(st, "ds-rel-b", "carol", NULL, ROLE_VIEWER, T0 + 1);
    assert_int_equal(is_cached(st, "ds-rel-b"), 0);
    assert_int_equal(is_cached(st, "ds-rel-a"), 0); /* another session's too */
    assert_int_equal(viewcache_count(store_views(st)), 0);
    cache_view(st, "ds-rel-a");
    cache_view(st, "ds-rel-b");
    memset(&p, 0, sizeof(p));
    p.user = "carol";
    p.role = ROLE_PARTICIPANT;
    p.joined_at = T0 + 2;
    p.ssh_public_key = "ssh-ed25519 AAAAother";
    assert_int_equal(store_participant_upsert(st, "ds-rel-b", &p), 0);
    assert_int_equal(viewcache_count(store_views(st)), 0);
    cache_view(st, "ds-rel-b");
    assert_int_equal(store_participant_leave(st, "ds-rel-b", "carol", T0 + 3), 0);
    assert_int_equal(is_cached(st, "ds-rel-b"), 0);

    /* approvals */
    cache_view(st, "ds-rel-a");
    cache_view(st, "ds-rel-b");
    assert_int_equal(store_approval_insert(st, "ds-rel-a", "approve", "erin", NULL, T0 + 4, NULL), 0);
    assert_int_equal(is_cached(st, "ds-rel-a"), 0);
    assert_int_equal(is_cached(st, "ds-rel-b"), 0);

    /* agents: online flag, everyone offline, re-registration (INSERT OR REPLACE) */
    cache_view(st, "ds-rel-a");
    cache_view(st, "ds-rel-b");
    assert_int_equal(store_agent_set_online(st, "agent/1", 0, T0 + 5), 0);
    assert_int_equal(viewcache_count(store_views(st)), 0);
    {
        struct sess_view *v;

        cache_view(st, "ds-rel-a");
        v = viewcache_get(store_views(st), "ds-rel-a");
        assert_int_equal(v->s->agent_online, 0); /* the reloaded view sees the change */
        sess_view_unref(v);
    }
    assert_int_equal(store_agents_all_offline(st, T0 + 6), 0);
    assert_int_equal(is_cached(st, "ds-rel-a"), 0);
    cache_view(st, "ds-rel-a");
    a = mkagent("agent/1", 1, 0);
    assert_int_equal(store_agent_put(st, a), 0);
    agent_rec_free(a);
    assert_int_equal(is_cached(st, "ds-rel-a"), 0);
    cache_view(st, "ds-rel-b");
    put_agent(st, "agent/new", 1, 0);
    assert_int_equal(is_cached(st, "ds-rel-b"), 0);

    /*
     * session_invites mirrors sessions.invited: an update that rewrites the
     * invitations drops that session's view (its row changed) and no other.
     */
    {
        struct sess *s = NULL;

        assert_int_equal(store_sess_get(st, "ds-rel-b", &s), 0);
        add_invite(s, "dave", ROLE_VIEWER);
        cache_view(st, "ds-rel-a");
        cache_view(st, "ds-rel-b");
        assert_int_equal(store_sess_update(st, s), 0);
        assert_int_equal(is_cached(st, "ds-rel-b"), 0);
        assert_int_equal(is_cached(st, "ds-rel-a"), 1);
        sess_free(s);
    }

    /* tables no view reads drop nothing */
    cache_view(st, "ds-rel-a");
    cache_view(st, "ds-rel-b");
    {
        uint64_t gen = viewcache_gen(store_views(st));
        int64_t id = 0;

        assert_int_equal(store_event_add(st, "ds-rel-a", T0 + 7, "alice", "joined", NULL, &id), 0);
        assert_int_equal(store_renewal_insert(st, "ds-rel-b", "bob", T0 + 8, 60, 1, 61), 0);
        assert_int_equal(store_ticket_insert(st, "h-rel", "ds-rel-b", "bob", T0 + DAY), 0);
        assert_int_equal(store_tickets_delete(st, "ds-rel-b", NULL), 0);
        assert_int_equal(store_outbox_add(st, id, "https://hooks.example.com/a", "{}", T0), 0);
        assert_int_equal(viewcache_gen(store_views(st)), gen);
    }
    assert_int_equal(is_cached(st, "ds-rel-a"), 1);
    assert_int_equal(is_cached(st, "ds-rel-b"), 1);
    assert_int_equal(viewcache_count(store_views(st)), 2);
}

/* (d) The retention delete drops the deleted sessions' views (and their rowids stay dead). */
static void
test_store_views_delete_ended(void **state)
{
    struct store *st = ST(state);
    struct sess *s;
    struct sess_view *v;
    int64_t rowid;
    int n_deleted = 0;

    s = mksess("ds-del-old", "t", "a", "alice", NULL, SESSION_EXPIRED, T0 - 10 * DAY);
    s->ended_at = T0 - 9 * DAY;
    insert(st, s);
    s = mksess("ds-del-live", "t", "a", "alice", NULL, SESSION_ACTIVE, T0 - 10 * DAY);
    insert(st, s);
    s = mksess("ds-del-last", "t", "a", "alice", NULL, SESSION_EXPIRED, T0 - 10 * DAY);
    s->ended_at = T0 - 9 * DAY;
    insert(st, s);
    cache_view(st, "ds-del-old");
    cache_view(st, "ds-del-live");
    cache_view(st, "ds-del-last");
    v = viewcache_get(store_views(st), "ds-del-last");
    rowid = v->s->rowid;
    sess_view_unref(v);

    /* nothing deleted: nothing dropped */
    assert_int_equal(store_sess_delete_ended_before(st, T0 - 9 * DAY, &n_deleted), 0);
    assert_int_equal(n_deleted, 0);
    assert_int_equal(viewcache_count(store_views(st)), 3);

    assert_int_equal(store_sess_delete_ended_before(st, T0, &n_deleted), 0);
    assert_int_equal(n_deleted, 2);
    assert_int_equal(is_cached(st, "ds-del-old"), 0);
    assert_int_equal(is_cached(st, "ds-del-last"), 0);
    assert_null(viewcache_get_rowid(store_views(st), rowid));
    assert_int_equal(is_cached(st, "ds-del-live"), 1); /* no dependents: no cascade to drop it */

    /* the last rowid is free again (no AUTOINCREMENT): a new session may take it, and the
       view found under it is never the deleted one */
    insert(st, mksess("ds-del-new", "t", "a", "alice", NULL, SESSION_PENDING, T0));
    assert_null(viewcache_get_rowid(store_views(st), rowid));
    cache_view(st, "ds-del-new");
    if ((v = viewcache_get_rowid(store_views(st), rowid)) != NULL) {
        assert_string_equal(v->s->name, "ds-del-new");
        sess_view_unref(v);
    }

    /* with dependents, the cascade deletes participants: every view goes */
    s = mksess("ds-del-deps", "t", "a", "alice", NULL, SESSION_TERMINATED, T0 - 10 * DAY);
    s->ended_at = T0 - 8 * DAY;
    insert(st, s);
    join(st, "ds-del-deps", "alice", NULL, ROLE_OWNER, T0 - 10 * DAY);
    cache_view(st, "ds-del-deps");
    cache_view(st, "ds-del-live");
    assert_int_equal(store_sess_delete_ended_before(st, T0, &n_deleted), 0);
    assert_int_equal(n_deleted, 1);
    assert_int_equal(is_cached(st, "ds-del-deps"), 0);
    assert_int_equal(q_int(st, "SELECT count(*) FROM participants"), 0);
}

/* (e) A write in a transaction that is rolled back leaves no stale view behind. */
static void
test_store_views_rollback(void **state)
{
    struct store *st = ST(state);
    struct sess *s = NULL;
    struct sess_view *v;
    struct sess_participant p;

    insert(st, mksess("ds-rb", "t", "agent/1", "alice", NULL, SESSION_PENDING, T0));
    cache_view(st, "ds-rb");

    assert_int_equal(store_sess_get(st, "ds-rb", &s), 0);
    assert_int_equal(store_begin(st), 0);
    s->state = SESSION_ACTIVE;
    s->message = xstrdup("rolled back");
    assert_int_equal(store_sess_update(st, s), 0);
    assert_int_equal(is_cached(st, "ds-rb"), 0); /* dropped at the write, before any commit */
    store_rollback(st);
    assert_int_equal(is_cached(st, "ds-rb"), 0);
    sess_free(s);

    /* reloaded after the rollback: the row as it was */
    cache_view(st, "ds-rb");
    v = viewcache_get(store_views(st), "ds-rb");
    assert_non_null(v);
    assert_int_equal(v->s->state, SESSION_PENDING);
    assert_null(v->s->message);
    assert_int_equal(v->s->version, 1);
    sess_view_unref(v);

    /* a related-table write rolled back */
    assert_int_equal(store_begin(st), 0);
    memset(&p, 0, sizeof(p));
    p.user = "bob";
    p.role = ROLE_VIEWER;
    p.joined_at = T0;
    p.ssh_public_key = "k";
    assert_int_equal(store_participant_upsert(st, "ds-rb", &p), 0);
    assert_int_equal(is_cached(st, "ds-rb"), 0);
    store_rollback(st);
    assert_int_equal(is_cached(st, "ds-rb"), 0);
    cache_view(st, "ds-rb");
    v = viewcache_get(store_views(st), "ds-rb");
    assert_int_equal(v->s->n_parts, 0);
    sess_view_unref(v);

    /* a reader that read its gen before the transaction cannot cache what it saw inside it */
    {
        uint64_t gen = viewcache_gen(store_views(st));
        struct sess *in = NULL;

        assert_int_equal(store_begin(st), 0);
        assert_int_equal(store_sess_get(st, "ds-rb", &s), 0);
        s->state = SESSION_TERMINATED;
        s->ended_at = T0 + 1;
        assert_int_equal(store_sess_update(st, s), 0);
        assert_int_equal(store_sess_get(st, "ds-rb", &in), 0);
        assert_int_equal(in->state, SESSION_TERMINATED); /* uncommitted, visible on this connection */
        store_rollback(st);
        v = sess_view_new(in, xstrdup("{}"), 2);
        assert_int_equal(viewcache_put(store_views(st), v, gen), 0);
        sess_view_unref(v);
        assert_int_equal(is_cached(st, "ds-rb"), 0);
        sess_free(s);
    }
}

/* (f) The page's ids are the rowids of the sessions the list loads, in order. */
static void
test_store_page_ids_match_list(void **state)
{
    struct store *st = ST(state);
    static char *tmpl_ci[] = {"ci-debug"};
    struct sess_filter filters[] = {
        {.admin = 1, .limit = 50},
        {.admin = 1, .limit = 2},
        {.admin = 1, .limit = 50, .agent = "host/db-1"},
        {.admin = 1, .limit = 50, .state_mask = 1u << SESSION_PENDING},
        {.limit = 50, .me_user = "alice", .me_email = "alice@example.com"},
        {.limit = 1, .me_user = "zed", .approver_templates = tmpl_ci, .n_approver_templates = 1},
        {.limit = 50, .me_user = "nobody"},
    };
    size_t i, k;

    seed_list(st);
    for (i = 0; i < N(filters); i++) {
        struct sess_filter f = filters[i];
        int guard = 0;

        for (;;) {
            int64_t ids[51];
            size_t n_ids = 0, n = 0;
            int64_t total_p = -1, total_l = -2;
            int more_p = -1, more_l = -2;
            struct sess **list = NULL;

            assert_int_equal(store_sess_page(st, &f, ids, &n_ids, &total_p, &more_p), 0);
            assert_int_equal(store_sess_list(st, &f, &list, &n, &total_l, &more_l), 0);
            if (n_ids != n)
                fail_msg("filter %zu: page %zu ids, list %zu sessions", i, n_ids, n);
            assert_int_equal(total_p, total_l);
            assert_int_equal(more_p, more_l);
            for (k = 0; k < n; k++) {
                struct sess *s = NULL;

                if (ids[k] != list[k]->rowid)
                    fail_msg("filter %zu: id %zu is %lld, list has %s (rowid %lld)", i, k,
                             (long long)ids[k], list[k]->name, (long long)list[k]->rowid);
                if (k > 0)
                    assert_true(ids[k] < ids[k - 1]); /* newest first */
                assert_int_equal(store_sess_get_rowid(st, ids[k], &s), 0);
                assert_string_equal(s->name, list[k]->name);
                sess_free(s);
            }
            if (!more_p || n == 0) {
                sess_list_free(list, n);
                break;
            }
            f.cursor_rowid = list[n - 1]->rowid;
            sess_list_free(list, n);
            assert_true(++guard < 10);
        }
    }
    {
        struct sess *s = (struct sess *)&s;

        assert_int_equal(store_sess_get_rowid(st, 999999, &s), ERR_NOT_FOUND);
        assert_null(s);
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_migrations_applied),
        T(test_store_reopen_is_noop),
        T(test_store_files_private),
        T(test_store_refuses_newer_schema),
        T(test_store_open_bad_path),
        T(test_store_session_round_trip),
        T(test_store_session_minimal),
        T(test_store_session_states),
        T(test_store_session_not_found_and_duplicate),
        T(test_store_session_update_optimistic),
        T(test_store_transactions),
        T(test_store_template_snapshots),
        T(test_store_session_agent_info),
        T(test_store_approvals_unique),
        T(test_store_count_open_domains),
        T(test_store_participants),
        T(test_store_renewals),
        T(test_store_events_order),
        T(test_store_tickets),
        T(test_store_list_filters),
        T(test_store_list_loads_related),
        T(test_store_list_paging),
        T(test_store_list_paging_filtered),
        T(test_store_sess_by_agent),
        T(test_store_names_due),
        T(test_store_delete_ended_before),
        T(test_store_agents),
        T(test_store_agent_list_empty),
        T(test_store_outbox),
        T(test_store_views_session_write),
        T(test_store_views_stale_put_refused),
        T(test_store_views_related_tables),
        T(test_store_views_delete_ended),
        T(test_store_views_rollback),
        T(test_store_page_ids_match_list),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
