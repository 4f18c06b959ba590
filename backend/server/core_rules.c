/*
 * Time rules and presence applied to sessions (core_rules.h). The decisions
 * are timerules.c's; this file reads and writes the store, records the audit
 * events and tells the agent.
 */
#include <stdlib.h>
#include <string.h>

#include "core_rules.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "relay.h"
#include "util.h"
#include "xmalloc.h"

#define CONN_ID_MAX 64

void
core_rules_of(const struct sess *s, struct timerules_cfg *c, struct timerules_in *in)
{
    const struct tmpl_cfg *t = s->tmpl;

    memset(c, 0, sizeof(*c));
    c->claim_deadline_s = t->claim_deadline_s;
    c->first_connect = t->clock_first_connect;
    c->idle_timeout_s = t->idle_timeout_s;
    c->auto_step_s = t->auto_step_s;
    c->auto_max_total_s = t->auto_max_total_s;
    c->max_duration_s = t->max_duration_s;
    memset(in, 0, sizeof(*in));
    in->activated_at = s->activated_at ? s->activated_at : s->starts_at;
    in->starts_at = s->starts_at;
    in->expires_at = s->expires_at;
    in->duration_s = s->requested_duration_s;
    in->first_connect_at = s->first_connect_at;
    in->last_input_at = s->last_input_at;
}

void
core_rules_schedule(struct sess *s, int64_t now)
{
    struct timerules_cfg c;
    struct timerules_in in;
    struct timerules_out out;

    core_rules_of(s, &c, &in);
    if (s->state != SESSION_ACTIVE || !timerules_any(&c)) {
        s->rules_at = 0;
        return;
    }
    timerules_decide(&c, &in, now, &out);
    s->rules_at = out.action != TR_NONE ? now : out.next_at;
}

int64_t
core_rules_idle_ends_at(const struct sess *s)
{
    struct timerules_cfg c;
    struct timerules_in in;

    if (s->state != SESSION_ACTIVE)
        return 0;
    core_rules_of(s, &c, &in);
    return timerules_idle_ends_at(&c, &in);
}

int
core_rules_can_extend(const struct sess *s)
{
    return s->state == SESSION_ACTIVE && s->tmpl->allow_renewal &&
           s->renewal_count < s->tmpl->max_renewals &&
           s->expires_at < s->starts_at + s->tmpl->max_duration_s;
}

/* Expired by a rule, with its reason and a message naming the limit ("<what> 10m"). */
static int
end_by_rule(struct app *app, struct sess *s, const char *reason, const char *what, int64_t limit_s,
            int64_t now, struct core_after *after)
{
    char dur[32], *msg;
    json_t *data = json_pack("{s:s}", "reason", reason);
    int r;

    duration_format(limit_s, dur, sizeof(dur));
    msg = xasprintf("%s %s", what, dur);
    r = core_transition(app, s, SEV_EXPIRE, "airlock", msg, data, now, after);
    free(msg);
    json_decref(data);
    return r;
}

static int
auto_extend(struct app *app, struct sess *s, int64_t new_exp, int64_t now, struct core_after *after)
{
    int64_t old_exp = s->expires_at;
    char dur[32], at[21];
    json_t *data;
    int r;

    s->expires_at = new_exp;
    core_rules_schedule(s, now);
    if ((r = store_sess_update(app->store, s)) != 0 ||
        (r = store_renewal_insert(app->store, s->name, "airlock", now, new_exp - old_exp, old_exp,
                                  new_exp)) != 0)
        return r;
    duration_format(new_exp - old_exp, dur, sizeof(dur));
    time_fmt(new_exp, at);
    data = json_pack("{s:s, s:b, s:s, s:s}", "by", "airlock", "auto", 1, "extendBy", dur,
                     "expiresAt", at);
    r = core_event(app, s->name, "airlock", "renewed", data, now);
    json_decref(data);
    core_after_notify(after, s->agent, s->name);
    return r;
}

int
core_rules_apply(struct app *app, struct sess *s, int64_t now, struct core_after *after)
{
    struct timerules_cfg c;
    struct timerules_in in;
    struct timerules_out out;
    int64_t was = s->rules_at;

    if (s->state != SESSION_ACTIVE)
        return 0;
    core_rules_of(s, &c, &in);
    timerules_decide(&c, &in, now, &out);
    switch (out.action) {
    case TR_END_CLAIM:
        return end_by_rule(app, s, "claim_deadline", "nobody connected within", c.claim_deadline_s,
                           now, after);
    case TR_END_IDLE:
        return end_by_rule(app, s, "idle", "no input for", c.idle_timeout_s, now, after);
    case TR_EXTEND:
        return auto_extend(app, s, out.expires_at, now, after);
    case TR_NONE:
        break;
    }
    s->rules_at = timerules_any(&c) ? out.next_at : 0;
    return s->rules_at == was ? 0 : store_sess_update(app->store, s);
}

