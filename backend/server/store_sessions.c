/*
 * Sessions, their approval, participants, renewals, tickets and events.
 * A struct sess is loaded whole (row + approval + participants); updates
 * write the mutable columns with optimistic locking on `version`, inside
 * the caller's transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "store_recording.h"
#include "tmpl.h"
#include "util.h"
#include "xmalloc.h"

/* Reading adds the agent's online flag and host keys, so a session renders without another query.
 */
#define SESS_SELECT                                                                                \
    "SELECT sessions.name, template, agent, requested_by, requested_by_email,"                     \
    " requested_by_name, requester_groups, reason, requested_duration_s, invited, state,"          \
    " message, created_at, starts_at, expires_at, renewal_count, approval_required,"               \
    " resolved_template, ended_at, sessions.version, coalesce(agents.online, 0),"                  \
    " agents.host_keys, sessions.rowid, requested_by_issuer, activated_at, first_connect_at,"      \
    " sessions.last_input_at, rules_at, agents.offline_since FROM sessions"                        \
    " LEFT JOIN agents ON agents.name = sessions.agent"
#define SESS_COLS                                                                                  \
    "name, template, agent, requested_by, requested_by_email, requested_by_name,"                  \
    " requester_groups, reason, requested_duration_s, invited, state, message, created_at,"        \
    " starts_at, expires_at, renewal_count, approval_required, resolved_template, ended_at,"       \
    " version"

static void
invites_free(struct sess_invite *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i].who);
    free(v);
}

static void
parts_free(struct sess_participant *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i].user);
        free(v[i].email);
        free(v[i].domain);
        free(v[i].display_name);
        free(v[i].ssh_public_key);
    }
    free(v);
}

void
sess_free(struct sess *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->template_name);
    free(s->agent);
    free(s->requested_by);
    free(s->requested_by_email);
    free(s->requested_by_domain);
    free(s->requested_by_name);
    json_decref(s->requester_groups);
    free(s->reason);
    invites_free(s->invited, s->n_invited);
    free(s->message);
    free(s->tmpl_text);
    json_decref(s->agent_host_keys);
    json_decref(s->recording);
    if (s->owned_tmpl != NULL) {
        tmpl_cleanup(s->owned_tmpl);
        free(s->owned_tmpl);
    }
    free(s->decision);
    free(s->decided_by);
    free(s->decided_by_domain);
    free(s->decision_reason);
    parts_free(s->parts, s->n_parts);
    free(s);
}

void
sess_list_free(struct sess **list, size_t n)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < n; i++)
        sess_free(list[i]);
    free(list);
}

void
sess_policy_view(const struct sess *s, struct policy_session *v, struct policy_participant *parts,
                 struct policy_invite *invs)
{
    size_t i;

    memset(v, 0, sizeof(*v));
    v->state = s->state;
    v->tmpl = s->tmpl;
    v->requested_by = s->requested_by;
    v->requested_by_email = s->requested_by_email;
    v->requested_by_domain = s->requested_by_domain;
    for (i = 0; i < s->n_invited; i++) {
        invs[i].who = s->invited[i].who;
        invs[i].role = s->invited[i].role;
    }
    v->invited = invs;
    v->n_invited = s->n_invited;
    for (i = 0; i < s->n_parts; i++) {
        parts[i].user = s->parts[i].user;
        parts[i].email = s->parts[i].email;
        parts[i].domain = s->parts[i].domain;
        parts[i].role = s->parts[i].role;
        parts[i].active = s->parts[i].left_at == 0;
    }
    v->participants = parts;
    v->n_participants = s->n_parts;
    v->decided_by = s->decided_by;
    v->decided_by_domain = s->decided_by_domain;
    v->renewal_count = s->renewal_count;
    v->starts_at = s->starts_at;
    v->expires_at = s->expires_at;
}

void
sess_pview_init(struct sess_pview *pv, const struct sess *s)
{
    pv->parts = xcalloc(s->n_parts + 1, sizeof(*pv->parts));
    pv->invs = xcalloc(s->n_invited + 1, sizeof(*pv->invs));
    sess_policy_view(s, &pv->v, pv->parts, pv->invs);
}

void
sess_pview_cleanup(struct sess_pview *pv)
{
    free(pv->parts);
    free(pv->invs);
    pv->parts = NULL;
    pv->invs = NULL;
}

static json_t *
invites_json(const struct sess *s)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < s->n_invited; i++)
        json_array_append_new(a, json_pack("{s:s, s:s}", "who", s->invited[i].who, "role",
                                           policy_role_name(s->invited[i].role)));
    return a;
}

