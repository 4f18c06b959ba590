/*
 * The agent's control loop (control.h; the files are mapped in
 * control_int.h): connect with back-off, hello, reconcile sessions, answer
 * $AIRLOCK_SOCK requests, print the box, ping, exit conditions.
 *
 * Level-triggered: every "session" message is the whole desired state of one
 * session, handed to sshd_session_update(), which closes what must close.
 * After a reconnect the server resends everything, so nothing is replayed.
 *
 * The loop wakes for the control WebSocket, $AIRLOCK_SOCK clients and
 * signals (a self-pipe); its one-second poll timeout drives what is a
 * timer by nature: pings, the box's countdown, activity reports, request
 * deadlines, --timeout and the reconnect back-off.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "box.h"
#include "clock.h"
#include "control_int.h"
#include "ctlsock.h"
#include "duration.h"
#include "err.h"
#include "log.h"
#include "record.h"
#include "sshd.h"
#include "summary.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define CONTROL_MAX_MSG (1024 * 1024)
#define BOX_CI_REPRINT_MS 60000
/* input reports while typing: often enough for second-scale idle and autoExtend rules */
#define ACTIVITY_MIN_MS 5000
#define CONTROL_REFUSED_MAX 5

static volatile sig_atomic_t got_signal;
static int sig_pipe[2] = {-1, -1};

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
    if (json_is_integer(json_object_get(j, "idleTimeout")))
        s->idle_timeout_s = (int64_t)json_integer_value(json_object_get(j, "idleTimeout"));
    s->can_extend = json_is_true(json_object_get(j, "canExtend"));
    if (json_is_integer(json_object_get(ts, "maxParticipants")))
        s->max_participants = (int)json_integer_value(json_object_get(ts, "maxParticipants"));
    s->rec_enabled = json_is_true(json_object_get(json_object_get(j, "recording"), "enabled"));
    s->rec_required = json_is_true(json_object_get(json_object_get(j, "recording"), "required"));
    *sp = s;
    return 0;
}

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
        free(a->seen[i].conns_key);
        free(a->seen[i].status);
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
        if (sn != NULL && strcmp(s->state, "Active") == 0) {
            struct clock_in c;
            int idle;
            int64_t end;

            control_agent_clock_in(a, sn, s, now, &c);
            end = clock_end(&c, &idle);
            bi.idle_ends_at = idle ? end : 0;
        }
        people = xcalloc(s->n_members + 1, sizeof(char *));
        for (i = 0; i < s->n_members; i++)
            people[i] =
                xasprintf("%s (%s)", s->members[i].user, dsess_role_name(s->members[i].role));
        bi.participants = (const char *const *)people;
        bi.n_participants = s->n_members;
        bi.connections = sshd_conn_count(a->sshd, session);
    }
    /* the idle end moves with every keystroke: the box follows it by the minute */
    kl = (size_t)snprintf(key, sizeof(key), "%s|%s|%lld|%lld|%d", bi.state ? bi.state : "",
                          bi.message ? bi.message : "", (long long)bi.expires_at,
                          (long long)(bi.idle_ends_at / 60), bi.connections);
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
    a->box_ms = time_mono_ms();
out:
    for (i = 0; people != NULL && people[i] != NULL; i++)
        free(people[i]);
    free(people);
    dsess_free(s);
}

/* Wall-clock RFC 3339 of a monotonic time t (ms) into at. */
static void
mono_fmt(int64_t t, int64_t now_ms, char at[21])
{
    time_fmt(time_now() - (now_ms - t) / 1000, at);
}

/*
 * The activity report of session (new JSON): each open connection with its
 * user, role, start and last input, and the session's last input (viewers'
 * keystrokes do not count: tmux ignores them; a read-write browser
 * terminal's do). *key gets the connection ids
 * (new string) so that a change is seen; *in the last input (monotonic ms).
 */
