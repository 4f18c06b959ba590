/*
 * Agent control channels, server side (DESIGN.md 8.2).
 *
 * Each connected agent has a struct chan, owned by the upgrade thread that
 * runs control_run(). Other threads reach a chan only through the registry
 * (control->mu held) and only to queue a message or mark it dirty, then wake
 * its thread through an eventfd. The thread itself does all WebSocket I/O.
 *
 * Level-triggered: when dirty, the thread loads every session bound to the
 * agent (not ended, or ended since the channel opened) and sends each one's
 * whole desired state; the agent reconciles. A reconnect therefore needs no
 * replay. A second connection for the same agent replaces the first (a
 * network blip can leave the old socket half-open for up to 45 s).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "control.h"
#include "core.h"
#include "core_rules.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define OUTQ_MAX 1024
#define CONTROL_DIRTY_MAX 32 /* more changed sessions than this: resend all */

struct chan {
    char *agent;
    struct ws *ws;
    int efd;
    int64_t since;                        /* channel opened (s) */
    pthread_mutex_t mu;                   /* guards the fields below */
    int dirty;                            /* resend every session */
    char *dirty_names[CONTROL_DIRTY_MAX]; /* ... or just these */
    size_t n_dirty;
    char **outq;
    size_t n_out;
    int closing;
    uint16_t close_code;
    const char *close_reason;
    struct chan *next; /* registry list, guarded by control->mu */
};

struct control {
    struct app *app;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct chan *list;
    int n_running;
    int stopping;
};

