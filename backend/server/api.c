/*
 * Helpers shared by the api_*.c handlers: the error envelope, the request's
 * credentials and query, authentication, strict bodies, JSON views.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/sha.h>

#include "api.h"
#include "control.h"
#include "core_rules.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "recording.h"
#include "route.h"
#include "util.h"
#include "viewcache.h"
#include "xmalloc.h"

int
api_fail(struct api_reply *rep, int r, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    free(rep->error);
    rep->error = msg;
    return r;
}

int
api_status_for(int r)
{
    return err_http_status(r);
}

/* A copy of s with each byte that does not start a whole UTF-8 character replaced by '?'. */
static char *
utf8_scrub(const char *s)
{
    size_t len = strlen(s), i = 0, n = 0, k;
    char *o = xmalloc(len + 1);

    while (i < len) {
        for (k = 1; k <= 4 && i + k <= len; k++)
            if (route_utf8_ok(s + i, k))
                break;
        if (k > 4 || i + k > len) {
            o[n++] = '?';
            i++;
            continue;
        }
        memcpy(o + n, s + i, k);
        n += k;
        i += k;
    }
    o[n] = '\0';
    return o;
}

json_t *
api_error_json(int r, const char *msg, const json_t *details)
{
    json_t *j = json_object(), *text;

    if (msg == NULL)
        msg = err_str(r);
    if ((text = json_string(msg)) == NULL) {
        /* msg may quote a path or a query argument that is not UTF-8 */
        char *clean = utf8_scrub(msg);

        text = json_string(clean);
        free(clean);
    }
    json_object_set_new(j, "error", text);
    json_object_set_new(j, "code", json_string(err_code(r)));
    if (details != NULL)
        json_object_set(j, "details", (json_t *)details);
    return j;
}

void
api_reply_cleanup(struct api_reply *rep)
{
    json_decref(rep->json);
    free(rep->body);
    json_decref(rep->details);
    free(rep->error);
    free(rep->csp);
    if (rep->has_file)
        close(rep->file_fd);
    if (rep->upgrade_arg_free && rep->upgrade_arg)
        rep->upgrade_arg_free(rep->upgrade_arg);
    memset(rep, 0, sizeof(*rep));
}

void
api_req_cleanup(struct api_req *req)
{
    size_t i;

    for (i = 0; i < sizeof(req->params) / sizeof(req->params[0]); i++) {
        free(req->params[i]);
        req->params[i] = NULL;
    }
    json_decref(req->body);
    req->body = NULL;
    if (req->authed)
        identity_cleanup(&req->id);
    req->authed = 0;
}

