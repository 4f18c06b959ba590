/*
 * Registration (DESIGN.md 8.1): POST /api/v1/agents with the host key,
 * labels and, for `airlock wait`, the session to request; the answer names
 * the agent, its credential and the control channel's URL. Also the GitHub
 * Actions OIDC token a CI job registers with.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "control_int.h"
#include "err.h"
#include "httpc.h"
#include "log.h"
#include "sshd.h"
#include "util.h"
#include "xmalloc.h"

#define HTTP_TIMEOUT_MS 30000
#define REGISTER_TRIES 5

/*
 * method "GET" or "POST" (json body). *status gets the HTTP status, *resp the
 * body parsed as JSON (new, may be NULL). 0 or ERR_UNAVAILABLE (transport).
 */
static int
http_json(const char *method, const char *url, const char *auth_header, const char *body,
          const char *ca_file, long *status, json_t **resp, char *err, size_t err_len)
{
    return httpc_call(method, url, auth_header, "application/json", body, ca_file,
                      (long)HTTP_TIMEOUT_MS, status, resp, err, err_len);
}

/* The server's error message from an API error body, or a fallback. Borrowed. */
static const char *
api_error(const json_t *resp, long status, char *buf, size_t len)
{
    const char *e = json_string_value(json_object_get(resp, "error"));

    if (e != NULL)
        return e;
    snprintf(buf, len, "HTTP %ld", status);
    return buf;
}

int
control_token_github(const char *audience, const char *ca_file, char **token, char *err,
                     size_t err_len)
{
    const char *url = getenv("ACTIONS_ID_TOKEN_REQUEST_URL");
    const char *rt = getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    char *full = NULL, *auth = NULL, *aud = NULL;
    json_t *resp = NULL;
    long status;
    int r;

    *token = NULL;
    if (url == NULL || rt == NULL) {
        snprintf(err, err_len,
                 "ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN are not set "
                 "(the job needs `permissions: id-token: write`)");
        return ERR_INVALID;
    }
    aud = control_path_escape(audience);
    full = xasprintf("%s%saudience=%s", url, strchr(url, '?') ? "&" : "?", aud);
    auth = xasprintf("Authorization: bearer %s", rt);
    r = http_json("GET", full, auth, NULL, ca_file, &status, &resp, err, err_len);
    if (r == 0 && (status != 200 || !json_is_string(json_object_get(resp, "value")))) {
        snprintf(err, err_len, "GitHub refused the OIDC token request (HTTP %ld)", status);
        r = ERR_INVALID;
    }
    if (r == 0)
        *token = xstrdup(json_string_value(json_object_get(resp, "value")));
    explicit_bzero(auth, strlen(auth));
    free(auth);
    free(full);
    free(aud);
    json_decref(resp);
    return r;
}

char *
control_path_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = '\0';
    return out;
}

static json_t *
register_body(struct agent *a)
{
    const struct control_cfg *c = a->cfg;
    json_t *labels = json_object(), *body, *sess, *inv;
    size_t i;

    for (i = 0; i < c->n_labels; i++) {
        const char *eq = strchr(c->labels[i], '=');
        char *k = xstrndup(c->labels[i], (size_t)(eq - c->labels[i]));

        json_object_set_new(labels, k, json_string(eq + 1));
        free(k);
    }
    body = json_pack("{s:o, s:[s], s:s}", "labels", labels, "hostKeys", sshd_host_key_line(a->sshd),
                     "version", AIRLOCK_VERSION);
    if (c->name != NULL)
        json_object_set_new(body, "name", json_string(c->name));
    if (c->mode == CONTROL_WAIT && c->tmpl != NULL) {
        sess = json_pack("{s:s}", "template", c->tmpl);
        if (c->duration != NULL)
            json_object_set_new(sess, "requestedDuration", json_string(c->duration));
        if (c->reason != NULL)
            json_object_set_new(sess, "reason", json_string(c->reason));
        inv = json_array();
        for (i = 0; i < c->n_invite; i++)
            json_array_append_new(inv, json_string(c->invite[i]));
        json_object_set_new(sess, "invitedParticipants", inv);
        json_object_set_new(body, "session", sess);
    }
    return body;
}

/*
 * The control channel's URL from the answer's controlUrl (absolute, or a
 * path on the server; NULL: the default for name), and the tunnels' base
 * (the same without "/control").
 */
