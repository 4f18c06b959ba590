/*
 * The agent side of airlock: registration, control channel, tunnels. See
 * control.h for the threads.
 *
 * Map of this file:
 *   - HTTP helpers (libcurl): registration POST, the GitHub token GET;
 *   - control_session_parse: a control "session" message -> struct dsess;
 *   - tunnels: one thread per "open", WebSocket <-> socketpair <-> sshd;
 *   - the control loop: connect with back-off, hello, reconcile sessions,
 *     answer $AIRLOCK_SOCK requests, print the box, ping, exit conditions.
 *
 * Level-triggered: every "session" message is the whole desired state of one
 * session, handed to sshd_session_update(), which closes what must close.
 * After a reconnect the server resends everything, so nothing is replayed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "box.h"
#include "control.h"
#include "httpc.h"
#include "ctlsock.h"
#include "err.h"
#include "log.h"
#include "sshd.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define HTTP_TIMEOUT_MS 30000
#define CONTROL_MAX_MSG (1024 * 1024)
#define CONNECT_TIMEOUT_MS 10000
#define TUNNEL_HWM (256 * 1024) /* bytes queued either way before we stop reading */
#define TUNNEL_CHUNK (64 * 1024)
#define TUNNEL_CLOSE_MS 5000
#define REQ_TIMEOUT_MS 20000
#define MAX_PENDING 32
#define MAX_SEEN 64
#define BOX_CI_REPRINT_MS 60000
#define ACTIVITY_MIN_MS 30000
#define REGISTER_TRIES 5
#define CONTROL_REFUSED_MAX 5

/* ------------------------------------------------------------------------
 * State
 * ------------------------------------------------------------------------ */

struct pending {
    char id[24];
    unsigned client;
    int64_t deadline;
    char *msg; /* to send (NULL once sent) */
    int used;
};

struct seen {
    char *name;
    char *key; /* what the box showed last (state, people, connections) */
    int conns;
    int64_t input_sent_ms, activity_ms;
    int ended;
};

struct agent {
    const struct control_cfg *cfg;
    struct sshd *sshd;
    struct ctlsock *cs;
    char *run_dir, *tmux_sock, *ctl_sock;
    int own_run_dir;
    char *name, *credential, *control_url, *tunnel_base;
    char *session; /* wait: the session followed */
    char *owner;   /* its requester, from the registration answer */
    struct ws *ws;
    int64_t backoff_ms, next_connect_ms, last_ping_ms, connected_ms;
    int fail_count;
    int refused_count; /* consecutive 401/403/404 answers to the control upgrade */
    struct pending pend[MAX_PENDING];
    unsigned next_req;
    struct seen seen[MAX_SEEN];
    size_t n_seen;
    int64_t started_ms, box_ms;
    int ever_connected;
    int done, exit_code;
    int timeout_answered;
    pthread_mutex_t mu; /* stopping, n_tunnels, sshd use by tunnels */
    pthread_cond_t cv;
    int stopping;
    int n_tunnels;
};

static volatile sig_atomic_t got_signal;
static int sig_pipe[2] = {-1, -1};

static int64_t
mono(void)
{
    return time_mono_ms();
}

/* ------------------------------------------------------------------------
 * HTTP (libcurl)
 * ------------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------------
 * Session messages
 * ------------------------------------------------------------------------ */

int
control_session_parse(const json_t *j, struct dsess **sp)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *state = json_string_value(json_object_get(j, "state"));
    const char *exp = json_string_value(json_object_get(j, "expiresAt"));
    const json_t *parts = json_object_get(j, "participants"), *p;
    const json_t *ops = json_object_get(j, "allowedOperations");
    const json_t *ts = json_object_get(j, "terminalSharing");
    struct dsess *s;
    size_t i, k;

    *sp = NULL;
    if (name == NULL || state == NULL || name[0] == '\0')
        return ERR_INVALID;
    s = xcalloc(1, sizeof(*s));
    s->name = xstrdup(name);
    s->state = xstrdup(state);
    if (json_is_string(json_object_get(j, "message")))
        s->message = xstrdup(json_string_value(json_object_get(j, "message")));
    if (exp != NULL && time_parse(exp, &s->expires_at) != 0)
        s->expires_at = 0;
    s->members = xcalloc(json_array_size(parts) + 1, sizeof(*s->members));
    json_array_foreach(parts, i, p)
    {
        const char *user = json_string_value(json_object_get(p, "user"));
        int role = dsess_role_parse(json_string_value(json_object_get(p, "role")));
        const json_t *keys = json_object_get(p, "keys"), *kv;
        struct dsess_member *m;

        if (user == NULL || role < 0)
            continue;
        m = &s->members[s->n_members++];
        m->user = xstrdup(user);
        m->role = (enum dsess_role)role;
        m->keys = xcalloc(json_array_size(keys) + 1, sizeof(char *));
        json_array_foreach(keys, k, kv)
        {
            if (json_is_string(kv))
                m->keys[m->n_keys++] = xstrdup(json_string_value(kv));
        }
    }
    if (json_is_true(json_object_get(ops, "shell")))
        s->ops |= DSESS_OP_SHELL;
    if (json_is_true(json_object_get(ops, "exec")))
        s->ops |= DSESS_OP_EXEC;
    if (json_is_true(json_object_get(ops, "sftp")))
        s->ops |= DSESS_OP_SFTP;
    if (json_is_true(json_object_get(ops, "portForward")))
        s->ops |= DSESS_OP_FORWARD;
    s->sharing = !json_is_false(json_object_get(ts, "enabled"));
    if (json_is_integer(json_object_get(ts, "maxParticipants")))
        s->max_participants = (int)json_integer_value(json_object_get(ts, "maxParticipants"));
    *sp = s;
    return 0;
}