static void
invites_from_json(const json_t *a, struct sess *s)
{
    size_t i, n = json_is_array(a) ? json_array_size(a) : 0;

    s->invited = n ? xcalloc(n, sizeof(*s->invited)) : NULL;
    s->n_invited = 0;
    for (i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        const char *who = json_string_value(json_object_get(e, "who"));
        const char *role = json_string_value(json_object_get(e, "role"));
        enum policy_role rr = ROLE_PARTICIPANT;

        if (who == NULL)
            continue;
        if (role != NULL)
            (void)policy_role_parse(role, &rr);
        s->invited[s->n_invited].who = xstrdup(who);
        s->invited[s->n_invited++].role = rr;
    }
}

/*
 * Points s->tmpl at the parsed snapshot text, parsing it at most once per
 * distinct text (the JSON parse was a third of the cost of a GET). The
 * snapshot JSON itself is only parsed when the cache is full.
 */
static void
tmpl_load(struct store *st, struct sess *s, const char *text)
{
    struct tmpl_slot *slot;
    json_t *j;
    size_t i;

    if (text == NULL)
        text = "{}";
    for (i = 0; i < st->n_tmpls; i++) {
        if (strcmp(st->tmpls[i].text, text) == 0) {
            s->tmpl = &st->tmpls[i].tmpl;
            return;
        }
    }
    j = json_loads(text, 0, NULL);
    if (st->n_tmpls < STORE_TMPL_CACHE) {
        slot = &st->tmpls[st->n_tmpls];
        if (tmpl_from_json(j, &slot->tmpl) == 0) {
            slot->text = xstrdup(text);
            st->n_tmpls++;
            s->tmpl = &slot->tmpl;
            json_decref(j);
            return;
        }
        tmpl_cleanup(&slot->tmpl);
    }
    s->owned_tmpl = xcalloc(1, sizeof(*s->owned_tmpl));
    if (tmpl_from_json(j, s->owned_tmpl) != 0)
        s->owned_tmpl->name = xstrdup(s->template_name ? s->template_name : "unknown");
    s->tmpl = s->owned_tmpl;
    json_decref(j);
}

/* Reads one sessions row (columns SESS_COLS) into a new struct sess. */
static struct sess *
row_to_sess(struct store *st, sqlite3_stmt *stmt)
{
    struct sess *s = xcalloc(1, sizeof(*s));
    json_t *inv;
    const char *state;

    s->name = store_col_text(stmt, 0);
    s->template_name = store_col_text(stmt, 1);
    s->agent = store_col_text(stmt, 2);
    s->requested_by = store_col_text(stmt, 3);
    s->requested_by_email = store_col_text(stmt, 4);
    s->requested_by_name = store_col_text(stmt, 5);
    s->requester_groups = store_col_json(stmt, 6, json_array());
    s->reason = store_col_text(stmt, 7);
    s->requested_duration_s = sqlite3_column_int64(stmt, 8);
    inv = store_col_json(stmt, 9, json_array());
    invites_from_json(inv, s);
    json_decref(inv);
    state = (const char *)sqlite3_column_text(stmt, 10);
    if (state == NULL || session_state_parse(state, &s->state) != 0)
        s->state = SESSION_FAILED;
    s->message = store_col_text(stmt, 11);
    s->created_at = sqlite3_column_int64(stmt, 12);
    s->starts_at = sqlite3_column_int64(stmt, 13);
    s->expires_at = sqlite3_column_int64(stmt, 14);
    s->renewal_count = sqlite3_column_int(stmt, 15);
    s->approval_required = sqlite3_column_int(stmt, 16);
    tmpl_load(st, s, (const char *)sqlite3_column_text(stmt, 17));
    s->ended_at = sqlite3_column_int64(stmt, 18);
    s->version = sqlite3_column_int64(stmt, 19);
    s->agent_online = sqlite3_column_int(stmt, 20);
    s->agent_host_keys = store_col_json(stmt, 21, json_array());
    s->rowid = sqlite3_column_int64(stmt, 22);
    s->requested_by_domain = store_col_text(stmt, 23);
    s->activated_at = sqlite3_column_int64(stmt, 24);
    s->first_connect_at = sqlite3_column_int64(stmt, 25);
    s->last_input_at = sqlite3_column_int64(stmt, 26);
    s->rules_at = sqlite3_column_int64(stmt, 27);
    s->agent_offline_since = sqlite3_column_int64(stmt, 28);
    return s;
}