const char *
api_bearer(const struct api_req *req)
{
    const char *h = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Authorization");

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

const char *
api_header(const struct api_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

char *
api_query(const struct api_req *req, const char *name)
{
    const char *raw = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    char *out = NULL;

    if (raw == NULL)
        return NULL;
    if (route_decode(raw, strlen(raw), 1, &out) != 0)
        return xstrdup("\x01"); /* invalid escape: no valid value equals this */
    return out;
}

int
api_authenticate(struct api_req *req, struct api_reply *rep, const char *tok, int agent_ok)
{
    const char *why = NULL;
    int r;

    if (tok == NULL)
        return api_fail(rep, ERR_AUTH, "missing bearer token");
    if ((r = auth_verify(req->app->auth, tok, req->now, &req->id, &why)) != 0) {
        if (r == ERR_UNAVAILABLE)
            return api_fail(rep, r, "cannot verify token: %s", why ? why : "issuer unavailable");
        return api_fail(rep, ERR_AUTH, "invalid token: %s", why ? why : "rejected");
    }
    req->authed = 1;
    api_principal_set(req);
    if (req->id.is_agent && !agent_ok)
        return api_fail(rep, ERR_FORBIDDEN, "agent tokens may only register agents");
    return 0;
}

void
api_principal_set(struct api_req *req)
{
    req->p.user = req->id.user;
    req->p.email = req->id.email;
    req->p.domain = req->id.domain;
    req->p.groups = req->id.groups;
    req->p.n_groups = req->id.n_groups;
    req->p.admin = !req->id.is_agent && policy_is_admin(req->app->cfg, &req->p);
}

size_t
api_utf8_chars(const char *s, size_t len)
{
    size_t n = 0, i;

    /* every character has exactly one byte that is not a continuation byte */
    for (i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

static const char *const type_names[] = {"a string", "an integer", "a boolean",
                                         "an array of strings", "an object"};

static int
field_ok(const struct field *f, const json_t *v, struct api_reply *rep)
{
    size_t max = f->max_len ? f->max_len : API_MAX_STRING, i;

    switch (f->type) {
    case F_STRING:
        if (!json_is_string(v))
            break;
        if (strlen(json_string_value(v)) != json_string_length(v))
            return api_fail(rep, ERR_INVALID, "field '%s' contains a NUL character", f->name);
        if (api_utf8_chars(json_string_value(v), json_string_length(v)) > max)
            return api_fail(rep, ERR_INVALID, "field '%s' is longer than %zu characters", f->name,
                            max);
        return 0;
    case F_INT:
        if (json_is_integer(v))
            return 0;
        break;
    case F_BOOL:
        if (json_is_boolean(v))
            return 0;
        break;
    case F_OBJECT:
        if (json_is_object(v))
            return 0;
        break;
    case F_STRARRAY:
        if (!json_is_array(v))
            break;
        if (json_array_size(v) > API_MAX_LIST)
            return api_fail(rep, ERR_INVALID, "field '%s' has more than %d entries", f->name,
                            API_MAX_LIST);
        for (i = 0; i < json_array_size(v); i++) {
            const json_t *e = json_array_get(v, i);

            if (!json_is_string(e) || json_string_length(e) == 0)
                return api_fail(rep, ERR_INVALID, "field '%s[%zu]' must be a non-empty string",
                                f->name, i);
            if (api_utf8_chars(json_string_value(e), json_string_length(e)) > max)
                return api_fail(rep, ERR_INVALID, "field '%s[%zu]' is longer than %zu characters",
                                f->name, i, max);
        }
        return 0;
    }
    return api_fail(rep, ERR_INVALID, "field '%s' must be %s", f->name, type_names[f->type]);
}

int
api_body_check(struct api_req *req, struct api_reply *rep, const struct field *fields,
               size_t n_fields)
{
    const char *key;
    json_t *v;
    size_t i;
    int r;

    if (req->body == NULL) {
        for (i = 0; i < n_fields; i++)
            if (fields[i].required)
                return api_fail(rep, ERR_INVALID, "request body is required (field '%s')",
                                fields[i].name);
        return 0;
    }
    if (!json_is_object(req->body))
        return api_fail(rep, ERR_INVALID, "request body must be a JSON object");
    json_object_foreach(req->body, key, v)
    {
        for (i = 0; i < n_fields; i++)
            if (strcmp(fields[i].name, key) == 0)
                break;
        if (i == n_fields)
            return api_fail(rep, ERR_INVALID, "unknown field '%s'", key);
        if (json_is_null(v) && !fields[i].required)
            continue;
        if ((r = field_ok(&fields[i], v, rep)) != 0)
            return r;
    }
    for (i = 0; i < n_fields; i++)
        if (fields[i].required && json_object_get(req->body, fields[i].name) == NULL)
            return api_fail(rep, ERR_INVALID, "field '%s' is required", fields[i].name);
    return 0;
}

const char *
api_str(const struct api_req *req, const char *name)
{
    return req->body ? json_string_value(json_object_get(req->body, name)) : NULL;
}

static json_t *
time_json(int64_t t)
{
    char buf[21];

    if (t == 0)
        return json_null();
    time_fmt(t, buf);
    return json_string(buf);
}

json_t *
api_fingerprints(const json_t *host_keys)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < json_array_size(host_keys); i++) {
        const char *line = json_string_value(json_array_get(host_keys, i));
        const char *sp = line ? strchr(line, ' ') : NULL;
        unsigned char md[SHA256_DIGEST_LENGTH];
        unsigned char *blob = NULL;
        size_t blen = 0, n;
        char *b64, *fp;

        if (sp == NULL)
            continue;
        n = strcspn(sp + 1, " ");
        b64 = xstrndup(sp + 1, n);
        /* standard base64 -> base64url alphabet for our decoder */
        for (char *p = b64; *p; p++)
            *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
        if (b64url_decode(b64, strlen(b64), &blob, &blen) == 0) {
            char *enc;
            size_t el;

            SHA256(blob, blen, md);
            enc = b64_encode(md, sizeof(md));
            el = strlen(enc);
            while (el > 0 && enc[el - 1] == '=')
                enc[--el] = '\0';
            fp = xasprintf("SHA256:%s", enc);
            json_array_append_new(a, json_string(fp));
            free(fp);
            free(enc);
        }
        free(blob);
        free(b64);
    }
    return a;
}

int
api_check_pubkey(const char *line)
{
    static const char *const types[] = {
        "ssh-ed25519", "ecdsa-sha2-nistp256",       "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "ssh-rsa",     "sk-ssh-ed25519@openssh.com"};
    const char *sp = strchr(line, ' ');
    unsigned char *blob = NULL;
    size_t blen = 0, tl, i, n;
    char *b64;
    int r = ERR_INVALID;

    if (sp == NULL || strpbrk(line, "\r\n") != NULL)
        return ERR_INVALID;
    tl = (size_t)(sp - line);
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i]) == tl && strncmp(line, types[i], tl) == 0)
            break;
    if (i == sizeof(types) / sizeof(types[0]))
        return ERR_INVALID;
    n = strcspn(sp + 1, " ");
    if (n < 16)
        return ERR_INVALID;
    b64 = xstrndup(sp + 1, n);
    for (char *p = b64; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    /* The blob starts with a uint32 length and the key type again. */
    if (b64url_decode(b64, strlen(b64), &blob, &blen) == 0 && blen > 4 + tl &&
        ((size_t)blob[0] << 24 | (size_t)blob[1] << 16 | (size_t)blob[2] << 8 | blob[3]) == tl &&
        memcmp(blob + 4, line, tl) == 0)
        r = 0;
    free(blob);
    free(b64);
    return r;
}

static json_t *
participants_json(const struct sess *s)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < s->n_parts; i++) {
        const struct sess_participant *p = &s->parts[i];

        json_array_append_new(
            a, json_pack("{s:s, s:s?, s:s?, s:s, s:o, s:o, s:i, s:o, s:o, s:o}", "user", p->user,
                         "email", p->email, "displayName", p->display_name, "role",
                         policy_role_name(p->role), "joinedAt", time_json(p->joined_at), "leftAt",
                         time_json(p->left_at), "connections", p->connections, "connectedSince",
                         time_json(p->connections > 0 ? p->connected_since : 0), "lastInputAt",
                         time_json(p->last_input_at), "firstConnectedAt",
                         time_json(p->first_connected_at)));
    }
    return a;
}