/* ------------------------------------------------------------------------
 * Tunnels
 * ------------------------------------------------------------------------ */

struct tunnel {
    struct agent *a;
    char *url, *session, *conn;
    /* WebSocket -> socketpair */
    unsigned char *out;
    size_t out_off, out_len, out_cap;
    int paused; /* we paused reading the WebSocket (out is above TUNNEL_HWM) */
};

static void
tunnel_on_msg(struct ws *w, int opcode, const uint8_t *msg, size_t len, void *ud)
{
    struct tunnel *t = ud;

    if (opcode != WS_OP_BINARY || len == 0)
        return;
    if (t->out_off > 0 && t->out_off == t->out_len)
        t->out_off = t->out_len = 0;
    if (t->out_len + len > t->out_cap) {
        if (t->out_off > 0) {
            memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
            t->out_len -= t->out_off;
            t->out_off = 0;
        }
        while (t->out_len + len > t->out_cap)
            t->out_cap = t->out_cap ? t->out_cap * 2 : TUNNEL_CHUNK;
        t->out = xrealloc(t->out, t->out_cap);
    }
    memcpy(t->out + t->out_len, msg, len);
    t->out_len += len;
    /* Above the high-water mark: stop reading the WebSocket until the SSH side takes it. */
    if (t->out_len - t->out_off >= TUNNEL_HWM && !t->paused) {
        ws_set_read_paused(w, 1);
        t->paused = 1;
    }
}

static int
tunnel_stopping(struct agent *a)
{
    int s;

    pthread_mutex_lock(&a->mu);
    s = a->stopping;
    pthread_mutex_unlock(&a->mu);
    return s;
}

/*
 * Bridges w and fd (our end of the socketpair) until both directions are
 * done. Never blocks on either side: fd is non-blocking, and each side is
 * read only while the other side's queue is under TUNNEL_HWM.
 */