static int
conn_event(struct app *app, const char *session, const struct live_conn *c, int up, int64_t now)
{
    json_t *data;
    int r;

    if (up)
        data = json_pack("{s:s, s:s}", "role", c->role, "conn", c->conn);
    else
        data = json_pack("{s:s, s:s, s:I}", "role", c->role, "conn", c->conn, "seconds",
                         (json_int_t)(now > c->since ? now - c->since : 0));
    r = core_event(app, session, c->user, up ? "connected" : "disconnected", data, now);
    json_decref(data);
    return r;
}

int
core_rules_presence_end(struct app *app, struct sess *s, int64_t now)
{
    struct live_conn *v = NULL;
    size_t n = 0, i;
    int r;

    if ((r = store_live_conns_get(app->store, s->name, &v, &n)) != 0)
        return r;
    for (i = 0; r == 0 && i < n; i++)
        r = conn_event(app, s->name, &v[i], 0, now);
    if (r == 0 && n > 0)
        r = store_live_conns_put(app->store, s->name, NULL, 0);
    live_conns_free(v, n);
    return r;
}

/* A participant row of s for user (exact: the agent names them as the server did), or NULL. */
static const struct sess_participant *
participant(const struct sess *s, const char *user)
{
    size_t i;

    for (i = 0; i < s->n_parts; i++)
        if (strcmp(s->parts[i].user, user) == 0)
            return &s->parts[i];
    return NULL;
}

/* A time from the report: RFC 3339, not after now and not before lo; 0 when absent. */
static int
report_time(const json_t *v, int64_t lo, int64_t now, int64_t *t)
{
    *t = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || time_parse(json_string_value(v), t) != 0)
        return ERR_INVALID;
    if (*t > now)
        *t = now; /* the agent's clock runs ahead */
    if (*t < lo)
        *t = lo;
    return 0;
}

/* The connections of the report into *v (new), checked against s. */
static int
parse_conns(const struct sess *s, const json_t *a, int64_t now, struct live_conn **v, size_t *n,
            int64_t **inputs, const char **why)
{
    size_t i, max = (size_t)s->tmpl->max_participants * RELAY_CONNS_PER_PARTICIPANT;
    int64_t lo = s->activated_at ? s->activated_at : s->starts_at;
    const json_t *e;

    *v = NULL;
    *n = 0;
    *inputs = NULL;
    if (json_array_size(a) > max) {
        *why = "activity: more connections than the session allows";
        return ERR_INVALID;
    }
    *v = xcalloc(json_array_size(a) + 1, sizeof(**v));
    *inputs = xcalloc(json_array_size(a) + 1, sizeof(**inputs));
    json_array_foreach(a, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *user = json_string_value(json_object_get(e, "user"));
        const char *role = json_string_value(json_object_get(e, "role"));
        enum policy_role pr;
        int64_t since;

        *why = "activity: a connection needs id, user, role and since";
        if (id == NULL || user == NULL || role == NULL || strlen(id) > CONN_ID_MAX ||
            policy_role_parse(role, &pr) != 0 ||
            report_time(json_object_get(e, "since"), lo, now, &since) != 0 || since == 0 ||
            report_time(json_object_get(e, "lastInputAt"), lo, now, &(*inputs)[i]) != 0)
            return ERR_INVALID;
        if (participant(s, user) == NULL) {
            *why = "activity: a connection of someone who is not a participant";
            return ERR_INVALID;
        }
        (*v)[i].conn = xstrdup(id);
        (*v)[i].user = xstrdup(user);
        (*v)[i].role = xstrdup(role);
        (*v)[i].since = since;
        *n = i + 1;
    }
    return 0;
}

static const struct live_conn *
conn_find(const struct live_conn *v, size_t n, const char *id)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(v[i].conn, id) == 0)
            return &v[i];
    return NULL;
}

/* A connection seen for the first time: its event, presence and maybe the clock's start. */
static int
conn_arrived(struct app *app, struct sess *s, const struct live_conn *c, int64_t now,
             struct core_after *after)
{
    struct timerules_cfg rc;
    struct timerules_in in;
    int64_t starts, expires;
    int r;