static json_t *
activity_json(struct agent *a, const char *session, int64_t now, char **key, int64_t *in)
{
    struct sshd_conn_info *v = NULL;
    json_t *conns = json_array(), *j;
    size_t n = 0, i, kl = 0;
    char at[21], *k;
    int64_t tin;

    sshd_conn_list(a->sshd, session, &v, &n);
    *in = 0;
    for (i = 0; i < n; i++)
        kl += strlen(v[i].id) + 1;
    k = xcalloc(kl + 1, 1);
    kl = 0;
    for (i = 0; i < n; i++) {
        size_t il = strlen(v[i].id);
        json_t *c;

        memcpy(k + kl, v[i].id, il); /* sized above */
        k[kl + il] = ',';
        kl += il + 1;
        mono_fmt(v[i].authed_ms, now, at);
        c = json_pack("{s:s, s:s, s:s, s:s}", "id", v[i].id, "user", v[i].user, "role",
                      dsess_role_name(v[i].role), "since", at);
        if (v[i].role != ROLE_VIEWER && v[i].last_input_ms > 0) {
            mono_fmt(v[i].last_input_ms, now, at);
            json_object_set_new(c, "lastInputAt", json_string(at));
            if (v[i].last_input_ms > *in)
                *in = v[i].last_input_ms;
        }
        json_array_append_new(conns, c);
    }
    sshd_conn_list_free(v, n);
    if ((tin = sshd_term_input_ms(a->sshd, session)) > *in) /* the browser terminal's */
        *in = tin;
    if (*in > 0)
        mono_fmt(*in, now, at);
    j = json_pack("{s:s, s:s, s:o, s:s?}", "type", "activity", "session", session, "connections",
                  conns, "lastInputAt", *in > 0 ? at : NULL);
    *key = k;
    return j;
}

/*
 * Reports each session's activity (DESIGN.md 8.2) on every connect and
 * disconnect, and while input flows at most every ACTIVITY_MIN_MS.
 */
static void
activity_send(struct agent *a)
{
    int64_t now = time_mono_ms();
    size_t i;

    if (a->ws == NULL)
        return;
    for (i = 0; i < a->n_seen; i++) {
        struct seen *sn = &a->seen[i];
        char *key = NULL, *msg;
        int64_t in = 0;
        json_t *j;

        if (sn->ended)
            continue;
        j = activity_json(a, sn->name, now, &key, &in);
        if (sn->conns >= 0 && sn->conns_key != NULL && strcmp(key, sn->conns_key) == 0 &&
            !(in > sn->input_sent_ms && now - sn->activity_ms >= ACTIVITY_MIN_MS)) {
            free(key);
            json_decref(j);
            continue;
        }
        sn->conns = (int)json_array_size(json_object_get(j, "connections"));
        free(sn->conns_key);
        sn->conns_key = key;
        sn->activity_ms = now;
        if (in > 0)
            sn->input_sent_ms = in;
        msg = json_dumps(j, JSON_COMPACT);
        if (msg != NULL)
            (void)ws_send_text(a->ws, msg);
        free(msg);
        json_decref(j);
        if (sn->conns > 0)
            a->ever_connected = 1;
    }
}

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
    record_update(a->rec, s->name, s->state, s->rec_enabled, s->rec_required);
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
        control_agent_tunnel_start(a, json_string_value(json_object_get(m, "conn")),
                                   json_string_value(json_object_get(m, "session")));
    } else if (strcmp(type, "terminal") == 0) {
        control_agent_term_start(a, m);
    } else if (strcmp(type, "reply") == 0) {
        control_agent_reply(a, m);
    } else {
        log_debug("ignoring control message '%s'", type);
    }
    json_decref(m);
}

/*
 * Schedules the next connection attempt. A back-off is a timer by nature: a
 * server that is down sends no event when it is back. Jittered exponential:
 * 0.5 s doubling to 30 s, each +-25 %, so agents do not reconnect in step.
 */