static void
tunnel_bridge(struct tunnel *t, struct ws *w, int fd)
{
    unsigned char *buf = xmalloc(TUNNEL_CHUNK);
    int sock_eof = 0, ws_gone = 0;
    int64_t close_deadline = 0;

    (void)ws_pump(w, 0); /* bytes that came with the handshake */
    for (;;) {
        struct pollfd p[2];
        size_t pending = t->out_len - t->out_off;

        /*
         * tunnel_on_msg() pauses reading (from inside ws_pump); resume here
         * once the SSH side has taken enough. The pump after resuming reads
         * what is already buffered, which no poll would report.
         */
        if (t->paused && pending < TUNNEL_HWM && !ws_gone) {
            t->paused = 0;
            ws_set_read_paused(w, 0);
            if (ws_pump(w, 0) != 0)
                ws_gone = 1;
            pending = t->out_len - t->out_off;
        }
        if (ws_gone && pending == 0)
            break;
        if (sock_eof && !ws_alive(w))
            break;
        if (close_deadline && mono() > close_deadline)
            break;
        if (tunnel_stopping(t->a) && !close_deadline) {
            ws_close(w, 1001, "agent shutting down");
            close_deadline = mono() + 1000;
        }
        p[0].fd = ws_gone ? -1 : ws_fd(w);
        p[0].events = ws_gone ? 0 : ws_poll_events(w);
        p[0].revents = 0;
        p[1].fd = fd;
        p[1].events = (!sock_eof && !ws_gone && ws_queued(w) < TUNNEL_HWM ? POLLIN : 0) |
                      (pending > 0 ? POLLOUT : 0);
        p[1].revents = 0;
        if (poll(p, 2, 500) < 0 && errno != EINTR)
            break;
        if (!ws_gone && ws_pump(w, p[0].revents) != 0)
            ws_gone = 1;
        if (!ws_gone && !ws_alive(w))
            ws_gone = 1;
        /* socketpair -> WebSocket */
        while ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !sock_eof && !ws_gone &&
               ws_queued(w) < TUNNEL_HWM) {
            ssize_t n = read(fd, buf, TUNNEL_CHUNK);

            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                break;
            if (n <= 0) {
                /* sshd closed the connection: finish the WebSocket cleanly. */
                sock_eof = 1;
                ws_close(w, 1000, "ssh connection closed");
                close_deadline = mono() + TUNNEL_CLOSE_MS;
                break;
            }
            if (ws_send(w, WS_OP_BINARY, buf, (size_t)n) != 0) {
                ws_gone = 1;
                break;
            }
        }
        /* WebSocket -> socketpair */
        while (t->out_len > t->out_off) {
            ssize_t n = write(fd, t->out + t->out_off, t->out_len - t->out_off);

            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                break;
            if (n <= 0) {
                /* sshd is gone: drop what it will never read. */
                t->out_off = t->out_len;
                sock_eof = 1;
                break;
            }
            t->out_off += (size_t)n;
        }
        if (!ws_gone && ws_pump(w, 0) != 0)
            ws_gone = 1;
        if (ws_gone && t->out_len == t->out_off && !sock_eof) {
            /* The relay hung up: sshd sees EOF and ends the connection. */
            shutdown(fd, SHUT_WR);
            sock_eof = 1;
        }
    }
    free(buf);
}

static void *
tunnel_main(void *arg)
{
    struct tunnel *t = arg;
    struct agent *a = t->a;
    struct ws *w = NULL;
    char err[512];
    int sp[2] = {-1, -1}, r, served = 0;

    r = ws_client_connect(t->url, a->credential, a->cfg->ca_file, CONNECT_TIMEOUT_MS, TUNNEL_HWM,
                          tunnel_on_msg, t, &w, err, sizeof(err));
    if (r != 0) {
        log_warn("conn %s: dial-back failed: %s", t->conn, err);
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
        log_warn("conn %s: socketpair: %s", t->conn, strerror(errno));
        goto out;
    }
    (void)fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
    pthread_mutex_lock(&a->mu);
    if (!a->stopping) {
        sshd_serve_fd(a->sshd, sp[1], t->session, t->conn);
        served = 1;
    }
    pthread_mutex_unlock(&a->mu);
    if (!served)
        goto out;
    sp[1] = -1; /* sshd owns it now */
    log_debug("conn %s: tunnel up for session %s", t->conn, t->session);
    tunnel_bridge(t, w, sp[0]);
out:
    if (sp[0] >= 0)
        close(sp[0]);
    if (sp[1] >= 0)
        close(sp[1]);
    ws_free(w);
    free(t->out);
    free(t->url);
    free(t->session);
    free(t->conn);
    free(t);
    pthread_mutex_lock(&a->mu);
    a->n_tunnels--;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void
tunnel_start(struct agent *a, const char *conn, const char *session)
{
    struct tunnel *t;
    pthread_attr_t at;
    pthread_t th;
    char *esc;

    if (conn == NULL || session == NULL || conn[0] == '\0') {
        log_warn("open without conn or session");
        return;
    }
    t = xcalloc(1, sizeof(*t));
    t->a = a;
    esc = control_path_escape(conn);
    t->url = xasprintf("%s/tunnel/%s", a->tunnel_base, esc);
    free(esc);
    t->session = xstrdup(session);
    t->conn = xstrdup(conn);
    pthread_mutex_lock(&a->mu);
    a->n_tunnels++;
    pthread_mutex_unlock(&a->mu);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &at, tunnel_main, t) != 0) {
        log_warn("conn %s: cannot start a tunnel thread", conn);
        pthread_mutex_lock(&a->mu);
        a->n_tunnels--;
        pthread_mutex_unlock(&a->mu);
        free(t->url);
        free(t->session);
        free(t->conn);
        free(t);
    }
    pthread_attr_destroy(&at);
}

/* ------------------------------------------------------------------------
 * The box and activity
 * ------------------------------------------------------------------------ */

