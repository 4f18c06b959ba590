/*
 * /api/v1/agents: registration, listing, and the agent's WebSockets (control
 * channel and dial-back tunnels, which pair with the participants'
 * /debug-sessions/{name}/connect in api_sessions.c).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api.h"
#include "control.h"
#include "core.h"
#include "err.h"
#include "log.h"
#include "relay.h"
#include "sessquota.h"
#include "util.h"
#include "xmalloc.h"

#define AGENT_NAME_MAX 200
#define LABELS_MAX 50

/* 1 if name is a valid agent name: [A-Za-z0-9._-] segments joined by single '/'. */
static int
agent_name_ok(const char *name)
{
    size_t i, len = strlen(name);

    if (len == 0 || len > AGENT_NAME_MAX || name[0] == '/' || name[len - 1] == '/')
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c == '/' && name[i + 1] == '/')
            return 0;
        if (!isalnum(c) && c != '.' && c != '_' && c != '-' && c != '/')
            return 0;
    }
    return strstr(name, "..") == NULL;
}

static char *
pct_encode(const char *s)
{
    char *o = xmalloc(strlen(s) * 3 + 1), *p = o;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            *p++ = (char)c;
        else
            p += snprintf(p, 4, "%%%02X", c);
    }
    *p = '\0';
    return o;
}

/* 1 if some template p may use allows agent (admins see every agent). */
static int
agent_visible(const struct config *cfg, const struct principal *p, const char *agent)
{
    size_t i;

    if (p->admin)
        return 1;
    for (i = 0; i < cfg->n_templates; i++)
        if (policy_template_usable(&cfg->templates[i], p) &&
            policy_template_allows_agent(&cfg->templates[i], agent))
            return 1;
    return 0;
}

int
api_agents_list(struct api_req *req, struct api_reply *rep)
{
    struct agent_rec **list = NULL;
    size_t n = 0, i;
    json_t *arr;
    int r;

    pthread_mutex_lock(&req->app->lock);
    if ((r = store_agent_list(req->app->store, &list, &n)) == 0) {
        arr = json_array();
        for (i = 0; i < n; i++)
            if (agent_visible(req->app->cfg, &req->p, list[i]->name))
                json_array_append_new(arr, api_agent_json(req->app, list[i], 1));
        rep->json = json_pack("{s:o}", "agents", arr);
    }
    pthread_mutex_unlock(&req->app->lock);
    agent_list_free(list, n);
    return r;
}

int
api_agents_get(struct api_req *req, struct api_reply *rep)
{
    struct agent_rec *a = NULL;
    int r;

    if (!agent_visible(req->app->cfg, &req->p, req->params[0]))
        return api_fail(rep, ERR_NOT_FOUND, "agent '%s' not found", req->params[0]);
    pthread_mutex_lock(&req->app->lock);
    if ((r = store_agent_get(req->app->store, req->params[0], &a)) == 0)
        rep->json = api_agent_json(req->app, a, 1);
    pthread_mutex_unlock(&req->app->lock);
    agent_rec_free(a);
    if (r == ERR_NOT_FOUND)
        return api_fail(rep, r, "agent '%s' not found", req->params[0]);
    return r;
}

/* ---------------------------------------------------------------- registration */

static int
check_register_body(struct api_req *req, struct api_reply *rep)
{
    static const struct field fields[] = {
        {"name", F_STRING, 0, AGENT_NAME_MAX}, {"labels", F_OBJECT, 0, 0},
        {"hostKeys", F_STRARRAY, 0, 16384},    {"version", F_STRING, 0, 64},
        {"session", F_OBJECT, 0, 0},
    };
    static const struct field session_fields[] = {
        {"template", F_STRING, 1, 64},
        {"requestedDuration", F_STRING, 0, 32},
        {"reason", F_STRING, 0, 65536},
        {"invitedParticipants", F_STRARRAY, 0, 254},
    };
    json_t *labels, *hk, *sess, *v;
    const char *k;
    size_t i;
    int r;

    labels = req->body ? json_object_get(req->body, "labels") : NULL;
    if (labels != NULL && !json_is_object(labels))
        return api_fail(rep, ERR_INVALID, "field 'labels' must be an object of strings");
    if (json_object_size(labels) > LABELS_MAX)
        return api_fail(rep, ERR_INVALID, "field 'labels' has more than %d entries", LABELS_MAX);
    json_object_foreach(labels, k, v)
    {
        if (!json_is_string(v) || api_utf8_chars(k, strlen(k)) > 63 ||
            api_utf8_chars(json_string_value(v), json_string_length(v)) > 255)
            return api_fail(rep, ERR_INVALID,
                            "field 'labels.%s' must be a string (keys up to 63, values up to 255)",
                            k);
    }
    if ((r = api_body_check(req, rep, fields, sizeof(fields) / sizeof(fields[0]))) != 0)
        return r;
    if ((sess = json_object_get(req->body, "session")) != NULL && !json_is_null(sess)) {
        struct api_req sub = *req;

        sub.body = sess;
        if ((r = api_body_check(&sub, rep, session_fields, 4)) != 0) {
            char *m = xasprintf("session: %s", rep->error ? rep->error : "invalid");

            free(rep->error);
            rep->error = m;
            return r;
        }
    }
    hk = json_object_get(req->body, "hostKeys");
    if (json_array_size(hk) == 0)
        return api_fail(rep, ERR_INVALID, "field 'hostKeys' must list at least one host key");
    for (i = 0; i < json_array_size(hk); i++)
        if (api_check_pubkey(json_string_value(json_array_get(hk, i))) != 0)
            return api_fail(rep, ERR_INVALID, "field 'hostKeys[%zu]' is not an OpenSSH public key",
                            i);
    return 0;
}

