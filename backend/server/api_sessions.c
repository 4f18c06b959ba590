/*
 * /api/v1/debug-sessions: create, list, get, the actions on one session,
 * and /connect (the participant's side of the relay). Every action runs
 * through mutate(): lock, BEGIN IMMEDIATE, load the session (404 unless
 * visible), the action's checks and writes, COMMIT, then the post-commit
 * effects (tell the agent, close relayed connections).
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_attach.h"
#include "api_suggest.h"
#include "control.h"
#include "core.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "relay.h"
#include "tmpl.h"
#include "util.h"
#include "viewcache.h"
#include "xmalloc.h"
#include "sessquota.h"

#define TICKET_TTL_S (24 * 3600)

typedef int (*action_fn)(struct api_req *req, struct api_reply *rep, struct sess *s,
                         struct core_after *after);

static int
mutate(struct api_req *req, struct api_reply *rep, action_fn fn)
{
    struct app *app = req->app;
    struct core_after after = {0};
    struct sess *s = NULL;
    uint64_t gen;
    int r;

    pthread_mutex_lock(&app->lock);
    if ((r = store_begin(app->store)) != 0) {
        pthread_mutex_unlock(&app->lock);
        return api_fail(rep, r, "database busy");
    }
    if ((r = api_load_visible(req, rep, req->params[0], &s)) == 0)
        r = fn(req, rep, s, &after);
    if (r != 0 && rep->commit_on_error && store_commit(app->store) == 0) {
        pthread_mutex_unlock(&app->lock);
        sess_free(s);
        core_after_run(app, &after);
        return r;
    }
    if (r != 0 || (r = store_commit(app->store)) != 0) {
        store_rollback(app->store);
        pthread_mutex_unlock(&app->lock);
        sess_free(s);
        core_after_free(&after);
        if (r == ERR_CONFLICT && rep->error == NULL)
            return api_fail(rep, r, "the session changed concurrently; retry");
        return r;
    }
    sess_free(s);
    s = NULL;
    gen = viewcache_gen(store_views(app->store));
    if (rep->json == NULL)
        (void)store_sess_get(app->store, req->params[0], &s);
    pthread_mutex_unlock(&app->lock);
    if (s != NULL) {
        struct sess_view *v = api_session_view(app, s, gen);

        api_reply_view(rep, v, &req->p);
        sess_view_unref(v);
    }
    core_after_run(app, &after);
    return 0;
}

int
api_sessions_mutate(struct api_req *req, struct api_reply *rep, api_action_fn fn)
{
    return mutate(req, rep, fn);
}

/* ---------------------------------------------------------------- create */

static char *
new_session_name(void)
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char rb[10];
    char name[14] = "ds-";
    int i;

    random_bytes(rb, sizeof(rb));
    for (i = 0; i < 10; i++)
        name[3 + i] = b32[rb[i] & 31];
    name[13] = '\0';
    return xstrdup(name);
}

static int
check_reason(const struct tmpl_cfg *t, const char *reason, struct api_reply *rep)
{
    size_t len = reason ? api_utf8_chars(reason, strlen(reason)) : 0;

    if (t->reason_mandatory && len == 0)
        return api_fail(rep, ERR_INVALID, "field 'reason' is required by template '%s'", t->name);
    if (len > 0 && (int)len < t->reason_min_len)
        return api_fail(rep, ERR_INVALID, "field 'reason' must be at least %d characters",
                        t->reason_min_len);
    if (t->reason_max_len > 0 && (int)len > t->reason_max_len)
        return api_fail(rep, ERR_INVALID, "field 'reason' must be at most %d characters",
                        t->reason_max_len);
    return 0;
}

/* Resolves requestedDuration or extendBy (may be NULL) against t: policy_check_duration(). */
static int
check_duration(const struct tmpl_cfg *t, const char *field, const char *text, int64_t *secs,
               struct api_reply *rep)
{
    char why[POLICY_WHY_MAX];
    int r;

    if ((r = policy_check_duration(t, field, text, secs, why, sizeof(why))) != 0)
        return api_fail(rep, r, "%s", why);
    return 0;
}

/*
 * The snapshot stored with each session, as JSON text, made once per
 * template (under app->lock, which every caller holds). The cache is keyed
 * by the template's address: a reload (reload.c) makes new templates and
 * keeps the old ones until shutdown, so an address never names two
 * templates. When full it starts over. Returns a new copy.
 */
