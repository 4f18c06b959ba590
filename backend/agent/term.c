/*
 * Browser terminals (issue 13). For each {"type":"terminal"} the server
 * sends, a detached thread starts a tmux client attached to the session's
 * shared tmux session on a PTY it owns (sshd_term_spawn: `attach -r` when
 * the mode is "ro"), dials back to .../tunnel/{conn} like an SSH tunnel,
 * and bridges the PTY and the WebSocket with wsbridge.c: binary frames are
 * terminal bytes both ways. Text frames from the browser are small JSON
 * control messages; the only one is {"type":"resize","cols":N,"rows":N},
 * which resizes the PTY (tmux then redraws). The server refuses a read-only
 * browser's binary frames before they get here; the read-only tmux client
 * ignores keys all the same.
 *
 * The thread ends when either side does: the tmux client exits (the session
 * was killed at its end: the PTY reads EIO), the server closes the stream
 * (removal, end, the browser went), or the agent stops (agent.stop_pipe).
 * It then hangs up the client (SIGHUP, as a closing terminal would) and
 * reaps it. It counts in agent.n_tunnels, so a stopping agent waits for it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "control_int.h"
#include "log.h"
#include "sshd.h"
#include "tmux.h"
#include "util.h"
#include "ws.h"
#include "wsbridge.h"
#include "xmalloc.h"

#define TERM_HWM (256 * 1024) /* bytes queued either way before we stop reading */
#define TERM_CHUNK (16 * 1024)
#define TERM_CLOSE_MS 2000
#define TERM_SIZE_MAX 1000 /* cols, rows */
#define TERM_REAP_MS 2000  /* a tmux client that outlives its hang-up this long is killed */

struct term {
    struct agent *a;
    char *url, *session, *conn;
    int read_only, cols, rows;
    int master; /* the PTY of the tmux client */
    int pid;
    struct wsbridge br;
};

static void
term_free(struct term *t)
{
    free(t->url);
    free(t->session);
    free(t->conn);
    free(t);
}

/* Reads {"type":"resize","cols":N,"rows":N}; anything else is ignored. */
static void
on_control(struct term *t, const uint8_t *msg, size_t len)
{
    json_t *m = json_loadb((const char *)msg, len, 0, NULL);
    json_int_t c = json_integer_value(json_object_get(m, "cols"));
    json_int_t r = json_integer_value(json_object_get(m, "rows"));

    if (json_is_string(json_object_get(m, "type")) &&
        strcmp(json_string_value(json_object_get(m, "type")), "resize") == 0 && c >= 1 &&
        c <= TERM_SIZE_MAX && r >= 1 && r <= TERM_SIZE_MAX)
        tmux_pty_resize(t->master, (int)c, (int)r);
    else
        log_debug("term %s: ignoring a control message", t->conn);
    json_decref(m);
}

/* The ws_msg_fn: text is control, binary goes to the PTY through the bridge. */
static void
on_msg(struct ws *w, int opcode, const uint8_t *msg, size_t len, void *ud)
{
    struct term *t = ud;

    if (opcode == WS_OP_TEXT) {
        on_control(t, msg, len);
        return;
    }
    if (!t->read_only && len > 0) /* the server refuses a read-only browser's keys before */
        sshd_term_input(t->a->sshd, t->session);
    wsbridge_on_msg(w, opcode, msg, len, &t->br);
}

/* Hangs the tmux client up and reaps it. */
static void
client_end(struct term *t)
{
    if (t->master >= 0)
        close(t->master); /* the client's terminal goes: it gets SIGHUP and detaches */
    t->master = -1;
    if (t->pid > 0) {
        int64_t end = time_mono_ms() + TERM_REAP_MS;

        (void)kill(t->pid, SIGHUP);
        /* tmux detaches on the hang-up at once; TERM_REAP_MS only bounds a client that does not. */
        while (waitpid(t->pid, NULL, WNOHANG) == 0) {
            if (time_mono_ms() >= end) {
                (void)kill(t->pid, SIGKILL);
                (void)waitpid(t->pid, NULL, 0);
                break;
            }
            (void)poll(NULL, 0, 10);
        }
    }
    t->pid = -1;
}