static struct seen *
seen_get(struct agent *a, const char *name)
{
    size_t i;

    for (i = 0; i < a->n_seen; i++)
        if (strcmp(a->seen[i].name, name) == 0)
            return &a->seen[i];
    if (a->n_seen == MAX_SEEN) {
        /* Forget the oldest ended session. */
        for (i = 0; i < a->n_seen && !a->seen[i].ended; i++)
            ;
        if (i == a->n_seen)
            return NULL;
        free(a->seen[i].name);
        free(a->seen[i].key);
        a->seen[i] = a->seen[--a->n_seen];
    }
    memset(&a->seen[a->n_seen], 0, sizeof(a->seen[0]));
    a->seen[a->n_seen].name = xstrdup(name);
    return &a->seen[a->n_seen++];
}

/* Prints the box for session (NULL: the agent without a session) when it changed or force. */
static void
box_print(struct agent *a, const char *session, int force)
{
    struct dsess *s = session ? sshd_session_get(a->sshd, session) : NULL;
    struct box_info bi;
    char **people = NULL, key[2048], out[8192];
    size_t i, kl = 0;
    struct seen *sn = session ? seen_get(a, session) : NULL;
    int64_t now = time_now();

    memset(&bi, 0, sizeof(bi));
    bi.server = a->cfg->server;
    bi.agent = a->name;
    bi.session = session;
    bi.listen = a->cfg->listen;
    if (s != NULL) {
        bi.state = s->state;
        bi.message = s->message;
        bi.expires_at = s->expires_at;
        people = xcalloc(s->n_members + 1, sizeof(char *));
        for (i = 0; i < s->n_members; i++)
            people[i] =
                xasprintf("%s (%s)", s->members[i].user, dsess_role_name(s->members[i].role));
        bi.participants = (const char *const *)people;
        bi.n_participants = s->n_members;
        bi.connections = sshd_conn_count(a->sshd, session);
    }
    kl = (size_t)snprintf(key, sizeof(key), "%s|%s|%lld|%d", bi.state ? bi.state : "",
                          bi.message ? bi.message : "", (long long)bi.expires_at, bi.connections);
    for (i = 0; i < bi.n_participants && kl < sizeof(key); i++)
        kl += (size_t)snprintf(key + kl, sizeof(key) - kl, "|%s", people[i]);
    if (sn != NULL && !force && sn->key != NULL && strcmp(sn->key, key) == 0)
        goto out;
    if (sn != NULL) {
        free(sn->key);
        sn->key = xstrdup(key);
    }
    box_render(&bi, now, out, sizeof(out));
    fputs(out, stdout);
    fflush(stdout);
    a->box_ms = mono();
out:
    for (i = 0; people != NULL && people[i] != NULL; i++)
        free(people[i]);
    free(people);
    dsess_free(s);
}

static void
activity_send(struct agent *a)
{
    int64_t now = mono();
    size_t i;

    if (a->ws == NULL)
        return;
    for (i = 0; i < a->n_seen; i++) {
        struct seen *sn = &a->seen[i];
        int n = sshd_conn_count(a->sshd, sn->name);
        int64_t in = sshd_last_input_ms(a->sshd, sn->name);
        char at[21] = "";
        json_t *j;
        char *msg;

        if (sn->ended)
            continue;
        if (n == sn->conns && !(in > sn->input_sent_ms && now - sn->activity_ms >= ACTIVITY_MIN_MS))
            continue;
        sn->conns = n;
        sn->activity_ms = now;
        if (in > 0) {
            sn->input_sent_ms = in;
            time_fmt(time_now() - (now - in) / 1000, at);
        }
        j = json_pack("{s:s, s:s, s:i, s:s?}", "type", "activity", "session", sn->name,
                      "connections", n, "lastInputAt", at[0] ? at : NULL);
        msg = json_dumps(j, JSON_COMPACT);
        if (msg != NULL)
            (void)ws_send_text(a->ws, msg);
        free(msg);
        json_decref(j);
        if (n > 0)
            a->ever_connected = 1;
    }
}

/* ------------------------------------------------------------------------
 * Requests from $AIRLOCK_SOCK
 * ------------------------------------------------------------------------ */

static void
pending_flush(struct agent *a)
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

static void
pending_expire(struct agent *a)
{
    int64_t now = mono();
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

static void
on_ctl_request(struct ctlsock *cs, unsigned client, json_t *req, void *ud)
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
    p->deadline = mono() + REQ_TIMEOUT_MS;
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
    pending_flush(a);
out:
    json_decref(m);
    free(user);
    dsess_free(s);
}

static void
on_reply(struct agent *a, const json_t *m)
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

/* ------------------------------------------------------------------------
 * Control channel
 * ------------------------------------------------------------------------ */