#define SNAPSHOT_CACHE 64

static char *
snapshot_text(struct app *app, const struct tmpl_cfg *t)
{
    static struct {
        const struct tmpl_cfg *t;
        char *text;
    } cache[SNAPSHOT_CACHE];
    static size_t n_cache;
    size_t i;
    json_t *j;

    (void)app;
    for (i = 0; i < n_cache; i++)
        if (cache[i].t == t)
            return xstrdup(cache[i].text);
    if (n_cache == SNAPSHOT_CACHE) {
        for (i = 0; i < n_cache; i++)
            free(cache[i].text);
        n_cache = 0;
    }
    j = tmpl_to_json(t);
    cache[n_cache].t = t;
    cache[n_cache].text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return xstrdup(cache[n_cache++].text);
}

/*
 * Builds and inserts a new session (shared by POST /debug-sessions and agent
 * registration). requester is the person the session belongs to; groups
 * may be NULL. Caller holds the lock inside a transaction.
 */
int
api_session_new(struct app *app, const struct tmpl_cfg *t, const char *agent,
                const struct principal *requester, const char *display_name, const json_t *spec,
                int64_t now, struct api_reply *rep, char **name_out, struct core_after *after)
{
    const char *reason = json_string_value(json_object_get(spec, "reason"));
    const json_t *inv = json_object_get(spec, "invitedParticipants");
    struct sess *s = xcalloc(1, sizeof(*s));
    size_t i;
    int r;

    *name_out = NULL;
    if ((r = check_duration(t, "requestedDuration",
                            json_string_value(json_object_get(spec, "requestedDuration")),
                            &s->requested_duration_s, rep)) != 0 ||
        (r = check_reason(t, reason, rep)) != 0)
        goto out;
    s->name = new_session_name();
    s->template_name = xstrdup(t->name);
    s->agent = xstrdup(agent);
    s->requested_by = xstrdup(requester->user);
    s->requested_by_email = requester->email ? xstrdup(requester->email) : NULL;
    s->requested_by_domain = requester->domain ? xstrdup(requester->domain) : NULL;
    s->requested_by_name = display_name ? xstrdup(display_name) : NULL;
    s->requester_groups = json_array();
    for (i = 0; i < requester->n_groups; i++)
        json_array_append_new(s->requester_groups, json_string(requester->groups[i]));
    s->reason = reason && *reason ? xstrdup(reason) : NULL;
    s->n_invited = 0;
    s->invited = xcalloc(json_array_size(inv) + 1, sizeof(*s->invited));
    for (i = 0; i < json_array_size(inv); i++) {
        const char *who = json_string_value(json_array_get(inv, i));
        size_t k;

        for (k = 0; k < s->n_invited; k++)
            if (str_ieq(s->invited[k].who, who))
                break;
        if (k < s->n_invited || policy_names(who, requester))
            continue;
        s->invited[s->n_invited].who = xstrdup(who);
        s->invited[s->n_invited++].role = ROLE_PARTICIPANT;
    }
    s->state = SESSION_PENDING;
    s->created_at = now;
    s->approval_required = policy_approval_required(t, requester->groups ? requester : NULL, agent);
    /* an agent's own request has no groups, but its owner may still match autoApproveFor users */
    if (requester->groups == NULL && s->approval_required &&
        policy_subjects_match(&t->auto_approve, requester))
        s->approval_required = 0;
    s->tmpl_text = snapshot_text(app, t);
    s->tmpl = t; /* the config outlives this struct */
    s->version = 1;
    if ((r = store_sess_insert(app->store, s)) != 0) {
        api_fail(rep, r, "cannot store the session");
        goto out;
    }
    {
        json_t *d = json_pack("{s:s, s:s}", "template", t->name, "agent", agent);

        r = core_event(app, s->name, requester->user, "created", d, now);
        json_decref(d);
        if (r != 0)
            goto out;
    }
    if (s->approval_required)
        r = core_transition(app, s, SEV_NEED_APPROVAL, requester->user, "waiting for approval",
                            NULL, now, after);
    else
        r = core_try_activate(app, s, now, after);
    if (r != 0)
        goto out;
    for (i = 0; i < s->n_invited; i++) {
        json_t *d = json_pack("{s:s, s:s}", "user", s->invited[i].who, "role", "participant");

        r = core_event(app, s->name, requester->user, "invited", d, now);
        json_decref(d);
        if (r != 0)
            goto out;
    }
    *name_out = xstrdup(s->name);
out:
    sess_free(s);
    return r;
}