    if ((r = conn_event(app, s->name, c, 1, now)) != 0 ||
        (r = store_participant_presence(app->store, s->name, c->user, c->since, 0)) != 0)
        return r;
    if (s->first_connect_at != 0 && s->first_connect_at <= c->since)
        return 0;
    core_rules_of(s, &rc, &in);
    if (timerules_first_connect(&rc, &in, c->since, &starts, &expires)) {
        s->starts_at = starts;
        s->expires_at = expires;
        core_after_notify(after, s->agent, s->name);
    }
    if (s->first_connect_at == 0 || c->since < s->first_connect_at)
        s->first_connect_at = c->since;
    return 0;
}

/* The live set changed from old to cur: events, presence, the table. */
static int
conns_apply(struct app *app, struct sess *s, struct live_conn *cur, size_t n_cur,
            const int64_t *inputs, int64_t now, struct core_after *after)
{
    struct live_conn *old = NULL;
    const struct live_conn *o;
    size_t n_old = 0, i;
    int r;

    if ((r = store_live_conns_get(app->store, s->name, &old, &n_old)) != 0)
        return r;
    for (i = 0; r == 0 && i < n_old; i++)
        if (conn_find(cur, n_cur, old[i].conn) == NULL)
            r = conn_event(app, s->name, &old[i], 0, now);
    for (i = 0; r == 0 && i < n_cur; i++) {
        if ((o = conn_find(old, n_old, cur[i].conn)) != NULL)
            cur[i].since = o->since; /* the first report's time stays */
        else
            r = conn_arrived(app, s, &cur[i], now, after);
        if (r == 0 && inputs[i] != 0)
            r = store_participant_presence(app->store, s->name, cur[i].user, 0, inputs[i]);
    }
    if (r == 0)
        r = store_live_conns_put(app->store, s->name, cur, n_cur);
    live_conns_free(old, n_old);
    return r;
}

/* The report, applied to the loaded session s (Active, this agent's). */
static int
activity_apply(struct app *app, struct sess *s, const json_t *m, int64_t now,
               struct core_after *after, const char **why)
{
    const json_t *a = json_object_get(m, "connections");
    int64_t lo = s->activated_at ? s->activated_at : s->starts_at, input = 0;
    struct live_conn *cur = NULL;
    int64_t *inputs = NULL;
    size_t n_cur = 0;
    int r;

    if (report_time(json_object_get(m, "lastInputAt"), lo, now, &input) != 0) {
        *why = "activity: lastInputAt is not an RFC 3339 time";
        return ERR_INVALID;
    }
    /* an agent from before issue 12 sends a count: only its last input counts */
    if (json_is_array(a)) {
        if ((r = parse_conns(s, a, now, &cur, &n_cur, &inputs, why)) == 0)
            r = conns_apply(app, s, cur, n_cur, inputs, now, after);
        live_conns_free(cur, n_cur);
        free(inputs);
        if (r != 0)
            return r;
    } else if (a != NULL && !json_is_integer(a)) {
        *why = "activity: connections must be an array";
        return ERR_INVALID;
    }
    if (input > s->last_input_at)
        s->last_input_at = input;
    core_rules_schedule(s, now);
    return store_sess_update(app->store, s);
}

int
core_rules_activity(struct app *app, const char *agent, const json_t *m, int64_t now,
                    const char **why)
{
    const char *name = json_string_value(json_object_get(m, "session"));
    struct core_after after = {0};
    struct sess *s = NULL;
    int r;

    *why = NULL;
    if (name == NULL) {
        *why = "activity needs a session";
        return ERR_INVALID;
    }
    pthread_mutex_lock(&app->lock);
    if ((r = store_begin(app->store)) != 0)
        goto unlock;
    r = store_sess_get(app->store, name, &s);
    if (r == 0 && strcmp(s->agent, agent) != 0)
        r = ERR_NOT_FOUND;
    /* reports that cross the session's end change nothing: the end closed them out */
    if (r == 0 && s->state == SESSION_ACTIVE)
        r = activity_apply(app, s, m, now, &after, why);
    if (r == 0)
        r = store_commit(app->store);
    else
        store_rollback(app->store);
unlock:
    pthread_mutex_unlock(&app->lock);
    sess_free(s);
    if (r == 0)
        core_after_run(app, &after);
    core_after_free(&after);
    return r;
}