/* Tells the server (and so the browser) why there is no terminal, and waits for the close to go. */
static void
refuse(struct ws *w)
{
    int64_t end = time_mono_ms() + TERM_CLOSE_MS;

    ws_close(w, 1011, "the agent cannot start a terminal for this session");
    while (ws_alive(w) && time_mono_ms() < end) {
        struct pollfd p = {ws_fd(w), ws_poll_events(w), 0};

        if (poll(&p, 1, (int)(end - time_mono_ms())) < 0 && errno != EINTR)
            break;
        if (ws_pump(w, p.revents) != 0)
            break;
    }
}

static void *
term_main(void *arg)
{
    struct term *t = arg;
    struct agent *a = t->a;
    struct wsbridge_cfg bc = {
        .stop_fd = a->stop_pipe[0],
        .hwm = TERM_HWM,
        .chunk = TERM_CHUNK,
        .close_wait_ms = TERM_CLOSE_MS,
        .in_eof_reason = "terminal closed",
        .out_gone_reason = "terminal closed",
        .stop_reason = "agent shutting down",
    };
    struct ws *w = NULL;
    char err[512];
    int r;

    r = sshd_term_spawn(a->sshd, t->session, t->read_only, t->cols, t->rows, &t->pid, &t->master);
    if (r != 0) {
        /* Dial back all the same, so the browser hears why at once rather than at the timeout. */
        log_warn("term %s: cannot start a terminal for %s: %s", t->conn, t->session, err_str(r));
    }
    bc.in_fd = bc.out_fd = t->master;
    wsbridge_init(&t->br, &bc);
    if (ws_client_connect(t->url, a->credential, a->cfg->ca_file, CONNECT_TIMEOUT_MS, TERM_HWM,
                          on_msg, t, &w, err, sizeof(err)) != 0) {
        log_warn("term %s: dial-back failed: %s", t->conn, err);
    } else if (t->master < 0) {
        refuse(w);
    } else {
        log_info("term %s: %s terminal up for session %s", t->conn, t->read_only ? "ro" : "rw",
                 t->session);
        (void)wsbridge_run(&t->br, w);
    }
    client_end(t);
    ws_free(w);
    wsbridge_cleanup(&t->br);
    log_debug("term %s: closed", t->conn);
    term_free(t);
    pthread_mutex_lock(&a->mu);
    a->n_tunnels--;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* cols/rows of m as 1..TERM_SIZE_MAX, else def. */
static int
size_of(const json_t *m, const char *k, int def)
{
    json_int_t v = json_integer_value(json_object_get(m, k));

    return v >= 1 && v <= TERM_SIZE_MAX ? (int)v : def;
}

void
control_agent_term_start(struct agent *a, const json_t *m)
{
    const char *conn = json_string_value(json_object_get(m, "conn"));
    const char *session = json_string_value(json_object_get(m, "session"));
    const char *mode = json_string_value(json_object_get(m, "mode"));
    struct term *t;
    pthread_attr_t at;
    pthread_t th;
    char *esc;

    if (conn == NULL || session == NULL || conn[0] == '\0') {
        log_warn("terminal without conn or session");
        return;
    }
    t = xcalloc(1, sizeof(*t));
    t->a = a;
    esc = control_path_escape(conn);
    t->url = xasprintf("%s/tunnel/%s", a->tunnel_base, esc);
    free(esc);
    t->session = xstrdup(session);
    t->conn = xstrdup(conn);
    /* Anything but an explicit "rw" watches. */
    t->read_only = mode == NULL || strcmp(mode, "rw") != 0;
    t->cols = size_of(m, "cols", 80);
    t->rows = size_of(m, "rows", 24);
    t->master = t->pid = -1;
    pthread_mutex_lock(&a->mu);
    a->n_tunnels++;
    pthread_mutex_unlock(&a->mu);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &at, term_main, t) != 0) {
        log_warn("term %s: cannot start a thread", conn);
        pthread_mutex_lock(&a->mu);
        a->n_tunnels--;
        pthread_mutex_unlock(&a->mu);
        term_free(t);
    }
    pthread_attr_destroy(&at);
}