static int
load_related(struct store *st, struct sess *s)
{
    sqlite3_stmt *stmt = NULL;
    size_t cap = 0;
    int rc, r = ERR_DB;

    if (store_prepare(
            st, &stmt,
            "SELECT decision, by, at, reason, by_issuer FROM approvals WHERE session = ?1") != 0)
        goto out;
    sqlite3_bind_text(stmt, 1, s->name, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        s->decision = store_col_text(stmt, 0);
        s->decided_by = store_col_text(stmt, 1);
        s->decided_at = sqlite3_column_int64(stmt, 2);
        s->decision_reason = store_col_text(stmt, 3);
        s->decided_by_domain = store_col_text(stmt, 4);
    } else if (rc != SQLITE_DONE) {
        goto out;
    }
    store_finish(st, stmt);
    stmt = NULL;
    if (store_prepare(
            st, &stmt,
            "SELECT user, email, display_name, role, joined_at, left_at, ssh_public_key, issuer,"
            " first_connected_at, last_input_at, (SELECT count(*) FROM live_conns c"
            " WHERE c.session = p.session AND c.user = p.user), (SELECT min(since) FROM"
            " live_conns c WHERE c.session = p.session AND c.user = p.user)"
            " FROM participants p WHERE session = ?1 ORDER BY joined_at, user") != 0)
        goto out;
    sqlite3_bind_text(stmt, 1, s->name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct sess_participant *p;
        const char *role = (const char *)sqlite3_column_text(stmt, 3);

        if (s->n_parts == cap) {
            cap = cap ? cap * 2 : 4;
            s->parts = xrealloc(s->parts, cap * sizeof(*s->parts));
        }
        p = &s->parts[s->n_parts++];
        memset(p, 0, sizeof(*p));
        p->user = store_col_text(stmt, 0);
        p->email = store_col_text(stmt, 1);
        p->display_name = store_col_text(stmt, 2);
        p->role = ROLE_VIEWER;
        if (role != NULL)
            (void)policy_role_parse(role, &p->role);
        p->joined_at = sqlite3_column_int64(stmt, 4);
        p->left_at = sqlite3_column_int64(stmt, 5);
        p->ssh_public_key = store_col_text(stmt, 6);
        p->domain = store_col_text(stmt, 7);
        p->first_connected_at = sqlite3_column_int64(stmt, 8);
        p->last_input_at = sqlite3_column_int64(stmt, 9);
        p->connections = sqlite3_column_int(stmt, 10);
        p->connected_since = sqlite3_column_int64(stmt, 11);
        if (p->ssh_public_key != NULL && p->ssh_public_key[0] == '\0') {
            free(p->ssh_public_key); /* '' in the table: no key yet (the column is NOT NULL) */
            p->ssh_public_key = NULL;
        }
    }
    if (rc != SQLITE_DONE)
        goto out;
    s->recording = store_rec_status_json(st, s->name);
    r = 0;
out:
    if (r == ERR_DB)
        log_warn("session %s: %s", s->name, sqlite3_errmsg(st->db));
    store_finish(st, stmt);
    return r;
}

/* Loads the one session selected by stmt (bound by the caller). */
static int
sess_load(struct store *st, sqlite3_stmt *stmt, struct sess **sp)
{
    struct sess *s = NULL;
    int rc, r = ERR_DB;

    *sp = NULL;
    if ((rc = sqlite3_step(stmt)) == SQLITE_DONE) {
        r = ERR_NOT_FOUND;
        goto out;
    } else if (rc != SQLITE_ROW) {
        goto out;
    }
    s = row_to_sess(st, stmt);
    if ((r = load_related(st, s)) != 0)
        goto out;
    *sp = s;
    s = NULL;
    r = 0;
out:
    store_finish(st, stmt);
    sess_free(s);
    return r;
}

int
store_sess_get(struct store *st, const char *name, struct sess **sp)
{
    sqlite3_stmt *stmt = NULL;

    *sp = NULL;
    if (store_prepare(st, &stmt, SESS_SELECT " WHERE sessions.name = ?1") != 0)
        return ERR_DB;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    return sess_load(st, stmt, sp);
}

int
store_sess_get_rowid(struct store *st, int64_t rowid, struct sess **sp)
{
    sqlite3_stmt *stmt = NULL;

    *sp = NULL;
    if (store_prepare(st, &stmt, SESS_SELECT " WHERE sessions.rowid = ?1") != 0)
        return ERR_DB;
    sqlite3_bind_int64(stmt, 1, rowid);
    return sess_load(st, stmt, sp);
}

/* Mirrors s->invited into session_invites (the list's index of invitations). */
static int
write_invites(struct store *st, const struct sess *s)
{
    sqlite3_stmt *stmt = NULL;
    size_t i;
    int r;

    if ((r = store_prepare(st, &stmt, "DELETE FROM session_invites WHERE session = ?1")) != 0)
        return r;
    store_bind_text(stmt, 1, s->name);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    for (i = 0; r == 0 && i < s->n_invited; i++) {
        if ((r = store_prepare(st, &stmt,
                               "INSERT OR IGNORE INTO session_invites (session, who)"
                               " VALUES (?1, ?2)")) != 0)
            return r;
        store_bind_text(stmt, 1, s->name);
        store_bind_text(stmt, 2, s->invited[i].who);
        r = store_step_done(st, stmt);
        store_finish(st, stmt);
    }
    return r;
}

