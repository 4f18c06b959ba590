/*
 * Requests from $AIRLOCK_SOCK (ctlsock.c): `airlock status` is answered
 * here; `airlock extend` and `airlock resume` are sent to the server over
 * the control channel, attributed to the participant whose SSH connection
 * asked, and answered when the server's reply with the same id arrives (or
 * UNAVAILABLE after REQ_TIMEOUT_MS). A request made while the control
 * channel is down waits for it in pend[].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "control_int.h"
#include "ctlsock.h"
#include "log.h"
#include "sshd.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define REQ_TIMEOUT_MS 20000

void
control_agent_requests_flush(struct agent *a)
{
    size_t i;

    if (a->ws == NULL)
        return;
    for (i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &a->pend[i];

        if (!p->used || p->msg == NULL)
            continue;
        if (ws_send_text(a->ws, p->msg) == 0) {
            free(p->msg);
            p->msg = NULL;
        }
    }
}

void
control_agent_requests_expire(struct agent *a)
{
    int64_t now = time_mono_ms();
    size_t i;

    for (i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &a->pend[i];

        if (!p->used || now < p->deadline)
            continue;
        ctlsock_reply_error(a->cs, p->client, "UNAVAILABLE",
                            p->msg ? "the agent is not connected to the server right now"
                                   : "no answer from the server");
        free(p->msg);
        memset(p, 0, sizeof(*p));
    }
}

static json_t *
status_json(struct agent *a, const struct dsess *s, const char *user)
{
    json_t *parts = json_array();
    char exp[21] = "";
    size_t i;

    for (i = 0; i < s->n_members; i++)
        json_array_append_new(parts, json_pack("{s:s, s:s}", "user", s->members[i].user, "role",
                                               dsess_role_name(s->members[i].role)));
    if (s->expires_at > 0)
        time_fmt(s->expires_at, exp);
    return json_pack("{s:s, s:s, s:s?, s:o, s:i, s:s?}", "name", s->name, "state", s->state,
                     "expiresAt", exp[0] ? exp : NULL, "participants", parts, "connections",
                     sshd_conn_count(a->sshd, s->name), "attributedTo", user);
}

void
control_agent_request(struct ctlsock *cs, unsigned client, json_t *req, void *ud)
{
    struct agent *a = ud;
    const char *op = json_string_value(json_object_get(req, "op"));
    const char *session = json_string_value(json_object_get(req, "session"));
    const char *conn = json_string_value(json_object_get(req, "conn"));
    const char *by = json_string_value(json_object_get(req, "by"));
    struct dsess *s = NULL;
    struct pending *p = NULL;
    char *user = NULL;
    json_t *m = NULL;
    size_t i;

    if (session == NULL || (s = sshd_session_get(a->sshd, session)) == NULL) {
        ctlsock_reply_error(cs, client, "NOT_FOUND", "this agent serves no such session");
        goto out;
    }
    user = sshd_attribute(a->sshd, session, conn);
    if (strcmp(op, "status") == 0) {
        json_t *resp = json_pack("{s:b, s:o}", "ok", 1, "session", status_json(a, s, user));

        ctlsock_reply(cs, client, resp);
        json_decref(resp);
        goto out;
    }
    if ((strcmp(op, "extend") != 0 && strcmp(op, "resume") != 0) ||
        (strcmp(op, "extend") == 0 && by == NULL)) {
        ctlsock_reply_error(cs, client, "BAD_REQUEST", "unknown request");
        goto out;
    }
    if (user == NULL) {
        ctlsock_reply_error(cs, client, "FORBIDDEN",
                            "no participant of this session to act for (viewers cannot)");
        goto out;
    }
    for (i = 0; i < MAX_PENDING && p == NULL; i++)
        if (!a->pend[i].used)
            p = &a->pend[i];
    if (p == NULL) {
        ctlsock_reply_error(cs, client, "TOO_MANY_REQUESTS", "too many requests in flight");
        goto out;
    }
    p->used = 1;
    p->client = client;
    p->deadline = time_mono_ms() + REQ_TIMEOUT_MS;
    snprintf(p->id, sizeof(p->id), "r%u", ++a->next_req);
    m = json_pack("{s:s, s:s, s:s, s:s}", "type", op, "id", p->id, "session", session, "user",
                  user);
    if (by != NULL)
        json_object_set_new(m, "by", json_string(by));
    p->msg = json_dumps(m, JSON_COMPACT);
    log_info("session %s: %s%s%s requested by %s", session, op, by ? " by " : "", by ? by : "",
             user);
    if (strcmp(op, "resume") == 0)
        sshd_conn_hold(a->sshd, session, conn); /* its status must outlive the end it asks for */
    control_agent_requests_flush(a);
out:
    json_decref(m);
    free(user);
    dsess_free(s);
}

void
control_agent_reply(struct agent *a, const json_t *m)
{
    const char *id = json_string_value(json_object_get(m, "id"));
    json_t *resp;
    size_t i;

    if (id != NULL && strcmp(id, "timeout") == 0) {
        a->timeout_answered = 1;
        if (!json_is_true(json_object_get(m, "ok")))
            log_warn("could not end the session after the timeout: %s",
                     json_string_value(json_object_get(m, "error")) ?: "?");
        return;
    }
    for (i = 0; id != NULL && i < MAX_PENDING; i++) {
        struct pending *p = &a->pend[i];

        if (!p->used || strcmp(p->id, id) != 0)
            continue;
        resp = json_deep_copy(m);
        json_object_del(resp, "type");
        json_object_del(resp, "id");
        ctlsock_reply(a->cs, p->client, resp);
        json_decref(resp);
        free(p->msg);
        memset(p, 0, sizeof(*p));
        return;
    }
    log_debug("reply %s matches no request", id ? id : "(no id)");
}

void
control_agent_requests_abort(struct agent *a)
{
    size_t i;

    for (i = 0; i < MAX_PENDING; i++) {
        if (a->pend[i].used)
            ctlsock_reply_error(a->cs, a->pend[i].client, "UNAVAILABLE", "the agent is stopping");
        free(a->pend[i].msg);
        memset(&a->pend[i], 0, sizeof(a->pend[i]));
    }
}