/* Decides the agent's name and who it is registered by. */
static int
register_name(struct api_req *req, struct api_reply *rep, const char **name)
{
    const char *want = api_str(req, "name");

    if (req->id.is_agent) {
        if (req->id.agent_name == NULL)
            return api_fail(rep, ERR_FORBIDDEN, "this agent token does not name an agent");
        if (want != NULL && strcmp(want, req->id.agent_name) != 0)
            return api_fail(rep, ERR_FORBIDDEN,
                            "agent tokens register the name their claims give ('%s')",
                            req->id.agent_name);
        *name = req->id.agent_name;
    } else {
        if (!req->p.admin && !policy_subjects_match(&req->app->cfg->agent_registrars, &req->p))
            return api_fail(rep, ERR_FORBIDDEN, "you may not register agents");
        if (want == NULL)
            return api_fail(rep, ERR_INVALID, "field 'name' is required");
        *name = want;
    }
    if (!agent_name_ok(*name))
        return api_fail(rep, ERR_INVALID,
                        "agent name '%s' is invalid (letters, digits, '.', '_', '-', '/')", *name);
    return 0;
}

/* The session an agent asks for at registration, if any. */
static int
register_session(struct api_req *req, struct api_reply *rep, const char *agent, char **sname,
                 struct core_after *after)
{
    const json_t *spec = json_object_get(req->body, "session");
    const char *tname = json_string_value(json_object_get(spec, "template"));
    const struct tmpl_cfg *t;
    struct principal owner;
    int r;

    *sname = NULL;
    if (spec == NULL || json_is_null(spec))
        return 0;
    if ((t = config_template(req->app->cfg, tname)) == NULL)
        return api_fail(rep, ERR_INVALID, "session: unknown template '%s'", tname);
    if (!policy_template_allows_agent(t, agent))
        return api_fail(rep, ERR_FORBIDDEN, "template '%s' does not allow agent '%s'", t->name,
                        agent);
    if (req->id.is_agent) {
        memset(&owner, 0, sizeof(owner));
        owner.user = req->id.owner ? req->id.owner : agent;
        owner.domain = req->id.domain; /* the agent issuer's identityDomain, or NULL (any) */
    } else {
        if (!policy_template_usable(t, &req->p))
            return api_fail(rep, ERR_FORBIDDEN, "you may not use template '%s'", t->name);
        owner = req->p;
    }
    /* the owner's open sessions, as for POST /debug-sessions: 429 (the registration too) */
    if ((r = sessquota_check(req->app, t, &owner, rep)) != 0)
        return r;
    return api_session_new(req->app, t, agent, &owner,
                           req->id.is_agent ? NULL : req->id.display_name, spec, req->now, rep,
                           sname, after);
}