static void
backoff_next(struct agent *a)
{
    int64_t jitter = a->backoff_ms / 4;

    a->next_connect_ms =
        time_mono_ms() + a->backoff_ms - jitter + (int64_t)(random() % (2 * jitter + 1));
    a->backoff_ms = a->backoff_ms * 2 > CONTROL_AGENT_BACKOFF_MAX_MS ? CONTROL_AGENT_BACKOFF_MAX_MS
                                                                     : a->backoff_ms * 2;
}

static void
control_disconnect(struct agent *a, const char *why)
{
    if (a->ws == NULL)
        return;
    log_warn("control channel lost (%s); reconnecting", why);
    ws_free(a->ws);
    a->ws = NULL;
    backoff_next(a);
}

static void
control_connect(struct agent *a)
{
    char err[512];
    json_t *hello;
    char *msg;
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
        backoff_next(a);
        return;
    }
    if (a->fail_count > 0 || a->connected_ms > 0)
        log_info("control channel connected again");
    else
        log_info("control channel connected");
    a->fail_count = 0;
    a->refused_count = 0;
    a->backoff_ms = CONTROL_AGENT_BACKOFF_MIN_MS;
    a->connected_ms = a->last_ping_ms = time_mono_ms();
    hello = json_pack("{s:s, s:s, s:[s]}", "type", "hello", "version", AIRLOCK_VERSION, "hostKeys",
                      sshd_host_key_line(a->sshd));
    msg = json_dumps(hello, JSON_COMPACT);
    json_decref(hello);
    (void)ws_send_text(a->ws, msg);
    free(msg);
    /* Force the next activity message: the server forgot the counts. */
    for (size_t i = 0; i < a->n_seen; i++)
        a->seen[i].conns = -1;
    control_agent_requests_flush(a);
    if (ws_pump(a->ws, 0) != 0)
        control_disconnect(a, "closed at once");
}

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
        char tmo[32];
        json_t *m;

        duration_format(a->cfg->timeout_s, tmo, sizeof(tmo));
        /* the agent's own decision: the server records it as airlock's, reason wait_timeout */
        m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "resume", "id", "timeout",
                      "session", s->name, "user", owner, "reason", "wait_timeout", "timeout", tmo);
        char *msg = json_dumps(m, JSON_COMPACT);
        int64_t until = time_mono_ms() + 2000;

        (void)ws_send_text(a->ws, msg);
        free(msg);
        json_decref(m);
        /*
         * Wait for the flush and the answer (which is only logged): events
         * on the WebSocket, bounded at 2 s so that a server that does not
         * answer cannot hold the job.
         */
        while (time_mono_ms() < until && ws_alive(a->ws)) {
            struct pollfd p = {ws_fd(a->ws), ws_poll_events(a->ws), 0};

            if (poll(&p, 1, (int)(until - time_mono_ms())) < 0 || ws_pump(a->ws, p.revents) != 0)
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
    int64_t now = time_mono_ms();

    if (a->ws != NULL) {
        if (now - ws_last_rx_ms(a->ws) > CONTROL_AGENT_DEAD_MS) {
            control_disconnect(a, "server silent for 45 s");
        } else if (now - a->last_ping_ms >= CONTROL_AGENT_PING_MS) {
            (void)ws_ping(a->ws);
            a->last_ping_ms = now;
        }
    }
    control_agent_requests_expire(a);
    activity_send(a);
    control_agent_clock(a);
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
        int64_t now = time_mono_ms();
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

/* Waits up to secs for every tunnel thread to end (each signals cv); returns how many are left. */
static int
tunnels_wait(struct agent *a, int secs)
{
    struct timespec ts;
    int left;

    pthread_mutex_lock(&a->mu);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += secs;
    while (a->n_tunnels > 0)
        if (pthread_cond_timedwait(&a->cv, &a->mu, &ts) != 0)
            break;
    left = a->n_tunnels;
    pthread_mutex_unlock(&a->mu);
    return left;
}

static void
agent_cleanup(struct agent *a)
{
    size_t i;
    int left;

    control_agent_requests_abort(a);
    /*
     * The SSH connections close first, while their tunnels still carry what
     * they send (the reason, the exit status of a running `airlock resume`,
     * which sshd_stop waits for), and the control channel last: the server
     * cuts what is still relayed once the agent is gone (core.c).
     */
    sshd_stop(a->sshd);
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    pthread_mutex_unlock(&a->mu);
    /*
     * Each tunnel signals cv as it ends (its SSH side closed above, so it
     * drains and ends on its own); 3 s bound that wait for a tunnel still
     * dialing. Only then the stop pipe, the backstop for one still open.
     */
    if ((left = tunnels_wait(a, 3)) > 0) {
        if (a->stop_pipe[1] >= 0 && write(a->stop_pipe[1], "s", 1) < 0)
            log_warn("cannot signal the tunnels to stop: %s", strerror(errno));
        if ((left = tunnels_wait(a, 1)) > 0)
            log_warn("%d tunnels still open at exit", left);
    }
    if (a->ws != NULL) {
        int64_t until = time_mono_ms() + 1000;

        ws_close(a->ws, 1000, a->cfg->mode == CONTROL_WAIT ? "wait finished" : "agent stopping");
        /* The server's close answer, bounded at 1 s: exiting must not hang on it. */
        while (ws_alive(a->ws) && time_mono_ms() < until) {
            struct pollfd p = {ws_fd(a->ws), ws_poll_events(a->ws), 0};

            if (poll(&p, 1, (int)(until - time_mono_ms())) < 0 || ws_pump(a->ws, p.revents) != 0)
                break;
        }
        ws_free(a->ws);
        a->ws = NULL;
    }
    /* The recordings' last chunks, while the tmux server (and what it printed last) is there. */
    sshd_set_recorder(a->sshd, NULL);
    record_free(a->rec);
    a->rec = NULL;
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
        free(a->seen[i].conns_key);
        free(a->seen[i].status);
    }
    if (a->credential != NULL)
        explicit_bzero(a->credential, strlen(a->credential));
}