static json_t *
approval_json(const struct sess *s)
{
    int approved = s->decision && strcmp(s->decision, "approve") == 0;
    int rejected = s->decision && strcmp(s->decision, "reject") == 0;

    return json_pack("{s:b, s:s?, s:o, s:s?, s:o, s:s?}", "required", s->approval_required,
                     "approvedBy", approved ? s->decided_by : NULL, "approvedAt",
                     time_json(approved ? s->decided_at : 0), "rejectedBy",
                     rejected ? s->decided_by : NULL, "rejectedAt",
                     time_json(rejected ? s->decided_at : 0), "reason", s->decision_reason);
}

/*
 * Issue 12's status fields: effectiveDuration (expiresAt - startsAt, after
 * renewals), idleEndsAt, and the agent's offlineSince and failsAt (when an
 * Active session fails if its agent stays away: offlineSince + grace_s).
 */
static void
status_time_json(json_t *status, const struct sess *s, int64_t grace_s)
{
    json_t *agent = json_object_get(status, "agent");
    int64_t off = s->agent_online ? 0 : s->agent_offline_since;
    char dur[32];

    if (s->starts_at != 0 && s->expires_at > s->starts_at) {
        duration_format(s->expires_at - s->starts_at, dur, sizeof(dur));
        json_object_set_new(status, "effectiveDuration", json_string(dur));
    } else {
        json_object_set_new(status, "effectiveDuration", json_null());
    }
    json_object_set_new(status, "idleEndsAt", time_json(core_rules_idle_ends_at(s)));
    json_object_set_new(agent, "offlineSince", time_json(off));
    json_object_set_new(agent, "failsAt",
                        time_json(off != 0 && s->state == SESSION_ACTIVE ? off + grace_s : 0));
}