int
api_sessions_create(struct api_req *req, struct api_reply *rep)
{
    static const struct field fields[] = {
        {"template", F_STRING, 1, 64},
        {"agent", F_STRING, 1, 255},
        {"requestedDuration", F_STRING, 0, 32},
        {"reason", F_STRING, 0, 65536},
        {"invitedParticipants", F_STRARRAY, 0, 254},
    };
    struct app *app = req->app;
    const struct tmpl_cfg *t;
    struct agent_rec *a = NULL;
    struct core_after after = {0};
    struct sess *s = NULL;
    char *name = NULL;
    int r;

    if ((r = api_body_check(req, rep, fields, sizeof(fields) / sizeof(fields[0]))) != 0)
        return r;
    if ((t = config_template(app->cfg, api_str(req, "template"))) == NULL) {
        rep->details = api_suggest_template(app->cfg, &req->p, api_str(req, "template"));
        return api_fail(rep, ERR_INVALID, "unknown template '%s'", api_str(req, "template"));
    }
    pthread_mutex_lock(&app->lock);
    if ((r = store_begin(app->store)) != 0)
        goto unlock;
    if ((r = store_agent_get(app->store, api_str(req, "agent"), &a)) != 0) {
        if (r == ERR_NOT_FOUND) {
            rep->details = api_suggest_agent(app, t, &req->p, api_str(req, "agent"));
            r = api_fail(rep, ERR_INVALID, "unknown agent '%s'", api_str(req, "agent"));
        }
        goto fail;
    }
    if (!policy_template_usable(t, &req->p)) {
        r = api_fail(rep, ERR_FORBIDDEN, "you may not use template '%s'", t->name);
        goto fail;
    }
    if (!policy_template_allows_agent(t, a->name)) {
        r = api_fail(rep, ERR_FORBIDDEN, "template '%s' does not allow agent '%s'", t->name,
                     a->name);
        goto fail;
    }
    if ((r = sessquota_check(app, t, &req->p, rep)) != 0) /* 429: too many open */
        goto fail;
    if ((r = api_session_new(app, t, a->name, &req->p, req->id.display_name, req->body, req->now,
                             rep, &name, &after)) != 0)
        goto fail;
    if ((r = store_commit(app->store)) != 0)
        goto unlock;
    (void)store_sess_get(app->store, name, &s);
    rep->status = 201;
    goto unlock;
fail:
    store_rollback(app->store);
unlock:
    pthread_mutex_unlock(&app->lock);
    if (s != NULL)
        rep->json = api_session_json(app, s, &req->p);
    agent_rec_free(a);
    sess_free(s);
    free(name);
    if (r == 0)
        core_after_run(app, &after);
    else
        core_after_free(&after);
    return r;
}

/* ---------------------------------------------------------------- list, get */

static int
parse_list_query(struct api_req *req, struct api_reply *rep, struct sess_filter *f, char **agent,
                 char **user)
{
    char *state = api_query(req, "state"), *mine = api_query(req, "mine");
    char *limit = api_query(req, "limit"), *cursor = api_query(req, "cursor");
    uint64_t n;
    int r = 0;

    *agent = api_query(req, "agent");
    *user = api_query(req, "user");
    f->agent = *agent;
    f->user = *user;
    f->limit = 50;
    if (state != NULL) {
        const char *p = state;

        /* comma-separated, no empty items: "Active,", ",Active" and "" are errors */
        for (;;) {
            size_t len = strcspn(p, ",");
            char item[32];
            enum session_state st;

            if (len == 0 || len >= sizeof(item)) {
                r = api_fail(rep, ERR_INVALID, "query 'state': empty or unknown state in '%s'",
                             state);
                break;
            }
            memcpy(item, p, len);
            item[len] = '\0';
            if (session_state_parse(item, &st) != 0) {
                r = api_fail(rep, ERR_INVALID, "query 'state': unknown state '%s'", item);
                break;
            }
            f->state_mask |= 1u << st;
            if (p[len] == '\0')
                break;
            p += len + 1;
        }
    }
    if (r == 0 && mine != NULL) {
        if (strcmp(mine, "true") == 0)
            f->mine = 1;
        else if (strcmp(mine, "false") != 0)
            r = api_fail(rep, ERR_INVALID, "query 'mine' must be true or false");
    }
    if (r == 0 && limit != NULL) {
        if (parse_uint(limit, API_MAX_PAGE, &n) != 0 || n == 0)
            r = api_fail(rep, ERR_INVALID, "query 'limit' must be an integer from 1 to %d",
                         API_MAX_PAGE);
        else
            f->limit = (int)n;
    }
    if (r == 0 && cursor != NULL && *cursor) {
        unsigned char *raw = NULL;
        size_t rl = 0;
        uint64_t t;

        /* opaque to clients: base64url of the last row's rowid */
        if (b64url_decode(cursor, strlen(cursor), &raw, &rl) != 0 ||
            parse_uint((char *)raw, INT64_MAX, &t) != 0 || t == 0)
            r = api_fail(rep, ERR_INVALID, "query 'cursor' is not a cursor from this API");
        else
            f->cursor_rowid = (int64_t)t;
        free(raw);
    }
    free(state);
    free(mine);
    free(limit);
    free(cursor);
    return r;
}