int
store_sess_insert(struct store *st, const struct sess *s)
{
    sqlite3_stmt *stmt = NULL;
    json_t *inv = invites_json(s);
    int r;

    if ((r = store_prepare(st, &stmt,
                           "INSERT INTO sessions (" SESS_COLS
                           ", requested_by_issuer) VALUES (?1, ?2, ?3,"
                           " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
                           " ?19, 1, ?20)")) != 0)
        goto out;
    store_bind_text(stmt, 1, s->name);
    store_bind_text(stmt, 2, s->template_name);
    store_bind_text(stmt, 3, s->agent);
    store_bind_text(stmt, 4, s->requested_by);
    store_bind_text(stmt, 5, s->requested_by_email);
    store_bind_text(stmt, 6, s->requested_by_name);
    store_bind_json(stmt, 7, s->requester_groups);
    store_bind_text(stmt, 8, s->reason);
    sqlite3_bind_int64(stmt, 9, s->requested_duration_s);
    store_bind_json(stmt, 10, inv);
    store_bind_text(stmt, 11, session_state_name(s->state));
    store_bind_text(stmt, 12, s->message);
    sqlite3_bind_int64(stmt, 13, s->created_at);
    store_bind_time(stmt, 14, s->starts_at);
    store_bind_time(stmt, 15, s->expires_at);
    sqlite3_bind_int(stmt, 16, s->renewal_count);
    sqlite3_bind_int(stmt, 17, s->approval_required);
    store_bind_text(stmt, 18, s->tmpl_text);
    store_bind_time(stmt, 19, s->ended_at);
    store_bind_text(stmt, 20, s->requested_by_domain);
    if ((r = store_step_done(st, stmt)) == 0 && s->n_invited > 0)
        r = write_invites(st, s);
out:
    json_decref(inv);
    store_finish(st, stmt);
    return r;
}

int
store_sess_update(struct store *st, struct sess *s)
{
    sqlite3_stmt *stmt = NULL;
    json_t *inv = invites_json(s);
    int r;

    if ((r = store_prepare(
             st, &stmt,
             "UPDATE sessions SET state = ?2, message = ?3, starts_at = ?4,"
             " expires_at = ?5, renewal_count = ?6, invited = ?7, ended_at = ?8,"
             " activated_at = ?10, first_connect_at = ?11, last_input_at = ?12,"
             " rules_at = ?13, version = version + 1 WHERE name = ?1 AND version = ?9")) != 0)
        goto out;
    store_bind_text(stmt, 1, s->name);
    store_bind_text(stmt, 2, session_state_name(s->state));
    store_bind_text(stmt, 3, s->message);
    store_bind_time(stmt, 4, s->starts_at);
    store_bind_time(stmt, 5, s->expires_at);
    sqlite3_bind_int(stmt, 6, s->renewal_count);
    store_bind_json(stmt, 7, inv);
    store_bind_time(stmt, 8, s->ended_at);
    sqlite3_bind_int64(stmt, 9, s->version);
    store_bind_time(stmt, 10, s->activated_at);
    store_bind_time(stmt, 11, s->first_connect_at);
    store_bind_time(stmt, 12, s->last_input_at);
    store_bind_time(stmt, 13, s->rules_at);
    if ((r = store_step_done(st, stmt)) != 0)
        goto out;
    if (sqlite3_changes(st->db) != 1) {
        r = ERR_CONFLICT; /* someone else changed it first */
        goto out;
    }
    s->version++;
    r = write_invites(st, s);
out:
    json_decref(inv);
    store_finish(st, stmt);
    return r;
}

int
store_sess_delete_ended_before(struct store *st, int64_t t, int *n_deleted)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    *n_deleted = 0;
    if ((r = store_prepare(
             st, &stmt, "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?1")) != 0)
        return r;
    sqlite3_bind_int64(stmt, 1, t);
    if ((r = store_step_done(st, stmt)) == 0)
        *n_deleted = sqlite3_changes(st->db);
    store_finish(st, stmt);
    return r;
}