int
api_agents_register(struct api_req *req, struct api_reply *rep)
{
    struct app *app = req->app;
    struct agent_rec *old = NULL, a;
    struct core_after after = {0};
    struct sess *s = NULL;
    const char *name = NULL;
    char hash[65], *cred = NULL, *sname = NULL, *enc;
    int r;

    if ((r = check_register_body(req, rep)) != 0 || (r = register_name(req, rep, &name)) != 0)
        return r;
    pthread_mutex_lock(&app->lock);
    if ((r = store_begin(app->store)) != 0)
        goto unlock;
    r = store_agent_get(app->store, name, &old);
    if (r == 0 && (old->online || control_is_connected(app->control, name))) {
        r = api_fail(rep, ERR_CONFLICT, "agent '%s' is registered and online", name);
        goto fail;
    }
    if (r != 0 && r != ERR_NOT_FOUND)
        goto fail;
    cred = random_token(32);
    sha256_hex(cred, strlen(cred), hash);
    memset(&a, 0, sizeof(a));
    a.name = (char *)name;
    a.labels =
        json_object_get(req->body, "labels") ? json_object_get(req->body, "labels") : json_object();
    if (json_object_get(req->body, "labels") != NULL)
        json_incref(a.labels);
    a.host_keys = json_object_get(req->body, "hostKeys");
    a.version = (char *)api_str(req, "version");
    a.registered_by = (char *)req->p.user;
    a.registered_at = req->now;
    a.last_seen_at = req->now;
    a.offline_since = req->now;
    a.credential_hash = hash;
    r = store_agent_put(app->store, &a);
    json_decref(a.labels);
    if (r != 0 || (r = register_session(req, rep, name, &sname, &after)) != 0)
        goto fail;
    if ((r = store_commit(app->store)) != 0)
        goto unlock;
    agent_rec_free(old);
    old = NULL;
    (void)store_agent_get(app->store, name, &old);
    if (sname != NULL)
        (void)store_sess_get(app->store, sname, &s);
    enc = pct_encode(name);
    {
        char *path = xasprintf("/api/v1/agents/%s/control", enc);
        char *url = api_ws_url(app, path);

        free(path);

        rep->json = json_pack("{s:o, s:s, s:s, s:o}", "agent", api_agent_json(app, old, 1),
                              "credential", cred, "controlUrl", url, "session",
                              s ? api_session_json(app, s, req->id.is_agent ? NULL : &req->p)
                                : json_null());
        free(url);
    }
    free(enc);
    rep->status = 201;
    log_info("agent %s registered by %s", name, req->p.user);
    goto unlock;
fail:
    store_rollback(app->store);
unlock:
    pthread_mutex_unlock(&app->lock);
    agent_rec_free(old);
    sess_free(s);
    if (cred)
        explicit_bzero(cred, strlen(cred));
    free(cred);
    free(sname);
    if (r == 0)
        core_after_run(app, &after);
    else
        core_after_free(&after);
    return r;
}

/* ---------------------------------------------------------------- agent WebSockets */

/* Checks the agent credential for agent name. 401 on any mismatch. */
int
api_agent_auth(struct api_req *req, struct api_reply *rep, const char *name)
{
    const char *cred = api_bearer(req);
    struct agent_rec *a = NULL;
    char hash[65];
    int r, ok;

    if (cred == NULL || strlen(cred) > 512)
        return api_fail(rep, ERR_AUTH, "missing agent credential");
    sha256_hex(cred, strlen(cred), hash);
    pthread_mutex_lock(&req->app->lock);
    r = store_agent_get(req->app->store, name, &a);
    pthread_mutex_unlock(&req->app->lock);
    ok = r == 0 && ct_streq(hash, a->credential_hash);
    agent_rec_free(a);
    if (r != 0 && r != ERR_NOT_FOUND)
        return r;
    if (!ok)
        return api_fail(rep, ERR_AUTH, "invalid agent credential");
    return 0;
}

struct ws_job {
    struct app *app;
    char *agent;
    char *conn;
};

static void
ws_job_free(void *p)
{
    struct ws_job *j = p;

    free(j->agent);
    free(j->conn);
    free(j);
}

static struct ws_job *
ws_job_new(struct app *app, const char *agent, const char *conn)
{
    struct ws_job *j = xcalloc(1, sizeof(*j));

    j->app = app;
    j->agent = agent ? xstrdup(agent) : NULL;
    j->conn = conn ? xstrdup(conn) : NULL;
    return j;
}

static void
run_control(struct upgraded *u, void *arg)
{
    struct ws_job *j = arg;

    control_run(j->app->control, j->agent, u);
}

static void
run_tunnel(struct upgraded *u, void *arg)
{
    struct ws_job *j = arg;

    relay_run_agent(j->app->relay, j->conn, u);
}

int
api_agents_control(struct api_req *req, struct api_reply *rep)
{
    int r;

    if ((r = api_agent_auth(req, rep, req->params[0])) != 0)
        return r;
    rep->upgrade = run_control;
    rep->upgrade_arg = ws_job_new(req->app, req->params[0], NULL);
    rep->upgrade_arg_free = ws_job_free;
    return 0;
}

int
api_agents_tunnel(struct api_req *req, struct api_reply *rep)
{
    int r;

    if ((r = api_agent_auth(req, rep, req->params[0])) != 0)
        return r;
    if (!relay_pending_for_agent(req->app->relay, req->params[1], req->params[0]))
        return api_fail(rep, ERR_NOT_FOUND, "no pending connection '%s'", req->params[1]);
    rep->upgrade = run_tunnel;
    rep->upgrade_arg = ws_job_new(req->app, req->params[0], req->params[1]);
    rep->upgrade_arg_free = ws_job_free;
    return 0;
}