/*
 * Loads the views of the page ids[0..n) into views (cached ones shared, the
 * others read now). Caller holds app->lock, so the page is one snapshot; the
 * sessions read here are rendered later, without it (see render_missing).
 */
static int
page_views(struct app *app, const int64_t *ids, size_t n, struct sess_view **views,
           struct sess **missing)
{
    struct viewcache *vc = store_views(app->store);
    size_t i;
    int r;

    for (i = 0; i < n; i++) {
        if ((views[i] = viewcache_get_rowid(vc, ids[i])) != NULL)
            continue;
        if ((r = store_sess_get_rowid(app->store, ids[i], &missing[i])) != 0 && r != ERR_NOT_FOUND)
            return r;
    }
    return 0;
}

static void
render_missing(struct app *app, struct sess_view **views, struct sess **missing, size_t n,
               uint64_t gen)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (missing[i] == NULL)
            continue;
        views[i] = api_session_view(app, missing[i], gen);
        missing[i] = NULL;
    }
}

/* {"sessions":[...],"total":N,"nextCursor":...} from the page's views, as text. */
static void
list_reply(struct api_reply *rep, struct sess_view **views, size_t n, int64_t total,
           const char *cursor, const struct principal *p)
{
    size_t cap = 128 + (cursor ? strlen(cursor) : 0), len = 0, i;
    char *out;

    for (i = 0; i < n; i++)
        if (views[i] != NULL)
            cap += api_view_size(views[i]) + 1;
    out = xmalloc(cap);
    len = (size_t)snprintf(out, cap, "{\"sessions\":[");
    for (i = 0; i < n; i++) {
        if (views[i] == NULL)
            continue; /* deleted between the page query and its rows */
        if (out[len - 1] != '[')
            out[len++] = ',';
        len += api_view_render(views[i], p, out + len);
    }
    len += (size_t)snprintf(out + len, cap - len, "],\"total\":%lld,\"nextCursor\":%s%s%s}",
                            (long long)total, cursor ? "\"" : "", cursor ? cursor : "null",
                            cursor ? "\"" : "");
    rep->body = out;
    rep->body_len = len;
}

int
api_sessions_list(struct api_req *req, struct api_reply *rep)
{
    struct app *app = req->app;
    const struct config *cfg = app->cfg; /* one generation for the whole list (reload.c) */
    struct sess_filter f;
    char *agent = NULL, *user = NULL, *cursor = NULL;
    char *approver_of[cfg->n_templates + 1];
    int64_t ids[API_MAX_PAGE + 1];
    struct sess_view *views[API_MAX_PAGE + 1] = {0};
    struct sess *missing[API_MAX_PAGE + 1] = {0};
    size_t n = 0, i;
    int64_t total = 0;
    uint64_t gen;
    int r, has_more = 0;

    memset(&f, 0, sizeof(f));
    if ((r = parse_list_query(req, rep, &f, &agent, &user)) != 0)
        goto out;
    f.admin = req->p.admin;
    f.me_user = req->p.user;
    f.me_email = req->p.email;
    f.me_domain = req->p.domain;
    for (i = 0; i < cfg->n_templates; i++)
        if (policy_is_approver(&cfg->templates[i], &req->p))
            approver_of[f.n_approver_templates++] = cfg->templates[i].name;
    f.approver_templates = approver_of;
    pthread_mutex_lock(&app->lock);
    gen = viewcache_gen(store_views(app->store));
    if ((r = store_sess_page(app->store, &f, ids, &n, &total, &has_more)) == 0)
        r = page_views(app, ids, n, views, missing);
    pthread_mutex_unlock(&app->lock);
    if (r != 0) {
        api_fail(rep, r, "cannot list sessions");
        goto out;
    }
    render_missing(app, views, missing, n, gen);
    if (has_more) {
        char *raw = xasprintf("%lld", (long long)ids[n - 1]);

        cursor = b64url_encode((unsigned char *)raw, strlen(raw));
        free(raw);
    }
    list_reply(rep, views, n, total, cursor, &req->p);
out:
    for (i = 0; i < n; i++) {
        sess_view_unref(views[i]);
        sess_free(missing[i]);
    }
    free(cursor);
    free(agent);
    free(user);
    return r;
}