/* Everything of a session's reply except the caller's can* flags. New reference. */
static json_t *
session_base_json(const struct sess *s, int64_t grace_s)
{
    json_t *j;
    json_t *invited = json_array();
    char dur[32];
    size_t i;

    for (i = 0; i < s->n_invited; i++)
        json_array_append_new(invited, json_string(s->invited[i].who));
    duration_format(s->requested_duration_s, dur, sizeof(dur));
    j = json_pack("{s:s, s:o, s:{s:s, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:o},"
                  " s:{s:s, s:s?, s:o, s:o, s:i, s:i, s:o, s:o,"
                  " s:{s:b, s:s, s:i, s:b}, s:{s:b, s:b, s:b, s:b}, s:{s:b, s:o}}}",
                  "name", s->name, "createdAt", time_json(s->created_at), "spec", "template",
                  s->template_name, "agent", s->agent, "requestedBy", s->requested_by,
                  "requestedByEmail", s->requested_by_email, "requestedByDisplayName",
                  s->requested_by_name, "requestedDuration", dur, "reason", s->reason,
                  "invitedParticipants", invited, "status", "state", session_state_name(s->state),
                  "message", s->message, "startsAt", time_json(s->starts_at), "expiresAt",
                  time_json(s->expires_at), "renewalCount", s->renewal_count, "maxRenewals",
                  s->tmpl->allow_renewal ? s->tmpl->max_renewals : 0, "approval", approval_json(s),
                  "participants", participants_json(s), "terminalSharing", "enabled",
                  s->tmpl->sharing_enabled, "provider", "tmux", "maxParticipants",
                  s->tmpl->max_participants, "browser", s->tmpl->sharing_browser,
                  "allowedOperations", "shell", s->tmpl->op_shell, "exec", s->tmpl->op_exec, "sftp",
                  s->tmpl->op_sftp, "portForward", s->tmpl->op_port_forward, "agent", "online",
                  s->agent_online, "hostKeyFingerprints", api_fingerprints(s->agent_host_keys));
    status_time_json(json_object_get(j, "status"), s, grace_s);
    recording_status_add(s, json_object_get(j, "status"));
    return j;
}

/* The can* flags, in reply order (canApprove, canReject, canJoin, canRenew, canTerminate). */
#define N_FLAGS 5
static const char *const flag_names[N_FLAGS] = {"canApprove", "canReject", "canJoin", "canRenew",
                                                "canTerminate"};

/* What caller p may do with s now (all false without a person: an agent's view). */
static void
session_flags(const struct sess *s, const struct principal *p, int flags[N_FLAGS])
{
    struct sess_pview pv;
    enum policy_role granted;
    const char *why;
    int64_t new_exp;

    memset(flags, 0, N_FLAGS * sizeof(*flags));
    if (p == NULL)
        return;
    sess_pview_init(&pv, s);
    flags[0] = flags[1] = policy_check_decide(&pv.v, p, &why) == 0;
    flags[2] = !session_state_ended(s->state) &&
               policy_check_join(&pv.v, p, ROLE_NONE, &granted, &why) == 0;
    flags[3] = policy_check_renew(&pv.v, p, 1, &new_exp, &why) == 0;
    flags[4] = policy_check_terminate(&pv.v, p, 0, &why) == 0;
    sess_pview_cleanup(&pv);
}

json_t *
api_session_json(struct app *app, const struct sess *s, const struct principal *p)
{
    json_t *j = session_base_json(s, app->cfg->agent_grace_s);
    int flags[N_FLAGS], i;

    session_flags(s, p, flags);
    for (i = 0; i < N_FLAGS; i++)
        json_object_set_new(j, flag_names[i], json_boolean(flags[i]));
    return j;
}

struct sess_view *
api_session_view(struct app *app, struct sess *s, uint64_t gen)
{
    struct sess_view *v;
    json_t *j = session_base_json(s, app->cfg->agent_grace_s);
    char *text = json_dumps(j, JSON_COMPACT);
    size_t len;

    json_decref(j);
    if (text == NULL)
        fatal("cannot render session %s", s->name);
    len = strlen(text);
    /* a non-empty object ends in '}': the flags take its place */
    if (len < 2 || text[len - 1] != '}')
        fatal("session %s rendered as %s", s->name, text);
    text[--len] = '\0';
    v = sess_view_new(s, text, len);
    (void)viewcache_put(store_views(app->store), v, gen);
    return v;
}

/* Longest flags text: five names, quotes, colons, "false" and commas, then '}'. */
#define FLAGS_MAX 96