int
store_sess_names_due(struct store *st, const char *kind, int64_t now, int64_t arg, char ***names,
                     size_t *n)
{
    /* Each is an index range (migration 0004): the reaper runs them every second under the lock. */
    static const struct {
        const char *kind;
        const char *sql;
    } queries[] = {
        {"expire", "SELECT name FROM sessions WHERE state = 'Active' AND expires_at <= ?1"},
        /* time rules due (timerules.c; migration 0007's partial index) */
        {"rules", "SELECT name FROM sessions WHERE state = 'Active' AND rules_at IS NOT NULL"
                  " AND rules_at <= ?1"},
        {"approval-timeout",
         "SELECT name FROM sessions WHERE state = 'PendingApproval' AND created_at + ?2 <= ?1"},
        /* agents first (CROSS JOIN keeps that order): each offline agent's Active
           sessions are then one probe of sessions_by_state_agent */
        {"agent-gone", "SELECT s.name FROM agents a CROSS JOIN sessions s"
                       " ON s.agent = a.name AND s.state = 'Active'"
                       " WHERE a.online = 0 AND a.offline_since IS NOT NULL"
                       " AND a.offline_since <= ?1 - ?2"},
        {"expiring", "SELECT name FROM sessions WHERE state = 'Active' AND expires_at <= ?1 + ?2"
                     " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.session = sessions.name"
                     " AND e.type = 'expiring' AND e.at >= sessions.expires_at - ?2 - 1)"},
    };
    sqlite3_stmt *stmt = NULL;
    const char *sql = NULL;
    size_t i, cap = 0;
    int rc, r = ERR_DB;

    *names = NULL;
    *n = 0;
    for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
        if (strcmp(queries[i].kind, kind) == 0)
            sql = queries[i].sql;
    if (sql == NULL)
        return ERR_INVALID;
    if (store_prepare_once(st, &stmt, sql) != 0)
        return ERR_DB;
    sqlite3_bind_int64(stmt, 1, now);
    if (sqlite3_bind_parameter_count(stmt) >= 2)
        sqlite3_bind_int64(stmt, 2, arg);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *names = xrealloc(*names, cap * sizeof(char *));
        }
        (*names)[(*n)++] = store_col_text(stmt, 0);
    }
    if (rc == SQLITE_DONE)
        r = 0;
    store_finish(st, stmt);
    return r;
}

/* Appends the WHERE clause of f to sql and binds nothing: returns the next bind index. */
static void
filter_sql(const struct sess_filter *f, char *sql, size_t len)
{
    size_t n = strlen(sql);

#define ADD(...) n += (size_t)snprintf(sql + n, n < len ? len - n : 0, __VA_ARGS__)
    ADD(" WHERE 1");
    if (f->state_mask != 0) {
        int i, first = 1;

        ADD(" AND state IN (");
        for (i = 0; i < SESSION__COUNT; i++) {
            if (f->state_mask & (1u << i)) {
                ADD("%s'%s'", first ? "" : ",", session_state_name((enum session_state)i));
                first = 0;
            }
        }
        ADD(")");
    }
    if (f->agent != NULL)
        ADD(" AND agent = ?1");
    if (f->user != NULL)
        ADD(" AND (requested_by = ?2 COLLATE NOCASE OR requested_by_email = ?2 COLLATE NOCASE)");
        /* ?3 me_user, ?4 me_email */
/* A stored identity domain agrees with the caller's (?5); NULL on either side agrees with any. */
#define IN_DOMAIN(col) "(" col " IS NULL OR ?5 IS NULL OR " col " = ?5 COLLATE NOCASE)"
/*
 * Sessions the caller (?3 user, ?4 email, ?5 domain) requested, joins or is invited to,
 * as one uncorrelated set: SQLite builds it once per statement from indexes
 * and probes it per row, instead of running correlated subqueries (and a
 * json_each over the invitations) for every candidate row.
 */
/* clang-format off */
#define ME_SELECT                                                                       \
    "SELECT rowid FROM sessions WHERE (requested_by = ?3 COLLATE NOCASE"                \
    " OR requested_by_email = ?4 COLLATE NOCASE) AND " IN_DOMAIN("requested_by_issuer") \
    " UNION SELECT s2.rowid FROM participants p JOIN sessions s2 ON s2.name = p.session" \
    " WHERE (p.user = ?3 COLLATE NOCASE OR p.email = ?4 COLLATE NOCASE)"                \
    " AND " IN_DOMAIN("p.issuer")                                                       \
    " UNION SELECT s3.rowid FROM session_invites i JOIN sessions s3 ON s3.name = i.session" \
    " WHERE (i.who = ?3 AND " IN_DOMAIN("s3.requested_by_issuer") ") OR i.who = ?4"
/* Sessions the caller decided: the approver's name in the approver's domain (policy_can_see). */
#define DECIDED_SELECT                                                                  \
    "SELECT s4.rowid FROM approvals a JOIN sessions s4 ON s4.name = a.session"          \
    " WHERE (a.by = ?3 COLLATE NOCASE OR a.by = ?4 COLLATE NOCASE)"                     \
    " AND " IN_DOMAIN("a.by_issuer")
/* clang-format on */
#define ME_SET "sessions.rowid IN (" ME_SELECT ")"
#define DECIDED_SET "sessions.rowid IN (" DECIDED_SELECT ")"
#define ME_DECIDED_SET "sessions.rowid IN (" ME_SELECT " UNION " DECIDED_SELECT ")"
    if (f->mine)
        ADD(" AND " ME_SET);
    if (!f->admin && f->n_approver_templates == 0) {
        /*
         * One set, so that SQLite drives the query from it (the caller's few
         * sessions) instead of testing every row of the state index.
         */
        ADD(" AND " ME_DECIDED_SET);
    } else if (!f->admin) {
        size_t i;

        ADD(" AND (");
        for (i = 0; i < f->n_approver_templates; i++)
            ADD("template = ?%zu OR ", 10 + i);
        ADD(ME_SET " OR " DECIDED_SET ")");
    }
#undef ADD
}