int
api_sessions_get(struct api_req *req, struct api_reply *rep)
{
    struct sess_view *v = NULL;
    int r;

    if ((r = api_view_visible(req, rep, req->params[0], &v)) == 0)
        api_reply_view(rep, v, &req->p);
    sess_view_unref(v);
    return r;
}

int
api_sessions_events(struct api_req *req, struct api_reply *rep)
{
    struct sess *s = NULL;
    int r;

    pthread_mutex_lock(&req->app->lock);
    if ((r = api_load_visible(req, rep, req->params[0], &s)) == 0 &&
        (r = store_events_json(req->app->store, s->name, &rep->json)) != 0)
        api_fail(rep, r, "cannot read events");
    pthread_mutex_unlock(&req->app->lock);
    sess_free(s);
    return r;
}

/* ---------------------------------------------------------------- decisions */

static const struct field reason_fields[] = {{"reason", F_STRING, 0, 1000}};

static int
decide(struct api_req *req, struct api_reply *rep, struct sess *s, struct core_after *after,
       int approve)
{
    const char *reason = api_str(req, "reason"), *why = NULL;
    json_t *data;
    struct sess_pview pv;
    int r;

    sess_pview_init(&pv, s);
    r = policy_check_decide(&pv.v, &req->p, &why);
    sess_pview_cleanup(&pv);
    if (r != 0)
        return api_fail(rep, r, "%s", why);
    if (s->created_at + req->app->cfg->approval_timeout_s <= req->now) {
        /* enforce the timeout now rather than wait for the reaper; the Failed state stands */
        json_t *why_data = json_pack("{s:s}", "reason", "approval_timeout");

        r = core_transition(req->app, s, SEV_TIMEOUT, "airlock", "approval timed out", why_data,
                            req->now, after);
        json_decref(why_data);
        if (r != 0)
            return r;
        rep->commit_on_error = 1;
        return api_fail(rep, ERR_CONFLICT, "the approval timeout has passed");
    }
    if (!approve && s->tmpl->reject_reason_mandatory && (reason == NULL || *reason == '\0'))
        return api_fail(rep, ERR_INVALID, "field 'reason' is required to reject (template '%s')",
                        s->template_name);
    if ((r = store_approval_insert(req->app->store, s->name, approve ? "approve" : "reject",
                                   req->p.user, req->p.domain, req->now, reason)) != 0)
        return api_fail(rep, r == ERR_CONFLICT ? ERR_CONFLICT : r,
                        "a decision has already been recorded");
    free(s->decision);
    s->decision = xstrdup(approve ? "approve" : "reject");
    data = json_pack("{s:s?}", "reason", reason);
    if (approve) {
        r = core_transition(req->app, s, SEV_APPROVE, req->p.user, NULL, data, req->now, after);
        if (r == 0)
            r = core_try_activate(req->app, s, req->now, after);
    } else {
        char *msg =
            xasprintf("rejected by %s%s%s", req->p.user, reason ? ": " : "", reason ? reason : "");

        r = core_transition(req->app, s, SEV_REJECT, req->p.user, msg, data, req->now, after);
        free(msg);
    }
    json_decref(data);
    return r;
}

static int
do_approve(struct api_req *req, struct api_reply *rep, struct sess *s, struct core_after *after)
{
    return decide(req, rep, s, after, 1);
}

static int
do_reject(struct api_req *req, struct api_reply *rep, struct sess *s, struct core_after *after)
{
    return decide(req, rep, s, after, 0);
}