static void
register_urls(struct agent *a, const char *name, const char *control_url)
{
    size_t l;

    if (control_url != NULL && control_url[0] != '/') {
        a->control_url = xstrdup(control_url);
    } else if (control_url != NULL) {
        a->control_url = xasprintf("%s%s", a->cfg->server, control_url);
    } else {
        char *esc = control_path_escape(name);

        a->control_url = xasprintf("%s/api/v1/agents/%s/control", a->cfg->server, esc);
        free(esc);
    }
    l = strlen(a->control_url);
    if (l > 8 && strcmp(a->control_url + l - 8, "/control") == 0)
        a->tunnel_base = xstrndup(a->control_url, l - 8);
    else
        a->tunnel_base = xstrdup(a->control_url);
}

/* The session requested with the registration (sess borrowed, named sname): followed by wait. */
static void
register_session(struct agent *a, const json_t *sess, const char *sname)
{
    const json_t *st = json_object_get(sess, "status");
    struct dsess first;

    /* Until the control channel speaks, the box shows what the registration said. */
    memset(&first, 0, sizeof(first));
    first.name = (char *)sname;
    first.state = (char *)(json_string_value(json_object_get(st, "state")) ?: "Pending");
    if (time_parse(json_string_value(json_object_get(st, "expiresAt")) ?: "", &first.expires_at) !=
        0)
        first.expires_at = 0;
    if (!dsess_state_ended(first.state))
        sshd_session_update(a->sshd, &first);
    a->session = xstrdup(sname);
    st = json_object_get(sess, "spec");
    if (json_is_string(json_object_get(st, "requestedBy")))
        a->owner = xstrdup(json_string_value(json_object_get(st, "requestedBy")));
}

/* Returns 0, or the process exit code to leave with (1 refused, 3 unreachable). */
int
control_agent_register(struct agent *a)
{
    json_t *body = register_body(a), *resp = NULL;
    char *url = xasprintf("%s/api/v1/agents", a->cfg->server), *text = json_dumps(body, 0);
    char *auth = xasprintf("Authorization: Bearer %s", a->cfg->token);
    const char *name, *cred, *curl_s, *sname;
    char err[512], buf[64];
    long status = 0;
    int r = 3, tries, t;

    for (tries = 0; tries < REGISTER_TRIES; tries++) {
        json_decref(resp);
        resp = NULL;
        t = http_json("POST", url, auth, text, a->cfg->ca_file, &status, &resp, err, sizeof(err));
        if (t == 0 && status != 502 && status != 503 && status != 504)
            break;
        if (t == 0)
            snprintf(err, sizeof(err), "%s (HTTP %ld)", api_error(resp, status, buf, sizeof(buf)),
                     status);
        if (tries + 1 < REGISTER_TRIES) {
            log_warn("registration: %s; retrying", err);
            /*
             * A back-off, so a timer is right: a gateway answering 502-504
             * (the server restarting behind it) sends no event when it is
             * back. 1, 2, 4, 8 s: about 15 s in all before giving up.
             */
            sleep(1u << tries);
        }
    }
    if (tries == REGISTER_TRIES) {
        fprintf(stderr, "airlock: %s\n", err);
        goto out;
    }
    if (status != 201 && status != 200) {
        fprintf(stderr, "airlock: registration refused: %s\n",
                api_error(resp, status, buf, sizeof(buf)));
        r = 1;
        goto out;
    }
    name = json_string_value(json_object_get(json_object_get(resp, "agent"), "name"));
    cred = json_string_value(json_object_get(resp, "credential"));
    curl_s = json_string_value(json_object_get(resp, "controlUrl"));
    if (name == NULL || cred == NULL) {
        fprintf(stderr,
                "airlock: the server's registration answer lacks agent.name or credential\n");
        r = 1;
        goto out;
    }
    a->name = xstrdup(name);
    a->credential = xstrdup(cred);
    register_urls(a, name, curl_s);
    sname = json_string_value(json_object_get(json_object_get(resp, "session"), "name"));
    if (sname != NULL)
        register_session(a, json_object_get(resp, "session"), sname);
    log_info("registered as agent %s%s%s", a->name, sname ? ", session " : "", sname ? sname : "");
    r = 0;
out:
    explicit_bzero(auth, strlen(auth));
    free(auth);
    free(url);
    free(text);
    json_decref(body);
    json_decref(resp);
    return r;
}