static size_t
flags_text(const struct sess *s, const struct principal *p, char out[FLAGS_MAX])
{
    int flags[N_FLAGS], i;
    size_t n = 0, k;

    session_flags(s, p, flags);
    for (i = 0; i < N_FLAGS; i++) {
        const char *parts[4] = {",\"", flag_names[i], "\":", flags[i] ? "true" : "false"};

        for (k = 0; k < 4; k++) {
            size_t l = strlen(parts[k]);

            memcpy(out + n, parts[k], l);
            n += l;
        }
    }
    out[n++] = '}';
    return n;
}

size_t
api_view_size(const struct sess_view *v)
{
    return v->len + FLAGS_MAX;
}

size_t
api_view_render(const struct sess_view *v, const struct principal *p, char *out)
{
    memcpy(out, v->json, v->len);
    return v->len + flags_text(v->s, p, out + v->len);
}

json_t *
api_agent_json(struct app *app, const struct agent_rec *a, int with_sessions)
{
    json_t *sessions = json_array();
    char reg[21], seen[21];

    time_fmt(a->registered_at, reg);
    time_fmt(a->last_seen_at ? a->last_seen_at : a->registered_at, seen);
    if (with_sessions) {
        struct sess **list = NULL;
        size_t n = 0, i;

        if (store_sess_by_agent(app->store, a->name, 0, &list, &n) == 0)
            for (i = 0; i < n; i++)
                json_array_append_new(sessions, json_string(list[i]->name));
        sess_list_free(list, n);
    }
    return json_pack("{s:s, s:O, s:b, s:s?, s:O, s:o, s:s, s:s, s:s, s:o}", "name", a->name,
                     "labels", a->labels, "online", a->online, "version", a->version, "hostKeys",
                     a->host_keys, "hostKeyFingerprints", api_fingerprints(a->host_keys),
                     "registeredBy", a->registered_by, "registeredAt", reg, "lastSeenAt", seen,
                     "sessions", sessions);
}

int
api_can_see(const struct sess *s, const struct principal *p)
{
    struct sess_pview pv;
    int ok;

    sess_pview_init(&pv, s);
    ok = policy_can_see(&pv.v, p);
    sess_pview_cleanup(&pv);
    return ok;
}

int
api_view_visible(struct api_req *req, struct api_reply *rep, const char *name,
                 struct sess_view **vp)
{
    struct viewcache *vc = store_views(req->app->store);
    struct sess_view *v;
    struct sess *s = NULL;
    uint64_t gen;
    int r;

    *vp = NULL;
    if ((v = viewcache_get(vc, name)) == NULL) {
        pthread_mutex_lock(&req->app->lock);
        gen = viewcache_gen(vc);
        r = store_sess_get(req->app->store, name, &s);
        pthread_mutex_unlock(&req->app->lock);
        if (r == ERR_NOT_FOUND)
            return api_fail(rep, r, "session '%s' not found", name);
        if (r != 0)
            return api_fail(rep, r, "cannot load session");
        v = api_session_view(req->app, s, gen); /* rendered without the lock */
    }
    if (!api_can_see(v->s, &req->p)) {
        sess_view_unref(v);
        return api_fail(rep, ERR_NOT_FOUND, "session '%s' not found", name);
    }
    *vp = v;
    return 0;
}

void
api_reply_view(struct api_reply *rep, const struct sess_view *v, const struct principal *p)
{
    rep->body = xmalloc(api_view_size(v));
    rep->body_len = api_view_render(v, p, rep->body);
}

int
api_load_visible(struct api_req *req, struct api_reply *rep, const char *name, struct sess **sp)
{
    struct sess *s = NULL;
    int r;

    *sp = NULL;
    if ((r = store_sess_get(req->app->store, name, &s)) == ERR_NOT_FOUND)
        return api_fail(rep, r, "session '%s' not found", name);
    if (r != 0)
        return api_fail(rep, r, "cannot load session");
    if (!api_can_see(s, &req->p)) {
        sess_free(s);
        return api_fail(rep, ERR_NOT_FOUND, "session '%s' not found", name);
    }
    *sp = s;
    return 0;
}

char *
api_ws_url(const struct app *app, const char *path)
{
    const char *u = app->cfg->public_url;

    if (strncmp(u, "https://", 8) == 0)
        return xasprintf("wss://%s%s", u + 8, path);
    if (strncmp(u, "http://", 7) == 0)
        return xasprintf("ws://%s%s", u + 7, path);
    return xasprintf("%s%s", u, path);
}