static void
on_session(struct agent *a, const json_t *j)
{
    struct dsess *s = NULL;
    struct seen *sn;
    int ended;

    if (control_session_parse(j, &s) != 0) {
        log_warn("malformed session message");
        return;
    }
    ended = dsess_state_ended(s->state);
    /*
     * wait follows the session it asked for, or else the first one the
     * server binds to this agent; other sessions are still served.
     */
    if (a->cfg->mode == CONTROL_WAIT && a->session == NULL && !ended)
        a->session = xstrdup(s->name);
    sshd_session_update(a->sshd, s);
    sn = seen_get(a, s->name);
    if (sn != NULL && !sn->ended && ended)
        log_info("session %s: %s", s->name, s->state);
    if (sn != NULL)
        sn->ended = ended;
    if (a->cfg->mode == CONTROL_WAIT) {
        if (a->session != NULL && strcmp(a->session, s->name) == 0) {
            box_print(a, a->session, 0);
            if (ended) {
                printf("airlock: session %s is %s; the job continues\n", s->name, s->state);
                fflush(stdout);
                a->done = 1;
                a->exit_code = a->cfg->exit_code;
            }
        }
    } else {
        box_print(a, s->name, 0);
    }
    dsess_free(s);
}

static void
on_ctl_msg(struct ws *w, int opcode, const uint8_t *msg, size_t len, void *ud)
{
    struct agent *a = ud;
    json_t *m;
    const char *type;

    (void)w;
    if (opcode != WS_OP_TEXT)
        return;
    m = json_loadb((const char *)msg, len, 0, NULL);
    type = json_string_value(json_object_get(m, "type"));
    if (type == NULL) {
        log_warn("control message without a type");
    } else if (strcmp(type, "session") == 0) {
        on_session(a, json_object_get(m, "session"));
    } else if (strcmp(type, "open") == 0) {
        tunnel_start(a, json_string_value(json_object_get(m, "conn")),
                     json_string_value(json_object_get(m, "session")));
    } else if (strcmp(type, "reply") == 0) {
        on_reply(a, m);
    } else {
        log_debug("ignoring control message '%s'", type);
    }
    json_decref(m);
}

static void
control_disconnect(struct agent *a, const char *why)
{
    int64_t jitter;

    if (a->ws == NULL)
        return;
    log_warn("control channel lost (%s); reconnecting", why);
    ws_free(a->ws);
    a->ws = NULL;
    /* Jittered exponential back-off: 0.5 s doubling to 30 s, each +-25 %. */
    jitter = a->backoff_ms / 4;
    a->next_connect_ms = mono() + a->backoff_ms - jitter + (int64_t)(random() % (2 * jitter + 1));
    a->backoff_ms = a->backoff_ms * 2 > CONTROL_AGENT_BACKOFF_MAX_MS ? CONTROL_AGENT_BACKOFF_MAX_MS
                                                                     : a->backoff_ms * 2;
}

static void
control_connect(struct agent *a)
{
    char err[512];
    json_t *hello;
    char *msg;
    int64_t jitter;
    int r;

    r = ws_client_connect(a->control_url, a->credential, a->cfg->ca_file, CONNECT_TIMEOUT_MS,
                          CONTROL_MAX_MSG, on_ctl_msg, a, &a->ws, err, sizeof(err));
    if (r != 0) {
        a->ws = NULL;
        if (a->fail_count++ % 10 == 0)
            log_warn("control channel: %s", err);
        /*
         * 401/403/404 is an answer, not an outage: the server no longer knows
         * this credential (its database was reset, or the name was registered
         * again elsewhere). A few in a row end the agent; a supervisor (or
         * the CI job) starts it again with a fresh registration.
         */
        if (r == ERR_AUTH || r == ERR_FORBIDDEN || r == ERR_NOT_FOUND) {
            if (++a->refused_count >= CONTROL_REFUSED_MAX) {
                fprintf(stderr, "airlock: the server no longer accepts this agent: %s\n", err);
                a->done = 1;
                a->exit_code = 3;
                return;
            }
        } else {
            a->refused_count = 0;
        }
        jitter = a->backoff_ms / 4;
        a->next_connect_ms =
            mono() + a->backoff_ms - jitter + (int64_t)(random() % (2 * jitter + 1));
        a->backoff_ms = a->backoff_ms * 2 > CONTROL_AGENT_BACKOFF_MAX_MS
                            ? CONTROL_AGENT_BACKOFF_MAX_MS
                            : a->backoff_ms * 2;
        return;
    }
    if (a->fail_count > 0 || a->connected_ms > 0)
        log_info("control channel connected again");
    else
        log_info("control channel connected");
    a->fail_count = 0;
    a->refused_count = 0;
    a->backoff_ms = CONTROL_AGENT_BACKOFF_MIN_MS;
    a->connected_ms = a->last_ping_ms = mono();
    hello = json_pack("{s:s, s:s, s:[s]}", "type", "hello", "version", AIRLOCK_VERSION, "hostKeys",
                      sshd_host_key_line(a->sshd));
    msg = json_dumps(hello, JSON_COMPACT);
    json_decref(hello);
    (void)ws_send_text(a->ws, msg);
    free(msg);
    /* Force the next activity message: the server forgot the counts. */
    for (size_t i = 0; i < a->n_seen; i++)
        a->seen[i].conns = -1;
    pending_flush(a);
    if (ws_pump(a->ws, 0) != 0)
        control_disconnect(a, "closed at once");
}