int
api_sessions_approve(struct api_req *req, struct api_reply *rep)
{
    int r = api_body_check(req, rep, reason_fields, 1);

    return r ? r : mutate(req, rep, do_approve);
}

int
api_sessions_reject(struct api_req *req, struct api_reply *rep)
{
    int r = api_body_check(req, rep, reason_fields, 1);

    return r ? r : mutate(req, rep, do_reject);
}

/* ---------------------------------------------------------------- join, leave */

static int
do_join(struct api_req *req, struct api_reply *rep, struct sess *s, struct core_after *after)
{
    const char *key = api_str(req, "sshPublicKey"), *role_s = api_str(req, "role"), *why = NULL;
    enum policy_role want = ROLE_NONE, granted;
    struct sess_participant p;
    char *ticket, hash[65];
    json_t *data;
    struct sess_pview pv;
    int64_t exp;
    int r;

    if (role_s != NULL && policy_role_parse(role_s, &want) != 0)
        return api_fail(rep, ERR_INVALID, "field 'role' must be 'participant' or 'viewer'");
    if (api_check_pubkey(key) != 0)
        return api_fail(
            rep, ERR_INVALID,
            "field 'sshPublicKey' is not an OpenSSH public key line (type base64 [comment])");
    sess_pview_init(&pv, s);
    r = policy_check_join(&pv.v, &req->p, want, &granted, &why);
    sess_pview_cleanup(&pv);
    if (r != 0)
        return api_fail(rep, r, "%s", why);
    memset(&p, 0, sizeof(p));
    p.user = (char *)req->p.user;
    p.email = (char *)req->p.email;
    p.domain = (char *)req->p.domain;
    p.display_name = req->id.display_name;
    p.role = granted;
    p.joined_at = req->now;
    p.ssh_public_key = (char *)key;
    if ((r = store_participant_upsert(req->app->store, s->name, &p)) != 0)
        return r;
    ticket = random_token(32);
    sha256_hex(ticket, strlen(ticket), hash);
    exp = req->now + TICKET_TTL_S;
    if ((r = store_tickets_delete(req->app->store, s->name, req->p.user)) == 0)
        r = store_ticket_insert(req->app->store, hash, s->name, req->p.user, exp);
    data = json_pack("{s:s, s:s}", "user", req->p.user, "role", policy_role_name(granted));
    if (r == 0)
        r = core_event(req->app, s->name, req->p.user, "ticket_issued", data, req->now);
    json_decref(data);
    if (r == 0) {
        struct sess *fresh = NULL;

        core_after_notify(after, s->agent, s->name);
        if ((r = store_sess_get(req->app->store, s->name, &fresh)) == 0)
            rep->json = json_pack(
                "{s:o, s:s, s:o}", "session", api_session_json(req->app, fresh, &req->p), "role",
                policy_role_name(granted), "attach", api_attach_json(req->app, fresh, ticket, exp));
        sess_free(fresh);
    }
    explicit_bzero(ticket, strlen(ticket));
    free(ticket);
    return r;
}

int
api_sessions_join(struct api_req *req, struct api_reply *rep)
{
    static const struct field fields[] = {{"sshPublicKey", F_STRING, 1, 16384},
                                          {"role", F_STRING, 0, 32}};
    int r = api_body_check(req, rep, fields, 2);

    return r ? r : mutate(req, rep, do_join);
}

static int
do_leave(struct api_req *req, struct api_reply *rep, struct sess *s, struct core_after *after)
{
    const char *why = NULL;
    struct sess_pview pv;
    size_t i;
    int r;

    sess_pview_init(&pv, s);
    r = policy_check_leave(&pv.v, &req->p, &why);
    sess_pview_cleanup(&pv);
    if (r != 0)
        return api_fail(rep, r, "%s", why);
    for (i = 0; i < s->n_parts; i++) {
        if (s->parts[i].left_at != 0 ||
            !policy_same_person(&req->p, s->parts[i].user, s->parts[i].email, s->parts[i].domain))
            continue;
        if ((r = store_participant_leave(req->app->store, s->name, s->parts[i].user, req->now)) !=
                0 ||
            (r = store_tickets_delete(req->app->store, s->name, s->parts[i].user)) != 0 ||
            (r = core_event(req->app, s->name, req->p.user, "left", NULL, req->now)) != 0)
            return r;
        free(after->close_session);
        free(after->close_user);
        free(after->close_reason);
        after->close_session = xstrdup(s->name);
        after->close_user = xstrdup(s->parts[i].user);
        after->close_reason = xstrdup("you left the session");
    }
    core_after_notify(after, s->agent, s->name);
    return 0;
}