static int
tmux_ensure(void *ud, const char *session)
{
    return sshd_tmux_ensure(ud, session);
}

/* The recorder, once the agent has a name and a credential (docs/recording.md). */
static void
recorder_start(struct agent *a)
{
    char *esc = control_path_escape(a->name), *agent_path = xasprintf("/api/v1/agents/%s", esc);
    struct record_cfg rc = {.server = a->cfg->server,
                            .agent_path = agent_path,
                            .credential = a->credential,
                            .ca_file = a->cfg->ca_file,
                            .run_dir = a->run_dir,
                            .tmux_sock = a->tmux_sock,
                            .ensure = tmux_ensure,
                            .ud = a->sshd};

    a->rec = record_new(&rc);
    sshd_set_recorder(a->sshd, a->rec);
    free(agent_path);
    free(esc);
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
    a->started_ms = time_mono_ms();
    a->backoff_ms = CONTROL_AGENT_BACKOFF_MIN_MS;
    if (pipe2(a->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        a->stop_pipe[0] = a->stop_pipe[1] = -1; /* tunnels then end on sshd's EOF alone */
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
    if ((code = control_agent_register(a)) != 0)
        goto out;
    recorder_start(a);
    code = 1;
    if (ctlsock_listen(a->ctl_sock, control_agent_request, a, &a->cs) != 0) {
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
    if (cfg->mode == CONTROL_WAIT) {
        box_print(a, a->session, 1);
        summary_write(cfg->server, a->session, sshd_host_key_line(a->sshd));
    } else
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
        if (a->stop_pipe[0] >= 0) {
            close(a->stop_pipe[0]);
            close(a->stop_pipe[1]);
        }
        free(a);
    }
    /* XXX with tunnels still dialing, a stays allocated: they read it until the process exits. */
    return code;
}