/* ------------------------------------------------------------------------
 * Registration
 * ------------------------------------------------------------------------ */

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

/* Returns 0, or the process exit code to leave with (1 refused, 3 unreachable). */
static int
agent_register(struct agent *a)
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
    if (curl_s != NULL && curl_s[0] != '/') {
        a->control_url = xstrdup(curl_s);
    } else if (curl_s != NULL) {
        a->control_url = xasprintf("%s%s", a->cfg->server, curl_s);
    } else {
        char *esc = control_path_escape(name);

        a->control_url = xasprintf("%s/api/v1/agents/%s/control", a->cfg->server, esc);
        free(esc);
    }
    {
        size_t l = strlen(a->control_url);

        if (l > 8 && strcmp(a->control_url + l - 8, "/control") == 0)
            a->tunnel_base = xstrndup(a->control_url, l - 8);
        else
            a->tunnel_base = xstrdup(a->control_url);
    }
    sname = json_string_value(json_object_get(json_object_get(resp, "session"), "name"));
    if (sname != NULL) {
        const json_t *st = json_object_get(json_object_get(resp, "session"), "status");
        struct dsess first;

        /* Until the control channel speaks, the box shows what the registration said. */
        memset(&first, 0, sizeof(first));
        first.name = (char *)sname;
        first.state = (char *)(json_string_value(json_object_get(st, "state")) ?: "Pending");
        if (time_parse(json_string_value(json_object_get(st, "expiresAt")) ?: "",
                       &first.expires_at) != 0)
            first.expires_at = 0;
        if (!dsess_state_ended(first.state))
            sshd_session_update(a->sshd, &first);
        a->session = xstrdup(sname);
        st = json_object_get(json_object_get(resp, "session"), "spec");
        if (json_is_string(json_object_get(st, "requestedBy")))
            a->owner = xstrdup(json_string_value(json_object_get(st, "requestedBy")));
    }
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

/* ------------------------------------------------------------------------
 * Main loop
 * ------------------------------------------------------------------------ */

static void
on_signal(int sig)
{
    got_signal = sig;
    if (sig_pipe[1] >= 0) {
        int e = errno;

        if (write(sig_pipe[1], "s", 1) < 0) {
            /* nothing to do: the loop also polls with a timeout */
        }
        errno = e;
    }
}