struct control *
control_new(struct app *app)
{
    struct control *c = xcalloc(1, sizeof(*c));

    c->app = app;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

static void
wake(struct chan *ch)
{
    uint64_t one = 1;

    if (write(ch->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_debug("eventfd: %s", strerror(errno));
}

static void
chan_close_locked(struct chan *ch, uint16_t code, const char *reason)
{
    pthread_mutex_lock(&ch->mu);
    if (!ch->closing) {
        ch->closing = 1;
        ch->close_code = code;
        ch->close_reason = reason;
    }
    pthread_mutex_unlock(&ch->mu);
    wake(ch);
}

void
control_shutdown(struct control *c)
{
    struct chan *ch;
    struct timespec ts;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    for (ch = c->list; ch; ch = ch->next)
        chan_close_locked(ch, 1001, "server shutting down");
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    while (c->n_running > 0)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != 0)
            break;
    if (c->n_running > 0)
        log_warn("%d control channels did not close in time", c->n_running);
    pthread_mutex_unlock(&c->mu);
}

void
control_free(struct control *c)
{
    int running;

    if (c == NULL)
        return;
    control_shutdown(c);
    pthread_mutex_lock(&c->mu);
    running = c->n_running;
    pthread_mutex_unlock(&c->mu);
    /* a channel still running would touch freed memory: leak instead */
    if (running == 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
    }
}

static struct chan *
find_locked(struct control *c, const char *agent)
{
    struct chan *ch;

    for (ch = c->list; ch; ch = ch->next)
        if (strcmp(ch->agent, agent) == 0 && !ch->closing)
            return ch;
    return NULL;
}

void
control_notify(struct control *c, const char *agent, const char *session)
{
    struct chan *ch;
    size_t i;

    pthread_mutex_lock(&c->mu);
    if ((ch = find_locked(c, agent)) != NULL) {
        pthread_mutex_lock(&ch->mu);
        for (i = 0; session != NULL && i < ch->n_dirty; i++)
            if (strcmp(ch->dirty_names[i], session) == 0)
                break;
        if (session == NULL || ch->n_dirty >= CONTROL_DIRTY_MAX)
            ch->dirty = 1;
        else if (i == ch->n_dirty)
            ch->dirty_names[ch->n_dirty++] = xstrdup(session);
        pthread_mutex_unlock(&ch->mu);
        wake(ch);
    }
    pthread_mutex_unlock(&c->mu);
}

static int
enqueue(struct chan *ch, char *msg)
{
    int r = 0;

    pthread_mutex_lock(&ch->mu);
    if (ch->n_out >= OUTQ_MAX) {
        r = ERR_TOO_MANY;
        free(msg);
    } else {
        ch->outq = xrealloc(ch->outq, (ch->n_out + 1) * sizeof(char *));
        ch->outq[ch->n_out++] = msg;
    }
    pthread_mutex_unlock(&ch->mu);
    wake(ch);
    return r;
}

/* Queues message j (taken) for agent. */
static int
send_json(struct control *c, const char *agent, json_t *j)
{
    struct chan *ch;
    char *msg = json_dumps(j, JSON_COMPACT);
    int r = ERR_UNAVAILABLE;

    json_decref(j);
    pthread_mutex_lock(&c->mu);
    if ((ch = find_locked(c, agent)) != NULL) {
        r = enqueue(ch, msg);
        msg = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    free(msg);
    return r;
}

int
control_send_open(struct control *c, const char *agent, const char *conn, const char *session)
{
    return send_json(
        c, agent, json_pack("{s:s, s:s, s:s}", "type", "open", "conn", conn, "session", session));
}

int
control_send_terminal(struct control *c, const char *agent, const char *conn, const char *session,
                      int read_only, int cols, int rows)
{
    return send_json(c, agent,
                     json_pack("{s:s, s:s, s:s, s:s, s:i, s:i}", "type", "terminal", "conn", conn,
                               "session", session, "mode", read_only ? "ro" : "rw", "cols", cols,
                               "rows", rows));
}

int
control_is_connected(struct control *c, const char *agent)
{
    int yes;

    pthread_mutex_lock(&c->mu);
    yes = find_locked(c, agent) != NULL;
    pthread_mutex_unlock(&c->mu);
    return yes;
}

int
control_count(struct control *c)
{
    struct chan *ch;
    int n = 0;

    pthread_mutex_lock(&c->mu);
    for (ch = c->list; ch; ch = ch->next)
        n += !ch->closing;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---------------------------------------------------------------- desired state */

static json_t *
desired_json(const struct sess *s)
{
    json_t *parts = json_array(), *j;
    char exp[21] = "";
    size_t i;

    if (!session_state_ended(s->state)) {
        for (i = 0; i < s->n_parts; i++) {
            const struct sess_participant *p = &s->parts[i];

            if (p->left_at != 0)
                continue;
            /* the owner is listed from activation, before their key (no key: []) */
            json_array_append_new(
                parts,
                json_pack("{s:s, s:s, s:o}", "user", p->user, "role", policy_role_name(p->role),
                          "keys",
                          p->ssh_public_key ? json_pack("[s]", p->ssh_public_key) : json_array()));
        }
    }
    if (s->expires_at)
        time_fmt(s->expires_at, exp);
    j = json_pack(
        "{s:s, s:{s:s, s:s, s:s?, s:s?, s:o, s:{s:b, s:b, s:b, s:b},"
        " s:{s:b, s:s, s:i, s:b}, s:o, s:b}}",
        "type", "session", "session", "name", s->name, "state", session_state_name(s->state),
        "expiresAt", exp[0] ? exp : NULL, "message", s->message, "participants", parts,
        "allowedOperations", "shell", s->tmpl->op_shell, "exec", s->tmpl->op_exec, "sftp",
        s->tmpl->op_sftp, "portForward", s->tmpl->op_port_forward, "terminalSharing", "enabled",
        s->tmpl->sharing_enabled, "provider", "tmux", "maxParticipants", s->tmpl->max_participants,
        "readOnlyParticipants", s->tmpl->read_only_participants, "idleTimeout",
        s->tmpl->idle_timeout_s > 0 ? json_integer(s->tmpl->idle_timeout_s) : json_null(),
        "canExtend", core_rules_can_extend(s));
    /* The agent records the shared terminal (docs/recording.md). */
    json_object_set_new(json_object_get(j, "session"), "recording",
                        json_pack("{s:b, s:b}", "enabled", s->tmpl->rec_enabled, "required",
                                  s->tmpl->rec_required));
    return j;
}

static void
send_one(struct chan *ch, const struct sess *s)
{
    json_t *j = desired_json(s);
    char *msg = json_dumps(j, JSON_COMPACT);

    json_decref(j);
    if (msg != NULL)
        ws_send_text(ch->ws, msg);
    free(msg);
}

/* Sends the desired state of the named sessions of this agent. */
static void
send_some(struct app *app, struct chan *ch, char **names, size_t n)
{
    struct sess *s;
    size_t i;

    for (i = 0; i < n; i++) {
        s = NULL;
        pthread_mutex_lock(&app->lock);
        (void)store_sess_get(app->store, names[i], &s);
        pthread_mutex_unlock(&app->lock);
        if (s != NULL && strcmp(s->agent, ch->agent) == 0)
            send_one(ch, s);
        sess_free(s);
    }
}

static void
send_desired(struct app *app, struct chan *ch)
{
    struct sess **list = NULL;
    size_t n = 0, i;
    int r;

    pthread_mutex_lock(&app->lock);
    r = store_sess_by_agent(app->store, ch->agent, (1u << SESSION__COUNT) - 1, &list, &n);
    pthread_mutex_unlock(&app->lock);
    if (r != 0) {
        log_warn_r(r, "agent %s: cannot load its sessions", ch->agent);
        return;
    }
    for (i = 0; i < n; i++) {
        if (session_state_ended(list[i]->state) && list[i]->ended_at < ch->since - 60)
            continue;
        send_one(ch, list[i]);
    }
    sess_list_free(list, n);
}

/* ---------------------------------------------------------------- agent requests */

static void
reply(struct chan *ch, const char *id, int r, const char *why, json_t *session)
{
    json_t *j;
    char *msg;

    if (r == 0)
        j = json_pack("{s:s, s:s?, s:b, s:o?}", "type", "reply", "id", id, "ok", 1, "session",
                      session);
    else { /* the API's envelope (err.c's table) plus the reply's own fields */
        j = api_error_json(r, why, NULL);
        json_object_update_new(j,
                               json_pack("{s:s, s:s?, s:b}", "type", "reply", "id", id, "ok", 0));
    }
    msg = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (msg)
        ws_send_text(ch->ws, msg);
    free(msg);
}

/*
 * `airlock wait --timeout`: nobody connected in time, and the agent ends (or
 * withdraws) the session it waits for. It is the agent's own decision, not a
 * person's `airlock resume`: actor airlock, reason wait_timeout, and the
 * timeout (the resume message's "timeout", e.g. "10m") in the message.
 */
static int
wait_timed_out(struct app *app, struct sess *s, const char *after_dur, int64_t now,
               struct core_after *after)
{
    json_t *data = json_pack("{s:s, s:s?}", "reason", "wait_timeout", "timeout", after_dur);
    char *msg = xasprintf("%s by airlock wait: nobody connected%s%s",
                          s->state == SESSION_ACTIVE ? "terminated" : "withdrawn",
                          after_dur ? " within " : "", after_dur ? after_dur : "");
    int r = core_transition(app, s, SEV_TERMINATE, "airlock", msg, data, now, after);

    json_decref(data);
    free(msg);
    return r;
}

/* Handles extend/resume for user on session, as the REST API would. */
static void
handle_request(struct app *app, struct chan *ch, const json_t *m, int extend)
{
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *name = json_string_value(json_object_get(m, "session"));
    const char *user = json_string_value(json_object_get(m, "user"));
    const char *by = json_string_value(json_object_get(m, "by"));
    const char *reason = json_string_value(json_object_get(m, "reason"));
    int wait_timeout = !extend && reason != NULL && strcmp(reason, "wait_timeout") == 0;
    struct core_after after = {0};
    struct principal p;
    struct sess *s = NULL;
    json_t *out = NULL;
    const char *why = NULL;
    char whybuf[POLICY_WHY_MAX];
    int64_t now = time_now(), secs = 0;
    size_t i;
    int r;

    if (name == NULL || user == NULL || (extend && by == NULL)) {
        reply(ch, id, ERR_INVALID,
              extend ? "extend needs session, user and by" : "resume needs session and user", NULL);
        return;
    }
    pthread_mutex_lock(&app->lock);
    if ((r = store_begin(app->store)) != 0)
        goto unlock;
    r = store_sess_get(app->store, name, &s);
    if (r == ERR_NOT_FOUND || (r == 0 && strcmp(s->agent, ch->agent) != 0)) {
        r = ERR_NOT_FOUND;
        why = "no such session on this agent";
        goto fail;
    }
    if (r != 0)
        goto fail;
    memset(&p, 0, sizeof(p));
    p.user = user;
    for (i = 0; i < s->n_parts; i++)
        if (str_ieq(s->parts[i].user, user)) {
            p.email = s->parts[i].email;
            p.domain = s->parts[i].domain;
        }
    if (extend) {
        /* The same duration rule as REST renew, with REST's field name in the message. */
        if ((r = policy_check_duration(s->tmpl, "extendBy", by, &secs, whybuf, sizeof(whybuf))) !=
            0) {
            why = whybuf;
            goto fail;
        }
        r = core_renew(app, s, &p, secs, now, &after, &why);
    } else if (wait_timeout) {
        r = wait_timed_out(app, s, json_string_value(json_object_get(m, "timeout")), now, &after);
    } else {
        r = core_terminate(app, s, &p, 1, "airlock resume", now, &after, &why);
    }
    if (r != 0 || (r = store_commit(app->store)) != 0)
        goto fail;
    sess_free(s);
    s = NULL;
    if (store_sess_get(app->store, name, &s) == 0) {
        json_t *d = desired_json(s);

        out = json_incref(json_object_get(d, "session"));
        json_decref(d);
    }
    goto unlock;
fail:
    store_rollback(app->store);
unlock:
    pthread_mutex_unlock(&app->lock);
    sess_free(s);
    reply(ch, id, r, why, out);
    if (r == 0)
        core_after_run(app, &after);
    core_after_free(&after);
}

struct msg_ctx {
    struct app *app;
    struct chan *ch;
};

static void
on_msg(struct ws *w, int opcode, const uint8_t *data, size_t len, void *ud)
{
    struct msg_ctx *mc = ud;
    json_t *m;
    const char *type;

    (void)w;
    if (opcode != WS_OP_TEXT)
        return;
    m = json_loadb((const char *)data, len, 0, NULL);
    type = json_string_value(json_object_get(m, "type"));
    if (type == NULL) {
        log_warn("agent %s: message without a type", mc->ch->agent);
    } else if (strcmp(type, "extend") == 0) {
        handle_request(mc->app, mc->ch, m, 1);
    } else if (strcmp(type, "resume") == 0) {
        handle_request(mc->app, mc->ch, m, 0);
    } else if (strcmp(type, "hello") == 0) {
        log_info("agent %s: hello, version %s", mc->ch->agent,
                 json_string_value(json_object_get(m, "version")) ?: "?");
    } else if (strcmp(type, "activity") == 0) {
        const char *why = NULL;
        int r = core_rules_activity(mc->app, mc->ch->agent, m, time_now(), &why);

        if (r != 0 && r != ERR_NOT_FOUND)
            log_warn_r(r, "agent %s: %s", mc->ch->agent, why ? why : "activity not recorded");
    } else {
        reply(mc->ch, json_string_value(json_object_get(m, "id")), ERR_INVALID,
              "unknown message type", NULL);
    }
    json_decref(m);
}

/* ---------------------------------------------------------------- the loop */

static void
registry_add(struct control *c, struct chan *ch)
{
    struct chan *old;

    pthread_mutex_lock(&c->mu);
    while ((old = find_locked(c, ch->agent)) != NULL)
        chan_close_locked(old, 4000, "replaced by a new connection");
    ch->next = c->list;
    c->list = ch;
    c->n_running++;
    pthread_mutex_unlock(&c->mu);
}

/* Unlinks ch; returns 1 if no other channel of the agent remains. */
static int
registry_remove(struct control *c, struct chan *ch)
{
    struct chan **pp;
    int last;

    pthread_mutex_lock(&c->mu);
    for (pp = &c->list; *pp; pp = &(*pp)->next) {
        if (*pp == ch) {
            *pp = ch->next;
            break;
        }
    }
    last = find_locked(c, ch->agent) == NULL;
    pthread_mutex_unlock(&c->mu);
    return last;
}

/* The channel's thread is done with c: the last thing it does (control_free waits for it). */
static void
registry_done(struct control *c)
{
    pthread_mutex_lock(&c->mu);
    c->n_running--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Sends queued messages and, when dirty, the desired state. 1 when closing. */
static int
drain(struct app *app, struct chan *ch)
{
    char **q, *names[CONTROL_DIRTY_MAX];
    size_t n, i, n_names;
    int dirty, closing;

    pthread_mutex_lock(&ch->mu);
    q = ch->outq;
    n = ch->n_out;
    ch->outq = NULL;
    ch->n_out = 0;
    dirty = ch->dirty;
    ch->dirty = 0;
    n_names = ch->n_dirty;
    memcpy(names, ch->dirty_names, n_names * sizeof(char *));
    ch->n_dirty = 0;
    closing = ch->closing;
    pthread_mutex_unlock(&ch->mu);
    if (dirty)
        send_desired(app, ch);
    else
        send_some(app, ch, names, n_names);
    for (i = 0; i < n_names; i++)
        free(names[i]);
    for (i = 0; i < n; i++) {
        ws_send_text(ch->ws, q[i]);
        free(q[i]);
    }
    free(q);
    if (closing)
        ws_close(ch->ws, ch->close_code, ch->close_reason);
    return closing;
}

void
control_run(struct control *c, const char *agent, struct upgraded *u)
{
    struct chan *ch = xcalloc(1, sizeof(*ch));
    struct msg_ctx mc = {c->app, ch};
    int64_t last_ping = time_mono_ms();
    int closing = 0;

    pthread_setname_np(pthread_self(), "airlock-ctl");
    ch->agent = xstrdup(agent);
    ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ch->since = time_now();
    ch->dirty = 1;
    pthread_mutex_init(&ch->mu, NULL);
    ch->ws = ws_server_new(u->fd, u->extra, u->extra_len, CONTROL_MAX_MSG, on_msg, &mc);
    registry_add(c, ch);
    if (c->stopping)
        chan_close_locked(ch, 1001, "server shutting down");
    log_info("agent %s connected", agent);
    (void)core_agent_online(c->app, agent, 1, ch->since);
    while (ws_alive(ch->ws)) {
        struct pollfd p[2] = {{ws_fd(ch->ws), ws_poll_events(ch->ws), 0}, {ch->efd, POLLIN, 0}};
        int64_t now = time_mono_ms();
        uint64_t junk;

        if (!closing)
            closing = drain(c->app, ch);
        if (!closing && now - last_ping >= CONTROL_PING_MS) {
            ws_ping(ch->ws);
            last_ping = now;
        }
        if (!closing && now - ws_last_rx_ms(ch->ws) > CONTROL_DEAD_MS) {
            log_info("agent %s: no pong for %d s", agent, CONTROL_DEAD_MS / 1000);
            break;
        }
        p[0].events = ws_poll_events(ch->ws);
        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN)
            (void)!read(ch->efd, &junk, sizeof(junk));
        if (ws_pump(ch->ws, p[0].revents) != 0)
            break;
    }
    if (registry_remove(c, ch))
        (void)core_agent_online(c->app, agent, 0, time_now());
    log_info("agent %s disconnected", agent);
    ws_free(ch->ws);
    upgraded_close(u);
    for (size_t i = 0; i < ch->n_out; i++)
        free(ch->outq[i]);
    free(ch->outq);
    for (size_t i = 0; i < ch->n_dirty; i++)
        free(ch->dirty_names[i]);
    close(ch->efd);
    pthread_mutex_destroy(&ch->mu);
    free(ch->agent);
    free(ch);
    registry_done(c);
}