static void
filter_bind(const struct sess_filter *f, sqlite3_stmt *stmt)
{
    size_t i;

    if (f->agent != NULL)
        sqlite3_bind_text(stmt, 1, f->agent, -1, SQLITE_STATIC);
    if (f->user != NULL)
        sqlite3_bind_text(stmt, 2, f->user, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_index(stmt, "?3") > 0)
        sqlite3_bind_text(stmt, 3, f->me_user, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_index(stmt, "?4") > 0)
        store_bind_text(stmt, 4, f->me_email);
    if (sqlite3_bind_parameter_index(stmt, "?5") > 0)
        store_bind_text(stmt, 5, f->me_domain);
    for (i = 0; !f->admin && i < f->n_approver_templates; i++)
        sqlite3_bind_text(stmt, (int)(10 + i), f->approver_templates[i], -1, SQLITE_STATIC);
}

/*
 * A caller who approves no template sees the sessions in a rowid set (what
 * they requested, joined, were invited to or decided; filter_sql) that SQLite
 * builds once per statement and drives the query from: one pass over the
 * matches then gives both the page and the total, instead of a count and a
 * page query that each build the set again. Admins and approvers match
 * index ranges (state, template), where count(*) is cheaper than stepping
 * through thousands of matches.
 */
static int
page_one_pass(struct store *st, const struct sess_filter *f, const char *where, int64_t *ids,
              size_t *n, int64_t *total, int *has_more)
{
    char sql[8192];
    sqlite3_stmt *stmt = NULL;
    int rc;

    snprintf(sql, sizeof(sql),
             "SELECT sessions.rowid FROM sessions%s"
             " ORDER BY sessions.rowid DESC",
             where);
    if (store_prepare_text(st, &stmt, sql) != 0)
        return ERR_DB;
    filter_bind(f, stmt);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(stmt, 0);

        (*total)++;
        if (f->cursor_rowid > 0 && id >= f->cursor_rowid)
            continue;
        if (*n < (size_t)f->limit)
            ids[(*n)++] = id;
        else
            *has_more = 1;
    }
    store_finish(st, stmt);
    return rc == SQLITE_DONE ? 0 : ERR_DB;
}

static int
page_count_then_ids(struct store *st, const struct sess_filter *f, const char *where, int64_t *ids,
                    size_t *n, int64_t *total, int *has_more)
{
    char sql[8192];
    sqlite3_stmt *stmt = NULL;
    int rc, r = ERR_DB;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM sessions%s", where);
    if (store_prepare_text(st, &stmt, sql) != 0)
        goto out;
    filter_bind(f, stmt);
    if (sqlite3_step(stmt) != SQLITE_ROW)
        goto out;
    *total = sqlite3_column_int64(stmt, 0);
    store_finish(st, stmt);
    stmt = NULL;
    /*
     * The page's rowids come from the indexes alone (the filter tests state,
     * template and agent, all in an index); the rows are read after, one by
     * one or from the view cache. One query that also selected the wide
     * columns made SQLite sort whole rows.
     */
    snprintf(sql, sizeof(sql),
             "SELECT sessions.rowid FROM sessions%s%s"
             " ORDER BY sessions.rowid DESC LIMIT ?7",
             where, f->cursor_rowid > 0 ? " AND sessions.rowid < ?5" : "");
    if (store_prepare_text(st, &stmt, sql) != 0)
        goto out;
    filter_bind(f, stmt);
    if (f->cursor_rowid > 0)
        sqlite3_bind_int64(stmt, 5, f->cursor_rowid);
    sqlite3_bind_int(stmt, 7, f->limit + 1); /* one more row says whether a next page exists */
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n == (size_t)f->limit) {
            *has_more = 1;
            break;
        }
        ids[(*n)++] = sqlite3_column_int64(stmt, 0);
    }
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        r = 0;
out:
    store_finish(st, stmt);
    return r;
}