int
api_sessions_leave(struct api_req *req, struct api_reply *rep)
{
    int r = api_body_check(req, rep, NULL, 0);

    return r ? r : mutate(req, rep, do_leave);
}

/* ---------------------------------------------------------------- renew, terminate, invite */

static int
do_renew(struct api_req *req, struct api_reply *rep, struct sess *s, struct core_after *after)
{
    const char *why = NULL;
    int64_t extend;
    int r;

    if ((r = check_duration(s->tmpl, "extendBy", api_str(req, "extendBy"), &extend, rep)) != 0)
        return r;
    if ((r = core_renew(req->app, s, &req->p, extend, req->now, after, &why)) != 0)
        return why ? api_fail(rep, r, "%s", why) : r;
    return 0;
}

int
api_sessions_renew(struct api_req *req, struct api_reply *rep)
{
    static const struct field fields[] = {{"extendBy", F_STRING, 1, 32}};
    int r = api_body_check(req, rep, fields, 1);

    return r ? r : mutate(req, rep, do_renew);
}

static int
do_terminate(struct api_req *req, struct api_reply *rep, struct sess *s, struct core_after *after)
{
    const char *why = NULL;
    int r;

    if ((r = core_terminate(req->app, s, &req->p, 0, api_str(req, "reason"), req->now, after,
                            &why)) != 0)
        return why ? api_fail(rep, r, "%s", why) : r;
    return 0;
}

int
api_sessions_terminate(struct api_req *req, struct api_reply *rep)
{
    int r = api_body_check(req, rep, reason_fields, 1);

    return r ? r : mutate(req, rep, do_terminate);
}

static int
do_invite(struct api_req *req, struct api_reply *rep, struct sess *s, struct core_after *after)
{
    const json_t *users = json_object_get(req->body, "users");
    const char *role_s = api_str(req, "role"), *why = NULL;
    enum policy_role role = ROLE_PARTICIPANT;
    struct sess_pview pv;
    size_t i, k;
    int r;

    if (role_s != NULL && (policy_role_parse(role_s, &role) != 0 || role == ROLE_OWNER))
        return api_fail(rep, ERR_INVALID, "field 'role' must be 'participant' or 'viewer'");
    sess_pview_init(&pv, s);
    r = policy_check_invite(&pv.v, &req->p, &why);
    sess_pview_cleanup(&pv);
    if (r != 0)
        return api_fail(rep, r, "%s", why);
    s->invited =
        xrealloc(s->invited, (s->n_invited + json_array_size(users) + 1) * sizeof(*s->invited));
    for (i = 0; i < json_array_size(users); i++) {
        const char *who = json_string_value(json_array_get(users, i));
        json_t *data;

        for (k = 0; k < s->n_invited; k++)
            if (str_ieq(s->invited[k].who, who))
                break;
        if (k < s->n_invited) {
            s->invited[k].role = role; /* re-inviting changes the role */
        } else {
            s->invited[s->n_invited].who = xstrdup(who);
            s->invited[s->n_invited++].role = role;
        }
        data = json_pack("{s:s, s:s}", "user", who, "role", policy_role_name(role));
        r = core_event(req->app, s->name, req->p.user, "invited", data, req->now);
        json_decref(data);
        if (r != 0)
            return r;
    }
    core_after_notify(after, s->agent, s->name);
    return store_sess_update(req->app->store, s);
}

int
api_sessions_invite(struct api_req *req, struct api_reply *rep)
{
    static const struct field fields[] = {{"users", F_STRARRAY, 1, 254}, {"role", F_STRING, 0, 32}};
    int r = api_body_check(req, rep, fields, 2);

    if (r == 0 && json_array_size(json_object_get(req->body, "users")) == 0)
        r = api_fail(rep, ERR_INVALID, "field 'users' must name at least one user");
    return r ? r : mutate(req, rep, do_invite);
}

/* ---------------------------------------------------------------- connect */

/* What the participant's WebSocket thread needs once upgraded. */
struct connect_job {
    struct relay *relay;
    char *conn;
};

static void
connect_job_free(void *p)
{
    struct connect_job *j = p;

    free(j->conn);
    free(j);
}

