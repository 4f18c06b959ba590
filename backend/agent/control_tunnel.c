/*
 * Tunnels (DESIGN.md 8.3): for each "open" the server sends, a detached
 * thread dials back to .../tunnel/{conn}, hands one end of a socketpair to
 * sshd_serve_fd() and bridges the other end to the WebSocket (wsbridge.h:
 * bounded buffers, each side read only while the other side's queue is
 * under TUNNEL_HWM). The thread ends when either side does, or when the
 * agent stops (agent.stop_pipe).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control_int.h"
#include "log.h"
#include "sshd.h"
#include "util.h"
#include "ws.h"
#include "wsbridge.h"
#include "xmalloc.h"

#define TUNNEL_HWM (256 * 1024) /* bytes queued either way before we stop reading */
#define TUNNEL_CHUNK (64 * 1024)
#define TUNNEL_CLOSE_MS 5000

struct tunnel {
    struct agent *a;
    char *url, *session, *conn;
    struct wsbridge br; /* WebSocket <-> our end of the socketpair */
};

static void *
tunnel_main(void *arg)
{
    struct tunnel *t = arg;
    struct agent *a = t->a;
    struct wsbridge_cfg bc = {
        .stop_fd = a->stop_pipe[0],
        .hwm = TUNNEL_HWM,
        .chunk = TUNNEL_CHUNK,
        .close_wait_ms = TUNNEL_CLOSE_MS,
        .in_eof_reason = "ssh connection closed",
        .out_gone_reason = "ssh connection closed",
        .stop_reason = "agent shutting down",
    };
    struct ws *w = NULL;
    char err[512];
    int sp[2] = {-1, -1}, r, served = 0;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
        log_warn("conn %s: socketpair: %s", t->conn, strerror(errno));
        goto out;
    }
    (void)fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
    bc.in_fd = bc.out_fd = sp[0];
    wsbridge_init(&t->br, &bc);
    r = ws_client_connect(t->url, a->credential, a->cfg->ca_file, CONNECT_TIMEOUT_MS, TUNNEL_HWM,
                          wsbridge_on_msg, &t->br, &w, err, sizeof(err));
    if (r != 0) {
        log_warn("conn %s: dial-back failed: %s", t->conn, err);
        goto out;
    }
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
    (void)wsbridge_run(&t->br, w);
out:
    if (sp[0] >= 0)
        close(sp[0]);
    if (sp[1] >= 0)
        close(sp[1]);
    ws_free(w);
    wsbridge_cleanup(&t->br);
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

void
control_agent_tunnel_start(struct agent *a, const char *conn, const char *session)
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