static void
signals_setup(void)
{
    struct sigaction sa;

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        sig_pipe[0] = sig_pipe[1] = -1;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static int
run_dir_setup(struct agent *a)
{
    const char *base = getenv("XDG_RUNTIME_DIR");
    char tmpl[256];

    if (a->cfg->run_dir != NULL) {
        if (mkdir(a->cfg->run_dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "airlock: cannot create %s: %s\n", a->cfg->run_dir, strerror(errno));
            return ERR_SYSTEM;
        }
        a->run_dir = xstrdup(a->cfg->run_dir);
    } else {
        if (base == NULL || access(base, W_OK) != 0)
            base = getenv("TMPDIR");
        if (base == NULL || access(base, W_OK) != 0)
            base = "/tmp";
        snprintf(tmpl, sizeof(tmpl), "%s/airlock-XXXXXX", base);
        if (mkdtemp(tmpl) == NULL) {
            fprintf(stderr, "airlock: cannot create a directory in %s: %s\n", base,
                    strerror(errno));
            return ERR_SYSTEM;
        }
        a->run_dir = xstrdup(tmpl);
        a->own_run_dir = 1;
    }
    a->tmux_sock = xasprintf("%s/tmux.sock", a->run_dir);
    a->ctl_sock = xasprintf("%s/ctl.sock", a->run_dir);
    return 0;
}

/*
 * wait --timeout: nobody connected in time. Ends (or withdraws) the session
 * as its owner, best effort: the request should not linger for an approver.
 */
static void
wait_timed_out(struct agent *a)
{
    struct dsess *s = a->session ? sshd_session_get(a->sshd, a->session) : NULL;
    const char *owner = a->owner;
    char secs[32];
    size_t i;

    box_left(a->cfg->timeout_s, secs, sizeof(secs));
    printf("airlock: nobody connected within %s; the job continues\n", secs);
    fflush(stdout);
    for (i = 0; s != NULL && i < s->n_members; i++)
        if (s->members[i].role == ROLE_OWNER)
            owner = s->members[i].user;
    if (s != NULL && owner != NULL && a->ws != NULL && !dsess_state_ended(s->state)) {
        json_t *m = json_pack("{s:s, s:s, s:s, s:s}", "type", "resume", "id", "timeout", "session",
                              s->name, "user", owner);
        char *msg = json_dumps(m, JSON_COMPACT);
        int64_t until = mono() + 2000;

        (void)ws_send_text(a->ws, msg);
        free(msg);
        json_decref(m);
        /* Wait for the flush (and briefly for the answer, which is only logged). */
        while (mono() < until && ws_alive(a->ws)) {
            struct pollfd p = {ws_fd(a->ws), ws_poll_events(a->ws), 0};

            if (poll(&p, 1, 100) < 0 || ws_pump(a->ws, p.revents) != 0)
                break;
            if (ws_queued(a->ws) == 0 && a->timeout_answered)
                break;
        }
    }
    dsess_free(s);
    a->done = 1;
    a->exit_code = a->cfg->exit_code;
}

static void
loop_timers(struct agent *a)
{
    int64_t now = mono();

    if (a->ws != NULL) {
        if (now - ws_last_rx_ms(a->ws) > CONTROL_AGENT_DEAD_MS) {
            control_disconnect(a, "server silent for 45 s");
        } else if (now - a->last_ping_ms >= CONTROL_AGENT_PING_MS) {
            (void)ws_ping(a->ws);
            a->last_ping_ms = now;
        }
    }
    pending_expire(a);
    activity_send(a);
    if (a->cfg->mode == CONTROL_WAIT) {
        if (a->session != NULL && sshd_conn_count(a->sshd, a->session) > 0)
            a->ever_connected = 1;
        if (getenv("CI") != NULL && now - a->box_ms >= BOX_CI_REPRINT_MS)
            box_print(a, a->session, 1);
        else if (a->session != NULL)
            box_print(a, a->session, 0); /* connection count or time changed */
        if (a->cfg->timeout_s > 0 && !a->ever_connected &&
            now - a->started_ms >= a->cfg->timeout_s * 1000)
            wait_timed_out(a);
    }
}

static void
loop(struct agent *a)
{
    while (!a->done) {
        struct pollfd p[2 + CTLSOCK_MAX_CLIENTS + 1];
        size_t n = 0, ws_i = 0, cs_i;
        int64_t now = mono();
        int timeout = 1000;

        if (got_signal) {
            log_info("signal %d: stopping", (int)got_signal);
            a->done = 1;
            a->exit_code = a->cfg->mode == CONTROL_HOST ? 0 : 128 + (int)got_signal;
            break;
        }
        if (a->ws == NULL && now >= a->next_connect_ms) {
            control_connect(a);
            if (a->done)
                break;
        }
        if (a->ws == NULL && a->next_connect_ms - now < timeout)
            timeout = a->next_connect_ms > now ? (int)(a->next_connect_ms - now) : 0;
        p[n].fd = sig_pipe[0];
        p[n].events = POLLIN;
        p[n++].revents = 0;
        if (a->ws != NULL) {
            ws_i = n;
            p[n].fd = ws_fd(a->ws);
            p[n].events = ws_poll_events(a->ws);
            p[n++].revents = 0;
        }
        cs_i = n;
        n += ctlsock_pollfds(a->cs, p + n, sizeof(p) / sizeof(p[0]) - n);
        if (poll(p, n, timeout) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN) {
            char drain[16];

            while (read(sig_pipe[0], drain, sizeof(drain)) > 0)
                ;
        }
        if (a->ws != NULL && ws_i > 0) {
            if (ws_pump(a->ws, p[ws_i].revents) != 0 || !ws_alive(a->ws)) {
                uint16_t code = ws_peer_close_code(a->ws);
                char why[64];

                snprintf(why, sizeof(why),
                         code ? "closed by the server, code %u" : "connection lost", code);
                control_disconnect(a, why);
            }
        }
        ctlsock_handle(a->cs, p + cs_i, n - cs_i);
        if (a->done)
            break;
        loop_timers(a);
        if (a->ws != NULL && ws_pump(a->ws, 0) != 0)
            control_disconnect(a, "connection lost");
    }
}

static void
agent_cleanup(struct agent *a)
{
    struct timespec ts;
    size_t i;
    int left;

    for (i = 0; i < MAX_PENDING; i++) {
        if (a->pend[i].used)
            ctlsock_reply_error(a->cs, a->pend[i].client, "UNAVAILABLE", "the agent is stopping");
        free(a->pend[i].msg);
    }
    /*
     * The SSH connections close first, while their tunnels still carry what
     * they send (the reason, the exit status of a running `airlock resume`),
     * and the control channel last: the server cuts what is still relayed
     * once the agent is gone (core.c).
     */
    sshd_stop(a->sshd);
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 3;
    while (a->n_tunnels > 0)
        if (pthread_cond_timedwait(&a->cv, &a->mu, &ts) != 0)
            break;
    left = a->n_tunnels;
    pthread_mutex_unlock(&a->mu);
    if (left > 0)
        log_warn("%d tunnels still open at exit", left);
    if (a->ws != NULL) {
        int64_t until = mono() + 1000;

        ws_close(a->ws, 1000, a->cfg->mode == CONTROL_WAIT ? "wait finished" : "agent stopping");
        while (ws_alive(a->ws) && mono() < until) {
            struct pollfd p = {ws_fd(a->ws), ws_poll_events(a->ws), 0};

            if (poll(&p, 1, 100) < 0 || ws_pump(a->ws, p.revents) != 0)
                break;
        }
        ws_free(a->ws);
        a->ws = NULL;
    }
    /* Kills the tmux server; only now, as the pump above may still hand it a session. */
    sshd_free(a->sshd);
    a->sshd = NULL;
    ctlsock_free(a->cs);
    a->cs = NULL;
    if (a->own_run_dir) {
        (void)unlink(a->tmux_sock);
        (void)rmdir(a->run_dir);
    }
    for (i = 0; i < a->n_seen; i++) {
        free(a->seen[i].name);
        free(a->seen[i].key);
    }
    if (a->credential != NULL)
        explicit_bzero(a->credential, strlen(a->credential));
}

int
control_agent_main(const struct control_cfg *cfg)
{
    struct agent *a = xcalloc(1, sizeof(*a));
    struct sshd_opts so;
    int code = 3, lport = 0;

    a->cfg = cfg;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->started_ms = mono();
    a->backoff_ms = CONTROL_AGENT_BACKOFF_MIN_MS;
    srandom((unsigned)(time(NULL) ^ getpid()));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    signals_setup();
    if (run_dir_setup(a) != 0)
        return 1;
    memset(&so, 0, sizeof(so));
    so.host_key_file = cfg->host_key;
    so.tmux_sock = a->tmux_sock;
    so.ctl_sock = a->ctl_sock;
    so.env_drop = (const char *const *)cfg->env_drop;
    if (sshd_new(&so, &a->sshd) != 0) {
        fprintf(stderr, "airlock: cannot set up the SSH server (host key)\n");
        code = 1;
        goto out;
    }
    if ((code = agent_register(a)) != 0)
        goto out;
    code = 1;
    if (ctlsock_listen(a->ctl_sock, on_ctl_request, a, &a->cs) != 0) {
        fprintf(stderr, "airlock: cannot listen on %s\n", a->ctl_sock);
        goto out;
    }
    if (cfg->listen != NULL) {
        if (sshd_listen(a->sshd, cfg->listen, &lport) != 0) {
            fprintf(stderr, "airlock: cannot listen on %s\n", cfg->listen);
            goto out;
        }
        log_info("SSH also on %s (port %d)", cfg->listen, lport);
    }
    log_info("tmux socket %s, control socket %s", a->tmux_sock, a->ctl_sock);
    if (cfg->mode == CONTROL_WAIT)
        box_print(a, a->session, 1);
    else
        printf("airlock: agent %s serving; sessions: %s/debug-sessions?agent=%s\n", a->name,
               cfg->server, a->name);
    fflush(stdout);
    loop(a);
    code = a->exit_code;
out:
    agent_cleanup(a);
    if (a->n_tunnels == 0) {
        free(a->name);
        free(a->credential);
        free(a->control_url);
        free(a->tunnel_base);
        free(a->session);
        free(a->owner);
        free(a->run_dir);
        free(a->tmux_sock);
        free(a->ctl_sock);
        free(a);
    }
    /* XXX with tunnels still dialing, a stays allocated: they read it until the process exits. */
    return code;
}