int
store_sess_page(struct store *st, const struct sess_filter *f, int64_t *ids, size_t *n,
                int64_t *total, int *has_more)
{
    char where[7000] = "";
    int r;

    *n = 0;
    *total = 0;
    *has_more = 0;
    filter_sql(f, where, sizeof(where));
    if ((!f->admin && f->n_approver_templates == 0) || f->mine)
        r = page_one_pass(st, f, where, ids, n, total, has_more);
    else
        r = page_count_then_ids(st, f, where, ids, n, total, has_more);
    if (r != 0) {
        log_warn("list: %s", sqlite3_errmsg(st->db));
        *n = 0;
    }
    return r;
}

int
store_sess_by_agent(struct store *st, const char *agent, unsigned state_mask, struct sess ***list,
                    size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    struct sess **out = NULL;
    size_t cnt = 0, cap = 0, i;
    int rc, r = ERR_DB;

    *list = NULL;
    *n = 0;
    if (store_prepare(st, &stmt,
                      SESS_SELECT " WHERE agent = ?1"
                                  " ORDER BY created_at, sessions.name") != 0)
        goto out;
    sqlite3_bind_text(stmt, 1, agent, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct sess *s = row_to_sess(st, stmt);

        if (state_mask ? !(state_mask & (1u << s->state)) : session_state_ended(s->state)) {
            sess_free(s);
            continue;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 4;
            out = xrealloc(out, cap * sizeof(*out));
        }
        out[cnt++] = s;
    }
    if (rc != SQLITE_DONE)
        goto out;
    for (i = 0; i < cnt; i++)
        if (load_related(st, out[i]) != 0)
            goto out;
    *list = out;
    *n = cnt;
    out = NULL;
    r = 0;
out:
    store_finish(st, stmt);
    sess_list_free(out, cnt);
    return r;
}

int
store_approval_insert(struct store *st, const char *session, const char *decision, const char *by,
                      const char *by_domain, int64_t at, const char *reason)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "INSERT INTO approvals (session, decision, by, at, reason, by_issuer)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6)")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    store_bind_text(stmt, 2, decision);
    store_bind_text(stmt, 3, by);
    sqlite3_bind_int64(stmt, 4, at);
    store_bind_text(stmt, 5, reason);
    store_bind_text(stmt, 6, by_domain);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

/* Binds p's columns (?2..?8) after the session (?1) and runs stmt. */
static int
participant_write(struct store *st, sqlite3_stmt *stmt, const char *session,
                  const struct sess_participant *p)
{
    int r;

    store_bind_text(stmt, 1, session);
    store_bind_text(stmt, 2, p->user);
    store_bind_text(stmt, 3, p->email);
    store_bind_text(stmt, 4, p->display_name);
    store_bind_text(stmt, 5, policy_role_name(p->role));
    sqlite3_bind_int64(stmt, 6, p->joined_at);
    /* '' stands for "no key yet" (the owner before joining): the column is NOT NULL */
    store_bind_text(stmt, 7, p->ssh_public_key ? p->ssh_public_key : "");
    store_bind_text(stmt, 8, p->domain);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

#define PARTICIPANT_INSERT                                                                         \
    "INSERT INTO participants (session, user, email, display_name, role, joined_at, left_at,"      \
    " ssh_public_key, issuer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)"

int
store_participant_upsert(struct store *st, const char *session, const struct sess_participant *p)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    /* a keyless owner row (listed from activation) keeps its joinedAt when the owner joins */
    if ((r = store_prepare(st, &stmt,
                           PARTICIPANT_INSERT
                           " ON CONFLICT (session, user) DO UPDATE SET"
                           " email = ?3, display_name = ?4, role = ?5, joined_at = CASE WHEN"
                           " participants.left_at IS NULL AND participants.ssh_public_key = ''"
                           " THEN participants.joined_at ELSE ?6 END, left_at = NULL,"
                           " ssh_public_key = ?7, issuer = ?8")) != 0)
        return r;
    return participant_write(st, stmt, session, p);
}

int
store_participant_add(struct store *st, const char *session, const struct sess_participant *p)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           PARTICIPANT_INSERT " ON CONFLICT (session, user) DO NOTHING")) != 0)
        return r;
    return participant_write(st, stmt, session, p);
}

int
store_participant_leave(struct store *st, const char *session, const char *user, int64_t at)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "UPDATE participants SET left_at = ?3 WHERE session = ?1"
                           " AND user = ?2 AND left_at IS NULL")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    store_bind_text(stmt, 2, user);
    sqlite3_bind_int64(stmt, 3, at);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

int
store_participant_role(struct store *st, const char *session, const char *user,
                       enum policy_role role)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "UPDATE participants SET role = ?3 WHERE session = ?1"
                           " AND user = ?2 AND left_at IS NULL")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    store_bind_text(stmt, 2, user);
    store_bind_text(stmt, 3, policy_role_name(role));
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