static void
run_connect(struct upgraded *u, void *arg)
{
    struct connect_job *j = arg;

    relay_run_participant(j->relay, j->conn, u);
}

/*
 * Who is connecting: a join ticket (43 characters, no dots) bound to the
 * session and user, or a person's JWT. Fills req->p (the ticket's user, or
 * the token's identity). 401 on a bad credential.
 */
static int
connect_identity(struct api_req *req, struct api_reply *rep, char **user)
{
    const char *tok = api_bearer(req);
    char *q = NULL, *session = NULL, hash[65];
    int r;

    *user = NULL;
    if (tok == NULL)
        tok = q = api_query(req, "ticket");
    if (tok == NULL || *tok == '\0') {
        free(q);
        return api_fail(rep, ERR_AUTH, "missing join ticket or bearer token");
    }
    if (strchr(tok, '.') == NULL) {
        sha256_hex(tok, strlen(tok), hash);
        pthread_mutex_lock(&req->app->lock);
        r = store_ticket_get(req->app->store, hash, req->now, &session, user);
        pthread_mutex_unlock(&req->app->lock);
        free(q);
        if (r == ERR_NOT_FOUND || (r == 0 && strcmp(session, req->params[0]) != 0)) {
            free(session);
            free(*user);
            *user = NULL;
            return api_fail(rep, ERR_AUTH, "invalid or expired join ticket");
        }
        free(session);
        if (r == 0)
            req->p.user = *user; /* a live ticket's user is an active participant */
        return r;
    }
    r = api_authenticate(req, rep, tok, 0); /* a JWT may come as ?ticket= too */
    free(q);
    if (r != 0)
        return r;
    *user = xstrdup(req->id.user);
    return 0;
}

/*
 * GET /debug-sessions/{name}/connect: 404 unless the caller may see the
 * session (a 403 would tell an outsider it exists), 403 unless they are an
 * active participant, 409 unless it is Active, 429 past the session's
 * connection cap, 409 when its agent is offline.
 */
int
api_sessions_connect(struct api_req *req, struct api_reply *rep)
{
    struct sess *s = NULL;
    struct connect_job *job;
    char *user = NULL, *conn = NULL, *agent = NULL;
    size_t i;
    int r, cap = 0, found = 0;

    if ((r = connect_identity(req, rep, &user)) != 0)
        goto out;
    pthread_mutex_lock(&req->app->lock);
    r = api_load_visible(req, rep, req->params[0], &s);
    pthread_mutex_unlock(&req->app->lock);
    if (r != 0)
        goto out;
    /* an active participant who joined (the owner is listed from activation, keyless until then) */
    for (i = 0; i < s->n_parts; i++)
        if (s->parts[i].left_at == 0 && s->parts[i].ssh_public_key != NULL &&
            policy_same_person(&req->p, s->parts[i].user, s->parts[i].email, s->parts[i].domain))
            found = 1;
    if (!found) {
        r = api_fail(rep, ERR_FORBIDDEN, "you have not joined this session (POST …/join first)");
        goto out;
    }
    if (s->state != SESSION_ACTIVE) {
        r = api_fail(rep, ERR_CONFLICT, "the session is %s, not Active",
                     session_state_name(s->state));
        goto out;
    }
    agent = xstrdup(s->agent);
    cap = s->tmpl->max_participants * RELAY_CONNS_PER_PARTICIPANT;
    conn = random_token(16);
    if ((r = relay_expect(req->app->relay, conn, s->name, agent, user, cap)) != 0) {
        if (r == ERR_TOO_MANY)
            r = api_fail(rep, r, "too many connections to this session (limit %d)", cap);
        else if (r == ERR_UNAVAILABLE)
            r = api_fail(rep, r, "the server is shutting down");
        else
            r = api_fail(rep, r, "cannot open a relayed connection");
        goto out;
    }
    if ((r = control_send_open(req->app->control, agent, conn, s->name)) != 0) {
        r = api_fail(rep, ERR_CONFLICT, "the session's agent is offline");
        goto out;
    }
    job = xcalloc(1, sizeof(*job));
    job->relay = req->app->relay;
    job->conn = conn;
    conn = NULL;
    rep->upgrade = run_connect;
    rep->upgrade_arg = job;
    rep->upgrade_arg_free = connect_job_free;
out:
    sess_free(s);
    free(user);
    free(conn);
    free(agent);
    return r;
}