int
store_renewal_insert(struct store *st, const char *session, const char *by, int64_t at,
                     int64_t extend_s, int64_t old_exp, int64_t new_exp)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "INSERT INTO renewals (session, by, at, extend_by_s, old_expires_at,"
                           " new_expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    store_bind_text(stmt, 2, by);
    sqlite3_bind_int64(stmt, 3, at);
    sqlite3_bind_int64(stmt, 4, extend_s);
    sqlite3_bind_int64(stmt, 5, old_exp);
    sqlite3_bind_int64(stmt, 6, new_exp);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

int
store_event_add(struct store *st, const char *session, int64_t at, const char *actor,
                const char *type, json_t *data, int64_t *event_id)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "INSERT INTO events (session, at, actor, type, data)"
                           " VALUES (?1, ?2, ?3, ?4, ?5)")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    sqlite3_bind_int64(stmt, 2, at);
    store_bind_text(stmt, 3, actor);
    store_bind_text(stmt, 4, type);
    if (data != NULL)
        store_bind_json(stmt, 5, data);
    else
        sqlite3_bind_text(stmt, 5, "{}", -1, SQLITE_STATIC);
    r = store_step_done(st, stmt);
    if (r == 0 && event_id != NULL)
        *event_id = sqlite3_last_insert_rowid(st->db);
    store_finish(st, stmt);
    return r;
}

int
store_events_json(struct store *st, const char *session, json_t **out)
{
    sqlite3_stmt *stmt = NULL;
    json_t *a = json_array();
    int rc, r = ERR_DB;

    *out = NULL;
    if (store_prepare(st, &stmt,
                      "SELECT at, actor, type, data FROM events WHERE session = ?1"
                      " ORDER BY id") != 0)
        goto out;
    sqlite3_bind_text(stmt, 1, session, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        char ts[21];

        time_fmt(sqlite3_column_int64(stmt, 0), ts);
        json_array_append_new(a, json_pack("{s:s, s:s?, s:s?, s:o}", "at", ts, "actor",
                                           (const char *)sqlite3_column_text(stmt, 1), "type",
                                           (const char *)sqlite3_column_text(stmt, 2), "data",
                                           store_col_json(stmt, 3, json_object())));
    }
    if (rc != SQLITE_DONE)
        goto out;
    *out = json_pack("{s:o}", "events", a);
    a = NULL;
    r = 0;
out:
    json_decref(a);
    store_finish(st, stmt);
    return r;
}

int
store_ticket_insert(struct store *st, const char *hash, const char *session, const char *user,
                    int64_t expires_at)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "INSERT INTO join_tickets (hash, session, user, expires_at)"
                           " VALUES (?1, ?2, ?3, ?4)")) != 0)
        return r;
    store_bind_text(stmt, 1, hash);
    store_bind_text(stmt, 2, session);
    store_bind_text(stmt, 3, user);
    sqlite3_bind_int64(stmt, 4, expires_at);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

int
store_ticket_get(struct store *st, const char *hash, int64_t now, char **session, char **user)
{
    sqlite3_stmt *stmt = NULL;
    int rc, r;

    *session = *user = NULL;
    if ((r = store_prepare(st, &stmt,
                           "SELECT session, user, expires_at FROM join_tickets"
                           " WHERE hash = ?1")) != 0)
        return r;
    sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_int64(stmt, 2) > now) {
        *session = store_col_text(stmt, 0);
        *user = store_col_text(stmt, 1);
        r = 0;
    } else {
        r = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? ERR_NOT_FOUND : ERR_DB;
    }
    store_finish(st, stmt);
    return r;
}

int
store_tickets_delete(struct store *st, const char *session, const char *user)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           user ? "DELETE FROM join_tickets WHERE session = ?1 AND user = ?2"
                                : "DELETE FROM join_tickets WHERE session = ?1")) != 0)
        return r;
    store_bind_text(stmt, 1, session);
    if (user)
        store_bind_text(stmt, 2, user);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}

int
store_outbox_add(struct store *st, int64_t event_id, const char *url, const char *body,
                 int64_t next_at)
{
    sqlite3_stmt *stmt = NULL;
    int r;

    if ((r = store_prepare(st, &stmt,
                           "INSERT INTO outbox (event_id, url, body, next_at)"
                           " VALUES (?1, ?2, ?3, ?4)")) != 0)
        return r;
    sqlite3_bind_int64(stmt, 1, event_id);
    store_bind_text(stmt, 2, url);
    store_bind_text(stmt, 3, body);
    sqlite3_bind_int64(stmt, 4, next_at);
    r = store_step_done(st, stmt);
    store_finish(st, stmt);
    return r;
}
